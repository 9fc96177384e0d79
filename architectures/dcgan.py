"""``dcgan``: Deep Convolutional GAN (Radford et al. 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"), adapted to 28x28.

Paper defaults (sec. 4): z ~ N(0, I) of size 100, weights ~ N(0, 0.02), BatchNorm in G and D (not on D's
input layer), ReLU in G, LeakyReLU(0.2) in D, tanh output, Adam(lr 2e-4, β1 0.5), non-saturating BCE.
Width 64 as ngf/ndf of the PyTorch DCGAN example; for 28x28 two stride-2 stages (7 -> 14 -> 28).
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import ConvDiscriminator, ConvGenerator, GANConfig, dcgan_init
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    """g_width / d_width: channels of G's last hidden layer / D's first layer (doubling per stage)."""

    g_width: int = 64
    d_width: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.g_width, self.d_width) < 1:
            raise ValueError("g_width and d_width must be >= 1")


def build(cfg: DCGANConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    g = ConvGenerator(cfg.z_dim, cfg.g_width, image_shape, batch_norm=True)
    d = ConvDiscriminator(cfg.d_width, image_shape, norm="batch", slope=0.2)
    dcgan_init(g)
    dcgan_init(d)
    return GAN(g, d, cfg.loss, cfg.optim())


SPEC = register(ArchSpec("dcgan", DCGANConfig, build, "DCGAN, BatchNorm, non-saturating BCE (Radford et al. 2016)"))
