"""Drawing samples for evaluation (z from a generator seeded with the run seed, balanced labels) and scoring
images with the discriminator."""

from __future__ import annotations

import torch
from torch import nn

from architectures.registry import GAN


def sample_labels(n: int, num_classes: int) -> torch.Tensor:
    """The labels a conditional generator is evaluated with: ``(n,)`` int64, ``0, 1, ..., K-1, 0, 1, ...``
    (every class equally often, to within one sample; the balanced sample CAS needs)."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def generate(
    generator: nn.Module, n: int, batch_size: int, seed: int, device: torch.device, num_classes: int = 0
) -> torch.Tensor:
    """``n`` samples from ``generator`` in eval mode as float ``(n, C, H, W)`` in ``[-1, 1]`` on CPU.

    z comes from its own CPU generator seeded with ``seed`` (the global RNG, and so training, is untouched);
    the samples do not depend on ``batch_size``. With ``num_classes = K > 0`` the generator is conditional
    and sample i is ``G(z_i, y_i)`` with ``y = sample_labels(n, K)``.
    """
    # all of z in one draw: torch's normal sampler gives different numbers for different chunkings
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    y = sample_labels(n, num_classes) if num_classes else None
    was_training = generator.training
    generator.eval()

    def batch(i: int) -> torch.Tensor:
        zi = z[i : i + batch_size].to(device)
        return generator(zi, y[i : i + batch_size].to(device)) if y is not None else generator(zi)

    try:
        out = [batch(i).float().cpu() for i in range(0, n, batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def discriminator_scores(
    gan: GAN, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, device: torch.device
) -> torch.Tensor:
    """D's scores for float ``images (N, C, H, W)`` in ``[-1, 1]`` (with their ``labels (N,)`` for a
    conditional D), D in eval mode; ``(N,)`` float64 on CPU."""
    discriminator = gan.discriminator
    was_training = discriminator.training
    discriminator.eval()

    def scores(i: int) -> torch.Tensor:
        y = labels[i : i + batch_size].to(device) if gan.conditional else None
        return gan.discriminate(images[i : i + batch_size].to(device), y)[0].double().cpu()

    try:
        return torch.cat([scores(i) for i in range(0, len(images), batch_size)])
    finally:
        discriminator.train(was_training)
