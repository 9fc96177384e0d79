"""The searches of a fair comparison as one queue (``studies.search_queue``): the same settings whoever runs a
trial, exactly N trials per architecture, dead workers' trials retried with their setting, surplus trials
pruned. The end-to-end run with two workers is in ``test_fair.py``."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from bench.tracking import Tracker
from studies import search_queue as q
from studies import workers
from studies.grid import MAX_TAKEOVERS
from studies.runner import StudyConfig
from studies.samplers import SeededRandomSampler
from studies.spaces import space_for

SPACE = space_for("wgan-gp")  # floats, a log range, ints and categoricals


def _settings(study: optuna.Study, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        t = study.ask()
        out.append({p.name: p.suggest(t) for p in SPACE})
        study.tell(t, 1.0)
    return out


def test_seeded_random_sampler_gives_trial_k_the_kth_setting_whoever_asks():
    """Uninterrupted, it is RandomSampler(seed); a resumed study (a new sampler object) and a second worker go
    on with the stream instead of starting it again, and an enqueued retry takes no setting of the stream."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plain = _settings(optuna.create_study(sampler=optuna.samplers.RandomSampler(7)), 6)
    restarted = optuna.create_study(sampler=optuna.samplers.RandomSampler(7))
    _settings(restarted, 2)
    restarted.sampler = optuna.samplers.RandomSampler(7)
    assert _settings(restarted, 1)[0] == plain[0]  # optuna's own: a resumed study tries its first setting again

    study = optuna.create_study(sampler=SeededRandomSampler(7, SPACE))
    first = _settings(study, 2)
    other_worker = optuna.load_study(study_name=study.study_name, storage=study._storage)
    other_worker.sampler = SeededRandomSampler(7, SPACE)  # another process: a fresh generator
    study.enqueue_trial(study.trials[0].params, user_attrs={q.RETRY_OF: 0})
    retry = _settings(other_worker, 1)[0]
    rest = _settings(other_worker, 4)
    assert first + rest == plain and retry == plain[0]


def _search(tmp_path, trials: int = 2) -> tuple[optuna.Study, q.Search]:
    sc = StudyConfig(arch="wgan-gp", name="s-wgan-gp-search", trials=trials, sampler="random")
    study = optuna.create_study(study_name=sc.study_name, storage=q.open_storage(None, tmp_path, sc.study_name))
    base = {"experiment": "s", "workdir": str(tmp_path)}
    return study, q.Search(sc, base, parent="p")


def _take(study: optuna.Study, worker: str) -> optuna.Trial:
    t = study.ask()
    t.set_user_attr(q.WORKER, worker)
    for p in SPACE:
        p.suggest(t)
    return t


def test_a_dead_workers_trial_is_retried_with_its_setting_and_never_counted_twice(tmp_path):
    study, s = _search(tmp_path, trials=2)
    tracker = Tracker(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = f"{workers.host()}:{dead.pid}"
    assert q.reconcile(study, s, tracker) == q.QueueState(open=2, running=0, slots=0)
    a = _take(study, gone)
    b = _take(study, "another-host:1")  # only its heartbeat could tell
    state = q.reconcile(study, s, tracker)
    assert study.trials[a.number].state.name == "FAIL" and study.trials[b.number].state.name == "RUNNING"
    (retry,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert retry.user_attrs[q.RETRY_OF] == a.number
    assert retry.system_attrs["fixed_params"] == study.trials[a.number].params
    assert state == q.QueueState(open=1, running=1, slots=2)  # the retry is open; no third setting
    assert q.reconcile(study, s, tracker).open == 1  # reconciled again: not enqueued twice
    for _ in range(MAX_TAKEOVERS - 1):  # a setting that kills its worker every time is given up
        taken = _take(study, gone)
        assert q.RETRY_OF in taken.user_attrs and taken.params == study.trials[a.number].params
        q.reconcile(study, s, tracker)
    assert q.reconcile(study, s, tracker) == q.QueueState(open=0, running=1, slots=2)


def test_a_trial_over_the_budget_is_pruned_as_surplus_before_it_trains(tmp_path, monkeypatch):
    """Two workers that both found N - 1 trials start one each: the higher-numbered one trains nothing."""
    study, s = _search(tmp_path, trials=2)
    trained = []
    monkeypatch.setattr(q, "objective", lambda *a, **kw: trained.append(1) or 1.0)
    _take(study, "h:1"), _take(study, "h:2")
    extra = study.ask()
    with pytest.raises(optuna.TrialPruned, match="surplus"):
        q._objective(extra, s, Tracker(tmp_path), {})
    assert trained == [] and extra.user_attrs[q.SURPLUS] is True
    study.tell(extra, state=optuna.trial.TrialState.PRUNED)
    assert q.reconcile(study, s, Tracker(tmp_path)).slots == 2


def test_a_retry_enqueued_twice_runs_once_and_ctrl_c_is_not_a_death(tmp_path, monkeypatch):
    """Two hosts that found the same stale trial at once enqueue two retries: the second is pruned as surplus.
    A trial stopped by Ctrl-C is retried, but does not count toward giving its setting up."""
    study, s = _search(tmp_path, trials=1)
    tracker = Tracker(tmp_path)
    monkeypatch.setattr(q, "objective", lambda *a, **kw: 5.0)
    a = _take(study, "h:1")
    study.tell(a, state=optuna.trial.TrialState.FAIL)  # its worker died (failed by a heartbeat: no reason)
    q.reconcile(study, s, tracker)
    study.enqueue_trial(study.trials[a.number].params, user_attrs={q.RETRY_OF: a.number})  # the other host's
    ran = study.ask()
    assert q._objective(ran, s, tracker, {}) == 5.0
    study.tell(ran, 5.0)
    twin = study.ask()
    with pytest.raises(optuna.TrialPruned, match="retries the same setting"):
        q._objective(twin, s, tracker, {})
    study.tell(twin, state=optuna.trial.TrialState.PRUNED)
    assert q.reconcile(study, s, tracker) == q.QueueState(open=0, running=0, slots=1)

    study, s = _search(tmp_path / "b", trials=1)
    for _ in range(MAX_TAKEOVERS + 1):  # preempted more often than a setting may kill its worker
        t = _take(study, "h:1")
        study.set_user_attr(f"{q.INTERRUPTED}{t.number}", "h:1")
        study.tell(t, state=optuna.trial.TrialState.FAIL)
        assert q.reconcile(study, s, tracker).open == 1  # retried each time, never given up


def test_a_retry_of_a_trial_that_died_before_its_setting_draws_that_trials_setting():
    study = optuna.create_study(sampler=SeededRandomSampler(3, SPACE))
    plain = _settings(optuna.create_study(sampler=optuna.samplers.RandomSampler(3)), 3)
    dead = study.ask()  # died before it suggested anything
    study.tell(dead, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial({}, user_attrs={q.RETRY_OF: dead.number})
    assert _settings(study, 3) == plain  # the retry tries trial 0's setting; the next ones go on from there
