"""GAN losses as pure functions of discriminator outputs, plus the gradient penalty.

Every loss takes ``d_real`` and ``d_fake``: logits / critic scores of shape ``(N,)`` (no sigmoid applied)
and returns ``(d_loss, g_loss, extras)``: two scalar tensors and a dict of named scalar tensors for logging.
The harness uses ``d_loss`` in discriminator steps (fakes detached) and ``g_loss`` in generator steps;
``g_loss`` must not need gradients through ``d_real`` (the harness passes the last critic step's
``d_real``, detached).

Each loss is registered with its *natural threshold*: the score above which the discriminator calls an
image real (used for the real/fake accuracy in evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from architectures.registry import Registry

LossOutput = tuple[Tensor, Tensor, dict[str, Tensor]]


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the function, its natural real/fake threshold, and whether D is a critic."""

    fn: Callable[[Tensor, Tensor], LossOutput]
    threshold: float
    critic: bool = False
    summary: str = ""


LOSSES: Registry[LossSpec] = Registry("loss", LossSpec)


def _check(d_real: Tensor, d_fake: Tensor) -> None:
    for name, t in (("d_real", d_real), ("d_fake", d_fake)):
        if t.dim() != 1:
            raise ValueError(f"{name} must have shape (N,), got {tuple(t.shape)}")


def bce(d_real: Tensor, d_fake: Tensor) -> LossOutput:
    """Non-saturating GAN loss (Goodfellow et al. 2014, sec. 3): G maximises log D(G(z)).

    With logits x: -log sigmoid(x) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x).
    """
    _check(d_real, d_fake)
    d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    return d_loss, F.softplus(-d_fake).mean(), {}


def bce_minimax(d_real: Tensor, d_fake: Tensor) -> LossOutput:
    """The original minimax loss (Goodfellow et al. 2014, eq. 1): G minimises log(1 - D(G(z)))."""
    _check(d_real, d_fake)
    d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    return d_loss, -F.softplus(d_fake).mean(), {}


def wasserstein(d_real: Tensor, d_fake: Tensor) -> LossOutput:
    """Wasserstein loss (Arjovsky et al. 2017): the critic maximises E[D(x)] - E[D(G(z))].

    ``extras["wasserstein"]`` is that difference, the critic's estimate of the W1 distance.
    """
    _check(d_real, d_fake)
    w = d_real.mean() - d_fake.mean()
    return -w, -d_fake.mean(), {"wasserstein": w.detach()}


def hinge(d_real: Tensor, d_fake: Tensor) -> LossOutput:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, eq. 17): D: relu(1-D(x)) + relu(1+D(G(z)))."""
    _check(d_real, d_fake)
    d_loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
    return d_loss, -d_fake.mean(), {}


def least_squares(d_real: Tensor, d_fake: Tensor) -> LossOutput:
    """Least-squares GAN (Mao et al. 2017, eq. 2 with a=0, b=c=1)."""
    _check(d_real, d_fake)
    d_loss = 0.5 * ((d_real - 1.0) ** 2).mean() + 0.5 * (d_fake**2).mean()
    return d_loss, 0.5 * ((d_fake - 1.0) ** 2).mean(), {}


LOSSES.register("bce", LossSpec(bce, 0.0, summary="non-saturating BCE on logits (Goodfellow et al. 2014)"))
LOSSES.register("bce-minimax", LossSpec(bce_minimax, 0.0, summary="minimax BCE (Goodfellow et al. 2014)"))
LOSSES.register(
    "wasserstein",
    LossSpec(wasserstein, 0.0, critic=True, summary="Wasserstein critic (Arjovsky et al. 2017)"),
)
LOSSES.register("hinge", LossSpec(hinge, 0.0, summary="hinge (Lim & Ye 2017; Miyato et al. 2018)"))
LOSSES.register("least-squares", LossSpec(least_squares, 0.5, summary="LSGAN a=0, b=c=1 (Mao et al. 2017)"))


def gradient_penalty(discriminator: nn.Module | Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """Two-sided gradient penalty of WGAN-GP (Gulrajani et al. 2017, Algorithm 1).

    ``E[(||∇_x̂ D(x̂)||_2 - 1)^2]`` at x̂ = ε·real + (1-ε)·fake, ε ~ U[0, 1] per sample (drawn from the
    global torch RNG, so seeded runs repeat). ``discriminator``: images -> scores ``(N,)`` (for a conditional
    critic, a closure that passes the real labels). ``real`` and ``fake`` are ``(N, C, H, W)``; returns a scalar
    that keeps the graph (multiply by λ = ``gp_weight`` and add to the critic loss).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
