"""Mode coverage measured by the dataset's classifier, for every run (conditional or not).

Following the mode-collapse literature (Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017, VEEGAN;
Lin et al. 2018, PacGAN), the samples are classified and their class histogram ``p_gen`` is compared with
the histogram ``p_real`` of the reference (test) images under the same classifier (so that its own errors
cancel out):

- ``modes``: the number of classes whose share of the samples is at least half of their share of the real
  images (K for a generator that covers every class about as often as the data; 1 for full collapse);
- ``class_kl``: KL(p_gen || p_real) in nats (0 for the same histogram; log K for all samples in one of K
  balanced classes).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import keys
from bench.metrics.lenet import load_lenet


@lru_cache(maxsize=8)
def _classifier(path: str, shape: tuple[int, int, int], num_classes: int) -> torch.nn.Module:
    return load_lenet(path, shape[0], num_classes, shape[1])


@torch.no_grad()
def classify(images: torch.Tensor, spec: Any, weights: Path, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes ``(N,)`` int64 of uint8 ``images (N, C, H, W)`` by the extractor ``spec``'s
    classifier (a ``lenet-<dataset>``) with ``weights``."""
    model = _classifier(str(weights), tuple(spec.image_shape), spec.num_classes)
    out = [model(images[i : i + batch_size].float() / 255.0).argmax(1) for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def coverage(predicted: torch.Tensor, real_predicted: torch.Tensor, num_classes: int) -> dict[str, float]:
    """``{modes, class_kl}`` of the predicted classes of the samples against those of the real images.

    Classes absent from the real images are not counted as modes; samples predicted as such a class make
    the KL infinite (reported as inf)."""
    p = np.bincount(predicted.cpu().numpy(), minlength=num_classes) / len(predicted)
    q = np.bincount(real_predicted.cpu().numpy(), minlength=num_classes) / len(real_predicted)
    modes = int(((q > 0) & (p >= 0.5 * q)).sum())
    with np.errstate(divide="ignore"):
        kl = float(np.sum(np.where(p > 0, p * np.log(p / q), 0.0)))
    return {keys.MODES: float(modes), keys.CLASS_KL: kl}
