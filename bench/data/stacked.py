"""Stacked MNIST (Metz et al. 2017, sec. 3.3; VEEGAN; PacGAN): 3 MNIST digits as the channels of one image,
1 000 modes. Registered as ``stacked-mnist``; reads MNIST's files."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from bench.data import idx as _idx  # noqa: F401  (registers mnist, which this dataset reads)
from bench.data.registry import DATASETS, DatasetSpec, Source

STACKED_SEEDS = {"train": 0, "test": 1}  # the fixed draws of stacked-mnist's splits (part of the dataset)
STACKED_CLASSES = tuple(f"{i:03d}" for i in range(1000))


def _stacked_mnist(source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Each image's 3 channels are 3 MNIST digits of the same split, drawn independently (channel c takes the
    split in the order of its own seeded permutation, so every digit appears once per channel); label
    ``100 * d0 + 10 * d1 + d2``. 60 000 / 10 000 images, the same for every user (seeds ``STACKED_SEEDS``)."""
    images, labels, _ = DATASETS.get("mnist").load(source)
    g = torch.Generator().manual_seed(STACKED_SEEDS[source.split])
    perms = [torch.randperm(len(images), generator=g) for _ in range(3)]
    stacked = torch.cat([images[p] for p in perms], dim=1)
    return stacked, 100 * labels[perms[0]] + 10 * labels[perms[1]] + labels[perms[2]], STACKED_CLASSES


_mnist = DATASETS.get("mnist")
DATASETS.register(
    "stacked-mnist",
    DatasetSpec(
        (3, 28, 28),
        1000,
        ("train", "test"),
        functools.lru_cache(maxsize=4)(_stacked_mnist),
        "3 MNIST digits as RGB, 1 000 modes (Metz et al. 2017)",
        classes=STACKED_CLASSES,
        files=_mnist.files,
        url=_mnist.url,
    ),
)
