"""Bad input, by family: one `error:` line, exit 2, nothing written, no run left in a state it was not in."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bench import checkpoint
from bench.cli import app
from bench.config import load_compare_config, require_name
from bench.errors import CheckpointError, ConfigError
from bench.tracking import Tracker
from tests.conftest import FAST

runner = CliRunner()


def _one_error_line(r, message: str) -> None:
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: {message}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "--bogus"], "No such option: --bogus (see `ganbench compare --help`)"),
        (["compare", "--steps", "abc"], "Invalid value for '--steps'"),
        (["ui", "--port", "70000"], "Invalid value for '--port'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_of_the_real_entry_point_are_one_line(args, message, tmp_path):
    p = subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().startswith(f"error: {message}") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "--epochs", "inf"], "train.epochs = inf is not allowed; expected a finite number > 0"),
        (["compare", "--device", "cuda:99"], "train.device = 'cuda:99', but this machine has"),
        (["compare", "--device", "cpu:abc"], "train.device = 'cpu:abc' is not a device"),
        (["compare", "--experiment", "../../escaped"], "experiment = '../../escaped' is not allowed"),
        (["compare", "--experiment", "x" * 300], "experiment = 'xxxx"),
        (["tune", "vanilla", "--study-name", "../x"], "study.name = '../x' is not allowed"),
        (["train", "vanilla", "--seed", str(2**70)], f"seeds = [{2**70}] is not allowed"),
        (["compare", "--set", "train.batch_size=70000"], "train.batch_size = 70000 exceeds the 60000 images"),
        (
            [
                "compare",
                "--set",
                "eval.n_samples=100",
                "--set",
                "eval.kid_subset_size=50",
                "--set",
                "eval.prc_neighborhood=100",
            ],
            "eval.prc_neighborhood = 100 is not allowed",
        ),  # fmt: skip
        (["eval", "--real", "--set", "eval.n_samples=100000"], "eval.n_samples = 100000 exceeds the 60000 images"),
        (["eval", "0123456789abcdef"], "'0123456789abcdef' is neither a checkpoint file nor an MLflow run"),
    ],
)
def test_values_that_would_fail_later_are_refused_before_anything_is_written(args, message, workdir, mnist_root):
    r = runner.invoke(app, [*args, "--workdir", str(workdir)])
    _one_error_line(r, message)
    assert not workdir.exists()  # no store, no journal, no run folder


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=120))
def test_a_name_is_a_name_or_refused(name):
    """Experiment and study names become folder names under the workspace: they never leave it."""
    try:
        require_name("experiment", name)
    except ConfigError as e:
        assert str(e).startswith("experiment = ") and "\n" not in str(e)
        return
    ws = Path("/ws")
    assert (ws / "runs" / name).resolve().parent == ws / "runs" and "/" not in name and name not in (".", "..")


def _damaged(state: dict, key: str, value) -> dict:
    out = {**state, "config": dict(state["config"])}
    target = out["config"] if key.startswith("config.") else out
    name = key.removeprefix("config.")
    if value is None:
        target.pop(name)
    else:
        target[name] = value
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory, mnist_root):
    """A finished dummy run: (workspace, its checkpoint, its MLflow run id)."""
    workdir = tmp_path_factory.mktemp("ws")
    sets = [a for s in [*FAST, f'workdir="{workdir}"'] for a in ("--set", s)]
    r = runner.invoke(app, ["train", "dummy", "--steps", "2", "-q", *sets])
    assert r.exit_code == 0, r.output
    ckpt = Path(r.output.split("checkpoint: ")[1].split()[0])
    return workdir, ckpt, r.output.split("MLflow run: ")[1].split()[0]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("config", None, "'config' is missing or not a dict"),
        ("config", "a string", "'config' is missing or not a dict"),
        ("config.eval", None, "'config.eval' is missing or not a dict"),
        ("step", "3", "'step' is missing or not a int"),
        ("generator", [1, 2], "'generator' is missing or not a dict"),
    ],
)
def test_damaged_checkpoints_are_one_line(finished, tmp_path, key, value, message):
    _, ckpt, _ = finished
    state = {k: v for k, v in checkpoint.load(ckpt).items() if k not in ("format", "version")}
    path = checkpoint.save(tmp_path / "damaged.pt", _damaged(state, key, value))
    with pytest.raises(CheckpointError, match=f"is damaged: {message}"):
        checkpoint.load(path)
    r = runner.invoke(app, ["train", "dummy", "--resume", str(path), "--workdir", str(tmp_path / "ws")])
    _one_error_line(r, f"checkpoint '{path}' is damaged")


def test_a_pickle_with_code_is_refused_without_torch_hint(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "x": Evil()}, path)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert "refuses to unpickle" in str(e.value) and "weights_only=False" not in str(e.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.dummy.width=32", "model.dummy.width = 32 differs from the checkpoint's 16"),
        ("model.dummy.lr_d=0.05", "model.dummy.lr_d = 0.05 differs from the checkpoint's 0.0002"),
        ("train.batch_size=8", "train.batch_size = 8 differs from the checkpoint's 16"),
    ],
)
def test_a_rejected_resume_leaves_the_finished_run_as_it_was(finished, override, message):
    workdir, ckpt, run_id = finished
    r = runner.invoke(app, ["train", "dummy", "--resume", str(ckpt), "--set", override, "--workdir", str(workdir)])
    _one_error_line(r, message)
    run = Tracker(workdir).client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics  # not flipped to FAILED, nothing lost


def test_resume_in_another_workspace_is_refused(finished, tmp_path):
    _, ckpt, run_id = finished
    other = tmp_path / "other"
    r = runner.invoke(app, ["train", "dummy", "--resume", str(ckpt), "--steps", "3", "--workdir", str(other)])
    _one_error_line(r, f"checkpoint '{ckpt}' continues MLflow run {run_id}, which is not in {other}")
    assert not other.exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["cuda", "cuda:1", "mps", "cpu:x", "cuda:-1", "tpu", "cuda:a"]))
def test_devices_this_machine_lacks_are_config_errors(device):
    if torch.cuda.is_available() and device in ("cuda", "cuda:1"):
        return  # a GPU machine has them
    with pytest.raises(ConfigError, match=f"train.device = {device!r}"):
        from bench.harness import resolve_device

        resolve_device(load_compare_config(None, [f"train.device={device}"]).train.device)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("./mlruns", "MLFLOW_TRACKING_URI = './mlruns' is a file store, which MLflow 3 no longer supports"),
        ("file:///tmp/mlruns", "MLFLOW_TRACKING_URI = 'file:///tmp/mlruns' is a file store"),
        ("garbage://x", "the MLflow store 'garbage://x' cannot be opened"),
        ("sqlite:////proc/nope/mlflow.db", "the MLflow store 'sqlite:////proc/nope/mlflow.db' cannot be opened"),
        ("http://127.0.0.1:1", "MLFLOW_TRACKING_URI = 'http://127.0.0.1:1' is unreachable or not an MLflow server"),
    ],
)
def test_tracking_uris_that_cannot_work_are_one_line(uri, message, workdir, monkeypatch, mnist_root):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    r = runner.invoke(app, ["train", "vanilla", "--steps", "1", "-q", "--workdir", str(workdir)])
    _one_error_line(r, message)


@pytest.mark.parametrize("where", ["a-file", "a-file/under", "/proc/ganbench"])
def test_a_workdir_that_cannot_be_a_folder_is_one_line(where, tmp_path, monkeypatch, mnist_root):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "a-file").write_text("x")
    workdir = where if where.startswith("/") else str(tmp_path / where)
    r = runner.invoke(app, ["train", "vanilla", "--steps", "1", "-q", "--workdir", workdir])
    _one_error_line(r, f"--workdir '{workdir}' cannot be used")


@pytest.mark.parametrize(
    "text, message",
    [
        ('[study]\narch = "dcgan"\n[space.lr]\nlow = "small"\n', "space.lr.low = 'small' is not allowed"),
        ("study = 5\n", "study must be a table"),
        ('[study]\narch = "dcgan"\n[space.z_dim]\nchoices = 5\n', "space.z_dim.choices = 5 is not allowed"),
        ('[study]\narch = "dcgan"\n[space.nope]\nlow = 0.1\nhigh = 0.5\n', "space.nope = 0.1: unknown key"),
        ('[study]\narch = "dcgan"\n[space.z_dim]\nfixed = "big"\n', "space.z_dim = 'big': model.dcgan.z_dim"),
        (
            '[study]\narch = "dcgan"\n[space.lr]\nlow = 1e-4\nhigh = 1e-2\n[space.beta1]\nhigh = 1.5\n',
            "space.beta1 = 1.5: model.dcgan: beta1 = 1.5 is out of range",
        ),  # fmt: skip
    ],
)
def test_a_study_file_is_validated_whole_before_the_first_trial(text, message, tmp_path, workdir, mnist_root):
    study = tmp_path / "study.toml"
    study.write_text(text)
    r = runner.invoke(app, ["tune", "--config", str(study), "--workdir", str(workdir)])
    _one_error_line(r, message)
    assert not workdir.exists()


def test_an_http_server_that_is_no_mlflow_is_one_line(workdir, monkeypatch, mnist_root):
    """/health answers 200, but the tracking API does not exist there."""
    import http.server
    import threading

    class HealthOnly(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def do_POST(self):  # noqa: N802
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), HealthOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        r = runner.invoke(app, ["train", "vanilla", "--steps", "1", "-q", "--workdir", str(workdir)])
        _one_error_line(r, f"MLFLOW_TRACKING_URI = '{uri}' is unreachable or not an MLflow server (HTTPError)")
    finally:
        server.shutdown()


def test_extractor_weights_that_are_random_bytes_fail_before_training(tmp_path, workdir, mnist_root):
    weights = tmp_path / "random.pth"
    weights.write_bytes(bytes(range(256)) * 64)
    args = ["train", "vanilla", "--steps", "1", "-q", "--extractor", "inception-v3-compat"]
    r = runner.invoke(app, [*args, "--inception-weights", str(weights), "--workdir", str(workdir)])
    _one_error_line(r, f"{weights} is not a weights file torch can read")
    assert not workdir.exists()


def test_output_places_under_proc_are_one_line(finished):
    workdir, _, _ = finished
    r = runner.invoke(app, ["report", "--experiment", "mnist-compare", "--out", "/proc/ganbench-report",
                            "--workdir", str(workdir)])  # fmt: skip
    _one_error_line(r, "--out '/proc/ganbench-report' cannot be used")
    r = runner.invoke(app, ["tune", "vanilla", "--storage", "journal:/proc/ganbench/x.journal",
                            "--workdir", str(workdir)])  # fmt: skip
    _one_error_line(r, "--storage journal:/proc/ganbench/x.journal cannot be used")


def test_a_database_that_accepts_but_never_answers_fails_in_seconds(workdir):
    """A TCP port that accepts connections and then says nothing (a hung PostgreSQL, a firewall)."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(8)], daemon=True).start()
    url = f"postgresql://nobody:x@127.0.0.1:{listener.getsockname()[1]}/none"
    t0 = time.monotonic()
    r = runner.invoke(app, ["tune", "vanilla", "--trials", "1", "--storage", url, "--workdir", str(workdir)])
    assert time.monotonic() - t0 < 30  # libpq's connect_timeout (5 s), not the ~135 s of the default
    _one_error_line(r, f"--storage '{url}' cannot be opened")
    listener.close()


def test_a_checkpoint_older_than_a_model_field_was_made_with_its_default(finished, tmp_path):
    """A checkpoint without `optimizer` (made before the field existed) ran Adam: switching it to RMSprop on
    resume is refused up front, not a KeyError in the optimiser's state mid-run."""
    workdir, ckpt, _ = finished
    state = {k: v for k, v in checkpoint.load(ckpt).items() if k not in ("format", "version")}
    for old in ("optimizer", "clip_value", "lr_schedule", "lr_warmup_steps"):
        state["config"]["model"].pop(old)
    path = checkpoint.save(tmp_path / "old.pt", state)
    args = ["train", "dummy", "--resume", str(path), "--workdir", str(workdir)]
    r = runner.invoke(app, [*args, "--set", 'model.dummy.optimizer="rmsprop"'])
    _one_error_line(r, "model.dummy.optimizer = 'rmsprop' differs from the checkpoint's 'adam'")


def test_a_scheduled_run_resumes_only_with_its_budget(mnist_root, tmp_path):
    """The learning-rate schedule runs over the budget: extending it on resume would make the rate jump."""
    workdir = tmp_path / "ws"
    sets = [a for s in [*FAST, f'workdir="{workdir}"', 'model.dummy.lr_schedule="cosine"'] for a in ("--set", s)]
    r = runner.invoke(app, ["train", "dummy", "--steps", "2", "-q", *sets])
    assert r.exit_code == 0, r.output
    ckpt = r.output.split("checkpoint: ")[1].split()[0]
    r = runner.invoke(app, ["train", "dummy", "--resume", ckpt, "--steps", "4", "--workdir", str(workdir)])
    _one_error_line(r, "the budget (train.steps = 4, train.epochs = None) differs from the checkpoint's (2, None)")


def test_a_plain_pickle_of_objects_is_refused_in_one_line_without_torch_warnings(tmp_path):
    """A pickle written by pickle.dumps (protocol 4+) made torch print two lines of UserWarning before the
    refusal; the CLI's error is now the only line on stderr."""
    import pickle
    import warnings

    path = tmp_path / "objects.pt"
    path.write_bytes(pickle.dumps({"generator": {}, "when": __import__("datetime").date(2026, 1, 1)}, protocol=5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="refuses to unpickle"):
            checkpoint.load(path)
    assert not caught, [str(w.message) for w in caught]
    r = runner.invoke(app, ["eval", str(path), "--workdir", str(tmp_path / "ws")])
    _one_error_line(r, f"checkpoint '{path}' holds objects other than tensors")


@pytest.mark.parametrize("name", ["Ünïcødé-実験", "эксперимент_1", "mnist-compare", "प्रयोग", "de\u0301ja\u0300-vu"])
def test_names_in_any_script_are_experiment_names(name, workdir):
    """MLflow takes them and they stay one folder under the workspace (they used to be refused)."""
    from bench.tracking import Tracker

    require_name("experiment", name)
    with Tracker(workdir).run(name, "r") as run:
        pass
    assert Tracker(workdir).search_runs([name])[0]["run_id"] == run.run_id


@pytest.mark.parametrize(
    "name", ["../up", "a/b", ".hidden", "-flag", "_x", "a\\b", "tab\tname", "", "abc\n", "a\u200bb"]
)
def test_separators_and_leading_dots_are_still_refused(name):
    with pytest.raises(ConfigError, match="starting with a letter or digit"):
        require_name("experiment", name)
