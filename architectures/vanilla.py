"""``vanilla``: the original GAN with MLP generator and discriminator (Goodfellow et al. 2014).

Defaults: layer widths G 256-512-1024 and D 512-256 with LeakyReLU(0.2), BatchNorm in G, as in the widely
used PyTorch-GAN reference implementation (Linder-Norén, ``implementations/gan/gan.py``); dropout in D as
Goodfellow et al. 2014 (sec. 5) trained their discriminator with dropout; non-saturating BCE loss
(Goodfellow et al. 2014, sec. 3); Adam(2e-4, β=(0.5, 0.999)) from Radford et al. 2016.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from architectures.blocks import GANConfig, Probability, activation
from architectures.registry import GAN, ArchSpec, register


@dataclass(frozen=True)
class VanillaConfig(GANConfig):
    """g_widths / d_widths: hidden layer widths; batch_norm: BatchNorm1d in G's hidden layers (not the
    first); dropout: dropout probability after each hidden layer of D (0 = off); activation of both
    networks' hidden layers: ``leaky_relu`` (slope 0.2) or ``relu`` (the MLP of Goodfellow et al. 2014's
    code); d_batch_norm: BatchNorm1d in D's hidden layers (not the first); g_dropout: after each of G's
    hidden layers (Mirza & Osindero 2014 use 0.5 in both networks)."""

    g_widths: tuple[int, ...] = (256, 512, 1024)
    d_widths: tuple[int, ...] = (512, 256)
    batch_norm: bool = True
    dropout: Probability = 0.3
    activation: str = "leaky_relu"
    d_batch_norm: bool = False
    g_dropout: Probability = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        activation(self.activation)
        if not self.g_widths or not self.d_widths or min(self.g_widths + self.d_widths) < 1:
            raise ValueError("g_widths and d_widths need at least one positive width each")


class MLPGenerator(nn.Module):
    """z ``(N, z_dim + extra_inputs)`` -> images ``(N, C, H, W)`` in ``[-1, 1]`` (tanh)."""

    def __init__(self, cfg: VanillaConfig, image_shape: tuple[int, int, int], extra_inputs: int = 0):
        super().__init__()
        self.z_dim, self.image_shape = cfg.z_dim, image_shape
        layers: list[nn.Module] = []
        n_in = cfg.z_dim + extra_inputs
        for i, n in enumerate(cfg.g_widths):
            layers.append(nn.Linear(n_in, n))
            if cfg.batch_norm and i > 0:
                layers.append(nn.BatchNorm1d(n))
            layers.append(activation(cfg.activation))
            if cfg.g_dropout > 0:
                layers.append(nn.Dropout(cfg.g_dropout))
            n_in = n
        layers += [nn.Linear(n_in, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Images ``(N, C, H, W)`` (or ``(N, C*H*W + extra_inputs)``) -> logits ``(N,)``."""

    def __init__(self, cfg: VanillaConfig, image_shape: tuple[int, int, int], extra_inputs: int = 0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = math.prod(image_shape) + extra_inputs
        for i, n in enumerate(cfg.d_widths):
            layers.append(nn.Linear(n_in, n))
            if cfg.d_batch_norm and i > 0:
                layers.append(nn.BatchNorm1d(n))
            layers.append(activation(cfg.activation))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            n_in = n
        layers.append(nn.Linear(n_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


def build(cfg: VanillaConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    return GAN(MLPGenerator(cfg, image_shape), MLPDiscriminator(cfg, image_shape), cfg.loss, cfg.optim())


SPEC = register(ArchSpec("vanilla", VanillaConfig, build, "MLP G and D, non-saturating BCE (Goodfellow et al. 2014)"))
