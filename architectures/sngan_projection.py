"""``sngan-projection``: SN-GAN with a projection discriminator (Miyato & Koyama 2018, "cGANs with
Projection Discriminator").

D(x, y) = psi(phi(x)) + <embed(y), phi(x)> (eq. 3) on the spectrally normalised discriminator of ``sngan``
(the embedding normalised too); G with class-conditional BatchNorm (sec. 5: "conditional batch
normalization" in G); hinge loss (sec. 5). Optimiser as in the paper's experiments (sec. 5): Adam(α = 2e-4,
β1 = 0, β2 = 0.9), n_dis = 5 discriminator steps per generator step. z_dim 128. The backbone is the shared
DCGAN one (``architectures.blocks``), not the paper's ResNet.
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import ConvDiscriminator, ConvGenerator, ProjectionDiscriminator
from architectures.registry import GAN, ArchSpec, register
from architectures.sngan import SNGANConfig


@dataclass(frozen=True)
class SNGANProjectionConfig(SNGANConfig):
    """As ``sngan``'s config, with the projection paper's optimiser (sec. 5)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.9
    n_critic: int = 5


def build(cfg: SNGANProjectionConfig, image_shape: tuple[int, int, int], num_classes: int) -> GAN:
    g = ConvGenerator(cfg.z_dim, cfg.g_width, image_shape, batch_norm=True, num_classes=num_classes)
    base = ConvDiscriminator(cfg.d_width, image_shape, norm="spectral", slope=0.1)
    return GAN(g, ProjectionDiscriminator(base, num_classes), cfg.loss, cfg.optim(), num_classes=num_classes)


SPEC = register(
    ArchSpec(
        "sngan-projection",
        SNGANProjectionConfig,
        build,
        "SN-GAN, projection D, conditional BatchNorm G (Miyato & Koyama 2018)",
        conditional=True,
    )
)
