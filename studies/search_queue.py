"""The trials of every architecture's search as one queue: ``ganbench compare --search N`` with ``--workers K``,
``--devices`` and ``--storage URL`` (:func:`studies.fair.fair_compare`).

Each architecture's search is its own Optuna study (``<experiment>-<arch>-search``) in the comparison's storage:
the journal files ``<workdir>/optuna/<study>.journal`` by default (processes on one host), or an RDB storage
such as PostgreSQL that hosts share. The workers, K processes here and those of any host that runs the same
command with the same ``--storage``, share one queue: an idle worker takes the next trial of the architecture
with the fewest trials so far (ties: the comparison's order of architectures), so all searches advance at one
pace and a cluster finishes them together. Worker i runs on ``devices[i % len(devices)]``.

Exactly N trials per architecture. A trial made by the sampler is one of the N, unless it is *surplus*: two
workers may both find N - 1 trials and start one each; the one with the higher number finds N below it and is
pruned before it trains (user attribute ``surplus``, no MLflow run). A trial whose worker died (the process is
gone from this host, or its heartbeat stopped on an RDB storage: :func:`studies.grid.fail_dead`) is *stale*:
it is failed, its MLflow run ends KILLED ("stale: ..."), and a *retry* with the same setting is enqueued in its
place (user attribute ``retry_of``); a retry never adds a trial. A setting whose workers died
:data:`studies.grid.MAX_TAKEOVERS` times is given up: its run ends FAILED, and it counts as a failed trial.

A trial stopped by Ctrl-C / SIGTERM is stale too and retried, but does not count toward giving its setting up.
Two launchers that enqueue the same retry at once run it once (the higher-numbered twin is pruned as surplus).
A worker that was only taken for dead (its process paused, its heartbeat lost) stops at its next checkpoint or
at the end of the trial, and its run is marked stale: the retry's result is the one that counts.

The same settings whoever runs them: with the random sampler, a study's trial k gets the k-th setting of the
seeded stream (:class:`studies.samplers.SeededRandomSampler`) and a retry its trial's own, so K workers, a resumed
search and an uninterrupted one try the same settings, each trained with the search's seed. TPE's proposals
and the median pruner's decisions depend on the trials finished before, so with several workers they do not.
A study made before the queue (stale trials replaced by new ones) is resumed with its stale trials left out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from bench import signals
from bench.config import CompareConfig, load_compare_config
from bench.errors import TakenOver, UserError
from bench.harness import resolve_device
from bench.run import prepare
from bench.tracking import Tracker
from studies.grid import MAX_TAKEOVERS, WORKER, _owns, check_workers, fail_dead, take_one
from studies.runner import (
    StudyConfig,
    _pruner,
    _sampler,
    _state_callback,
    cores,
    objective,
    open_storage,
    parent_run,
    quiet_optuna,
    study_metrics,
)
from studies.samplers import RETRY_OF
from studies.spaces import space_for
from studies.workers import supervise, worker_id, worker_process

SURPLUS, FAILURE = "surplus", "failure"
QUEUE_FROM = "queue_from"  # study user attribute: the trial count when the queue first opened the study
GIVEN_UP, INTERRUPTED = "given_up/", "interrupted/"  # study user attribute prefixes: <trial number> = why
_STATE = optuna.trial.TrialState


@dataclass(frozen=True)
class Search:
    """One architecture's search in the queue: its study config, the trials' base config (a dict) and the
    MLflow run its trials are children of."""

    sc: StudyConfig
    base: dict[str, Any]
    parent: str


def _stale(t: optuna.trial.FrozenTrial) -> bool:
    """Failed without a reason: its worker died or was interrupted (a failing run records its ``failure``)."""
    return t.state == _STATE.FAIL and FAILURE not in t.user_attrs


def _regular(trials: list[optuna.trial.FrozenTrial], queue_from: int) -> list[optuna.trial.FrozenTrial]:
    """The trials the sampler made, in order: not retries, not marked surplus, and not a stale trial of a study
    made before the queue (``ganbench`` < 0.x replaced those with new trials). The first N are the budget."""
    return sorted(
        (
            t
            for t in trials
            if RETRY_OF not in t.user_attrs
            and SURPLUS not in t.user_attrs
            and not (t.number < queue_from and _stale(t))
        ),
        key=lambda t: t.number,
    )


def _deaths(t: optuna.trial.FrozenTrial, by_number: dict[int, optuna.trial.FrozenTrial], interrupted: set) -> int:
    """How many workers died on ``t``'s setting: the stale trials of its chain of retries, ``t`` included, not
    counting those that Ctrl-C or SIGTERM stopped (a preempted job is not the setting's fault)."""
    n = 0
    while t is not None and _stale(t):
        n += t.number not in interrupted
        t = by_number.get(t.user_attrs.get(RETRY_OF, -1))
    return n


@dataclass
class QueueState:
    """What :func:`reconcile` found in one study: ``open`` trials a worker may start now (budget left, retries
    waiting), trials ``running`` on some worker, and the ``slots`` of the budget taken."""

    open: int
    running: int
    slots: int


def _end_runs(s: Search, tracker: Tracker, number: int, status: str, why: str) -> None:
    """End the MLflow runs of trial ``number`` of ``s`` with ``status`` and ``why`` (a finished one too: a worker
    taken for dead may have finished it after its retry was made; the report counts the retry)."""
    where = {"ganbench.study": s.sc.study_name}
    for run_id, _ in tracker.find_runs(s.base["experiment"], "ganbench.trial", str(number), also=where):
        tracker.attach(run_id).end(status, why)


def reconcile(study: optuna.Study, s: Search, tracker: Tracker) -> QueueState:
    """Fail the trials of dead workers as stale, enqueue a retry of each stale trial of the budget that has none
    (its MLflow runs end KILLED "stale: ..."), give up a setting whose workers died
    :data:`studies.grid.MAX_TAKEOVERS` times (its runs end FAILED), and count what is left."""
    fail_dead(study)
    trials = study.get_trials(deepcopy=False)
    attrs = study.user_attrs
    by_number = {t.number: t for t in trials}
    interrupted = {int(k[len(INTERRUPTED) :]) for k in attrs if k.startswith(INTERRUPTED)}
    slots = _regular(trials, attrs.get(QUEUE_FROM, 0))[: s.sc.trials]
    budget = {t.number for t in slots}
    retried = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    for t in trials:
        if not _stale(t) or t.number in retried or f"{GIVEN_UP}{t.number}" in attrs:
            continue
        if t.number not in budget and RETRY_OF not in t.user_attrs:  # died before it found itself surplus
            continue
        with signals.deferred():
            if _deaths(t, by_number, interrupted) >= MAX_TAKEOVERS:
                why = f"failed: its workers died {MAX_TAKEOVERS} times on this setting; given up"
                _end_runs(s, tracker, t.number, "FAILED", why)
                study.set_user_attr(f"{GIVEN_UP}{t.number}", why)
            else:
                _end_runs(s, tracker, t.number, "KILLED", "stale: its worker stopped; a retry runs its setting")
                study.enqueue_trial(t.params, user_attrs={RETRY_OF: t.number})
    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == _STATE.WAITING for t in trials)
    running = sum(t.state == _STATE.RUNNING for t in trials)
    return QueueState(max(0, s.sc.trials - len(slots)) + waiting, running, len(slots))


def _disown(trial: optuna.Trial, s: Search, tracker: Tracker) -> TakenOver:
    """This worker was taken for dead and its trial retried elsewhere: its run ends KILLED as stale."""
    _end_runs(s, tracker, trial.number, "KILLED", "stale: its worker was taken for dead; a retry runs its setting")
    return TakenOver(f"trial {trial.number} of {s.sc.study_name} was failed as stale and retried by another worker")


def _objective(trial: optuna.Trial, s: Search, tracker: Tracker, tags: dict[str, Any]) -> float:
    """:func:`studies.runner.objective`, unless the trial is surplus (N trials of the budget below it) or a
    second retry of one setting (two workers enqueued it at once); a non-finite FID is a failure."""
    with signals.deferred():
        trial.set_user_attr(WORKER, worker_id())
    trials = trial.study.get_trials(deepcopy=False)
    below = [t for t in trials if t.number < trial.number]
    if RETRY_OF in trial.user_attrs:
        twins = [t.number for t in below if t.user_attrs.get(RETRY_OF) == trial.user_attrs[RETRY_OF]]
        if twins:
            with signals.deferred():
                trial.set_user_attr(SURPLUS, f"duplicate of trial {twins[0]}")
            raise optuna.TrialPruned(f"surplus: trial {twins[0]} retries the same setting")
    elif len(_regular(below, trial.study.user_attrs.get(QUEUE_FROM, 0))) >= s.sc.trials:
        with signals.deferred():
            trial.set_user_attr(SURPLUS, True)
        raise optuna.TrialPruned(f"surplus: {s.sc.trials} trials are below it")
    try:
        value = objective(trial, s.sc, s.base, space_for(s.sc.arch), s.parent, tracker, tags, lambda: _owns(trial))
    except optuna.TrialPruned:
        raise
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: retried on the next run, not counted as a death of the setting
        with signals.deferred():
            trial.study.set_user_attr(f"{INTERRUPTED}{trial.number}", worker_id())
        raise
    except Exception as e:
        if not _owns(trial):
            raise _disown(trial, s, tracker) from None
        if FAILURE not in trial.user_attrs:  # bad input found late: a failure, never retried
            with signals.deferred():
                trial.set_user_attr(FAILURE, f"{type(e).__name__}: {e}")
        raise
    if not _owns(trial):
        raise _disown(trial, s, tracker)
    if not math.isfinite(value):
        with signals.deferred():
            trial.set_user_attr(FAILURE, f"the FID is {value}")
    return value


def work(searches: list[Search], storage: str | None, tags: dict[str, Any], worker: int, poll_s: float) -> None:
    """One worker: take the next trial of the search with the fewest trials until every search has its N,
    waiting (``poll_s``) while trials still run elsewhere (one may die and need a retry)."""
    tracker = Tracker(searches[0].base["workdir"])
    studies = [
        optuna.load_study(
            study_name=s.sc.study_name,
            storage=open_storage(storage, s.base["workdir"], s.sc.study_name),
            sampler=_sampler(s.sc, worker, space_for(s.sc.arch)),
            pruner=_pruner(s.sc, load_compare_config(base=s.base)),
        )
        for s in searches
    ]
    while True:
        states = [reconcile(study, s, tracker) for study, s in zip(studies, searches, strict=True)]
        ready = [i for i, st in enumerate(states) if st.open]
        if ready:
            i = min(ready, key=lambda i: (states[i].slots, i))
            objective = functools.partial(_objective, s=searches[i], tracker=tracker, tags=tags)
            take_one(studies[i], objective, callbacks=[_state_callback(tracker)], gc_after_trial=True)
        elif any(st.running for st in states):
            time.sleep(poll_s)
        else:
            return


def _worker(payload: dict[str, Any]) -> None:
    """A worker process (spawned): its device and torch threads, then :func:`work`."""
    quiet_optuna()
    with worker_process(payload["threads"]):
        searches = [Search(StudyConfig(**s["sc"]), s["base"], s["parent"]) for s in payload["searches"]]
        work(searches, payload["storage"], payload["tags"], payload["worker"], payload["poll_s"])


def _on_device(s: Search, device: str | None) -> Search:
    if device is None:
        return s
    return dataclasses.replace(s, base=s.base | {"train": {**s.base["train"], "device": device}})


def run_searches(
    configs: list[tuple[StudyConfig, CompareConfig]],
    storage: str | None = None,
    workers: int = 1,
    devices: tuple[str, ...] = (),
    tags: dict[str, Any] | None = None,
    poll_s: float = 10.0,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[optuna.Study]:
    """Run (or resume) the searches ``configs`` (one (StudyConfig, trials' base config) per architecture) as one
    queue of ``workers`` processes on this host (see the module docstring); returns their studies, in order,
    when every one has its ``trials`` trials settled. ``tags`` go on every trial's run. One worker on one device
    runs in this process; a spawned worker that dies is replaced. Raises UserError for bad workers, devices or
    storage, and when trials are left after the workers stopped (their restarts used up)."""
    check_workers(workers, devices)
    quiet_optuna()
    first = configs[0][1]
    tracker = Tracker(first.workdir)
    searches, opened = [], []
    with contextlib.ExitStack() as stack:
        for sc, cc in configs:
            prepare(cc.run(sc.arch, sc.seed), resolve_device(devices[0] if devices else cc.train.device))
            study = optuna.create_study(
                storage=open_storage(storage, cc.workdir, sc.study_name), study_name=sc.study_name,
                direction=sc.direction, load_if_exists=True,
            )  # fmt: skip
            if QUEUE_FROM not in study.user_attrs:
                with signals.deferred():
                    study.set_user_attr(QUEUE_FROM, len(study.trials))
            parent = stack.enter_context(parent_run(study, sc, cc, {}, tracker))
            searches.append(Search(sc, dataclasses.asdict(cc), parent.run_id))
            opened.append((study, parent))
        if workers == 1 and len(devices) <= 1:
            one = [_on_device(s, devices[0] if devices else None) for s in searches]
            work(one, storage, tags or {}, 0, poll_s)
        else:

            def payload(i: int) -> dict[str, Any]:
                device = devices[i % len(devices)] if devices else None
                on_cpu = resolve_device(device or first.train.device).type == "cpu"
                return {
                    "searches": [
                        {"sc": dataclasses.asdict(s.sc), "base": _on_device(s, device).base, "parent": s.parent}
                        for s in searches
                    ],
                    "storage": storage,
                    "tags": tags or {},
                    "worker": i,
                    "threads": max(1, cores() // workers) if on_cpu else None,
                    "poll_s": poll_s,
                }

            def left() -> bool:
                states = [reconcile(study, s, tracker) for (study, _), s in zip(opened, searches, strict=True)]
                return any(st.open or st.running for st in states)

            supervise(_worker, payload, left, workers, echo)
        for study, parent in opened:
            parent.log_metrics(study_metrics(study), step=len(study.trials))
        left = [(s, reconcile(study, s, tracker)) for (study, _), s in zip(opened, searches, strict=True)]
        left = [f"{s.sc.arch} {st.open + st.running}" for s, st in left if st.open or st.running]
        if left:  # the workers gave out (restarts used up): the finals must not run on a partial search
            raise UserError(
                f"the searches are not complete (trials left: {', '.join(left)}); run the same command again"
            )
    return [study for study, _ in opened]
