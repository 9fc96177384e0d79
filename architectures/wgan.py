"""``wgan``: Wasserstein GAN with weight clipping (Arjovsky et al. 2017, "Wasserstein GAN").

Paper defaults (Algorithm 1): RMSProp with α = 5e-5 for both networks, n_critic = 5, every critic weight
clipped to [-c, c] with c = 0.01 after each critic step (the harness does it: ``OptimSpec.clip_value``),
the Wasserstein loss on raw critic scores. The critic has no BatchNorm, as in ``wgan-gp``, so the two
Wasserstein variants differ only by how they keep the critic Lipschitz (clipping vs gradient penalty).
The backbone is the shared DCGAN one (see ``architectures.blocks``), initialised N(0, 0.02) as the authors'
code; z_dim 100 as the paper's DCGAN. ``beta1`` / ``beta2`` are not used by RMSprop.
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.blocks import ConvDiscriminator, ConvGenerator, GANConfig, dcgan_init
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class WGANConfig(GANConfig):
    """g_width / d_width as in ``dcgan``; clip_value c = 0.01 and RMSprop(5e-5) (Arjovsky et al. 2017)."""

    loss: str = "wasserstein"
    optimizer: str = "rmsprop"
    lr_g: float = 5e-5
    lr_d: float = 5e-5
    n_critic: int = 5
    clip_value: float = 0.01
    g_width: int = 64
    d_width: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.g_width, self.d_width) < 1:
            raise ValueError("g_width and d_width must be >= 1")


def build(cfg: WGANConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    g = ConvGenerator(cfg.z_dim, cfg.g_width, image_shape, batch_norm=True)
    d = ConvDiscriminator(cfg.d_width, image_shape, norm="none", slope=0.2)
    dcgan_init(g)  # as the authors' code (weights_init: N(0, 0.02)) for both networks
    dcgan_init(d)
    return GAN(g, d, cfg.loss, cfg.optim())


SPEC = register(ArchSpec("wgan", WGANConfig, build, "Wasserstein critic, weight clipping (Arjovsky et al. 2017)"))
