"""Faults injected for real: kill -9, SIGTERM, a diverging run, malformed input, a dead tracking server."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from architectures import LOSSES, build_gan
from architectures.losses import LossSpec
from bench import checkpoint, keys
from bench.cli import app
from bench.config import load_compare_config
from bench.data import ShuffledBatches
from bench.errors import TrainingDiverged
from bench.harness import seed_everything
from bench.hooks import Checkpointer, Hook, NaNGuard
from bench.tracking import Tracker
from bench.trainer import fit
from tests.conftest import FAST

pytestmark = pytest.mark.slow
runner = CliRunner()


def _sets(workdir, *extra):
    return [a for s in [*FAST, f'workdir="{workdir}"', *extra] for a in ("--set", s)]


def _wait_for_checkpoint(folder: Path, min_step: int, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The checkpoint under ``folder`` (one experiment's runs) once it holds at least ``min_step``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        for ck in folder.glob("*/checkpoint.pt"):
            try:
                if checkpoint.load(ck)["step"] >= min_step:
                    return ck
            except Exception:  # being replaced right now
                pass
        time.sleep(0.1)
    raise AssertionError("no checkpoint in time")


def _train_cmd(workdir, experiment, steps, *extra):
    args = ["train", "vanilla", "--steps", str(steps), "-q", "--experiment", experiment]
    return [sys.executable, "-m", "bench.cli", *args, *_sets(workdir, "train.checkpoint_every=10", *extra)]


def test_kill_9_then_resume_equals_the_uninterrupted_run(workdir, mnist_root):
    steps = 400  # long enough that the kill (right after the step-10 checkpoint) lands mid-run
    r = runner.invoke(app, ["train", "vanilla", "--steps", str(steps), "-q", "--experiment", "straight",
                            *_sets(workdir, "train.checkpoint_every=10")])  # fmt: skip
    assert r.exit_code == 0, r.output
    proc = subprocess.Popen(
        _train_cmd(workdir, "killed", steps), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ck = _wait_for_checkpoint(workdir / "runs" / "killed", 10, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.load(ck)["step"] < steps
    r = runner.invoke(app, ["train", "vanilla", "--resume", str(ck), "-q"])
    assert r.exit_code == 0, r.output
    straight = checkpoint.load(next(workdir.glob("runs/straight/*/checkpoint.pt")))
    resumed = checkpoint.load(ck)
    assert resumed["step"] == straight["step"] == steps
    for net in ("generator", "discriminator"):
        for k, v in straight[net].items():
            torch.testing.assert_close(resumed[net][k], v, rtol=0, atol=0, msg=f"{net}.{k}")
    (a,), (b,) = Tracker(workdir).search_runs(["straight"]), Tracker(workdir).search_runs(["killed"])
    assert b["status"] == "FINISHED"  # the same MLflow run, reopened and finished
    for m in ("fid", "is_mean", "kid_mean"):
        assert b["metrics"][keys.eval_key("lenet-mnist", m)] == a["metrics"][keys.eval_key("lenet-mnist", m)]


def test_sigterm_writes_a_checkpoint_and_ends_the_run_killed(workdir, mnist_root):
    proc = subprocess.Popen(
        _train_cmd(workdir, "term", 5000), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _wait_for_checkpoint(workdir / "runs" / "term", 10, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert "interrupted by SIGTERM; the run is marked KILLED" in out and "Traceback" not in out
    ck = next(workdir.glob("runs/term/*/checkpoint.pt"))
    state = checkpoint.load(ck)
    assert 10 < state["step"] < 5000  # written at the interruption, not only at the last multiple of 10
    (run,) = Tracker(workdir).search_runs(["term"])
    assert run["status"] == "KILLED" and "SIGTERM" in run["tags"][keys.TAG_FAILURE]


def test_diverging_weights_name_the_last_good_checkpoint(tmp_path):
    class Poison(Hook):
        def on_step_end(self, t, out):
            if out.step == 3:
                with torch.no_grad():
                    next(t.gan.generator.parameters())[0].fill_(float("inf"))

    cfg = load_compare_config(
        None, ['archs=["dummy"]', "train.steps=6", "train.batch_size=8", f'workdir="{tmp_path}"']
    ).run("dummy", 0)
    seed_everything(0)
    gan = build_gan("dummy", cfg.model, (1, 28, 28))
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    path = tmp_path / "c.pt"
    hooks = [Poison(), NaNGuard(every=1), Checkpointer(path, 2)]  # poisoned after step 3, caught at once
    with pytest.raises(
        TrainingDiverged, match=rf"generator weight net.0.weight = inf \(last good checkpoint: {path}\)"
    ) as e:
        fit(gan, ShuffledBatches(images, 8, 0), cfg, torch.device("cpu"), hooks)
    assert e.value.step == 3 and checkpoint.load(path)["step"] == 2  # the poisoned state was never saved


def test_compare_resume_skips_finished_and_reruns_failed(workdir, mnist_root):
    LOSSES.register("test-nan-4", LossSpec(lambda r, f: (r.mean() * float("nan"), f.mean(), {}), 0.0))
    try:
        r = runner.invoke(
            app, ["compare", "vanilla", "dummy", "--steps", "2", "-q", *_sets(workdir, "model.dummy.loss=test-nan-4")]
        )
    finally:
        LOSSES.unregister("test-nan-4")
    assert r.exit_code == 1
    r = runner.invoke(app, ["compare", "vanilla", "dummy", "--steps", "2", "-q", "--resume", *_sets(workdir)])
    assert r.exit_code == 0, r.output
    runs = [x for x in Tracker(workdir).search_runs(["mnist-compare"]) if x["tags"][keys.TAG_KIND] == "run"]
    by_arch = {}
    for x in runs:
        by_arch.setdefault(x["tags"][keys.TAG_ARCH], []).append(x["status"])
    assert by_arch["vanilla"] == ["FINISHED"]  # skipped, not trained again
    assert sorted(by_arch["dummy"]) == ["FAILED", "FINISHED"]  # the failed one started again
    floors = [x for x in Tracker(workdir).search_runs(["mnist-compare"]) if x["tags"][keys.TAG_KIND] == "real-floor"]
    assert [f["status"] for f in floors] == ["FINISHED"]  # kept, as a shared grid keeps it (was computed again)


def test_dead_tracking_uri_fails_fast(workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    t0 = time.monotonic()
    r = runner.invoke(app, ["compare", "--steps", "1", "--workdir", str(workdir)])
    assert time.monotonic() - t0 < 30
    assert r.exit_code == 2 and r.stderr.startswith("error: MLFLOW_TRACKING_URI = 'http://127.0.0.1:9' is unreachable")


def test_debug_flag_shows_the_traceback(workdir):
    r = runner.invoke(app, ["--debug", "compare", "stylegan", "--workdir", str(workdir)])
    assert r.exit_code != 0 and r.exception is not None and "stylegan" in str(r.exception)
    os.environ.pop("GANBENCH_DEBUG", None)


KEYS = ["train.steps", "train.epochs", "train.batch_size", "eval.n_samples", "eval.kid_subset_size",
        "model.dcgan.lr_g", "model.nope.x", "seeds", "archs", "data.dataset", "train.device", "eval.extractor",
        "train.precision", "x", ""]  # fmt: skip
values = st.one_of(
    st.text(max_size=12), st.integers(-(10**6), 10**6).map(str), st.floats(allow_nan=True).map(str),
    st.sampled_from(["[", "]", "{}", '"', "true", "none", "[1, 2]", "-1", "0", "1e400", "'a'", "= =", "\x00"]),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), value=values)
def test_fuzzed_set_values_exit_2_without_traceback(key, value, workdir):
    # --data-root points nowhere, so even a well-formed config stops with exit 2 before any run starts
    r = runner.invoke(
        app, ["compare", "--set", f"{key}={value}", "--data-root", "/nonexistent", "--workdir", str(workdir)]
    )
    assert r.exit_code == 2, (key, value, r.output)
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output and not (workdir / "mlflow.db").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(max_size=80), st.builds(lambda k, v: f"[train]\n{k} = {v}\n", st.sampled_from(KEYS[:6] + ["x"]), values)
    )
)
def test_fuzzed_toml_files_exit_2_without_traceback(text, workdir, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(text, encoding="utf-8", errors="surrogatepass") if "\udc80" not in text else f.write_bytes(b"\xff")
    r = runner.invoke(app, ["compare", "--config", str(f), "--data-root", "/nonexistent", "--workdir", str(workdir)])
    assert r.exit_code == 2, (text, r.output)
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output
