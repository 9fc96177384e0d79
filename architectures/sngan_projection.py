"""``sngan-projection``: SN-GAN with a projection discriminator (Miyato & Koyama 2018, "cGANs with
Projection Discriminator").

D(x, y) = psi(phi(x)) + <embed(y), phi(x)> (eq. 3) on the spectrally normalised discriminator of ``sngan``
(the embedding normalised too); G with class-conditional BatchNorm (sec. 5: "conditional batch
normalization" in G); hinge loss (sec. 5). z_dim 128. The backbone is the shared DCGAN one
(``architectures.blocks``), not the paper's ResNet, and so is the optimiser: ``sngan``'s, Adam(2e-4,
β=(0.5, 0.999)) with n_dis = 1 (Miyato et al. 2018, Table 1 setting C, for their standard CNN), so that
``sngan-projection`` vs ``sngan`` differs only by the conditioning. The projection paper's own setting,
Adam(2e-4, β=(0, 0.9)) with n_dis = 5 (sec. 5), is for its ResNets over 450 000 discriminator updates;
on this backbone under an epoch budget it leaves G a fifth of the steps (measured on MNIST, 2 epochs: FID
1 643, against 847 with this optimiser; see docs/measurements.md). Set it with ``--set model.sngan-projection.beta1=0``
etc.
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import ConvDiscriminator, ConvGenerator, ProjectionDiscriminator
from architectures.registry import GAN, ArchSpec, register
from architectures.sngan import SNGANConfig


@dataclass(frozen=True)
class SNGANProjectionConfig(SNGANConfig):
    """As ``sngan``'s config (and optimiser)."""


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
