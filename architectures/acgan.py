"""``acgan``: Auxiliary Classifier GAN (Odena et al. 2017, "Conditional Image Synthesis with Auxiliary
Classifier GANs").

G(z, c) takes the class as a one-hot vector beside z (sec. 3; appendix: a 110-dimensional input, 100 of
noise and 10 of class, for CIFAR-10). D is not given the label: it has two heads on one trunk, the
real/fake score and the class (sec. 3). The objective (eq. 1-2): D maximises L_S + L_C, G maximises
L_C - L_S, with L_C the log-likelihood of the correct class on real *and* generated images; so the harness
adds ``aux_weight`` (1) x the class cross-entropy on real and fake images to D's loss and on fake images to
G's. Adam(2e-4, β1 0.5) as in the paper's appendix; non-saturating BCE for L_S. The backbone is the shared
DCGAN one (``architectures.blocks``; the paper's dropout in D is not used, as in ``dcgan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from annotated_types import Gt

from architectures.blocks import (
    AuxClassifierDiscriminator,
    ConvDiscriminator,
    ConvGenerator,
    GANConfig,
    OneHotInput,
    Width,
    dcgan_init,
)
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class ACGANConfig(GANConfig):
    """g_width / d_width as in ``dcgan``; aux_weight: weight of the class loss (Odena et al. 2017: 1)."""

    g_width: Width = 64
    d_width: Width = 64
    aux_weight: Annotated[float, Gt(0)] = 1.0


def build(cfg: ACGANConfig, image_shape: tuple[int, int, int], num_classes: int) -> GAN:
    g = OneHotInput(ConvGenerator(cfg.z_dim + num_classes, cfg.g_width, image_shape), num_classes, z_dim=cfg.z_dim)
    d = AuxClassifierDiscriminator(ConvDiscriminator(cfg.d_width, image_shape, norm="batch", slope=0.2), num_classes)
    dcgan_init(g)
    dcgan_init(d)
    return GAN(g, d, cfg.loss, cfg.optim(), num_classes=num_classes, aux_weight=cfg.aux_weight)


SPEC = register(
    ArchSpec(
        "acgan",
        ACGANConfig,
        build,
        "DCGAN + auxiliary classifier head in D (Odena et al. 2017)",
        conditional=True,
    )
)
