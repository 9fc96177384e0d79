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
from bench.config import CompareConfig
from bench.errors import UserError
from bench.harness import resolve_device
from bench.hooks import progress_bar
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
    device = resolve_device(cc.train.device)
    for cfg in {r.arch: r for r in runs}.values():  # every architecture, before the first run starts
        prepare(cfg, device)
    tracker = Tracker(cc.workdir)
    results: list[RunResult] = []
    previous = previous_runs(tracker, cc) if resume else {}
    with progress_bar() if show_progress else contextlib.nullcontext() as progress:
        for cfg in runs:
            prev = previous.get((cfg.arch, cfg.seed))
            if prev is not None and prev["status"] == FINISHED:
                results.append(RunResult(cfg.arch, cfg.seed, prev["run_id"], FINISHED, prev["metrics"]))
                continue
            ckpt = None
            if prev is not None and prev["status"] in ("KILLED", "RUNNING"):
                found = run_paths(cfg, prev["run_id"]).checkpoint
                ckpt = found if found.is_file() else None
            try:
                res = train(cfg, tracker, progress, resume=ckpt)
            except UserError:
                raise
            except Exception as e:  # e.g. a plugin whose build() raises: the comparison goes on
                res = RunResult(cfg.arch, cfg.seed, None, FAILED, error=f"{type(e).__name__}: {e}")
            results.append(res)
            if on_run_end:
                on_run_end(res)
    if cc.eval.enabled:
        results.append(floor(cc, tracker))
    return CompareResult(results)
