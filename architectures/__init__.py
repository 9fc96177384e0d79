"""The plugin registry of GAN variants; importing this package registers the built-in ones."""

from architectures import dcgan, sngan, vanilla, wgan_gp  # noqa: F401  (registration side effects)
from architectures.losses import LOSSES, gradient_penalty
from architectures.registry import (
    ARCHITECTURES,
    GAN,
    ArchSpec,
    OptimSpec,
    PluginWarning,
    Registry,
    build_gan,
    register,
)

__all__ = [
    "ARCHITECTURES",
    "GAN",
    "LOSSES",
    "ArchSpec",
    "OptimSpec",
    "PluginWarning",
    "Registry",
    "build_gan",
    "gradient_penalty",
    "register",
]
