"""The Inception path, run for real with a randomly initialised extractor of the same class and weight
layout (the FID weights cannot be downloaded here), and its offline error."""

from unittest import mock

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from bench import keys
from bench.config import DataConfig, EvalConfig, ExtractorOptions
from bench.data import load
from bench.metrics import extractors
from bench.metrics.extractors import INCEPTION_FILE, WeightsUnavailable
from bench.metrics.fidelity import fidelity
from bench.metrics.protocol import plan_extractors

INCEPTION = "inception-v3-compat"

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> str:
    """torch-fidelity's Inception-v3 with PyTorch's default random init, saved as a weights file."""
    torch.manual_seed(0)
    with (
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None),
        mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", return_value={}),
    ):
        model = FeatureExtractorInceptionV3(INCEPTION, ["2048"], feature_extractor_weights_path="unused")
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub cache and no network."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def refuse(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path / "hub" / "checkpoints"


def test_inception_end_to_end_with_local_weights(random_inception, mnist_root, tmp_path):
    test = load(DataConfig(), "test", tmp_path)
    cfg = EvalConfig(
        n_samples=24,
        n_reference=24,
        kid_subset_size=12,
        batch_size=12,
        extractors={INCEPTION: ExtractorOptions(weights=random_inception)},
    )
    plan = plan_extractors(cfg, "mnist", (1, 28, 28), CPU, "ganbench-runs")
    assert list(plan.use) == ["lenet-mnist"] and "skipped on CPU" in plan.skipped[INCEPTION]  # auto on CPU
    generated = load(DataConfig(), "train", tmp_path).images[:24]
    metrics, protocol = fidelity(generated, test, cfg, tmp_path, CPU, extractor=INCEPTION)  # MNIST is 1-channel
    for m in (keys.FID, keys.IS_MEAN, keys.KID_MEAN, keys.PRECISION, keys.RECALL):
        assert torch.isfinite(torch.tensor(metrics[keys.eval_key(INCEPTION, m)])), m
    assert metrics[keys.eval_key(INCEPTION, keys.FID)] > 0
    assert "NOT the standard weights" in protocol.line()
    assert protocol.n_reference == 24


def test_inception_on_uses_local_weights(random_inception, tmp_path):
    cfg = EvalConfig(extractors={INCEPTION: ExtractorOptions("on", random_inception)})
    plan = plan_extractors(cfg, "mnist", (1, 28, 28), CPU, "ganbench-runs")
    assert list(plan.use) == ["lenet-mnist", INCEPTION] and not plan.skipped
    assert str(plan.use[INCEPTION]) == random_inception


def test_missing_weights_offline_names_the_file_and_place(offline):
    with pytest.raises(WeightsUnavailable) as e:
        plan_extractors(
            EvalConfig(extractors={INCEPTION: ExtractorOptions("on")}), "mnist", (1, 28, 28), CPU, "ganbench-runs"
        )
    msg = str(e.value)
    assert INCEPTION_FILE in msg and str(offline) in msg and "--inception-weights" in msg
    plan = plan_extractors(EvalConfig(), "mnist", (1, 28, 28), CPU, "ganbench-runs")  # auto: recorded, not fatal
    assert INCEPTION not in plan.use and plan.skipped[INCEPTION].startswith(
        "unavailable offline: Inception weights not found"
    )
    with pytest.raises(WeightsUnavailable, match="is not a file"):
        plan_extractors(
            EvalConfig(extractors={INCEPTION: ExtractorOptions("on", "/nope.pth")}),
            "mnist",
            (1, 28, 28),
            CPU,
            "ganbench-runs",
        )


def test_cached_weights_are_found(offline):
    offline.mkdir(parents=True)
    (offline / INCEPTION_FILE).write_bytes(b"x")
    assert extractors._inception_weights(None, False) == offline / INCEPTION_FILE
    plan = plan_extractors(EvalConfig(), "mnist", (1, 28, 28), CPU, "ganbench-runs")
    assert plan.skipped[INCEPTION].startswith("skipped on CPU")
    plan = plan_extractors(
        EvalConfig(extractors={INCEPTION: ExtractorOptions("off")}), "mnist", (1, 28, 28), CPU, "ganbench-runs"
    )
    assert plan.skipped[INCEPTION].startswith("off")


def test_cli_reports_missing_weights_as_one_line(offline, workdir):
    from typer.testing import CliRunner

    from bench.cli import app

    r = CliRunner().invoke(app, ["compare", "--steps", "1", "--set", "eval.inception=on", "--workdir", str(workdir)])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: Inception weights cannot be downloaded (OSError); place ")
    assert not (workdir / "mlflow.db").exists()  # failed before any run


def test_eval_command_with_inception_weights_option(random_inception, workdir, mnist_root):
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.tracking import Tracker

    runner = CliRunner()
    small = ["--set", "eval.n_samples=24", "--set", "eval.n_reference=24", "--set", "eval.kid_subset_size=12"]
    r = runner.invoke(
        app, ["train", "dummy", "--steps", "2", "-q", "--workdir", str(workdir), "--set", "eval.enabled=false"]
    )
    assert r.exit_code == 0, r.output
    ckpt = next(workdir.glob("runs/mnist-compare/dummy-seed0-*/checkpoint.pt"))
    args = ["eval", str(ckpt), "--extractor", INCEPTION, "--inception-weights", random_inception, *small]
    r = runner.invoke(app, [*args, "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    assert "protocol: inception-v3-compat (sha256" in r.output and "NOT the standard weights" in r.output
    (run,) = Tracker(workdir).search_runs(["mnist-compare"])
    assert run["metrics"][keys.eval_key(INCEPTION, keys.FID)] > 0
    assert run["tags"][f"protocol.{INCEPTION}.n_reference"] == "24"
