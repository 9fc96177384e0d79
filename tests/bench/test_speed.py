"""The fast path, its options, and the speed benchmark."""

from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from architectures import build_gan
from bench.cli import app
from bench.config import load_compare_config
from bench.data import BatchSampler
from bench.errors import TrainingDiverged
from bench.harness import StepOutput, fit, seed_everything
from bench.hooks import NaNGuard
from bench.tracking import Tracker

CPU = torch.device("cpu")
IMAGES = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
SMALL = {
    "dcgan": ["model.dcgan.g_width=8", "model.dcgan.d_width=8"],
    "wgan-gp": ["model.wgan-gp.g_width=8", "model.wgan-gp.d_width=8"],
}


def _fit(arch, tmp_path, *sets, device=CPU):
    cfg = load_compare_config(
        None,
        [
            f'archs=["{arch}"]',
            "train.steps=3",
            "train.batch_size=8",
            f'workdir="{tmp_path}"',
            *SMALL.get(arch, []),
            *sets,
        ],
    ).run(arch, 0)
    seed_everything(0)
    gan = build_gan(arch, cfg.model, (1, 28, 28))
    images = IMAGES.to(device) if cfg.train.fast else IMAGES  # the plain path copies batches from the host
    losses = []

    class Capture:
        def on_fit_start(self, t): ...
        def on_step_end(self, t, out):
            losses.append((out.d_loss.item(), out.g_loss.item()))

        def on_fit_end(self, t): ...

    fit(gan, BatchSampler(images, 8, 0, device), cfg, device, [Capture()])
    return gan, losses


def _weights(gan):
    return torch.cat(
        [p.detach().flatten().float().cpu() for p in gan.generator.parameters()]
        + [p.detach().flatten().float().cpu() for p in gan.discriminator.parameters()]
    )


@pytest.mark.parametrize("arch", ["vanilla", "dcgan", "wgan-gp"])
def test_fast_and_plain_paths_are_bit_identical_on_cpu(arch, tmp_path):
    fast, l_fast = _fit(arch, tmp_path, "train.fast=true")
    plain, l_plain = _fit(arch, tmp_path, "train.fast=false")
    assert l_fast == l_plain
    assert torch.equal(_weights(fast), _weights(plain))


def test_bf16_runs_on_cpu_and_changes_the_numbers(tmp_path):
    fp32, l32 = _fit("dcgan", tmp_path)
    bf16, l16 = _fit("dcgan", tmp_path, "train.precision=bf16")
    assert all(torch.isfinite(torch.tensor(l16)).flatten())
    assert not torch.equal(_weights(fp32), _weights(bf16))  # autocast really ran in bf16
    assert all(p.dtype == torch.float32 for p in bf16.generator.parameters())  # weights stay fp32


def test_compile_runs_one_step_on_cpu_with_gradient_penalty(tmp_path):
    sets = ["train.compile=true", "train.steps=1", "model.dummy.loss=wasserstein", "model.dummy.gp_weight=10.0"]
    gan, losses = _fit("dummy", tmp_path, *sets)
    assert len(losses) == 1 and all(map(lambda v: torch.isfinite(torch.tensor(v)), losses[0]))


def test_bad_precision_is_a_config_error():
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train.precision = 'fp16' is not allowed; expected 'fp32' or 'bf16'"):
        load_compare_config(None, ["train.precision=fp16"])


def test_nan_guard_on_a_gpu_reads_back_only_every_n_steps():
    """On CUDA the guard keeps the first bad step on the device and raises at the next read-back."""
    nets = SimpleNamespace(generator=torch.nn.Linear(2, 2), discriminator=torch.nn.Linear(2, 1))
    trainer = SimpleNamespace(
        device=SimpleNamespace(type="cuda"), before_save=[], gan=nets, step=4, last_checkpoint=None
    )
    guard = NaNGuard(every=4)
    guard.on_fit_start(trainer)
    finite, nan = torch.tensor(1.0), torch.tensor(float("nan"))
    for step, d in ((1, finite), (2, nan), (3, finite)):
        guard.on_step_end(trainer, StepOutput(step, d, finite, {}))  # no exception yet: not read back
    with pytest.raises(TrainingDiverged, match=r"generator step 2: train/d_loss = nan \(no checkpoint was written\)"):
        guard.on_step_end(trainer, StepOutput(4, finite, finite, {}))
    with pytest.raises(TrainingDiverged):  # a checkpoint save runs the check first
        trainer.before_save[0](trainer)


def test_speed_command_prints_rows_and_ratios(workdir, mnist_root):
    r = CliRunner().invoke(app, ["bench", "speed", "vanilla", "--steps", "3", "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.output.splitlines() if line.startswith("vanilla")]
    assert [row[1] for row in rows] == ["baseline", "ganbench", "ganbench"]  # baseline, fp32, bf16
    assert rows[0][-1] == "1.00x" and all(float(row[-1].rstrip("x")) > 0 for row in rows)
    runs = Tracker(workdir).search_runs(["ganbench-speed"])
    assert len(runs) == 3 and {r["status"] for r in runs} == {"FINISHED"}
    assert not (mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()  # shared data untouched


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_path_with_bf16_and_compile(tmp_path):
    gan, losses = _fit("dcgan", tmp_path, "train.precision=bf16", "train.compile=true", device=torch.device("cuda"))
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)).flatten())
