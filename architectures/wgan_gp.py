"""``wgan-gp``: Wasserstein GAN with gradient penalty (Gulrajani et al. 2017, "Improved Training of
Wasserstein GANs").

Paper defaults (Algorithm 1): λ = 10, n_critic = 5, Adam(α = 1e-4, β1 = 0, β2 = 0.9); the critic has no
BatchNorm (sec. 4: batch normalisation breaks the per-sample penalty). z_dim 128 as in the authors'
``gan_mnist.py``. The backbone is the shared DCGAN one (see ``architectures.blocks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import ConvDiscriminator, ConvGenerator, GANConfig
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class WGANGPConfig(GANConfig):
    """g_width / d_width as in ``dcgan``; the critic is built without normalisation."""

    z_dim: int = 128
    loss: str = "wasserstein"
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    n_critic: int = 5
    gp_weight: float = 10.0
    g_width: int = 64
    d_width: int = 64


def build(cfg: WGANGPConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    g = ConvGenerator(cfg.z_dim, cfg.g_width, image_shape, batch_norm=True)
    d = ConvDiscriminator(cfg.d_width, image_shape, norm="none", slope=0.2)
    return GAN(g, d, cfg.loss, cfg.optim())


SPEC = register(
    ArchSpec("wgan-gp", WGANGPConfig, build, "Wasserstein critic + gradient penalty (Gulrajani et al. 2017)")
)
