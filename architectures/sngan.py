"""``sngan``: Spectrally normalised GAN (Miyato et al. 2018, "Spectral Normalization for Generative
Adversarial Networks").

Spectral normalisation on every discriminator layer (convolutions and the final linear) through
``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per forward, as in the paper), no
BatchNorm in D, LeakyReLU(0.1) as in the paper's standard CNN (Table 3), hinge loss (eq. 17), z_dim 128.
Optimiser: Table 1 setting C, Adam(α = 2e-4, β1 = 0.5, β2 = 0.999) with n_dis = 1, a setting where SN-GAN
stays robust (fig. 1). The backbone is the shared DCGAN one (see ``architectures.blocks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import ConvDiscriminator, ConvGenerator, GANConfig
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class SNGANConfig(GANConfig):
    """g_width / d_width as in ``dcgan``; D is spectrally normalised."""

    z_dim: int = 128
    loss: str = "hinge"
    g_width: int = 64
    d_width: int = 64


def build(cfg: SNGANConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    g = ConvGenerator(cfg.z_dim, cfg.g_width, image_shape, batch_norm=True)
    d = ConvDiscriminator(cfg.d_width, image_shape, norm="spectral", slope=0.1)
    return GAN(g, d, cfg.loss, cfg.optim())


SPEC = register(ArchSpec("sngan", SNGANConfig, build, "spectral norm in D, hinge loss (Miyato et al. 2018)"))
