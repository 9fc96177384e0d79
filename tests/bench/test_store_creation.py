"""Creating a workspace's MLflow store is all or nothing: a SIGTERM at any moment leaves a usable workspace."""

import signal
import subprocess
import sys
import time

import pytest

from bench.tracking import Tracker

pytestmark = pytest.mark.slow

OPEN_STORE = (
    "from bench import signals; signals.install(); from bench.tracking import Tracker; import sys; Tracker(sys.argv[1])"
)


@pytest.mark.parametrize("offset", [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.5])
def test_sigterm_while_the_store_is_created_leaves_a_usable_workspace(tmp_path, monkeypatch, offset):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(ws)], stderr=subprocess.PIPE, text=True)
    time.sleep(offset)  # python + mlflow import, then the schema migrations: the offsets cover all three
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    leftovers = [p.name for p in ws.glob("*")] if ws.exists() else []
    assert set(leftovers) <= {"mlflow.db"}, (leftovers, err)  # the whole store or nothing, no temporary file
    tracker = Tracker(ws)  # usable: opens (or creates) and writes
    assert tracker.experiment_id("after-sigterm") is not None


def test_a_half_made_store_holding_no_runs_is_set_aside_and_rebuilt(tmp_path, monkeypatch):
    """What an older version left after a signal mid-creation: a schema cut short, no run in it."""
    import sqlite3

    from bench.tracking import StoreWarning

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    with sqlite3.connect(ws / "mlflow.db") as db:
        db.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256))")
    with pytest.warns(StoreWarning, match="was half-made and held no runs: moved to mlflow.db.broken-"):
        tracker = Tracker(ws)
    assert tracker.experiment_id("after-repair") is not None
    assert len(list(ws.glob("mlflow.db.broken-*"))) == 1  # kept, not deleted


def test_a_store_holding_runs_is_never_set_aside(tmp_path, monkeypatch):
    import sqlite3

    from bench.errors import UserError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    with sqlite3.connect(ws / "mlflow.db") as db:  # unreadable for MLflow, but it holds a run
        db.execute("CREATE TABLE runs (run_uuid VARCHAR(32))")
        db.execute("INSERT INTO runs VALUES ('abc')")
        db.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
    with pytest.raises(UserError, match="cannot be opened"):
        Tracker(ws)
    assert [p.name for p in ws.iterdir()] == ["mlflow.db"]
