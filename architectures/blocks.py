"""Building blocks shared by the convolutional variants.

The convolutional variants (``dcgan``, ``wgan-gp``, ``sngan``) share one DCGAN-style backbone and differ in
normalisation, loss and optimiser, as in the large-scale comparisons of Lucic et al. 2018 ("Are GANs Created
Equal?") and Kurach et al. 2019, which hold the architecture fixed so that differences come from the method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from architectures.registry import OptimSpec


@dataclass(frozen=True)
class GANConfig:
    """Hyperparameters every architecture has; subclasses override the defaults from their paper.

    z_dim: latent size; loss: a name from ``architectures.losses.LOSSES``; lr_g / lr_d: Adam learning rates;
    beta1 / beta2: Adam betas; n_critic: discriminator steps per generator step; gp_weight: λ of the gradient
    penalty (0 = off).
    """

    z_dim: int = 100
    loss: str = "bce"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1
    gp_weight: float = 0.0

    def __post_init__(self) -> None:
        from architectures.losses import LOSSES

        LOSSES.get(self.loss)  # raises UnknownNameError listing the losses
        checks = {
            "z_dim": self.z_dim >= 1,
            "lr_g": self.lr_g > 0,
            "lr_d": self.lr_d > 0,
            "beta1": 0 <= self.beta1 < 1,
            "beta2": 0 <= self.beta2 < 1,
            "n_critic": self.n_critic >= 1,
            "gp_weight": self.gp_weight >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} = {getattr(self, name)!r} is out of range")

    def optim(self) -> OptimSpec:
        return OptimSpec(self.lr_g, self.lr_d, (self.beta1, self.beta2), self.n_critic, self.gp_weight)


def conv_stages(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """Return ``(k, base)`` with ``H = base * 2**k`` and ``4 <= base <= 7``: k stride-2 stages.

    28 -> (2, 7); 32 -> (3, 4); 64 -> (4, 4).

    Raises:
        ValueError: non-square images, or a size that does not halve at least once down to 4..7.
    """
    _, h, w = image_shape
    if h != w:
        raise ValueError(f"the convolutional backbone needs square images, got {h}x{w}")
    k, base = 0, h
    while base % 2 == 0 and base // 2 >= 4:
        base, k = base // 2, k + 1
    if k == 0 or base > 7:
        raise ValueError(f"image size {h} must be base * 2**k with base in 4..7 and k >= 1 (e.g. 28, 32, 64)")
    return k, base


class ConvGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016, fig. 1), channel widths as in the PyTorch DCGAN example.

    Project z to ``(width * 2**(k-1), base, base)``, then k stride-2 transposed convolutions (4x4) halving
    the channels, BatchNorm + ReLU between, tanh at the end.

    Input z ``(N, z_dim)``; output ``(N, C, H, W)`` in ``[-1, 1]``. For 28x28: 7x7x128 -> 14x14x64 -> 28x28xC.
    """

    def __init__(self, z_dim: int, width: int, image_shape: tuple[int, int, int], batch_norm: bool = True):
        super().__init__()
        self.z_dim = z_dim
        c, _, _ = image_shape
        k, base = conv_stages(image_shape)
        ch = width * 2 ** (k - 1)

        def norm(n: int) -> nn.Module:
            return nn.BatchNorm2d(n) if batch_norm else nn.Identity()

        layers: list[nn.Module] = [
            nn.Linear(z_dim, ch * base * base, bias=not batch_norm),
            nn.Unflatten(1, (ch, base, base)),
            norm(ch),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batch_norm), norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016): k stride-2 4x4 convolutions doubling the channels from
    ``width``, LeakyReLU, then a linear layer to one logit / critic score.

    norm: ``"batch"`` (DCGAN; none on the first layer), ``"none"`` (WGAN-GP critic), or ``"spectral"``
    (SN-GAN: spectral normalisation on every layer, Miyato et al. 2018, via
    ``torch.nn.utils.parametrizations.spectral_norm``).

    Input ``(N, C, H, W)``; output ``(N,)``, no sigmoid.
    """

    def __init__(self, width: int, image_shape: tuple[int, int, int], norm: str = "batch", slope: float = 0.2):
        super().__init__()
        if norm not in ("batch", "none", "spectral"):
            raise ValueError(f"norm {norm!r} is not one of 'batch', 'none', 'spectral'")
        c, _, _ = image_shape
        k, base = conv_stages(image_shape)
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        layers: list[nn.Module] = []
        ch_in, ch = c, width
        for i in range(k):
            layers.append(sn(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=not (norm == "batch" and i > 0))))
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(slope, True))
            ch_in, ch = ch, ch * 2
        layers += [nn.Flatten(), sn(nn.Linear(ch_in * base * base, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases 0 (Radford et al. 2016, sec. 4)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
