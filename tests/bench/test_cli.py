"""The command line: bad input exits 2 with one clear line and leaves no run behind."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bench.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, list(args))


def test_list_shows_every_architecture_and_loss():
    r = _invoke("list")
    assert r.exit_code == 0, r.output
    for name in ("vanilla", "dcgan", "wgan-gp", "sngan", "hinge", "wasserstein", "mnist", "lenet-mnist"):
        assert name in r.output
    rows = [line.split("│") for line in r.output.splitlines() if line.startswith("│ ")]
    conditional = {c[1].strip() for c in rows if len(c) > 2 and c[2].strip() == "yes"}
    assert conditional == {"acgan", "cgan", "sngan-projection"}
    assert max(len(line) for line in r.output.splitlines()) <= 80


def test_list_arch_shows_its_defaults_one_per_line_within_80_columns():
    r = _invoke("list", "wgan-gp")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    row = {c[1].strip(): c[2].strip() for c in (line.split("│") for line in lines if line.startswith("│ "))}
    assert row["gp_weight"] == "10.0" and row["lr_schedule"] == "constant" and row["n_critic"] == "5"
    assert "--set model.wgan-gp.<key>=<value>" in r.output
    bad = _invoke("list", "stylegan")
    assert bad.exit_code == 2 and "error: unknown architecture 'stylegan'" in bad.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "stylegan"], "error: unknown architecture 'stylegan'; registered: "),
        (["compare", "--set", "train.stpes=3"], "error: unknown key 'train.stpes'; allowed: "),
        (["compare", "--set", "train.steps=abc"], "error: train.steps = 'abc' has the wrong type"),
        (["compare", "--set", "model.dcgan.beta1=2"], "error: model.dcgan: beta1 = 2.0 is out of range"),
        (["compare", "--epochs", "1", "--steps", "2"], "error: give either --epochs or --steps, not both"),
        (["compare", "--seeds", "0"], "error: --seeds 0 must be >= 1"),
        (
            ["compare", "--data-root", "/nonexistent/mnist"],
            "error: data.root / --data-root = '/nonexistent/mnist' is not a folder",
        ),
        (["compare", "--config", "/nonexistent.toml"], "error: config file '/nonexistent.toml' does not exist"),
        (["train", "dcgan", "--resume", "/nonexistent.pt"], "error: checkpoint '/nonexistent.pt' does not exist"),
        (["train", "nope"], "error: unknown architecture 'nope'"),
        (["report", "--experiment", "never-ran"], "error: no MLflow store in "),  # and none is created
        (["report", "--study", "never-ran"], "error: no study 'never-ran' in "),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, workdir):
    r = _invoke(*args, *(["--workdir", str(workdir)] if args[0] != "report" else ["--workdir", str(workdir)]))
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(message), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output
    assert not workdir.exists()  # nothing written: no store, no journal, no run folder


def test_missing_data_fails_before_any_run(tmp_path, workdir, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GANBENCH_DATA", str(empty))
    r = _invoke("compare", "--steps", "1", "--workdir", str(workdir))
    assert r.exit_code == 2
    assert r.stderr.startswith("error: mnist test split not found:")
    assert not (workdir / "mlflow.db").exists()


def test_real_entry_point_prints_no_traceback(workdir):
    p = subprocess.run(
        [sys.executable, "-m", "bench.cli", "compare", "--set", "eval.n_samples=oops", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2
    assert p.stderr.strip() == "error: eval.n_samples = 'oops' has the wrong type; expected int"
    assert "Traceback" not in p.stderr + p.stdout
