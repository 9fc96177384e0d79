"""``dcgan``: Deep Convolutional GAN (Radford et al. 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"), adapted to 28x28.

Paper defaults (sec. 4): z ~ N(0, I) of size 100, weights ~ N(0, 0.02), BatchNorm in G and D (not on D's
input layer), ReLU in G, LeakyReLU(0.2) in D, tanh output, Adam(lr 2e-4, β1 0.5), non-saturating BCE.
Width 64 as ngf/ndf of the PyTorch DCGAN example; for 28x28 two stride-2 stages (7 -> 14 -> 28).
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import (
    ConvDiscriminator,
    ConvGenerator,
    GANConfig,
    Probability,
    Width,
    activation,
    conv_padding,
    dcgan_init,
)
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    """g_width / d_width: channels of G's last hidden layer / D's first layer (doubling per stage);
    kernel_size: of every (transposed) convolution, 4 (the PyTorch DCGAN example) or 5 (Keras's DCGAN
    tutorial); g_activation: ``relu`` (Radford et al. 2016) or ``leaky_relu`` (Keras's tutorial); d_norm:
    ``batch`` (Radford et al. 2016) or ``none``; d_dropout: after each of D's convolutions (0 = none)."""

    g_width: Width = 64
    d_width: Width = 64
    kernel_size: int = 4
    g_activation: str = "relu"
    d_norm: str = "batch"
    d_dropout: Probability = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        conv_padding(self.kernel_size)
        activation(self.g_activation)
        if self.d_norm not in ("batch", "none"):
            raise ValueError(f"d_norm = {self.d_norm!r} is not one of batch, none")


def build(cfg: DCGANConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    g = ConvGenerator(cfg.z_dim, cfg.g_width, image_shape, kernel_size=cfg.kernel_size, act=cfg.g_activation)
    d = ConvDiscriminator(cfg.d_width, image_shape, cfg.d_norm, 0.2, cfg.kernel_size, cfg.d_dropout)
    dcgan_init(g)
    dcgan_init(d)
    return GAN(g, d, cfg.loss, cfg.optim())


SPEC = register(ArchSpec("dcgan", DCGANConfig, build, "DCGAN, BatchNorm, non-saturating BCE (Radford et al. 2016)"))
