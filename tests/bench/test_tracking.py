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
