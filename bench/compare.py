"""The grid of runs: every architecture x seed of a :class:`bench.config.CompareConfig` under one budget.

``compare()`` trains the grid (resuming it on request) and adds the real-data floor; it builds no report:
the CLI does that with ``reports.build_report`` from what MLflow now holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import keys
from bench.config import CompareConfig, RunConfig
from bench.errors import TakenOver, UserError
from bench.harness import resolve_device
from bench.progress import progress_bar
from bench.run import FAILED, FINISHED, RunResult, floor, prepare, run_paths, train
from bench.tracking import Tracker


@dataclass
class CompareResult:
    runs: list[RunResult]

    @property
    def failed(self) -> list[RunResult]:
        """Runs that did not finish (the real-data floor included)."""
        return [r for r in self.runs if r.status != FINISHED]


def previous_runs(tracker: Tracker, cc: CompareConfig) -> dict[tuple[str, int], dict[str, Any]]:
    """The latest run of each (architecture, seed) already in the experiment."""
    if tracker.experiment_id(cc.experiment, create=False) is None:
        return {}
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in sorted(tracker.search_runs([cc.experiment]), key=lambda r: r["start_time"]):
        arch, seed = r["tags"].get(keys.TAG_ARCH), r["tags"].get(keys.TAG_SEED)
        if r["tags"].get(keys.TAG_KIND) == keys.KIND_RUN and arch and seed is not None:
            out[(arch, int(seed))] = r
    return out


def prepare_all(cc: CompareConfig, device: Any) -> None:
    """Check every architecture of ``cc`` (:func:`bench.run.prepare`) before the first run starts."""
    for cfg in {r.arch: r for r in cc.runs()}.values():
        prepare(cfg, device)


def run_line(r: RunResult, extractor: str) -> str:
    """One line for a run that ended, as a log shows it: ``dcgan seed 0: FINISHED  FID 293.1 (lenet-mnist)
    46850 steps in 52.1 min`` (the floor: its FID only; a run that did not finish: its status and why)."""
    name = "real-data floor" if r.arch == keys.KIND_FLOOR else f"{r.arch} seed {r.seed}"
    if r.status != FINISHED:
        return f"{name}: {r.status}: {r.error or 'no reason recorded'}"
    fid = r.metrics.get(keys.eval_key(extractor, keys.FID))
    parts = [f"{name}: FINISHED"]
    if fid is not None:
        parts.append(f"FID {fid:.4g} ({extractor})")
    if keys.G_STEPS in r.metrics:
        parts.append(f"{int(r.metrics[keys.G_STEPS])} steps in {r.metrics.get(keys.TRAIN_S, 0) / 60:.1f} min")
    return "  ".join(parts)


def run_cell(
    cfg: RunConfig,
    tracker: Tracker,
    progress: Any,
    prev: dict[str, Any] | None,
    owner: Callable[[], bool] | None = None,
) -> RunResult:
    """One (architecture, seed) of the grid, given its latest run ``prev`` in the experiment (None: none or
    not resuming): a FINISHED one is kept (no training), a KILLED or RUNNING one continues from its checkpoint
    (one left RUNNING without a checkpoint, by a worker killed before its first one, is ended KILLED and the run
    starts again), anything else starts a new run. A run that raises is returned FAILED; UserError and
    TakenOver (``owner``: see :func:`bench.run.train`) propagate."""
    if prev is not None and prev["status"] == FINISHED:
        return RunResult(cfg.arch, cfg.seed, prev["run_id"], FINISHED, prev["metrics"])
    ckpt = None
    if prev is not None and prev["status"] in ("KILLED", "RUNNING"):
        found = run_paths(cfg, prev["run_id"]).checkpoint
        ckpt = found if found.is_file() else None
        if ckpt is None and prev["status"] == "RUNNING":
            tracker.attach(prev["run_id"]).end("KILLED", "its process died before its first checkpoint")
    try:
        return train(cfg, tracker, progress, resume=ckpt, owner=owner)
    except (UserError, TakenOver):
        raise
    except Exception as e:  # e.g. a plugin whose build() raises: the comparison goes on
        return RunResult(cfg.arch, cfg.seed, None, FAILED, error=f"{type(e).__name__}: {e}")


def compare(
    cc: CompareConfig,
    show_progress: bool = True,
    on_run_end: Callable[[RunResult], None] | None = None,
    resume: bool = False,
) -> CompareResult:
    """Train every architecture x seed of ``cc`` under the same budget.

    With ``resume``, an (architecture, seed) whose latest run FINISHED is skipped, one that was interrupted
    (KILLED, or left RUNNING by a killed process) continues from its checkpoint, and a FAILED one starts
    again. Bad input raises UserError before the first run starts. A run that fails (diverges or raises) is
    recorded FAILED and the comparison goes on; Ctrl-C ends the current run KILLED and stops. With
    evaluation on, the real-data floor (training images scored as samples) is added as a reference run.
    """
    runs = cc.runs()
    prepare_all(cc, resolve_device(cc.train.device))
    tracker = Tracker(cc.workdir)
    results: list[RunResult] = []
    previous = previous_runs(tracker, cc) if resume else {}
    with progress_bar() if show_progress else contextlib.nullcontext() as progress:
        for cfg in runs:
            res = run_cell(cfg, tracker, progress, previous.get((cfg.arch, cfg.seed)))
            results.append(res)
            if on_run_end:
                on_run_end(res)
    if cc.eval.enabled:
        results.append(floor(cc, tracker))
        if on_run_end:
            on_run_end(results[-1])
    return CompareResult(results)
