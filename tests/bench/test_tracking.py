"""A run ends FINISHED only when its body completed; failures and interrupts say so."""

import pytest

from bench import keys
from bench.tracking import Tracker, tracking_uri


def _status(tracker, experiment):
    return {r["run_name"]: (r["status"], r["tags"].get(keys.TAG_FAILURE)) for r in tracker.search_runs([experiment])}


def test_run_status_follows_the_body(workdir):
    t = Tracker(workdir)
    with t.run("exp", "ok") as run:
        run.log_metrics({"m": 1.0}, step=3)
        run.log_params({f"p{i}": i for i in range(150)})  # more than one MLflow batch
    with pytest.raises(RuntimeError), t.run("exp", "boom"):
        raise RuntimeError("out of memory")
    with pytest.raises(KeyboardInterrupt), t.run("exp", "ctrl-c"):
        raise KeyboardInterrupt
    assert _status(t, "exp") == {
        "ok": ("FINISHED", None),
        "boom": ("FAILED", "RuntimeError: out of memory"),
        "ctrl-c": ("KILLED", "interrupted (KeyboardInterrupt)"),
    }
    ok = next(r for r in t.search_runs(["exp"]) if r["run_name"] == "ok")
    assert len(ok["params"]) == 150 and t.metric_history(ok["run_id"], "m")[0][:2] == (3, 1.0)


def test_a_resumed_run_s_relogged_steps_count_once_with_their_latest_value(workdir):
    t = Tracker(workdir)
    with t.run("exp", "r") as run:
        run.log_metrics({"m": 1.0}, step=10)
        run.log_metrics({"m": 2.0}, step=20)  # logged, then the process died; the checkpoint was at step 10
    run_id = t.search_runs(["exp"])[0]["run_id"]
    import time

    time.sleep(0.01)  # MLflow's timestamps are in ms
    with t.run("exp", "r", run_id=run_id) as run:  # the resumed process logs step 20 again
        run.log_metrics({"m": 3.0}, step=20)
        run.log_metrics({"m": 4.0}, step=30)
    assert [(s, v) for s, v, _ in t.metric_history(run_id, "m")] == [(10, 1.0), (20, 3.0), (30, 4.0)]


def test_default_store_is_in_the_workspace(workdir):
    assert tracking_uri(workdir) == f"sqlite:///{workdir.resolve() / 'mlflow.db'}"
    t = Tracker(workdir)
    with t.run("exp", "r"):
        pass
    assert (workdir / "mlflow.db").is_file()
    exp = t.client.get_experiment_by_name("exp")
    assert exp.artifact_location == (workdir.resolve() / "mlartifacts").as_uri()


def test_tracking_uri_env_wins(workdir, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking_uri(workdir) == uri
    with Tracker(workdir).run("exp", "r"):
        pass
    assert (tmp_path / "elsewhere.db").is_file() and not (workdir / "mlflow.db").exists()


@pytest.fixture
def signals_installed():
    """bench.signals' handlers, as the CLI installs them; the test runner's own handlers come back after."""
    import signal

    from bench import signals

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signals.install()
    yield signals
    for s, h in saved.items():
        signal.signal(s, h)


def test_sigterm_inside_a_store_write_waits_for_it_and_the_run_ends_killed(workdir, signals_installed):
    """The CI failure this guards: SIGTERM raised inside SQLite's executemany left MLflow holding the write
    lock, so the run could not be marked KILLED ("database is locked") and the exit code was not 143."""
    import os
    import signal

    from sqlalchemy import event

    t = Tracker(workdir)
    engine = t.client._tracking_client.store.engine
    sent = []

    def kill_mid_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO metrics") and not sent:
            sent.append(statement)
            os.kill(os.getpid(), signal.SIGTERM)  # delivered while SQLite runs the insert

    event.listen(engine, "before_cursor_execute", kill_mid_insert)
    with pytest.raises(signals_installed.Interrupted) as e, t.run("exp", "term") as run:
        run.log_metrics({"m": 1.0, "n": 2.0}, step=5)
        raise AssertionError("the signal must be raised when the write ends")
    event.remove(engine, "before_cursor_execute", kill_mid_insert)
    assert sent and e.value.exit_code == 143
    assert _status(t, "exp") == {"term": ("KILLED", "interrupted by SIGTERM")}
    (r,) = t.search_runs(["exp"])
    assert r["metrics"] == {"m": 1.0, "n": 2.0}  # the interrupted write went through whole


def test_deferred_blocks_nest_and_a_second_signal_interrupts_at_once(signals_installed):
    import os
    import signal

    s = signals_installed
    with pytest.raises(s.Interrupted) as e:
        with s.deferred():
            with s.deferred():
                os.kill(os.getpid(), signal.SIGINT)
            reached = True  # the inner block's end does not raise: the outer block is still running
    assert reached and e.value.exit_code == 130
    with pytest.raises(s.Interrupted) as e, s.deferred():
        os.kill(os.getpid(), signal.SIGTERM)  # waits for the block
        os.kill(os.getpid(), signal.SIGINT)  # does not wait
        raise AssertionError("the second signal must interrupt inside the block")
    assert e.value.exit_code == 130
    with s.deferred():  # the first signal was dropped with the second one: one exception per interruption
        pass


def test_a_repeated_sigterm_does_not_cut_the_shutdown_short(signals_installed):
    """Slurm signals every process of a job and the grid's launcher passes its SIGTERM on: a worker gets two."""
    import os
    import signal

    s = signals_installed
    with pytest.raises(s.Interrupted) as e, s.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # the same request: the block still finishes
        finished = True
    assert finished and e.value.exit_code == 143
    with s.deferred():  # the shutdown's own writes (checkpoint, run ended KILLED)
        os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # outside a block too
    with pytest.raises(s.Interrupted), s.deferred():  # Ctrl-C still forces
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("a second SIGINT must interrupt inside the block")


def test_find_runs_matches_tag_values_with_quotes(workdir):
    """A quote in a tag value no longer breaks the MLflow filter string (it was put in unescaped)."""
    t = Tracker(workdir)
    values = ["it's", 'say "hi"', "both ' and \"", "back\\slash", "plain"]
    ids = {}
    for v in values:
        with t.run("exp", "r", {"k": v}) as run:
            ids[v] = run.run_id
    for v in values:
        assert t.find_runs("exp", "k", v) == [(ids[v], "FINISHED")], v


def test_sigterm_while_a_run_is_created_ends_it_killed(workdir, signals_installed):
    """A SIGTERM held back while the store creates a new run used to be raised before the run's body began,
    leaving the new run RUNNING forever."""
    import os
    import signal

    t = Tracker(workdir)
    create = t.client.create_run

    def create_then_term(*args, **kwargs):
        made = create(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # held back by the deferred block around the creation
        return made

    t.client.create_run = create_then_term
    with pytest.raises(signals_installed.Interrupted), t.run("exp", "new"):
        raise AssertionError("the body must not start")
    assert _status(t, "exp") == {"new": ("KILLED", "interrupted by SIGTERM")}
