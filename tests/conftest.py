"""Shared fixtures: real MNIST location, a tiny dummy architecture, a clean workspace, fast settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from architectures import ARCHITECTURES, GAN, ArchSpec
from architectures.blocks import GANConfig

REPO = Path(__file__).resolve().parents[1]
if not os.environ.get("GANBENCH_DATA") and (REPO.parent / "shared" / "data").is_dir():
    os.environ["GANBENCH_DATA"] = str(REPO.parent / "shared" / "data")


@dataclass(frozen=True)
class DummyConfig(GANConfig):
    """A tiny MLP GAN for fast harness tests."""

    z_dim: int = 8
    width: int = 16


class DummyG(nn.Module):
    def __init__(self, cfg: DummyConfig, shape):
        super().__init__()
        self.z_dim, self.shape = cfg.z_dim, shape
        self.net = nn.Sequential(
            nn.Linear(cfg.z_dim, cfg.width), nn.ReLU(), nn.Linear(cfg.width, int(torch.tensor(shape).prod())), nn.Tanh()
        )

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.shape)


def _build_dummy(cfg: DummyConfig, shape, num_classes=0) -> GAN:
    d = nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(torch.tensor(shape).prod()), cfg.width),
        nn.LeakyReLU(0.2),
        nn.Linear(cfg.width, 1),
        nn.Flatten(0),
    )
    return GAN(DummyG(cfg, shape), d, cfg.loss, cfg.optim())


if "dummy" not in ARCHITECTURES:
    ARCHITECTURES.register("dummy", ArchSpec("dummy", DummyConfig, _build_dummy, "test double"))


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    root = os.environ.get("GANBENCH_DATA")
    assert root and (Path(root) / "MNIST" / "raw").is_dir(), (
        "real MNIST is needed: set GANBENCH_DATA to a folder holding MNIST/raw/*.gz (CI: ../shared/data)"
    )
    return Path(root)


@pytest.fixture(scope="module")
def mnist(mnist_root, tmp_path_factory):
    """(a workspace, real MNIST train, real MNIST test) on the CPU, loaded once per test module."""
    from bench.config import DataConfig
    from bench.data import load

    wd = tmp_path_factory.mktemp("ws")
    return wd, load(DataConfig(), "train", wd), load(DataConfig(), "test", wd)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty workspace with the embedded MLflow store (MLFLOW_TRACKING_URI unset)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "ws"


# settings for runs that finish in seconds: a few steps, a small evaluation
FAST = [
    "train.log_every=1",
    "train.warmup_steps=1",
    "train.batch_size=16",
    "eval.n_samples=200",
    "eval.kid_subset_size=50",
    "eval.kid_subsets=10",
    "eval.during_training_samples=100",
    "eval.floor_subsets=2",
    "eval.memorisation_train=5000",  # memorisation searches 5 000 training images, not 60 000
]


@pytest.fixture
def fast_sets(workdir) -> list[str]:
    return [*FAST, f'workdir="{workdir}"']
