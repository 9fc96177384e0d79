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


@pytest.mark.parametrize(("arch", "sets"), CASES, ids=[f"{a}{'+' if s else ''}" for a, s in CASES])
def test_every_built_in_trains_bit_identically_to_the_loop_it_replaced(arch, sets):
    ours, _ = _run(arch, sets, lambda gan, b, cfg: fit(gan, b, cfg, CPU))
    ref, _ = _run(arch, sets, lambda gan, b, cfg: reference_fit(gan, b, cfg, 3))
    for net in ("generator", "discriminator"):
        a, b = getattr(ours, net).state_dict(), getattr(ref, net).state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{arch} {net}.{k} differs from the reference loop"


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
