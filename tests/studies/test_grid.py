"""``ganbench compare --workers / --devices / --storage`` (issue 16): a comparison's grid shared by processes
and hosts through an Optuna storage, each run FINISHED exactly once, a dead worker's run taken over from its
checkpoint; plain progress lines off a terminal; the docs' Slurm line as plain processes; a real MLflow
tracking server on PostgreSQL."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
from typer.testing import CliRunner

from bench import checkpoint, keys
from bench.cli import app
from bench.config import load_compare_config
from bench.errors import TakenOver
from bench.progress import LineProgress
from bench.run import train
from bench.tracking import Tracker
from studies import grid, workers
from studies.runner import open_storage
from tests.conftest import FAST
from tests.reports.tools import missing

REPO = Path(__file__).resolve().parents[2]
# two cheap architectures (tiny MLPs); cgan is conditional, its usefulness experiment is off to keep it cheap
TINY = [
    *FAST,
    "train.eval_every=0",
    "eval.usefulness=false",
    "model.vanilla.g_widths=[32]",
    "model.vanilla.d_widths=[32]",
    "model.cgan.g_widths=[32]",
    "model.cgan.d_widths=[32]",
]


def _sets(workdir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [a for s in [*TINY, *extra, f'workdir="{workdir}"'] for a in ("--set", s)]


def _runs(workdir: Path, experiment: str) -> list[dict]:
    return Tracker(workdir).search_runs([experiment])


def _cells_once(runs: list[dict], expected: list[tuple[str, str]]) -> None:
    """Every cell has exactly one MLflow run, FINISHED, and the floor one FINISHED run."""
    trained = [r for r in runs if r["tags"].get(keys.TAG_KIND) == keys.KIND_RUN]
    assert sorted((r["tags"][keys.TAG_ARCH], r["tags"][keys.TAG_SEED]) for r in trained) == sorted(expected)
    assert {r["status"] for r in trained} == {"FINISHED"}
    floors = [r for r in runs if r["tags"].get(keys.TAG_KIND) == keys.KIND_FLOOR]
    assert [r["status"] for r in floors] == ["FINISHED"]


def _study(workdir: Path, experiment: str, storage: str | None = None) -> optuna.Study:
    name = grid.study_name(experiment)
    return optuna.load_study(study_name=name, storage=open_storage(storage, workdir, name))


def _complete_cells(study: optuna.Study) -> Counter:
    return Counter(t.user_attrs[grid.CELL] for t in study.trials if t.state.name == "COMPLETE")


GRID = [("vanilla", "0"), ("vanilla", "1"), ("cgan", "0"), ("cgan", "1")]


@pytest.mark.slow
def test_two_workers_on_the_journal_run_each_cell_once(workdir, mnist_root):
    args = ["compare", "vanilla", "cgan", "--seeds", "2", "--steps", "40", "--workers", "2", "--experiment", "g2"]
    r = CliRunner().invoke(app, [*args, *_sets(workdir)])
    assert r.exit_code == 0, r.output
    _cells_once(_runs(workdir, "g2"), GRID)
    study = _study(workdir, "g2")
    assert _complete_cells(study) == Counter(["vanilla/0", "vanilla/1", "cgan/0", "cgan/1", "real-floor"])
    workers = {t.user_attrs[grid.WORKER] for t in study.trials if t.state.name == "COMPLETE"}
    # (on a loaded CPU one worker may take every cell before the other has imported torch)
    assert 1 <= len(workers) <= 2 and all(w.startswith(socket.gethostname()) for w in workers)
    table = r.stdout
    assert re.search(r"^vanilla\s.*\s2$", table, re.M) and re.search(r"^cgan\s.*\s2$", table, re.M), table
    # the same command again: the grid is settled, nothing is trained twice
    r = CliRunner().invoke(app, [*args, *_sets(workdir)])
    assert r.exit_code == 0, r.output
    _cells_once(_runs(workdir, "g2"), GRID)


def test_reconcile_enqueues_each_cell_once_and_takes_over_dead_workers(tmp_path):
    cc = load_compare_config(None, [f'workdir="{tmp_path}"'], overrides={"archs": ["vanilla"], "seeds": [0, 1]})
    study = grid.open_grid(cc, None)
    cells = grid.cells(cc)
    assert cells == ["vanilla/0", "vanilla/1", "real-floor"]
    first = grid.reconcile(study, cells)
    assert first.enqueued == cells and first.waiting == 3
    assert grid.reconcile(study, cells).enqueued == []  # waiting trials are live: nothing enqueued twice
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    a, b, c = study.ask(), study.ask(), study.ask()  # workers took vanilla/0, vanilla/1 and the floor
    a.set_user_attr(grid.WORKER, f"{workers.host()}:{dead.pid}")  # this host, gone
    b.set_user_attr(grid.WORKER, "another-host:1")  # only its heartbeat could tell
    c.set_user_attr(grid.WORKER, "another-host:2")
    state = grid.reconcile(study, cells)
    assert state.enqueued == [a.user_attrs[grid.CELL]] and state.running == 2
    assert study.trials[a.number].state.name == "FAIL"
    assert study.user_attrs[f"stale/{a.number}"].startswith("stale: its worker")
    assert study.trials[b.number].state.name == "RUNNING"
    for _ in range(grid.MAX_TAKEOVERS - 1):  # a cell that kills its worker every time is given up
        t = next(
            x
            for x in study.get_trials(states=(optuna.trial.TrialState.WAITING,))
            if x.user_attrs[grid.CELL] == "vanilla/0"
        )
        taken = study.ask()
        assert taken.number == t.number
        taken.set_user_attr(grid.WORKER, f"{workers.host()}:{dead.pid}")
        grid.reconcile(study, cells)
    state = grid.reconcile(study, cells)
    assert "vanilla/0" not in state.enqueued and state.settled == 1
    state = grid.reconcile(study, cells, retry_failed=True)  # --resume: once more, deaths counted afresh
    assert state.enqueued == ["vanilla/0"] and grid.reconcile(study, cells).enqueued == []
    other = load_compare_config(
        None, [f'workdir="{tmp_path}"', "train.steps=7"], overrides={"archs": ["vanilla"], "seeds": [0, 1]}
    )
    with pytest.raises(Exception, match=r"made with train.epochs = 2.0, not None"):
        grid.open_grid(other, None)


def test_a_worker_is_known_by_its_pid_and_start_time():
    me = workers.worker_id()
    assert workers.alive(me)
    pid_and_start = me.rpartition(":")[2]
    assert "@" in pid_and_start  # Linux: the start time is part of the id
    reused = me.rpartition("@")[0] + "@1"  # the same pid, another process (the pid was reused)
    assert not workers.alive(reused)
    assert workers.alive(f"another-host/0:{os.getpid()}@1")  # another host: only its heartbeat can tell


def test_a_worker_whose_run_was_taken_over_stops_and_leaves_it(workdir, mnist_root):
    """A live worker that looked dead (its heartbeat stopped) learns at its next checkpoint that its trial is
    another's: it stops without writing the checkpoint or ending the MLflow run, which the other continues."""
    sets = [*FAST, f'workdir="{workdir}"', 'archs=["dummy"]', "eval.enabled=false", "train.steps=6"]
    cfg = load_compare_config(None, [*sets, "train.checkpoint_every=2"]).run("dummy", 0)
    answers = iter([True, False])  # still its own at step 2; failed as stale by step 4
    with pytest.raises(TakenOver, match="stops at step 4"):
        train(cfg, owner=lambda: next(answers))
    (run,) = Tracker(workdir).search_runs([cfg.experiment])
    assert run["status"] == "RUNNING"  # not ended FAILED under the worker that took it over
    (ckpt,) = workdir.glob("runs/*/dummy-seed0-*/checkpoint.pt")
    assert checkpoint.load(ckpt)["step"] == 2


def test_a_trial_failed_by_another_worker_is_no_longer_owned(tmp_path):
    study = optuna.create_study(storage=open_storage(None, tmp_path, "own"), study_name="own")
    mine = study.ask()
    assert grid._owns(mine)
    study.tell(mine.number, state=optuna.trial.TrialState.FAIL)  # what reconcile() on another host does
    assert not grid._owns(mine)


def test_a_duplicate_cell_runs_once(tmp_path, monkeypatch):
    """Two hosts that enqueue a cell at the same moment: the higher trial is dropped, not run."""
    cc = load_compare_config(None, [f'workdir="{tmp_path}"'], overrides={"archs": ["vanilla"], "seeds": [0]})
    study = grid.open_grid(cc, None)
    study.enqueue_trial({}, user_attrs={grid.CELL: "vanilla/0"})
    study.enqueue_trial({}, user_attrs={grid.CELL: "vanilla/0"})
    ran = []
    monkeypatch.setattr(grid, "run_one", lambda cell, *a, **k: ran.append(cell) or pytest.fail("not a duplicate"))
    low, high = study.ask(), study.ask()
    with pytest.raises(optuna.TrialPruned):
        grid._objective(high, cc, Tracker(tmp_path), None)
    assert high.user_attrs["duplicate_of"] == low.number and ran == []


def test_heartbeat_fails_the_trial_of_a_silent_worker_on_another_host(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="hb")
    study.enqueue_trial({}, user_attrs={grid.CELL: "vanilla/0"})
    t = study.ask()
    t.set_user_attr(grid.WORKER, "another-host:1")
    storage.record_heartbeat(t._trial_id)  # what Study.optimize's heartbeat thread does, then silence
    time.sleep(2.5)
    state = grid.reconcile(study, ["vanilla/0"])
    assert study.trials[t.number].state.name == "FAIL" and state.enqueued == ["vanilla/0"]


def test_line_progress_every_tenth_or_minute():
    out, now = [], [0.0]

    class Stream:
        def write(self, s):
            out.append(s)

        def flush(self):
            pass

    p = LineProgress(Stream(), clock=lambda: now[0])
    task = p.add_task("dcgan s0", total=1000, completed=0, losses="", speed="")
    for step in range(1, 1001):
        now[0] += 0.05 if step <= 500 else 2.0  # the second half is slow: the minute rule prints more often
        p.update(task, completed=step, losses="D 0.4 G 2.1" if step % 25 == 0 else "", speed="")
    steps = [int(re.search(r"(\d+)/1000", line).group(1)) for line in out]
    assert steps[:6] == [0, 100, 200, 300, 400, 500]
    assert steps[6:9] == [530, 560, 590] and steps[-1] == 1000  # 30 steps x 2 s = 60 s
    assert all(len(line.rstrip("\n")) <= 80 for line in out)
    assert "ETA 0:25" in out[5] and out[-1].rstrip().endswith("done") and "D 0.4 G 2.1" in out[-1]
    out.clear()  # the longest name and fields a line carries still fit 80 columns
    task = p.add_task("sngan-projection s4", total=46850, completed=0, losses="", speed="")
    now[0] += 600
    p.update(task, completed=2000, losses="D -0.412 G -2.91", speed="12345 img/s")
    assert len(out) == 2 and all(len(line.rstrip("\n")) <= 80 for line in out), out
    assert "2000/46850" in out[1] and "12345 img/s ETA 3:44:15" in out[1]


@pytest.mark.slow
def test_plain_lines_when_output_is_not_a_terminal(workdir, mnist_root):
    r = CliRunner().invoke(app, ["compare", "vanilla", "--steps", "20", "--experiment", "lines", *_sets(workdir)])
    assert r.exit_code == 0, r.output
    progress = [line for line in r.stderr.splitlines() if re.match(r"\d\d:\d\d:\d\d vanilla s0 ", line)]
    assert len(progress) >= 3 and "100%" in progress[-1]
    assert re.search(r"^vanilla seed 0: FINISHED  FID \S+ \(lenet-mnist\)  20 steps in", r.stderr, re.M)
    assert "real-data floor: FINISHED" in r.stderr and "━" not in r.stderr  # no rich bar in a log


def _checkpoint_step(workdir: Path, experiment: str, cell: str) -> int | None:
    arch, seed = cell.split("/")
    found = list((workdir / "runs" / experiment).glob(f"{arch}-seed{seed}-*/checkpoint.pt"))
    if not found:
        return None
    try:
        return int(torch.load(found[0], weights_only=True)["step"])
    except Exception:  # being replaced at this moment
        return None


@pytest.mark.slow
def test_kill_9_of_a_worker_is_taken_over_from_its_checkpoint(workdir, mnist_root):
    exp = "kill"
    extra = ("train.checkpoint_every=50", "train.log_every=10", "eval.enabled=true")
    cmd = [sys.executable, "-m", "bench.cli", "compare", "vanilla", "--seeds", "2", "--steps", "3000"]
    cmd += ["--workers", "2", "--experiment", exp, *_sets(workdir, extra)]
    log = workdir.parent / "compare.log"
    workdir.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=workdir.parent)
    victim = killed_at = None
    lines_while_running = False
    deadline = time.time() + 240
    try:
        while time.time() < deadline and victim is None:
            assert proc.poll() is None, f"the grid ended before a worker could be killed:\n{log.read_text()}"
            lines_while_running |= bool(re.search(r"vanilla s\d +[1-9]\d*/3000 \d+%", log.read_text()))
            if (workdir / "optuna" / f"compare-{exp}.journal").exists():
                for t in _study(workdir, exp).get_trials(states=(optuna.trial.TrialState.RUNNING,)):
                    step = _checkpoint_step(workdir, exp, t.user_attrs.get(grid.CELL, "x/x"))
                    if grid.WORKER in t.user_attrs and step is not None and step >= 400:  # past a 10 % line
                        victim, killed_at = t, step
                        break
            time.sleep(0.1)
        assert victim is not None, f"no running trial with a checkpoint was seen:\n{log.read_text()}"
        os.kill(int(victim.user_attrs[grid.WORKER].rsplit(":", 1)[1].partition("@")[0]), signal.SIGKILL)
        assert proc.wait(timeout=300) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert lines_while_running, "no progress line reached the log while the grid ran"
    runs = _runs(workdir, exp)
    _cells_once(runs, [("vanilla", "0"), ("vanilla", "1")])  # none lost, none duplicated
    study = _study(workdir, exp)
    assert study.trials[victim.number].state.name == "FAIL"
    assert _complete_cells(study) == Counter(["vanilla/0", "vanilla/1", "real-floor"])
    arch, seed = victim.user_attrs[grid.CELL].split("/")
    (run,) = [r for r in runs if r["tags"].get(keys.TAG_SEED) == seed and r["tags"].get(keys.TAG_ARCH) == arch]
    steps = Counter(m.step for m in Tracker(workdir).client.get_metric_history(run["run_id"], keys.G_LOSS))
    # continued in the same MLflow run from the checkpoint: the steps up to it were logged once, not twice
    assert steps[10] == 1 and all(steps[s] == 1 for s in range(10, killed_at + 1, 10))
    assert steps[3000] == 1 and run["metrics"][keys.G_STEPS] == 3000
    text = log.read_text()
    assert re.search(r"^vanilla\s.*\s2$", text, re.M), text  # the report's table has the row, over both seeds


def _slurm_line() -> str:
    """The ``ganbench compare`` line of the Slurm job script in docs/scaling-out.md."""
    readme = (REPO / "docs" / "scaling-out.md").read_text()
    (script,) = [b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "#SBATCH --array" in b]
    (line,) = [x for x in script.splitlines() if x.startswith("ganbench compare")]
    return line


@pytest.mark.slow
def test_the_docs_slurm_line_as_two_plain_processes(workdir, mnist_root, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text('archs = ["vanilla", "cgan"]\nseeds = [0, 1]\n[train]\nsteps = 30\n')
    words = shlex.split(_slurm_line())
    assert words[:2] == ["ganbench", "compare"] and "--storage" in words and words[words.index("--workers") + 1] == "1"
    storage = f"journal:{tmp_path / 'grid.journal'}"
    words[words.index("--config") + 1] = str(config)
    words[words.index("--storage") + 1] = storage
    words[words.index("--workdir") + 1] = str(workdir)
    cmd = [sys.executable, "-m", "bench.cli", *words[1:], *_sets(workdir)]
    exp = words[words.index("--experiment") + 1]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    _cells_once(_runs(workdir, exp), GRID)
    study = _study(workdir, exp, storage)
    assert _complete_cells(study) == Counter(["vanilla/0", "vanilla/1", "cgan/0", "cgan/1", "real-floor"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_postgres_grid_with_an_mlflow_tracking_server(workdir, mnist_root, tmp_path, monkeypatch):
    url = os.environ.get("GANBENCH_TEST_POSTGRES")
    if not url:
        missing("GANBENCH_TEST_POSTGRES is not set (.ci/run starts PostgreSQL with .ci/postgres and sets it)")
    import sqlalchemy as sa

    tag = f"{os.getpid()}_{int(time.time())}"
    schema = f"mlflow_{tag}"  # MLflow's tables apart from Optuna's: both have an alembic_version table
    with sa.create_engine(url).begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{url}?options=-csearch_path%3D{schema}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        import urllib.request

        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
                time.sleep(1)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        exp = f"pg-{tag}"
        args = ["compare", "vanilla", "cgan", "--seeds", "2", "--steps", "20", "--workers", "2"]
        r = CliRunner().invoke(app, [*args, "--experiment", exp, "--storage", url, *_sets(workdir)])
        assert r.exit_code == 0, r.output
        assert not (workdir / "mlflow.db").exists()  # everything went to the server
        _cells_once(Tracker(tmp_path / "elsewhere").search_runs([exp]), GRID)
        assert _complete_cells(_study(workdir, exp, url)) == Counter(
            ["vanilla/0", "vanilla/1", "cgan/0", "cgan/1", "real-floor"]
        )
        fresh = tmp_path / "fresh"  # the report from the server alone: no workspace files at all
        r = CliRunner().invoke(app, ["report", "--experiment", exp, "--workdir", str(fresh)])
        assert r.exit_code == 0, r.output
        md = (fresh / "reports" / exp / "report.md").read_text()
        assert "vanilla" in md and "cgan" in md
        assert list((fresh / "reports" / exp / "figures").glob("samples-*.png")), "no sample grid came from MLflow"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_bad_grid_options_exit_2_and_write_nothing(workdir, mnist_root):
    for args, msg in (
        (["--workers", "0"], "error: --workers 0 is not allowed; expected between 1 and 64"),
        (["--devices", " , "], "error: --devices ' , ' names no device"),
        (["--storage", "redis://x"], "error: --storage 'redis://x' is not supported"),
        (["--devices", "tpu:0"], "error: --devices 'tpu:0' is not a device"),
    ):
        r = CliRunner().invoke(app, ["compare", "vanilla", "--steps", "2", *args, *_sets(workdir)])
        assert r.exit_code == 2 and r.stderr.startswith(msg), (args, r.output)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (workdir / "mlflow.db").exists() and not (workdir / "optuna").exists()
