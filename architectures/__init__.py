"""The plugin registry of GAN variants.

The built-in variants register themselves on the registry's first lookup (and the entry-point plugins right
after them), and ``LOSSES`` / ``gradient_penalty`` load on first use: importing this package (as every
``bench`` module does through ``bench.errors``) costs no torch import, so the CLI starts fast.
"""

from typing import Any

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


def _register_builtins() -> None:
    from architectures import (  # noqa: F401  (registration side effects)
        acgan,
        cgan,
        dcgan,
        sngan,
        sngan_projection,
        vanilla,
        wgan,
        wgan_gp,
    )


ARCHITECTURES.add_loader(_register_builtins, first=True)  # before the plugins: a clash is the plugin's


def __getattr__(name: str) -> Any:  # PEP 562: the losses (and torch) only when asked for
    if name in ("LOSSES", "gradient_penalty"):
        from architectures import losses

        return getattr(losses, name)
    raise AttributeError(f"module 'architectures' has no attribute {name!r}")
