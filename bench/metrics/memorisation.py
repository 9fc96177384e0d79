"""Memorisation: does a generator copy its training images?

On a small dataset a generator that reproduces training images scores well on FID and precision, so the
numbers that reward fidelity cannot tell it from a good model. In the primary extractor's features (the
features of FID / precision-recall), for every sample its nearest training image by exact k-NN (k = 1,
Euclidean), then:

- **copy rate**: the share of samples closer to their nearest training image than that training image is to
  its own nearest other training image (a sample inside the training image's empty neighbourhood: a copy
  or a near-copy; an exact copy always counts). Real unseen images are not 0 here: the same rate of the
  held-out reference images (``heldout_copy_rate``, in the protocol line) is what a model that does not copy
  gets;
- **NN ratio**: the median distance of held-out reference images to their nearest training image over the
  samples' median distance to theirs. Both are distances to the same training split, so set sizes cancel:
  about 1 for a model whose samples are as novel as unseen data, > 1 when the samples sit closer to the
  training data than unseen data does (Meehan et al. 2020, "A Non-Parametric Test to Detect Data-Copying in
  Generative Models", AISTATS, compare the same two distance distributions with a rank test);
- the **gallery**: the 16 samples nearest to a training image, each with that image.

Exact nearest neighbours in chunks of query rows (``chunk`` x N distance blocks through one matrix product;
the winner's distance recomputed directly, so exact copies give 0): for 10 000 samples against MNIST's
60 000 training images in 128-d LeNet features it takes about 5 s on a 2-core CPU (38 s in Inception's 2048-d space;
on a GPU evaluation the searches run on the GPU)
(``docs/concepts.md`` has the measured cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from bench import keys

GALLERY = 16


def nearest(
    queries: Tensor,
    base: Tensor,
    chunk: int = 1024,
    self_index: Tensor | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """For each row of ``queries (Q, D)`` its nearest row of ``base (N, D)``: ``(distance (Q,) float64, index
    (Q,) int64)``, exact Euclidean. ``self_index (Q,)``: the row of ``base`` each query is (excluded from its
    own search). Memory: ``chunk x N`` float32 at a time, on ``device`` (the distances of the chosen pairs
    are recomputed in float64 on the CPU)."""
    if base.shape[0] == 0 or queries.shape[1] != base.shape[1]:
        raise ValueError(f"nearest: queries {tuple(queries.shape)} and base {tuple(base.shape)} do not match")
    q, b = queries.float().to(device), base.float().to(device)
    b_sq = (b * b).sum(1)
    dist = torch.empty(q.shape[0], dtype=torch.float64)
    index = torch.empty(q.shape[0], dtype=torch.int64)
    for i in range(0, q.shape[0], chunk):
        part = q[i : i + chunk]
        d2 = torch.addmm(b_sq.unsqueeze(0), part, b.T, alpha=-2.0)  # |b|^2 - 2 q.b (|q|^2 does not change argmin)
        if self_index is not None:
            d2[torch.arange(part.shape[0], device=d2.device), self_index[i : i + chunk].to(d2.device)] = float("inf")
        index[i : i + chunk] = d2.argmin(1).cpu()
    dist[:] = (queries.double() - base[index].double()).norm(dim=1)  # exact, for the chosen neighbours
    return dist, index


@dataclass(frozen=True)
class Memorisation:
    """The memorisation numbers of one set of samples (see the module's docstring).

    copy_rate, heldout_copy_rate in [0, 1]; nn_ratio > 0; median distances in feature units; n_train: the
    training images searched; gallery: ``(sample index, training index, distance, the training image's own
    NN distance)`` of the ``GALLERY`` samples nearest to a training image, nearest first.
    """

    copy_rate: float
    nn_ratio: float
    heldout_copy_rate: float
    sample_distance: float
    heldout_distance: float
    n_train: int
    gallery: list[tuple[int, int, float, float]] = field(default_factory=list)

    def metrics(self, extractor: str) -> dict[str, float]:
        """``{eval/<extractor>/copy_rate, .../nn_ratio, .../nn_distance, .../heldout_copy_rate}`` for MLflow."""
        return {
            keys.eval_key(extractor, keys.COPY_RATE): self.copy_rate,
            keys.eval_key(extractor, keys.NN_RATIO): self.nn_ratio,
            keys.eval_key(extractor, keys.NN_DISTANCE): self.sample_distance,
            keys.eval_key(extractor, keys.HELDOUT_COPY_RATE): self.heldout_copy_rate,
        }

    def line(self, label: str, train: str) -> str:
        """The protocol line: what was searched and the held-out baseline."""
        return (
            f"nearest of {self.n_train} {train} images in {label} features (exact, Euclidean); held-out reference "
            f"images: copy rate {self.heldout_copy_rate:.3f} (a model that does not copy), NN ratio 1 by "
            f"definition, median NN distance {self.heldout_distance:.4g}"
        )


def memorisation(
    samples: Tensor, train: Tensor, heldout: Tensor, chunk: int = 1024, device: torch.device | str = "cpu"
) -> Memorisation:
    """Memorisation numbers of sample features ``(S, D)`` against training features ``(N, D)``, with the
    held-out reference features ``(M, D)`` as the baseline; the searches run on ``device``. Raises
    ValueError for fewer than 2 training rows."""
    if train.shape[0] < 2:
        raise ValueError(f"memorisation needs at least 2 training images, got {train.shape[0]}")
    d_s, nn_s = nearest(samples, train, chunk, device=device)
    d_h, nn_h = nearest(heldout, train, chunk, device=device)
    matched = torch.unique(torch.cat([nn_s, nn_h]))
    own, _ = nearest(train[matched], train, chunk, self_index=matched, device=device)  # their own NN
    radius = torch.full((train.shape[0],), float("nan"), dtype=torch.float64)
    radius[matched] = own
    med_s, med_h = float(d_s.median()), float(d_h.median())
    order = torch.argsort(d_s)[:GALLERY]
    gallery = [(int(i), int(nn_s[i]), float(d_s[i]), float(radius[nn_s[i]])) for i in order]
    return Memorisation(
        copy_rate=_copies(d_s, radius[nn_s]),
        nn_ratio=med_h / max(med_s, 1e-6 * med_h, 1e-12),
        heldout_copy_rate=_copies(d_h, radius[nn_h]),
        sample_distance=med_s,
        heldout_distance=med_h,
        n_train=int(train.shape[0]),
        gallery=gallery,
    )


def _copies(distance: Tensor, radius: Tensor) -> float:
    """The share inside their training image's empty neighbourhood; an exact copy (distance 0) counts even
    when that image has an exact duplicate in the training split (radius 0)."""
    return float(((distance < radius) | (distance == 0)).double().mean())
