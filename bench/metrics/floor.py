"""The real-data floor: real images scored as if generated, under the same protocol (what a perfect generator
would reach)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from bench.config import EvalConfig
from bench.data import ImageData
from bench.errors import ConfigError
from bench.metrics.protocol import Protocol

if TYPE_CHECKING:
    from bench.metrics.evaluator import Evaluator

FLOOR_STD = "floor_std/"  # + metric key: the std of the floor's value over its random subsets


def check_floor_size(real: ImageData, cfg: EvalConfig) -> None:
    """Raise ConfigError if the split ``real`` has fewer images than ``cfg.n_samples`` (the floor's sample)."""
    if cfg.n_samples > real.images.shape[0]:
        raise ConfigError(
            f"eval.n_samples = {cfg.n_samples} exceeds the {real.images.shape[0]} images of {real.name}/{real.split}"
        )


def real_floor(evaluator: Evaluator, real: ImageData) -> tuple[dict[str, float], list[Protocol]]:
    """``cfg.n_samples`` images of ``real`` (e.g. the training split) scored as if generated. The value depends
    on which images are drawn (MNIST, LeNet FID 4.2 to 5.5 over five subsets of 10 000), so it is measured on
    ``cfg.floor_subsets`` random subsets, drawn with seeds ``seed, seed + 1, ...`` (``seed``: the evaluator's).

    Returns ``({key: mean over the subsets} | {FLOOR_STD + key: sample std (0 for one subset)}, protocols)``;
    the protocols are the first subset's (its seed is the run's).
    """
    cfg, seed = evaluator.cfg, evaluator.seed
    check_floor_size(real, cfg)
    values: dict[str, list[float]] = {}
    first: list[Protocol] = []
    for i in range(cfg.floor_subsets):
        g = torch.Generator().manual_seed(seed + i)
        idx = torch.randperm(real.images.shape[0], generator=g)[: cfg.n_samples]
        m, protocols, _ = evaluator.fidelity_all(real.images.cpu()[idx], seed=seed + i)
        first = first or protocols
        for k, v in m.items():
            values.setdefault(k, []).append(v)
    out = {k: float(np.mean(v)) for k, v in values.items()}
    out |= {FLOOR_STD + k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()}
    return out, first
