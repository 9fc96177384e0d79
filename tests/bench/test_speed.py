"""The fast path, its options, and the speed benchmark."""

from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from architectures import build_gan
from bench.cli import app
from bench.config import load_compare_config
from bench.data import ShuffledBatches
from bench.errors import TrainingDiverged
from bench.harness import seed_everything
from bench.hooks import NaNGuard
from bench.tracking import Tracker
from bench.trainer import StepOutput, Trainer, fit

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

    fit(gan, ShuffledBatches(images, 8, 0, device), cfg, device, [Capture()])
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


@pytest.mark.parametrize("impl", ["fused", "foreach", "for-loop", "torch-default"])
def test_every_optimizer_impl_keeps_the_paths_bit_identical(impl, tmp_path):
    fast, l_fast = _fit("vanilla", tmp_path, "train.fast=true", f"train.optimizer_impl={impl}")
    plain, l_plain = _fit("vanilla", tmp_path, "train.fast=false", f"train.optimizer_impl={impl}")
    assert l_fast == l_plain and torch.equal(_weights(fast), _weights(plain))


def test_optimizer_impls_agree_to_rounding(tmp_path):
    fused, _ = _fit("dcgan", tmp_path, "train.optimizer_impl=fused")
    loop, _ = _fit("dcgan", tmp_path, "train.optimizer_impl=for-loop")
    torch.testing.assert_close(_weights(fused), _weights(loop), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["dcgan", "sngan"])
def test_channels_last_lays_out_conv_weights_and_agrees_to_rounding(arch, tmp_path):
    nhwc, l_nhwc = _fit(arch, tmp_path, "train.channels_last=true")
    nchw, l_nchw = _fit(arch, tmp_path, "train.channels_last=false")
    convs = [p for p in nhwc.generator.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)  # the layout really changed (C > 1)
    torch.testing.assert_close(_weights(nhwc), _weights(nchw), rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(torch.tensor(l_nhwc), torch.tensor(l_nchw), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_critic, forwards_per_step", [(1, 1), (3, 4)])
def test_generator_forwards_per_step(n_critic, forwards_per_step, tmp_path):
    """n_critic = 1: the generator step scores the discriminator step's fakes again (one G forward);
    n_critic > 1: each critic step has its own fakes (no gradients) and the generator step draws fresh z."""
    sets = ['archs=["dummy"]', "train.steps=2", "train.batch_size=8", f"model.dummy.n_critic={n_critic}"]
    cfg = load_compare_config(None, [*sets, f'workdir="{tmp_path}"']).run("dummy", 0)
    seed_everything(0)
    gan = build_gan("dummy", cfg.model, (1, 28, 28))
    grad_enabled = []
    gan.generator.register_forward_hook(lambda m, i, o: grad_enabled.append(torch.is_grad_enabled()))
    fit(gan, ShuffledBatches(IMAGES, 8, 0), cfg, CPU)
    assert len(grad_enabled) == 2 * forwards_per_step
    assert grad_enabled.count(True) == 2  # one forward per step keeps the graph for the generator's update


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("train.optimizer_impl", "adamw", "'fused', 'foreach', 'for-loop' or 'torch-default'"),
        ("train.compile_mode", "fast", "'default', 'reduce-overhead' or 'max-autotune'"),
    ],
)
def test_bad_speed_option_is_a_config_error(key, value, allowed):
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{key} = '{value}' is not allowed; expected {allowed}"):
        load_compare_config(None, [f"{key}={value}"])


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


def test_compile_reduce_overhead_mode_runs_on_cpu(tmp_path):
    """CUDA graphs apply on CUDA only; on CPU the mode must still train (torch skips the graphs)."""
    eager, l_eager = _fit("dummy", tmp_path, "train.steps=2")
    compiled, l_compiled = _fit(
        "dummy", tmp_path, "train.steps=2", "train.compile=true", "train.compile_mode=reduce-overhead"
    )
    torch.testing.assert_close(torch.tensor(l_compiled), torch.tensor(l_eager), rtol=1e-4, atol=1e-5)


def test_bad_precision_is_a_config_error():
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train.precision = 'fp16' is not allowed; expected 'fp32' or 'bf16'"):
        load_compare_config(None, ["train.precision=fp16"])


def test_nan_guard_on_a_gpu_reads_back_only_every_n_steps(tmp_path):
    """On CUDA the trainer keeps the first bad step on the device; the guard raises at the next read-back, and
    a checkpoint write refuses the diverged state whatever the order of the hooks."""
    cfg = load_compare_config(None, ['archs=["dummy"]', "train.steps=4", "train.batch_size=8"]).run("dummy", 0)
    gan = build_gan("dummy", cfg.model, (1, 28, 28))
    trainer = Trainer(gan, ShuffledBatches(torch.zeros(16, 1, 28, 28, dtype=torch.uint8), 8, 0), cfg, CPU)
    trainer.device, trainer.step = SimpleNamespace(type="cuda"), 4  # as a trainer on a GPU sees it
    guard = NaNGuard(every=4)
    finite, nan = torch.tensor(1.0), torch.tensor(float("nan"))
    for step, d in ((1, finite), (2, nan), (3, finite)):
        out = StepOutput(step, d, finite, {})
        trainer.record(out)
        guard.on_step_end(trainer, out)  # no exception yet: not read back
    with pytest.raises(TrainingDiverged, match=r"generator step 2: train/d_loss = nan \(no checkpoint was written\)"):
        guard.on_step_end(trainer, StepOutput(4, finite, finite, {}))
    with pytest.raises(TrainingDiverged):  # a checkpoint write checks first, without any hook's help
        trainer.save_checkpoint(tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_speed_command_prints_rows_and_ratios(workdir, mnist_root):
    args = ["bench", "speed", "vanilla", "--steps", "4", "--rounds", "2", "--workdir", str(workdir)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "4 generator steps per row in 2 interleaved rounds" in r.output
    rows = [line.split() for line in r.output.splitlines() if line.startswith("vanilla")]
    assert [row[1] for row in rows] == ["baseline", "ganbench", "ganbench"]  # baseline, fp32, bf16
    assert rows[0][-1] == "1.00x" and all(float(row[-1].rstrip("x")) > 0 for row in rows)
    base_ms, fast_ms = float(rows[0][2]), float(rows[1][2])
    assert float(rows[1][-1].rstrip("x")) == pytest.approx(base_ms / fast_ms, rel=0.05)  # ratio = baseline / row
    runs = Tracker(workdir).search_runs(["ganbench-speed"])
    assert len(runs) == 3 and {r["status"] for r in runs} == {"FINISHED"}
    assert not (mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()  # shared data untouched


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_cuda_fast_path_with_bf16_and_compile(mode, tmp_path):
    sets = ["train.precision=bf16", "train.compile=true", f"train.compile_mode={mode}"]
    gan, losses = _fit("dcgan", tmp_path, *sets, device=torch.device("cuda"))
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)).flatten())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch", ["vanilla", "wgan-gp"])
def test_cuda_graphs_agree_with_eager_on_cuda(arch, tmp_path):
    cuda = torch.device("cuda")
    eager, l_eager = _fit(arch, tmp_path, device=cuda)
    graphs, l_graphs = _fit(arch, tmp_path, "train.compile=true", "train.compile_mode=reduce-overhead", device=cuda)
    torch.testing.assert_close(torch.tensor(l_graphs), torch.tensor(l_eager), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rounds", "0"], "--rounds 0 must be >= 1"),
        (["--steps", "2", "--rounds", "3"], "--steps 2 must be >= 2 and >= --rounds (3)"),
    ],
)
def test_speed_command_rejects_bad_rounds(args, message, workdir):
    r = CliRunner().invoke(app, ["bench", "speed", "vanilla", *args, "--workdir", str(workdir)])
    assert r.exit_code == 2 and message in r.output
