"""``cgan``: Conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets").

The label y enters both networks as a one-hot vector concatenated to their input: to z in G, to the
flattened image in D (sec. 3.2, fig. 1). Dropout 0.5 in D, as the paper's MNIST model (sec. 4.1; the paper
applies it to G too, where ganbench keeps ``vanilla``'s BatchNorm). The MLP widths, LeakyReLU(0.2),
BatchNorm in G, Gaussian z, the non-saturating BCE loss and Adam(2e-4, β=(0.5, 0.999)) are those of
``vanilla``, so that ``cgan`` vs ``vanilla`` differs only by the conditioning and D's dropout (0.5 against
0.3); the paper's uniform z, maxout discriminator, separate hidden layers for y and SGD schedule (tuned
for them) are not reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import OneHotInput
from architectures.registry import GAN, ArchSpec, register
from architectures.vanilla import MLPDiscriminator, MLPGenerator, VanillaConfig


@dataclass(frozen=True)
class CGANConfig(VanillaConfig):
    """As :class:`VanillaConfig`; dropout 0.5 (Mirza & Osindero 2014, sec. 4.1)."""

    dropout: float = 0.5


def build(cfg: CGANConfig, image_shape: tuple[int, int, int], num_classes: int) -> GAN:
    g = OneHotInput(MLPGenerator(cfg, image_shape, extra_inputs=num_classes), num_classes, z_dim=cfg.z_dim)
    d = OneHotInput(MLPDiscriminator(cfg, image_shape, extra_inputs=num_classes), num_classes, flatten=True)
    return GAN(g, d, cfg.loss, cfg.optim(), num_classes=num_classes)


SPEC = register(
    ArchSpec(
        "cgan",
        CGANConfig,
        build,
        "conditional MLP GAN, one-hot y into G and D (Mirza & Osindero 2014)",
        conditional=True,
    )
)
