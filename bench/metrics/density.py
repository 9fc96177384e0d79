"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models",
ICML), on the features and ``k`` of precision/recall (``eval.prc_neighborhood``).

Each real image gets a ball whose radius is the distance to its k-th nearest other real image. Density: the
mean number of real balls a fake lies in, over k (about 1 when fakes are distributed like reals; above 1 when
they crowd where reals are dense; unbounded). Coverage: the share of real images whose ball holds at least one
fake, in [0, 1] (robust to the outliers that inflate recall). The formulas are the authors' (``prdc``'s
``compute_prdc``, strict ``<``); distances are Euclidean in float64, computed in chunks so that 10 000 x
10 000 pairs never sit in memory at once.
"""

from __future__ import annotations

import torch

CHUNK = 1000  # rows of a distance block: 1 000 x 10 000 float64 = 80 MB


def _kth_nearest(real: torch.Tensor, k: int) -> torch.Tensor:
    """``(M,)``: each real point's distance to its k-th nearest other real point (the point itself is the 0th)."""
    return torch.cat([torch.cdist(part, real).kthvalue(k + 1, dim=1).values for part in real.split(CHUNK)])


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    """``{"density": ..., "coverage": ...}`` of ``fake (N, D)`` against ``real (M, D)`` features with ``k``
    nearest neighbours. Raises ValueError when ``k`` is not below the number of real points."""
    if not 1 <= k < real.shape[0]:
        raise ValueError(f"k = {k} must be between 1 and the number of real features - 1 ({real.shape[0] - 1})")
    real, fake = real.double(), fake.double()
    radii = _kth_nearest(real, k)
    inside = torch.zeros(fake.shape[0], dtype=torch.float64)  # balls each fake lies in
    covered = []
    for part, r in zip(real.split(CHUNK), radii.split(CHUNK), strict=True):
        within = torch.cdist(part, fake) < r[:, None]  # (rows, N)
        inside += within.sum(0)
        covered.append(within.any(1))
    return {"density": float(inside.mean() / k), "coverage": float(torch.cat(covered).double().mean())}
