"""Discriminator real/fake accuracy and ROC-AUC.

Accuracy at the loss's natural threshold (``architectures.losses.LossSpec.threshold``: a score above it
means "real"); ROC-AUC is threshold-free and comparable across losses (for a Wasserstein critic, whose
offset is arbitrary, only the AUC is meaningful).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from bench import keys


def roc_auc(scores_real: np.ndarray, scores_fake: np.ndarray) -> float:
    """P(score_real > score_fake) + ½·P(tie): the Mann-Whitney form of the ROC-AUC, in ``[0, 1]``."""
    n_r, n_f = len(scores_real), len(scores_fake)
    if n_r == 0 or n_f == 0:
        raise ValueError("roc_auc needs at least one real and one fake score")
    ranks = rankdata(np.concatenate([scores_real, scores_fake]))
    return float((ranks[:n_r].sum() - n_r * (n_r + 1) / 2) / (n_r * n_f))


def accuracy(
    scores_real: torch.Tensor | np.ndarray, scores_fake: torch.Tensor | np.ndarray, threshold: float
) -> dict[str, float]:
    """Real/fake/overall accuracy in ``[0, 1]`` at ``threshold`` (real iff score > threshold) and ROC-AUC."""
    r = np.asarray(scores_real, dtype=np.float64).ravel()
    f = np.asarray(scores_fake, dtype=np.float64).ravel()
    acc_r, acc_f = float((r > threshold).mean()), float((f <= threshold).mean())
    return {
        keys.D_ACC_REAL: acc_r,
        keys.D_ACC_FAKE: acc_f,
        keys.D_ACC: (acc_r * len(r) + acc_f * len(f)) / (len(r) + len(f)),
        keys.D_ROC_AUC: roc_auc(r, f),
    }
