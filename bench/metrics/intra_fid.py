"""Intra-FID (Miyato & Koyama 2018, sec. 5): the FID of each class's samples against the reference images of
that class, averaged over the classes."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from bench import keys
from bench.data import random_subset
from bench.metrics.fidelity import reference_images

if TYPE_CHECKING:
    from bench.metrics.evaluator import Evaluator

INTRA_FID_MIN = 20  # images per class on each side, below which a class's FID is left out of intra-FID


def intra_fid(evaluator: Evaluator, generated: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Intra-FID of uint8 ``generated (N, C, H, W)`` with their requested ``labels (N,)``, with the evaluator's
    primary extractor; the reference as drawn for the other metrics (``eval.n_reference``).

    Each class has about N / K samples, and FID's bias grows as the sample shrinks, so intra-FID is above the
    FID of the same samples; compare it only between runs with the same ``n_samples``. Classes with fewer than
    ``INTRA_FID_MIN`` (20) images on either side are left out; None when no class has enough (e.g. Stacked
    MNIST's 1 000 classes: about 10 test images each).
    """
    reference, cfg = evaluator.reference, evaluator.cfg
    ref, subset = reference_images(reference, cfg)
    ref_labels = reference.labels if subset == "all" else random_subset(reference, len(ref), cfg.reference_seed)[1]
    ref_labels = ref_labels.cpu()
    drawn = "" if subset == "all" else f"-r{cfg.reference_seed}n{len(ref)}"
    one = replace(cfg, n_reference=None)
    values = []
    for c in range(reference.num_classes):
        fake_c, real_c = generated[labels == c], ref[ref_labels == c]
        if min(len(fake_c), len(real_c)) < INTRA_FID_MIN:
            continue
        part = replace(reference, split=f"{reference.split}{drawn}-class{c}", images=real_c, labels=ref_labels[:0])
        m, _ = replace(evaluator, reference=part, cfg=one).fidelity(fake_c, metrics=("fid",))
        values.append(m[keys.eval_key(evaluator.primary, keys.FID)])
    return float(np.mean(values)) if values else None
