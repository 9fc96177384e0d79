"""Building blocks shared by the convolutional variants.

The convolutional variants (``dcgan``, ``wgan``, ``wgan-gp``, ``sngan``, and the conditional ``acgan`` and
``sngan-projection``) share one DCGAN-style backbone and differ in normalisation, loss and optimiser, as in
the large-scale comparisons of Lucic et al. 2018 ("Are GANs Created Equal?") and Kurach et al. 2019, which
hold the architecture fixed so that differences come from the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Ge, Gt, Interval
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from architectures.registry import LR_SCHEDULES, OPTIMIZERS, OptimSpec, check_declared

Probability = Annotated[float, Interval(ge=0, lt=1)]  # [0, 1): Adam's betas, dropout
Width = Annotated[int, Ge(1)]  # channels or units


@dataclass(frozen=True)
class GANConfig:
    """Hyperparameters every architecture has; subclasses override the defaults from their paper.

    z_dim: latent size; loss: a name from ``architectures.losses.LOSSES``; lr_g / lr_d: learning rates;
    beta1 / beta2: Adam betas; n_critic: discriminator steps per generator step; gp_weight: λ of the gradient
    penalty (0 = off); optimizer: ``adam`` or ``rmsprop``; clip_value: WGAN's weight clipping of D (0 = off);
    lr_schedule: ``constant``, ``linear-decay`` or ``cosine`` over the run's generator steps, after
    lr_warmup_steps of linear warm-up (see :class:`architectures.registry.OptimSpec`).

    Ranges are declared on the fields (annotated-types' ``Ge``, ``Gt``, ``Interval``, which pydantic reads
    when a config is validated from a file); a subclass declares its own fields' ranges the same way and
    :func:`architectures.registry.check_declared` checks all of them when a config is built directly.
    """

    z_dim: Annotated[int, Ge(1)] = 100
    loss: str = "bce"
    lr_g: Annotated[float, Gt(0)] = 2e-4
    lr_d: Annotated[float, Gt(0)] = 2e-4
    beta1: Probability = 0.5
    beta2: Probability = 0.999
    n_critic: Annotated[int, Ge(1)] = 1
    gp_weight: Annotated[float, Ge(0)] = 0.0
    optimizer: str = "adam"
    clip_value: Annotated[float, Ge(0)] = 0.0
    lr_schedule: str = "constant"
    lr_warmup_steps: Annotated[int, Ge(0)] = 0

    def __post_init__(self) -> None:
        from architectures.losses import LOSSES

        LOSSES.get(self.loss)  # raises UnknownNameError listing the losses
        for name, allowed in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} = {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        check_declared(self)  # every declared range, this class's and a subclass's

    def optim(self) -> OptimSpec:
        return OptimSpec(
            lr_g=self.lr_g,
            lr_d=self.lr_d,
            betas=(self.beta1, self.beta2),
            n_critic=self.n_critic,
            gp_weight=self.gp_weight,
            optimizer=self.optimizer,
            clip_value=self.clip_value,
            lr_schedule=self.lr_schedule,
            lr_warmup_steps=self.lr_warmup_steps,
        )


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


ACTIVATIONS = ("relu", "leaky_relu")


def activation(name: str, slope: float = 0.2) -> nn.Module:
    """``"relu"`` or ``"leaky_relu"`` (negative slope ``slope``) as an in-place module.

    Raises ValueError for another name."""
    if name == "relu":
        return nn.ReLU(True)
    if name == "leaky_relu":
        return nn.LeakyReLU(slope, True)
    raise ValueError(f"activation {name!r} is not one of {', '.join(ACTIVATIONS)}")


def conv_padding(kernel_size: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make a stride-2 convolution with a 4x4 or 5x5 kernel halve the size
    exactly (and the transposed one double it). Raises ValueError for another kernel size."""
    if kernel_size not in (4, 5):
        raise ValueError(f"kernel_size = {kernel_size!r} is not 4 or 5")
    return (1, 0) if kernel_size == 4 else (2, 1)


class ConditionalBatchNorm2d(nn.Module):
    """Class-conditional BatchNorm (de Vries et al. 2017; used in G by Miyato & Koyama 2018): BatchNorm without
    its own affine transform, then a per-class scale and shift ``gamma[y] * x + beta[y]`` (gamma from 1,
    beta from 0). Input ``(N, C, H, W)`` and labels ``(N,)``; output ``(N, C, H, W)``."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.gamma(y)[:, :, None, None] * self.bn(x) + self.beta(y)[:, :, None, None]


class ConvGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016, fig. 1), channel widths as in the PyTorch DCGAN example.

    Project z to ``(width * 2**(k-1), base, base)``, then k stride-2 transposed convolutions (``kernel_size``
    4, or 5 as in Keras's DCGAN tutorial) halving the channels, BatchNorm + ``act`` (ReLU; or LeakyReLU(0.2))
    between, tanh at the end. With ``num_classes = K > 0`` every BatchNorm is a
    :class:`ConditionalBatchNorm2d` and the forward takes labels: ``G(z, y)``.

    Input z ``(N, z_dim)`` (and y ``(N,)`` int64 in ``[0, K)``); output ``(N, C, H, W)`` in ``[-1, 1]``. For
    28x28: 7x7x128 -> 14x14x64 -> 28x28xC.
    """

    def __init__(
        self,
        z_dim: int,
        width: int,
        image_shape: tuple[int, int, int],
        batch_norm: bool = True,
        num_classes: int = 0,
        kernel_size: int = 4,
        act: str = "relu",
    ):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        pad, out_pad = conv_padding(kernel_size)
        c, _, _ = image_shape
        k, base = conv_stages(image_shape)
        ch = width * 2 ** (k - 1)

        def norm(n: int) -> nn.Module:
            if not batch_norm:
                return nn.Identity()
            return ConditionalBatchNorm2d(n, num_classes) if num_classes else nn.BatchNorm2d(n)

        layers: list[nn.Module] = [
            nn.Linear(z_dim, ch * base * base, bias=not batch_norm),
            nn.Unflatten(1, (ch, base, base)),
            norm(ch),
            activation(act),
        ]
        for _ in range(k - 1):
            up = nn.ConvTranspose2d(ch, ch // 2, kernel_size, 2, pad, out_pad, bias=not batch_norm)
            layers += [up, norm(ch // 2), activation(act)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, c, kernel_size, 2, pad, out_pad), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if not self.num_classes:
            return self.net(z)
        x = z
        for m in self.net:
            x = m(x, y) if isinstance(m, ConditionalBatchNorm2d) else m(x)
        return x


class OneHotInput(nn.Module):
    """A conditional network from an unconditional one: ``net(cat(v, one_hot(y, K)))`` (Mirza & Osindero
    2014, sec. 3.2: y fed to both networks as an additional input layer).

    ``net`` must take ``(N, d + K)`` inputs; for a generator, ``z_dim = d`` is the size of z alone. Input
    ``v (N, d)`` or, with ``flatten``, images ``(N, C, H, W)`` flattened to ``(N, C*H*W)``; labels ``(N,)``.
    """

    def __init__(self, net: nn.Module, num_classes: int, z_dim: int | None = None, flatten: bool = False):
        super().__init__()
        self.net, self.num_classes, self.flatten = net, num_classes, flatten
        if z_dim is not None:
            self.z_dim = z_dim

    def forward(self, v: Tensor, y: Tensor) -> Tensor:
        v = v.flatten(1) if self.flatten else v
        return self.net(torch.cat([v, F.one_hot(y, self.num_classes).to(v.dtype)], dim=1))


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016): k stride-2 convolutions (``kernel_size`` 4, or 5 as in
    Keras's DCGAN tutorial) doubling the channels from ``width``, LeakyReLU (``slope``), dropout
    ``dropout`` after each (0 = none; Keras's tutorial: 0.3), then a linear layer to one logit / critic score.

    norm: ``"batch"`` (DCGAN; none on the first layer), ``"none"`` (WGAN-GP critic), or ``"spectral"``
    (SN-GAN: spectral normalisation on every layer, Miyato et al. 2018, via
    ``torch.nn.utils.parametrizations.spectral_norm``).

    Input ``(N, C, H, W)``; output ``(N,)``, no sigmoid.
    """

    def __init__(
        self,
        width: int,
        image_shape: tuple[int, int, int],
        norm: str = "batch",
        slope: float = 0.2,
        kernel_size: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        if norm not in ("batch", "none", "spectral"):
            raise ValueError(f"norm {norm!r} is not one of 'batch', 'none', 'spectral'")
        pad, _ = conv_padding(kernel_size)
        c, _, _ = image_shape
        k, base = conv_stages(image_shape)
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        layers: list[nn.Module] = []
        ch_in, ch = c, width
        for i in range(k):
            layers.append(sn(nn.Conv2d(ch_in, ch, kernel_size, 2, pad, bias=not (norm == "batch" and i > 0))))
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(slope, True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            ch_in, ch = ch, ch * 2
        layers += [nn.Flatten(), sn(nn.Linear(ch_in * base * base, 1))]
        self.net = nn.Sequential(*layers)

    @property
    def head(self) -> nn.Linear:
        """The last layer (features -> one score); its input is :meth:`features`."""
        return self.net[-1]

    def features(self, x: Tensor) -> Tensor:
        """phi(x): the flattened output of the last convolution stage, ``(N, head.in_features)``."""
        return self.net[:-1](x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class ProjectionDiscriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018, eq. 3): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``.

    ``phi`` / ``psi``: the features and head of a :class:`ConvDiscriminator`; ``embed``: a class embedding
    of phi's size, spectrally normalised like the rest of D when ``spectral`` (the authors' ``SNEmbedID``).
    Input ``(N, C, H, W)`` and labels ``(N,)``; output ``(N,)``.
    """

    def __init__(self, base: ConvDiscriminator, num_classes: int, spectral: bool = True):
        super().__init__()
        self.base = base
        embed = nn.Embedding(num_classes, base.head.in_features)
        nn.init.xavier_uniform_(embed.weight)
        self.embed = spectral_norm(embed) if spectral else embed

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.base.features(x)
        return self.base.head(h).squeeze(1) + (self.embed(y) * h).sum(1)


class AuxClassifierDiscriminator(nn.Module):
    """AC-GAN discriminator (Odena et al. 2017, sec. 3): one trunk, two heads, real/fake score and class logits.

    The image's label is not an input (``y`` is accepted and ignored, for the conditional call signature).
    Input ``(N, C, H, W)``; output ``(scores (N,), class_logits (N, K))``.
    """

    def __init__(self, base: ConvDiscriminator, num_classes: int):
        super().__init__()
        self.base = base
        self.classifier = nn.Linear(base.head.in_features, num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.base.features(x)
        return self.base.head(h).squeeze(1), self.classifier(h)


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
