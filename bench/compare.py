"""The grid of runs: every architecture x seed of a :class:`bench.config.CompareConfig` under one budget, and
the real-data floor.

One path. A grid is a list of *cells* (:func:`cells`: ``<arch>/<seed>``, then ``real-floor``). Whoever runs a
cell, this process in :func:`compare` or a worker of a shared grid (``studies.grid``, which takes the cells
from an Optuna study used as a queue), runs it with :func:`run_one`, and whoever reports the grid reads it back
from MLflow with :func:`results`. So what a cell's earlier run means (kept, continued or started again), which
floor run counts (the newest that FINISHED) and how a grid's outcome is read exist once; the two ways differ
only in where the next cell comes from. ``compare()`` builds no report: the CLI does that with
``reports.build.build_report`` from what MLflow now holds.
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
from bench.tracking import Tracker, latest_floor

FLOOR_CELL = "real-floor"
PENDING = "PENDING"  # RunResult.status of a cell another worker of a shared grid still runs or has yet to take


@dataclass
class CompareResult:
    runs: list[RunResult]

    @property
    def failed(self) -> list[RunResult]:
        """Runs that did not finish (the real-data floor included), not counting :attr:`pending` ones."""
        return [r for r in self.runs if r.status not in (FINISHED, PENDING)]

    @property
    def pending(self) -> list[RunResult]:
        """Cells of a shared grid still running, or waiting, on other workers when this process left it."""
        return [r for r in self.runs if r.status == PENDING]


def cells(cc: CompareConfig) -> list[str]:
    """The grid's cells, in the order they run: ``<arch>/<seed>`` (architectures in the outer loop), then
    ``real-floor`` when evaluation is on."""
    return [f"{a}/{s}" for a in cc.archs for s in cc.seeds] + ([FLOOR_CELL] if cc.eval.enabled else [])


def experiment_runs(tracker: Tracker, cc: CompareConfig) -> list[dict[str, Any]]:
    """Every run of the comparison's experiment, oldest first (none when it does not exist yet)."""
    if tracker.experiment_id(cc.experiment, create=False) is None:
        return []
    return sorted(tracker.search_runs([cc.experiment]), key=lambda r: r["start_time"])


def previous_runs(
    tracker: Tracker, cc: CompareConfig, runs: list[dict[str, Any]] | None = None
) -> dict[tuple[str, int], dict[str, Any]]:
    """The latest run of each (architecture, seed) already in the experiment (``runs``: its
    :func:`experiment_runs`, when the caller has them)."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in experiment_runs(tracker, cc) if runs is None else runs:
        arch, seed = r["tags"].get(keys.TAG_ARCH), r["tags"].get(keys.TAG_SEED)
        if r["tags"].get(keys.TAG_KIND) == keys.KIND_RUN and arch and seed is not None:
            out[(arch, int(seed))] = r
    return out


def floor_runs(cc: CompareConfig, tracker: Tracker, runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The experiment's real-data floor runs, oldest first (``runs``: as :func:`previous_runs`)."""
    runs = experiment_runs(tracker, cc) if runs is None else runs
    return [r for r in runs if r["tags"].get(keys.TAG_KIND) == keys.KIND_FLOOR]


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


def floor_cell(cc: CompareConfig, tracker: Tracker, resume: bool) -> RunResult:
    """The real-data floor of the grid: with ``resume``, kept if a floor run of the experiment FINISHED (the
    newest, :func:`latest_floor`); otherwise computed again, a floor run left RUNNING by a dead process being
    ended KILLED first."""
    runs = floor_runs(cc, tracker)
    kept = latest_floor(runs) if resume else None
    if kept is not None:
        return RunResult(keys.KIND_FLOOR, cc.seeds[0], kept["run_id"], FINISHED, kept["metrics"])
    for r in runs:
        if r["status"] == "RUNNING":
            tracker.attach(r["run_id"]).end("KILLED", "its process stopped before it finished")
    try:
        return floor(cc, tracker)
    except Exception as e:  # as a run that raises: recorded FAILED, the comparison still reports
        return RunResult(keys.KIND_FLOOR, cc.seeds[0], None, FAILED, error=f"{type(e).__name__}: {e}")


def run_one(
    cell: str,
    cc: CompareConfig,
    tracker: Tracker,
    progress: Any,
    resume: bool,
    owner: Callable[[], bool] | None = None,
    previous: dict[tuple[str, int], dict[str, Any]] | None = None,
) -> RunResult:
    """Run one cell of the grid (:func:`cells`): the floor, or an (architecture, seed) whose latest run in the
    experiment is continued as :func:`run_cell` says when ``resume`` (a shared grid always resumes).
    ``previous``: :func:`previous_runs` as the caller read it once (None: read now, as a shared grid must)."""
    if cell == FLOOR_CELL:
        return floor_cell(cc, tracker, resume)
    arch, seed = cell.rsplit("/", 1)
    if resume and previous is None:
        previous = previous_runs(tracker, cc)
    prev = previous.get((arch, int(seed))) if resume else None
    return run_cell(cc.run(arch, int(seed)), tracker, progress, prev, owner)


def results(
    cc: CompareConfig, tracker: Tracker, why: dict[str, str] | None = None, pending: set[str] = frozenset()
) -> list[RunResult]:
    """The outcome of the grid as MLflow holds it: the latest run of each (architecture, seed) and the floor
    run that counts (:func:`latest_floor`). ``why``: {cell: reason} for cells with no run (e.g. a plugin that
    could not be built); ``pending``: cells that other workers of a shared grid still run or have yet to take,
    reported :data:`PENDING` (not failed) when they have no finished run."""
    why = why or {}
    runs = experiment_runs(tracker, cc)  # one read of the store for the runs and the floor
    previous = previous_runs(tracker, cc, runs)
    out = []
    for cfg in cc.runs():
        cell = f"{cfg.arch}/{cfg.seed}"
        r = previous.get((cfg.arch, cfg.seed))
        if cell in why:  # no run this time (an older one of the cell does not stand in for it)
            out.append(RunResult(cfg.arch, cfg.seed, None, FAILED, error=why[cell]))
            continue
        if r is None or (cell in pending and r["status"] != FINISHED):
            status = PENDING if cell in pending else FAILED
            error = "running or waiting on another worker" if cell in pending else "no run was recorded"
            out.append(RunResult(cfg.arch, cfg.seed, r["run_id"] if r else None, status, error=error))
            continue
        error = None if r["status"] == FINISHED else r["tags"].get(keys.TAG_FAILURE, r["status"])
        out.append(RunResult(cfg.arch, cfg.seed, r["run_id"], r["status"], r["metrics"], error=error))
    if cc.eval.enabled:
        kept = latest_floor(floor_runs(cc, tracker, runs))
        if kept is not None and FLOOR_CELL not in why:
            out.append(RunResult(keys.KIND_FLOOR, cc.seeds[0], kept["run_id"], FINISHED, kept["metrics"]))
        elif FLOOR_CELL in pending:
            out.append(RunResult(keys.KIND_FLOOR, cc.seeds[0], None, PENDING, error="running on another worker"))
        else:
            error = why.get(FLOOR_CELL, "the real-data floor did not finish")
            out.append(RunResult(keys.KIND_FLOOR, cc.seeds[0], None, FAILED, error=error))
    return out


def compare(
    cc: CompareConfig,
    show_progress: bool = True,
    on_run_end: Callable[[RunResult], None] | None = None,
    resume: bool = False,
) -> CompareResult:
    """Train every architecture x seed of ``cc`` under the same budget, in this process, cell by cell.

    With ``resume``, an (architecture, seed) whose latest run FINISHED is skipped, one that was interrupted
    (KILLED, or left RUNNING by a killed process) continues from its checkpoint, a FAILED one starts again,
    and a FINISHED real-data floor is kept. Bad input raises UserError before the first run starts. A run that
    fails (diverges or raises) is recorded FAILED and the comparison goes on; Ctrl-C ends the current run
    KILLED and stops. With evaluation on, the real-data floor (training images scored as samples) is added
    as a reference run.
    """
    prepare_all(cc, resolve_device(cc.train.device))
    tracker = Tracker(cc.workdir)
    why: dict[str, str] = {}
    previous = previous_runs(tracker, cc) if resume else {}  # once: a cell's run changes no other cell's entry
    with progress_bar() if show_progress else contextlib.nullcontext() as progress:
        for cell in cells(cc):
            result = run_one(cell, cc, tracker, progress, resume, previous=previous)
            if result.run_id is None:
                why[cell] = result.error or result.status
            if on_run_end:
                on_run_end(result)
    return CompareResult(results(cc, tracker, why))
