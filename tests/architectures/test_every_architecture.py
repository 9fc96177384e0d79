"""Runs every registered architecture (built-ins, the test dummy, any installed plugin) through the same
checks: shapes and ranges, one harness step, determinism under a seed."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from architectures import ARCHITECTURES, build_gan
from architectures.blocks import conv_stages
from bench.config import load_compare_config
from bench.data import ShuffledBatches
from bench.harness import seed_everything
from bench.trainer import fit

SHAPE = (1, 28, 28)


def _classes(arch):
    """A conditional architecture gets MNIST's 10 classes; the others none."""
    return 10 if ARCHITECTURES.get(arch).conditional else 0


def _random_images(n=64):
    return torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(123))


def _run_one_step(arch, seed, tmp_path, sets=()):
    cfg = load_compare_config(
        None, [f'archs=["{arch}"]', "train.steps=1", "train.batch_size=8", f'workdir="{tmp_path}"', *sets]
    ).run(arch, seed)
    seed_everything(seed)
    gan = build_gan(arch, cfg.model, SHAPE, _classes(arch))
    losses = {}

    class Capture:
        def on_fit_start(self, t): ...
        def on_step_end(self, t, out):
            losses.update(d=out.d_loss.item(), g=out.g_loss.item())

        def on_fit_end(self, t): ...

    labels = torch.arange(64) % 10
    fit(gan, ShuffledBatches(_random_images(), 8, seed, None, labels), cfg, torch.device("cpu"), [Capture()])
    return gan, losses


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
def test_shapes_and_ranges(arch):
    spec = ARCHITECTURES.get(arch)
    gan = build_gan(arch, spec.config_cls(), SHAPE, _classes(arch))
    z = torch.randn(5, gan.generator.z_dim)
    y = torch.tensor([0, 3, 9, 9, 1]) if gan.conditional else None
    x = gan.generate(z, y)
    assert x.shape == (5, *SHAPE)
    assert x.min() >= -1 and x.max() <= 1
    scores, class_logits = gan.discriminate(x, y)
    assert scores.shape == (5,)
    assert scores.dtype == torch.float32
    assert class_logits is None if gan.aux_weight == 0 else class_logits.shape == (5, 10)


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
def test_one_step_is_deterministic_under_a_seed(arch, tmp_path):
    g1, l1 = _run_one_step(arch, 0, tmp_path)
    g2, l2 = _run_one_step(arch, 0, tmp_path)
    g3, l3 = _run_one_step(arch, 1, tmp_path)
    assert all(map(torch.isfinite, map(torch.tensor, l1.values())))
    assert l1 == l2
    for a, b in zip(g1.generator.state_dict().values(), g2.generator.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(g1.discriminator.state_dict().values(), g2.discriminator.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert l1 != l3
    first = next(iter(g1.generator.parameters()))
    assert not torch.equal(first, next(iter(g3.generator.parameters())))


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
def test_harness_step_changes_both_networks(arch, tmp_path):
    seed_everything(0)
    before = build_gan(arch, ARCHITECTURES.get(arch).config_cls(), SHAPE, _classes(arch))
    after, _ = _run_one_step(arch, 0, tmp_path)
    for net in ("generator", "discriminator"):
        p0 = torch.cat([p.flatten() for p in getattr(before, net).parameters()])
        p1 = torch.cat([p.flatten() for p in getattr(after, net).parameters()])
        assert not torch.equal(p0, p1), f"{net} was not updated"


@pytest.mark.parametrize("size, expected", [(28, (2, 7)), (32, (3, 4)), (64, (4, 4)), (56, (3, 7))])
def test_conv_stages(size, expected):
    assert conv_stages((3, size, size)) == expected


@pytest.mark.parametrize("shape", [(1, 30, 30), (1, 28, 32), (1, 5, 5)])
def test_conv_stages_rejects(shape):
    with pytest.raises(ValueError):
        conv_stages(shape)


@pytest.mark.parametrize("arch", ["dcgan", "wgan-gp", "sngan", "acgan", "sngan-projection"])
def test_conv_architectures_on_32x32_rgb(arch):
    gan = build_gan(arch, ARCHITECTURES.get(arch).config_cls(g_width=8, d_width=8), (3, 32, 32), _classes(arch))
    y = torch.tensor([1, 2]) if gan.conditional else None
    x = gan.generate(torch.randn(2, gan.generator.z_dim), y)
    assert x.shape == (2, 3, 32, 32)
    assert gan.discriminate(x, y)[0].shape == (2,)


def test_paper_defaults():
    """The defaults the docstrings cite (Gulrajani et al. 2017 Alg. 1; Miyato et al. 2018; Radford et al. 2016)."""
    w = ARCHITECTURES.get("wgan-gp").config_cls()
    assert (w.gp_weight, w.n_critic, w.lr_g, w.lr_d, w.beta1, w.beta2, w.loss) == (
        10.0,
        5,
        1e-4,
        1e-4,
        0.0,
        0.9,
        "wasserstein",
    )
    s = ARCHITECTURES.get("sngan").config_cls()
    assert s.loss == "hinge"
    d = ARCHITECTURES.get("dcgan").config_cls()
    assert (d.lr_g, d.beta1, d.z_dim, d.loss) == (2e-4, 0.5, 100, "bce")
    w = ARCHITECTURES.get("wgan").config_cls()  # Arjovsky et al. 2017, Algorithm 1
    assert (w.optimizer, w.lr_g, w.lr_d, w.n_critic, w.clip_value, w.loss) == (
        "rmsprop",
        5e-5,
        5e-5,
        5,
        0.01,
        "wasserstein",
    )
    # Mirza & Osindero 2014 sec. 4.1; Odena et al. 2017 appendix; Miyato & Koyama 2018 sec. 5
    assert ARCHITECTURES.get("cgan").config_cls().dropout == 0.5
    a = ARCHITECTURES.get("acgan").config_cls()
    assert (a.lr_g, a.beta1, a.aux_weight, a.loss) == (2e-4, 0.5, 1.0, "bce")
    p, sn = ARCHITECTURES.get("sngan-projection").config_cls(), ARCHITECTURES.get("sngan").config_cls()
    assert p.loss == "hinge" and dataclasses.asdict(p) == dataclasses.asdict(sn)  # differs only by conditioning


def test_sngan_projection_normalises_d_and_conditions_g_batchnorm():
    from torch import nn
    from torch.nn.utils import parametrize

    from architectures.blocks import ConditionalBatchNorm2d

    gan = build_gan("sngan-projection", ARCHITECTURES.get("sngan-projection").config_cls(), SHAPE, 10)
    layers = [m for m in gan.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert any(isinstance(m, nn.Embedding) for m in layers)  # the projection's class embedding
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    norms = [m for m in gan.generator.modules() if isinstance(m, (nn.BatchNorm2d, ConditionalBatchNorm2d))]
    assert norms and all(isinstance(m, ConditionalBatchNorm2d) or not m.affine for m in norms)


def test_sngan_normalises_every_discriminator_layer():
    from torch import nn
    from torch.nn.utils import parametrize

    gan = build_gan("sngan", ARCHITECTURES.get("sngan").config_cls(), SHAPE)
    layers = [m for m in gan.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gan.discriminator.modules())


def test_wgan_gp_critic_has_no_batchnorm():
    from torch import nn

    gan = build_gan("wgan-gp", ARCHITECTURES.get("wgan-gp").config_cls(), SHAPE)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in gan.discriminator.modules())


def _modules(net, kind):
    return [m for m in net.modules() if isinstance(m, kind)]


# (architecture, model overrides, what the networks must then contain): every knob the reproductions use
KNOBS = [
    ("vanilla", {"activation": '"relu"'},
     lambda g: _modules(g.generator, nn.ReLU) and not _modules(g.generator, nn.LeakyReLU)),
    ("vanilla", {"d_batch_norm": "true"}, lambda g: _modules(g.discriminator, nn.BatchNorm1d)),
    ("vanilla", {"g_dropout": "0.3", "batch_norm": "false"},
     lambda g: _modules(g.generator, nn.Dropout) and not _modules(g.generator, nn.BatchNorm1d)),
    ("vanilla", {"g_widths": "[256, 512]", "dropout": "0.0"},
     lambda g: len(_modules(g.generator, nn.Linear)) == 3 and not _modules(g.discriminator, nn.Dropout)),
    ("dcgan", {"kernel_size": "5"},
     lambda g: all(m.kernel_size == (5, 5)
                   for m in _modules(g.generator, nn.ConvTranspose2d) + _modules(g.discriminator, nn.Conv2d))),
    ("dcgan", {"g_activation": '"leaky_relu"'},
     lambda g: _modules(g.generator, nn.LeakyReLU) and not _modules(g.generator, nn.ReLU)),
    ("dcgan", {"d_norm": '"none"', "d_dropout": "0.3"},
     lambda g: _modules(g.discriminator, nn.Dropout) and not _modules(g.discriminator, nn.BatchNorm2d)),
    ("dcgan", {"optimizer": '"rmsprop"', "clip_value": "0.01"}, lambda g: g.optim.clip_value == 0.01),
    ("dcgan", {"lr_schedule": '"cosine"', "lr_warmup_steps": "2"}, lambda g: g.optim.lr_schedule == "cosine"),
]  # fmt: skip


@pytest.mark.parametrize(("arch", "overrides", "has"), KNOBS, ids=[f"{a}-{'-'.join(o)}" for a, o, _ in KNOBS])
def test_every_knob_builds_trains_and_changes_the_network(arch, overrides, has, tmp_path):
    sets = [f"model.{arch}.{k}={v}" for k, v in overrides.items()]
    gan, losses = _run_one_step(arch, 0, tmp_path, sets)
    assert has(gan)
    assert all(math.isfinite(v) for v in losses.values())
    x = gan.generate(torch.randn(3, gan.generator.z_dim))
    assert x.shape == (3, *SHAPE) and gan.discriminate(x)[0].shape == (3,)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"activation": "tanh"}, "activation 'tanh' is not one of relu, leaky_relu"),
    ({"g_dropout": 1.0}, "g_dropout = 1.0 is out of range"),
])  # fmt: skip
def test_bad_mlp_knobs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ARCHITECTURES.get("vanilla").config_cls(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kernel_size": 3}, "kernel_size = 3 is not 4 or 5"),
    ({"d_norm": "spectral"}, "d_norm = 'spectral' is not one of batch, none"),
    ({"optimizer": "sgd"}, "optimizer = 'sgd' is not one of adam, rmsprop"),
    ({"lr_schedule": "step"}, "lr_schedule = 'step' is not one of constant, linear-decay, cosine"),
])  # fmt: skip
def test_bad_conv_and_optimiser_knobs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ARCHITECTURES.get("dcgan").config_cls(**kwargs)
