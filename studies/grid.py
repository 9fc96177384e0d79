"""A comparison shared by worker processes and hosts: ``ganbench compare --workers K`` / ``--storage URL``.

Shared state: an Optuna study ``compare-<experiment>`` in an Optuna storage, the same storages as
``ganbench tune`` (:func:`studies.runner.open_storage`): the journal file
``<workdir>/optuna/compare-<experiment>.journal`` (processes on one host) or an RDB storage such as PostgreSQL
(hosts). The study is a queue: each cell of the grid (an architecture x seed, and the real-data floor) is an
enqueued trial (``Study.enqueue_trial``, the cell in the user attribute ``ganbench.cell``), and a worker takes
the next one with ``Study.optimize(n_trials=1)``, which pops a waiting trial atomically in both storages, so two
workers never get the same trial. Why a queue of enqueued trials and not ``GridSampler``: once every grid point
has started, ``GridSampler`` gives an idle worker a point that is still running (a duplicate run), and it has no
way to hand a dead worker's point to another.

Exactly once. A cell is *settled* by a COMPLETE trial (its run FINISHED) or by a FAIL trial with a
``failure`` attribute (its run FAILED, or raised). :func:`reconcile`, run by every worker before it takes a
trial, enqueues each cell that has no settled, waiting or running trial. A worker that takes a trial whose
cell has a waiting, running or complete trial with a lower number drops it as a duplicate (PRUNED, ``duplicate_of``), so
two hosts that enqueue the same cell at once still run it once. The run itself is looked up by (architecture,
seed) in the MLflow experiment: a FINISHED one is kept, an interrupted one continues from its checkpoint
(:func:`bench.compare.run_cell`), so the experiment ends with one FINISHED run per cell.

Dead workers. Each trial records its worker (``ganbench.worker`` = ``host:pid``). A RUNNING trial whose worker is
on this host and no longer alive is failed as stale (the study attribute ``stale/<number>`` says why); on an RDB
storage Optuna's heartbeat (every 30 s, stale after 120 s silent: ``optuna.storages.fail_stale_trials``) fails
the trials of dead workers on other hosts too. The cell is then enqueued again and taken over from its last
checkpoint; a cell whose workers died :data:`MAX_TAKEOVERS` times is settled as failed. Idle workers wait while
trials still run (every ``poll_s`` seconds), so that someone is left to take over. The journal file has no
heartbeat: use it on one host. Checkpoints are files under ``<workdir>/runs/``: a takeover by another host needs
the workspace on storage every host reaches (docs/scaling-out.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from bench import keys, signals
from bench.compare import CompareResult, cells, prepare_all, previous_runs, results, run_line, run_one
from bench.config import CompareConfig, flatten, load_compare_config
from bench.errors import ConfigError, TakenOver
from bench.harness import resolve_device
from bench.progress import LineProgress, progress_bar
from bench.run import FAILED, FINISHED, RunResult
from bench.tracking import Tracker
from studies.runner import STALE, cores, open_storage, quiet_optuna
from studies.workers import alive, supervise, worker_id, worker_process

CELL, WORKER, FAILURE = "ganbench.cell", "ganbench.worker", "failure"
RETRY = "retry/"  # study user attribute prefix: retry/<cell> = the trial number from which --resume counts deaths
INTERRUPTED = "interrupted/"  # study user attribute prefix: interrupted/<number> = the worker Ctrl-C stopped
MAX_TAKEOVERS = 3  # a cell whose worker died this many times is settled as failed (e.g. it kills its process)
_LIVE = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING)
_IDENTITY_SKIP = ("archs", "seeds", "workdir", "train.device", "data.root")  # may differ between hosts, invocations


def study_name(experiment: str) -> str:
    """The Optuna study that holds the grid of the MLflow experiment ``experiment``."""
    return f"compare-{experiment}"


def _identity(cc: CompareConfig) -> dict[str, Any]:
    """What every worker of a grid must agree on: the config without what may differ between hosts."""
    flat = flatten(json.loads(json.dumps(dataclasses.asdict(cc), default=list)))
    return {k: v for k, v in sorted(flat.items()) if not k.startswith(_IDENTITY_SKIP)}


def open_grid(cc: CompareConfig, storage: str | None, create: bool = True, name: str | None = None) -> optuna.Study:
    """The grid's study in ``storage`` (None: the journal file in the workspace), created on first use; ``name``:
    ``compare-<name>`` instead of ``compare-<experiment>`` (one experiment's several grids: ``studies.fair``).

    Raises UserError for a storage that cannot be opened, or when the experiment's grid exists with another
    config (the key that differs is named): a grid's runs must share one budget and protocol."""
    quiet_optuna()
    name = study_name(name or cc.experiment)
    st = open_storage(storage, cc.workdir, name)
    study = optuna.create_study(storage=st, study_name=name, load_if_exists=True) if create else None
    study = study or optuna.load_study(study_name=name, storage=st)
    mine = _identity(cc)
    stored = study.user_attrs.get("config")
    if stored is None:
        with signals.deferred():
            study.set_user_attr("config", json.dumps(mine))
        stored = optuna.load_study(study_name=name, storage=st).user_attrs["config"]  # two first hosts: one wins
    theirs = json.loads(stored)
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        k = diff[0]
        raise ConfigError(
            f"experiment {cc.experiment!r} has a grid in this storage made with {k} = {theirs.get(k)!r}, not "
            f"{mine.get(k)!r}; use the same config, or another --experiment"
        )
    return study


@dataclass
class GridState:
    """What :func:`reconcile` found: cells waiting or running, cells settled, and the cells it enqueued."""

    waiting: int
    running: int
    settled: int
    enqueued: list[str]


def _interrupted(study: optuna.Study) -> set[int]:
    return {int(k[len(INTERRUPTED) :]) for k in study.user_attrs if k.startswith(INTERRUPTED)}


def fail_dead(study: optuna.Study) -> list[int]:
    """Fail as stale the RUNNING trials whose worker died: on this host, a worker process that is gone (or a
    trial that names no worker and started over 5 minutes ago); on an RDB storage, a heartbeat silent past
    its grace period (``optuna.storages.fail_stale_trials``). Returns the numbers of the trials it failed
    here (the study attribute ``stale/<number>`` says why)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # RDB storages with a heartbeat; a no-op on the journal
    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get(WORKER)
        silent = worker is None and t.datetime_start and time.time() - t.datetime_start.timestamp() > 300
        if (worker is not None and not alive(worker)) or silent:
            try:
                with signals.deferred():
                    study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                    study.set_user_attr(f"{STALE}{t.number}", f"stale: its worker {worker or '?'} stopped")
                failed.append(t.number)
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
                pass
    return failed


def reconcile(study: optuna.Study, grid: list[str], retry_failed: bool = False) -> GridState:
    """Fail the trials of dead workers as stale, then enqueue every cell of ``grid`` that has no settled,
    waiting or running trial (see the module docstring). ``retry_failed``: also cells whose run FAILED
    (``--resume``)."""
    fail_dead(study)
    interrupted = _interrupted(study)
    retry_from = {k[len(RETRY) :]: int(v) for k, v in study.user_attrs.items() if k.startswith(RETRY)}
    by_cell: dict[str, list[optuna.trial.FrozenTrial]] = {c: [] for c in grid}
    all_trials = study.get_trials(deepcopy=False)
    for t in all_trials:
        if t.user_attrs.get(CELL) in by_cell:
            by_cell[t.user_attrs[CELL]].append(t)
    waiting = running = settled = 0
    enqueued = []
    for cell, trials in by_cell.items():
        states = [t.state for t in trials]
        real = [t for t in trials if t.state != optuna.trial.TrialState.PRUNED]  # not duplicates, empty trials
        failed = bool(real) and real[-1].state == optuna.trial.TrialState.FAIL and FAILURE in real[-1].user_attrs
        deaths = sum(
            t.state == optuna.trial.TrialState.FAIL and FAILURE not in t.user_attrs and t.number not in interrupted
            for t in trials
            if t.number >= retry_from.get(cell, 0)
        )
        given_up = deaths >= MAX_TAKEOVERS
        if optuna.trial.TrialState.RUNNING in states:
            running += 1
        elif optuna.trial.TrialState.WAITING in states:
            waiting += 1
        elif optuna.trial.TrialState.COMPLETE in states or ((failed or given_up) and not retry_failed):
            settled += 1
        else:
            with signals.deferred():
                if failed or given_up:  # --resume: once more, its deaths counted afresh
                    study.set_user_attr(f"{RETRY}{cell}", max(t.number for t in all_trials) + 1)
                study.enqueue_trial({}, user_attrs={CELL: cell})
            enqueued.append(cell)
            waiting += 1
    return GridState(waiting, running, settled, enqueued)


def _owns(trial: optuna.Trial) -> bool:
    """Whether ``trial`` is still RUNNING in the storage, i.e. no other worker took its cell over (which it
    does when this worker looked dead: a heartbeat that stopped, a process paused past the grace period).
    True when the storage cannot be read: a glitch of the database is not a takeover."""
    try:
        (t,) = [t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number]
    except Exception:
        return True
    return t.state == optuna.trial.TrialState.RUNNING


def _objective(trial: optuna.Trial, cc: CompareConfig, tracker: Tracker, progress: Any) -> float:
    """Run the trial's cell; returns its primary FID (0 without evaluation). A FAILED run raises, recorded in
    the trial's ``failure`` attribute; a duplicate or an empty trial is pruned."""
    with signals.deferred():
        trial.set_user_attr(WORKER, worker_id())
    cell = trial.user_attrs.get(CELL)
    if cell is None:  # the queue emptied between the check and the pop: optimize made a fresh trial
        raise optuna.TrialPruned("no cell: the queue was empty")
    taken = trial.study.get_trials(deepcopy=False, states=(*_LIVE, optuna.trial.TrialState.COMPLETE))
    lower = [t.number for t in taken if t.user_attrs.get(CELL) == cell and t.number < trial.number]
    if lower:
        with signals.deferred():
            trial.set_user_attr("duplicate_of", lower[0])
        raise optuna.TrialPruned(f"{cell} is trial {lower[0]}'s")
    try:
        result = run_one(cell, cc, tracker, progress, resume=True, owner=lambda: _owns(trial))
    except TakenOver as e:  # the trial is another's now (failed as stale): nothing of it is touched here
        print(f"{cell}: {e}", file=sys.stderr, flush=True)
        raise
    except Exception as e:  # bad input found late: settled as failed, never retried in a loop
        print(f"{cell}: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        with signals.deferred():
            trial.set_user_attr(FAILURE, f"{type(e).__name__}: {e}")
        raise
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: the run ended KILLED; the cell is taken again later
        with signals.deferred():
            trial.study.set_user_attr(f"{INTERRUPTED}{trial.number}", worker_id())
        raise
    print(run_line(result, cc.eval.extractor), file=sys.stderr, flush=True)
    with signals.deferred():
        if result.run_id is not None:
            trial.set_user_attr("mlflow_run_id", result.run_id)
        if result.status != FINISHED:
            trial.set_user_attr(FAILURE, result.error or result.status)
    if result.status != FINISHED:
        raise RuntimeError(result.error or result.status)
    fid = float(result.metrics.get(keys.eval_key(cc.eval.extractor, keys.FID), 0.0))
    return fid if math.isfinite(fid) else 0.0  # Optuna would fail a NaN value: the run did finish


def take_one(study: optuna.Study, objective: Callable[[optuna.Trial], float], **kwargs: Any) -> None:
    """Run one trial of ``study`` (a waiting one first: Optuna pops it atomically), recording an exception as
    a failed trial; a trial another worker failed as stale meanwhile is reported in one line and left to it.
    ``kwargs`` go to ``Study.optimize`` (callbacks, gc_after_trial)."""
    try:
        study.optimize(objective, n_trials=1, catch=(Exception,), **kwargs)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as e:  # failed as stale meanwhile
        print(f"a trial of this worker was failed by another: {e}", file=sys.stderr, flush=True)


def work(study: optuna.Study, cc: CompareConfig, tracker: Tracker, progress: Any, poll_s: float = 10.0) -> None:
    """One worker: take cells until the grid is settled, waiting (``poll_s``) while others still run."""
    grid = cells(cc)
    while True:
        state = reconcile(study, grid)
        if state.waiting:
            take_one(study, lambda t: _objective(t, cc, tracker, progress))
        elif state.running:
            time.sleep(poll_s)
        else:
            return


def _worker(payload: dict[str, Any]) -> None:
    """A worker process (spawned): its device and torch threads, then :func:`work` with plain progress lines."""
    quiet_optuna()
    with worker_process(payload["threads"]):
        cc = load_compare_config(base=payload["config"])
        tracker = Tracker(cc.workdir)
        study = open_grid(cc, payload["storage"], create=False, name=payload.get("grid"))
        work(study, cc, tracker, LineProgress(sys.stderr) if payload["progress"] else None, payload["poll_s"])


def run_grid(
    cc: CompareConfig,
    storage: str | None = None,
    workers: int = 1,
    devices: tuple[str, ...] = (),
    resume: bool = False,
    show_progress: bool = True,
    poll_s: float = 10.0,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    name: str | None = None,
) -> CompareResult:
    """Run the grid of ``cc`` with ``workers`` processes on this host, sharing it through ``storage`` with any
    other host that runs the same command (see the module docstring); returns when every cell is settled.

    devices: worker i runs on ``devices[i % len(devices)]`` (e.g. ``("cuda:0", "cuda:1")``; empty:
    ``train.device`` for all). On the CPU each of K workers gets ``cores // K`` torch threads. One worker
    runs in this process, with the usual progress display; several are spawned and print plain progress
    lines. A worker that dies is replaced (at most 2 x workers times), its cell taken over. resume: cells
    whose run FAILED are run again. Raises UserError for bad input before any worker starts."""
    check_workers(workers, devices)
    prepare_all(cc, resolve_device(devices[0] if devices else cc.train.device))  # before anything is written
    study = open_grid(cc, storage, name=name)
    state = reconcile(study, cells(cc), retry_failed=resume)
    tracker = Tracker(cc.workdir)
    tracker.experiment_id(cc.experiment)  # once, before the workers open the store
    if workers == 1 and len(devices) <= 1:
        one = load_compare_config(base=_payload_config(cc, devices[0] if devices else None))
        with progress_bar() if show_progress else contextlib.nullcontext() as progress:
            work(study, one, tracker, progress, poll_s)
    elif state.waiting or state.running:
        _supervise(cc, storage, workers, devices, show_progress, poll_s, study, echo, name)
    final = reconcile(study, cells(cc))  # (a worker lost for good leaves its cell to the others, or to a re-run)
    return CompareResult(grid_results(cc, tracker, study, settled=not (final.waiting or final.running)))


def check_workers(workers: int, devices: tuple[str, ...]) -> None:
    """Raises ConfigError for ``--workers`` outside 1..64 or a ``--devices`` entry that is unknown or absent (an
    error now, not in a worker)."""
    if not 1 <= workers <= 64:
        raise ConfigError(f"--workers {workers} is not allowed; expected between 1 and 64")
    for d in devices:
        try:
            resolve_device(d)
        except ConfigError as e:
            raise ConfigError(str(e).replace("train.device = ", "--devices ", 1)) from None


def _payload_config(cc: CompareConfig, device: str | None) -> dict[str, Any]:
    config = dataclasses.asdict(cc)
    if device is not None:
        config["train"]["device"] = device
    return config


def _supervise(
    cc: CompareConfig,
    storage: str | None,
    workers: int,
    devices: tuple[str, ...],
    show_progress: bool,
    poll_s: float,
    study: optuna.Study,
    echo: Callable[[str], None],
    name: str | None = None,
) -> None:
    """Spawn the grid's workers (:func:`studies.workers.supervise`): worker i on ``devices[i % len(devices)]``."""

    def payload(i: int) -> dict[str, Any]:
        device = devices[i % len(devices)] if devices else None
        on_cpu = resolve_device(device or cc.train.device).type == "cpu"
        return {
            "config": _payload_config(cc, device),
            "storage": storage,
            "threads": max(1, cores() // workers) if on_cpu else None,
            "progress": show_progress,
            "poll_s": poll_s,
            "grid": name,
        }

    def left() -> bool:
        state = reconcile(study, cells(cc))  # fails the dead worker's trial: its cell is waiting again
        return bool(state.waiting or state.running)

    supervise(_worker, payload, left, workers, echo)


def grid_results(cc: CompareConfig, tracker: Tracker, study: optuna.Study, settled: bool) -> list[RunResult]:
    """:func:`bench.compare.results` of the grid: with ``settled`` (no trial waits or runs), a run still RUNNING
    has no worker left (its cell was given up after :data:`MAX_TAKEOVERS` deaths) and is ended FAILED;
    otherwise the cells with a waiting or running trial are pending (another worker has them). A cell whose
    latest trial failed without making a run (bad input found late) is FAILED with the trial's reason."""
    latest: dict[str, optuna.trial.FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(CELL) is not None and t.state != optuna.trial.TrialState.PRUNED:
            latest[t.user_attrs[CELL]] = t
    pending = {c for c, t in latest.items() if t.state in _LIVE}
    why = {
        c: str(t.user_attrs[FAILURE])
        for c, t in latest.items()
        if FAILURE in t.user_attrs and "mlflow_run_id" not in t.user_attrs
    }
    if settled:
        for (arch, seed), r in previous_runs(tracker, cc).items():
            if r["status"] == "RUNNING" and arch in cc.archs and seed in cc.seeds:
                tracker.attach(r["run_id"]).end(FAILED, f"its worker died {MAX_TAKEOVERS} times; given up")
    return results(cc, tracker, why, pending)
