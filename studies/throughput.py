"""Throughput of ``ganbench tune``: one record per invocation, kept in the study itself.

``trials_per_hour`` = trials an invocation finished / its wall-clock hours (launch, every worker's trials,
evaluation; start-up of the CLI excluded). One user attribute per invocation (``throughput/<start>-<pid>``),
so hosts sharing a study do not overwrite each other; the study report lists them.
"""

from __future__ import annotations

import os
import platform
import time

import optuna

from bench import signals
from bench.config import CompareConfig

THROUGHPUT = "throughput/"  # study user attribute prefix: one JSON record per ganbench tune invocation


def record_throughput(
    study: optuna.Study, workers: int, threads: int | None, trials: int, wall_s: float, cc: CompareConfig
) -> dict:
    """Store this invocation's throughput in the study (user attribute ``throughput/<start time>-<pid>``).

    ``trials_per_hour`` = trials finished by this invocation / its wall-clock hours (launch, every worker's
    trials, evaluation; start-up of the CLI excluded). One key per invocation, so hosts sharing a study do
    not overwrite each other.
    """
    import torch

    from bench.harness import resolve_device
    from bench.timing import device_name

    threads = threads or torch.get_num_threads()
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - wall_s)),
        "host": platform.node(),
        "device": device_name(resolve_device(cc.train.device), threads),
        "workers": workers,
        "threads_per_worker": threads,
        "trials": trials,
        "wall_s": round(wall_s, 2),
        "trials_per_hour": round(trials / wall_s * 3600, 2) if wall_s > 0 else 0.0,
    }
    with signals.deferred():
        study.set_user_attr(f"{THROUGHPUT}{record['started']}-{os.getpid()}", record)
    return record


def throughput(study: optuna.Study) -> list[dict]:
    """The throughput records of every ``ganbench tune`` invocation of the study, oldest first."""
    return [v for k, v in sorted(study.user_attrs.items()) if k.startswith(THROUGHPUT)]
