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
