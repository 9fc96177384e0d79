"""The trainer object against a frozen copy of the loop it replaced (tests/bench/reference_loop.py): every
built-in architecture, bit-identical weights and optimiser states on the CPU."""

import pytest
import torch

from architectures import ARCHITECTURES, build_gan
from bench.config import load_compare_config
from bench.data import ShuffledBatches
from bench.harness import seed_everything
from bench.trainer import Hook, Trainer, fit
from tests.bench.reference_loop import reference_fit

CPU = torch.device("cpu")
_g = torch.Generator().manual_seed(3)
IMAGES = torch.randint(0, 256, (96, 1, 28, 28), dtype=torch.uint8, generator=_g)
LABELS = torch.randint(0, 10, (96,), generator=_g)
BUILT_INS = [n for n in ARCHITECTURES.names() if n != "dummy"]
CASES = [(a, ()) for a in BUILT_INS] + [
    ("dcgan", ("model.dcgan.lr_schedule='cosine'", "model.dcgan.lr_warmup_steps=1")),
    ("vanilla", ("model.vanilla.n_critic=2", "model.vanilla.gp_weight=1.0")),
]


def _run(arch, sets, train):
    cfg = load_compare_config(None, [f'archs=["{arch}"]', "train.batch_size=8", "train.steps=3", *sets]).run(arch, 0)
    seed_everything(cfg.seed)
    gan = build_gan(cfg.arch, cfg.model, (1, 28, 28), 10 if ARCHITECTURES.get(arch).conditional else 0)
    batches = ShuffledBatches(IMAGES, 8, cfg.seed, labels=LABELS)
    opts = train(gan, batches, cfg)
    return gan, opts


def _trained(gan, batches, cfg):
    trainer = Trainer(gan, batches, cfg, CPU)
    trainer.fit()
    return trainer.opt_g, trainer.opt_d


def _same(a, b, where):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs from the reference loop"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize(("arch", "sets"), CASES, ids=[f"{a}{'+' if s else ''}" for a, s in CASES])
def test_every_built_in_trains_bit_identically_to_the_loop_it_replaced(arch, sets):
    ours, our_opts = _run(arch, sets, _trained)
    ref, ref_opts = _run(arch, sets, lambda gan, b, cfg: reference_fit(gan, b, cfg, 3))
    for net in ("generator", "discriminator"):
        _same(getattr(ours, net).state_dict(), getattr(ref, net).state_dict(), f"{arch} {net}")
    for name, a, b in zip(("opt_g", "opt_d"), our_opts, ref_opts, strict=True):
        _same(a.state_dict(), b.state_dict(), f"{arch} {name}")  # moments, step counts, learning rates


class R1Trainer(Trainer):
    """A regulariser added by overriding one step, not the loop: R1 (Mescheder et al. 2018), γ/2·E||∇D(x)||²
    on real images, as a second discriminator update after the built-in one."""

    gamma = 10.0

    def d_step(self, real, y_real):
        out = super().d_step(real, y_real)
        real = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.gan.discriminate(real, y_real)[0].sum(), real, create_graph=True)
        r1 = self.gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()
        self.opt_d.zero_grad(set_to_none=True)
        r1.backward()
        self.opt_d.step()
        out.extras["r1"] = r1.detach()
        return out


def test_a_subclass_overrides_a_step_and_the_loop_hooks_and_budget_stay():
    class Steps(Hook):
        def __init__(self):
            self.outs = []

        def on_step_end(self, trainer, out):
            self.outs.append(out)

    plain, _ = _run("dummy", (), lambda gan, b, cfg: fit(gan, b, cfg, CPU))
    hook = Steps()
    seen = {}

    def with_r1(gan, b, cfg):
        trainer = R1Trainer(gan, b, cfg, CPU, [hook])
        seen["result"] = trainer.fit()
        return trainer

    r1, _ = _run("dummy", (), with_r1)
    assert [o.step for o in hook.outs] == [1, 2, 3] and seen["result"].stop_reason == "budget"
    assert all("r1" in o.extras and o.extras["r1"] >= 0 for o in hook.outs)
    assert not torch.equal(plain.discriminator[1].weight, r1.discriminator[1].weight)


def test_a_plugin_trains_with_its_own_trainer_through_ganbench(mnist_root, fast_sets, workdir):
    """ArchSpec.trainer: an architecture whose d_step adds R1 is trained by `ganbench train` with it (the
    regulariser's value is logged like any loss extra); a trainer that is no Trainer is refused up front."""
    from typer.testing import CliRunner

    from architectures import ArchSpec
    from bench.cli import app
    from bench.tracking import Tracker
    from tests.conftest import DummyConfig, _build_dummy

    ARCHITECTURES.register("dummy-r1", ArchSpec("dummy-r1", DummyConfig, _build_dummy, "R1", trainer=R1Trainer))
    ARCHITECTURES.register("dummy-bad", ArchSpec("dummy-bad", DummyConfig, _build_dummy, "bad", trainer=dict))
    try:
        sets = [a for s in [*fast_sets, "eval.enabled=false"] for a in ("--set", s)]
        r = CliRunner().invoke(app, ["train", "dummy-r1", "--steps", "3", "-q", *sets])
        assert r.exit_code == 0, r.output
        (run,) = Tracker(workdir).search_runs(["mnist-compare"])
        assert run["status"] == "FINISHED" and run["metrics"]["train/r1"] >= 0
        bad = CliRunner().invoke(app, ["train", "dummy-bad", "--steps", "3", "-q", *sets])
        assert bad.exit_code == 2 and "its trainer dict is no bench.trainer.Trainer" in bad.stderr
    finally:
        ARCHITECTURES.unregister("dummy-r1")
        ARCHITECTURES.unregister("dummy-bad")
