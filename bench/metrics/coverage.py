"""Mode coverage measured by the dataset's classifier, for every run (conditional or not).

Following the mode-collapse literature (Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017, VEEGAN;
Lin et al. 2018, PacGAN), the samples are classified and their class histogram ``p_gen`` is compared with
the histogram ``p_real`` of the reference (test) images under the same classifier (so that its own errors
cancel out):

- ``modes``: the number of classes whose share of the samples is at least half of their share of the real
  images (K for a generator that covers every class about as often as the data; 1 for full collapse);
- ``class_kl``: KL(p_gen || p_real) in nats (0 for the same histogram; log K for all samples in one of K
  balanced classes).

Stacked MNIST follows its own protocol (Metz et al. 2017, table 2; Srivastava et al. 2017; Lin et al. 2018,
PacGAN, with 26 000 samples): each channel is classified by the MNIST classifier, a mode (one of the 1 000
digit triples) counts as covered when at least one sample falls in it, and the KL is taken to the uniform
distribution over the 1 000 modes (the rule ``"uniform"`` of the extractor).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import keys
from bench.metrics.lenet import load_classifier


@lru_cache(maxsize=8)
def _classifier(path: str, shape: tuple[int, int, int], num_classes: int, stacked: bool) -> torch.nn.Module:
    return load_classifier(path, shape, num_classes, stacked)


@torch.no_grad()
def classify(images: torch.Tensor, spec: Any, weights: Path, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes ``(N,)`` int64 of uint8 ``images (N, C, H, W)`` by the extractor ``spec``'s
    classifier (a ``lenet-<dataset>``) with ``weights``."""
    model = _classifier(str(weights), tuple(spec.image_shape), spec.num_classes, spec.stacked)
    out = [model(images[i : i + batch_size].float() / 255.0).argmax(1) for i in range(0, len(images), batch_size)]
    return torch.cat(out)


MAX_SHARES = 62  # datasets with at most this many classes log every class's share (the histogram figure)


def coverage(
    predicted: torch.Tensor, real_predicted: torch.Tensor | None, num_classes: int, rule: str = "real"
) -> dict[str, float]:
    """``{modes, class_kl}`` of the predicted classes of the samples, and (for at most ``MAX_SHARES`` classes)
    ``class_share/<c>``: the share of the samples predicted as class c.

    rule ``"real"``: against the predicted classes of the real images (``real_predicted``); classes absent
    from the real images are not counted as modes, and samples predicted as such a class make the KL
    infinite (reported as inf). rule ``"uniform"`` (Stacked MNIST): a class is a mode covered when at least
    one sample is predicted as it; the KL is to the uniform distribution (``real_predicted`` is not used).
    """
    p = np.bincount(predicted.cpu().numpy(), minlength=num_classes) / len(predicted)
    if rule == "uniform":
        q = np.full(num_classes, 1.0 / num_classes)
        modes = int((p > 0).sum())
    else:
        q = np.bincount(real_predicted.cpu().numpy(), minlength=num_classes) / len(real_predicted)
        modes = int(((q > 0) & (p >= 0.5 * q)).sum())
    seen = p > 0
    with np.errstate(divide="ignore"):
        kl = float(np.sum(p[seen] * np.log(p[seen] / q[seen])))
    shares = {f"{keys.CLASS_SHARE}/{c}": float(p[c]) for c in range(num_classes)} if num_classes <= MAX_SHARES else {}
    return {keys.MODES: float(modes), keys.CLASS_KL: kl, **shares}
