"""The reproduction study files (issue 15): each loads, builds the networks its write-up describes, and runs
from the command line with --steps 2."""

from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from architectures import build_gan
from bench.cli import app
from bench.config import load_compare_config
from bench.tracking import Tracker

FILES = sorted((Path(__file__).parents[2] / "studies" / "reproductions").glob("*.toml"))
runner = CliRunner()


def _gan(path, arch):
    cc = load_compare_config(path)
    return build_gan(arch, cc.run(arch, cc.seeds[0]).model, (1, 28, 28)), cc


def _kinds(net):
    return [type(m) for m in net.modules()]


def test_the_files_describe_their_write_ups():
    by_id = {p.stem: p for p in FILES}
    five = {"mlp-relu-20ep", "vanilla-vs-dcgan-50ep", "keras-dcgan-10ep", "mlp-bn-dropout-50ep", "paper-table-50ep"}
    assert five <= set(by_id)
    g, cc = _gan(by_id["mlp-relu-20ep"], "vanilla")
    linears = [m for m in g.generator.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(100, 256), (256, 512), (512, 784)]
    assert nn.LeakyReLU not in _kinds(g.generator) + _kinds(g.discriminator)
    assert nn.BatchNorm1d not in _kinds(g.generator) and nn.Dropout not in _kinds(g.discriminator)
    assert (g.optim.betas, cc.train.epochs, cc.train.batch_size) == ((0.9, 0.999), 20, 64)
    g, cc = _gan(by_id["keras-dcgan-10ep"], "dcgan")
    convs = [m for m in g.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size) for m in convs] == [(32, (5, 5)), (64, (5, 5))]
    assert _kinds(g.discriminator).count(nn.Dropout) == 2 and nn.BatchNorm2d not in _kinds(g.discriminator)
    assert g.generator.net[0].out_features == 7 * 7 * 64 and g.generator.net[0].bias is None
    assert nn.ReLU not in _kinds(g.generator) and (g.optim.lr_g, g.optim.betas[0]) == (1e-4, 0.9)
    g, cc = _gan(by_id["mlp-bn-dropout-50ep"], "vanilla")
    widths = [m.out_features for m in g.discriminator.modules() if isinstance(m, nn.Linear)]
    assert widths == [1024, 512, 256, 1] and cc.seeds == (42,) and cc.train.batch_size == 128
    cc = load_compare_config(by_id["vanilla-vs-dcgan-50ep"])
    assert cc.archs == ("vanilla", "dcgan") and cc.train.epochs == 50
    cc = load_compare_config(by_id["paper-table-50ep"])  # the table's four models in one comparison
    assert cc.archs == ("vanilla", "dcgan", "wgan", "sngan") and (cc.train.epochs, cc.train.batch_size) == (50, 128)
    wgan, proposed = cc.model_config("wgan"), cc.model_config("sngan")
    assert (wgan.optimizer, wgan.clip_value, wgan.n_critic, wgan.gp_weight) == ("rmsprop", 0.01, 5, 0.0)
    assert (proposed.gp_weight, proposed.lr_schedule, proposed.loss) == (10.0, "linear-decay", "hinge")
    g, _ = _gan(by_id["paper-table-50ep"], "sngan")
    assert any(
        "spectral" in type(m).__name__.lower() or hasattr(m, "parametrizations") for m in g.discriminator.modules()
    )
    for arch in ("vanilla", "dcgan", "sngan"):
        m = cc.model_config(arch)
        assert (m.optimizer, m.lr_g, m.lr_d, m.beta1) == ("adam", 2e-4, 2e-4, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_file_runs_from_the_command_line(path, tmp_path, mnist_root, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["compare", "--config", str(path), "--steps", "2", "--workdir", str(tmp_path), "-q", "--no-report"]
    r = runner.invoke(app, [*args, "--set", "eval.enabled=false", "--set", "train.warmup_steps=1"])
    assert r.exit_code == 0, r.output
    cc = load_compare_config(path)
    runs = Tracker(tmp_path).search_runs([cc.experiment])
    assert sorted(x["tags"]["ganbench.arch"] for x in runs) == sorted(cc.archs)
    assert {x["status"] for x in runs} == {"FINISHED"}
    assert all(torch.isfinite(torch.tensor(x["metrics"]["train/d_loss"])) for x in runs)
