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
:data:`studies.grid.MAX_TAKEOVERS` times is given up and counts as a failed trial.

The same settings whoever runs them: with the random sampler, a study's trial k gets the k-th setting of the
seeded stream (:class:`studies.runner.SeededRandomSampler`) and a retry its trial's own, so K workers, a resumed
search and an uninterrupted one try the same settings and, trained with the same seed, get the same FIDs (on
the CPU). TPE's proposals depend on the trials finished before, so they do not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from bench import signals
from bench.config import CompareConfig, load_compare_config
from bench.harness import resolve_device
from bench.run import prepare
from bench.tracking import Tracker
from studies.grid import MAX_TAKEOVERS, WORKER, fail_dead
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
from studies.spaces import space_for
from studies.workers import supervise, worker_id, worker_process

SURPLUS, RETRY_OF, FAILURE = "surplus", "retry_of", "failure"
_STATE = optuna.trial.TrialState


@dataclass(frozen=True)
class Search:
    """One architecture's search in the queue: its study config, the trials' base config (a dict) and the
    MLflow run its trials are children of."""

    sc: StudyConfig
    base: dict[str, Any]
    parent: str


def _is_slot(t: optuna.trial.FrozenTrial) -> bool:
    """A trial of the budget: made by the sampler and not surplus (a retry stands in for its stale trial)."""
    return SURPLUS not in t.user_attrs and RETRY_OF not in t.user_attrs


def _deaths(t: optuna.trial.FrozenTrial, by_number: dict[int, optuna.trial.FrozenTrial]) -> int:
    """How many workers died on ``t``'s setting: the stale trials of its chain of retries, ``t`` included."""
    n = 0
    while t is not None and t.state == _STATE.FAIL and FAILURE not in t.user_attrs:
        n += 1
        t = by_number.get(t.user_attrs.get(RETRY_OF, -1))
    return n


@dataclass
class QueueState:
    """What :func:`reconcile` found in one study: ``open`` trials a worker may start now (budget left, retries
    waiting), and trials ``running`` on some worker."""

    open: int
    running: int
    slots: int


def reconcile(study: optuna.Study, s: Search, tracker: Tracker) -> QueueState:
    """Fail the trials of dead workers as stale (their MLflow runs end KILLED), enqueue a retry of each stale
    trial that has none (unless its setting was given up), and count what is left (see the module docstring)."""
    for number in fail_dead(study):
        for run_id, status in tracker.find_runs(
            s.base["experiment"], "ganbench.trial", str(number), also={"ganbench.study": s.sc.study_name}
        ):
            if status == "RUNNING":
                tracker.attach(run_id).end("KILLED", "stale: its worker stopped before the trial finished")
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    retried = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    for t in trials:
        stale = t.state == _STATE.FAIL and FAILURE not in t.user_attrs
        if stale and t.number not in retried and _deaths(t, by_number) < MAX_TAKEOVERS:
            with signals.deferred():
                study.enqueue_trial(t.params, user_attrs={RETRY_OF: t.number})
    trials = study.get_trials(deepcopy=False)
    slots = sum(_is_slot(t) for t in trials)
    waiting = sum(t.state == _STATE.WAITING for t in trials)
    running = sum(t.state == _STATE.RUNNING for t in trials)
    return QueueState(max(0, s.sc.trials - slots) + waiting, running, slots)


def _objective(trial: optuna.Trial, s: Search, tracker: Tracker, tags: dict[str, Any]) -> float:
    """:func:`studies.runner.objective`, unless the trial is surplus (N trials of the budget below it)."""
    with signals.deferred():
        trial.set_user_attr(WORKER, worker_id())
    if RETRY_OF not in trial.user_attrs:
        below = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and _is_slot(t)]
        if len(below) >= s.sc.trials:
            with signals.deferred():
                trial.set_user_attr(SURPLUS, True)
            raise optuna.TrialPruned(f"surplus: {s.sc.trials} trials are below it")
    try:
        return objective(trial, s.sc, s.base, space_for(s.sc.arch), s.parent, tracker, tags)
    except optuna.TrialPruned:
        raise
    except Exception as e:  # bad input found late (recorded as a failure, never retried): not a dead worker
        if FAILURE not in trial.user_attrs:
            with signals.deferred():
                trial.set_user_attr(FAILURE, f"{type(e).__name__}: {e}")
        raise


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
            s = searches[i]
            try:
                studies[i].optimize(
                    lambda t, s=s: _objective(t, s, tracker, tags),
                    n_trials=1,
                    catch=(Exception,),
                    callbacks=[_state_callback(tracker)],
                    gc_after_trial=True,
                )
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as e:  # failed as stale meanwhile
                print(f"a trial of this worker was failed by another: {e}", file=sys.stderr, flush=True)
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
    runs in this process; a spawned worker that dies is replaced. Raises UserError for bad storage."""
    quiet_optuna()
    first = configs[0][1]
    tracker = Tracker(first.workdir)
    searches, studies = [], []
    with contextlib.ExitStack() as stack:
        for sc, cc in configs:
            prepare(cc.run(sc.arch, sc.seed), resolve_device(devices[0] if devices else cc.train.device))
            study = optuna.create_study(
                storage=open_storage(storage, cc.workdir, sc.study_name), study_name=sc.study_name,
                direction=sc.direction, load_if_exists=True,
            )  # fmt: skip
            parent = stack.enter_context(parent_run(study, sc, cc, {}, tracker))
            searches.append(Search(sc, dataclasses.asdict(cc), parent.run_id))
            studies.append((study, parent))
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
                states = [reconcile(study, s, tracker) for (study, _), s in zip(studies, searches, strict=True)]
                return any(st.open or st.running for st in states)

            supervise(_worker, payload, left, workers, echo)
        for study, parent in studies:
            parent.log_metrics(study_metrics(study), step=len(study.trials))
    return [study for study, _ in studies]
