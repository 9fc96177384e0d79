"""CIFAR-10 (Krizhevsky 2009) through torchvision's own reader: ``torchvision.datasets.CIFAR10(root,
download=False)`` reads ``<root>/cifar-10-batches-py`` (the pickled batches) and checks the md5 of every
file of the archive, both splits and ``batches.meta`` (so every split needs them all: ``ganbench list``
reports them so); without a data root torchvision downloads the archive into ``<workdir>/data``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.data.registry import DATASETS, DatasetSpec, Source, check_md5, download, missing
from bench.errors import DataError

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def cifar_files() -> dict[str, list[tuple[str, str]]]:
    """{split: [(batch file, md5)]}: torchvision's list of CIFAR-10's pickled batches and their md5."""
    import torchvision

    c = torchvision.datasets.CIFAR10
    return {"train": [tuple(x) for x in c.train_list], "test": [tuple(x) for x in c.test_list]}


def cifar_all() -> list[tuple[str, str]]:
    """[(file, md5)] of every file torchvision's CIFAR10 reader checks, whichever split it reads."""
    files = cifar_files()
    return [*files["train"], *files["test"], cifar_meta()]


def cifar_meta() -> tuple[str, str]:
    """(file, md5) of the class names' file that torchvision's reader needs beside the batches."""
    import torchvision

    meta = torchvision.datasets.CIFAR10.meta
    return meta["filename"], meta["md5"]


def _cifar10(root: Path, split: str, transform: Any = None, fetch: bool = False) -> Any:
    import torchvision

    return torchvision.datasets.CIFAR10(str(root), train=split == "train", download=fetch, transform=transform)


@functools.lru_cache(maxsize=4)
def _load_cifar10(source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    if source.root is None:
        ds = download("cifar10", lambda: _cifar10(source.download_dir, source.split, fetch=True), source.download_dir)
    else:
        for name, _ in cifar_all():  # torchvision's RuntimeError says only "not found or corrupted"
            path = source.root / CIFAR_FOLDER / name
            if not path.is_file():
                raise missing(f"cifar10 {source.split} split", path, CIFAR_FOLDER, CIFAR_URL + " (unpacked)")
        try:
            ds = _cifar10(source.root, source.split)  # checks every file's md5 (once)
        except Exception as e:
            for name, md5 in cifar_all():  # which file: named, with its md5
                check_md5(source.root / CIFAR_FOLDER / name, md5)
            raise DataError(f"{source.root / CIFAR_FOLDER} cannot be read by torchvision's CIFAR10: {e}") from None
    images, labels = np.asarray(ds.data), np.asarray(ds.targets)  # (N, 32, 32, 3) uint8, (N,)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return x, torch.from_numpy(labels.astype(np.int64)), CIFAR_CLASSES


def _torchvision_cifar10(root: Path | None, cache: Path, split: str, transform: Any) -> Any:
    return _cifar10(root or cache, split, transform, fetch=root is None)


DATASETS.register(
    "cifar10",
    DatasetSpec(
        (3, 32, 32),
        10,
        ("train", "test"),
        _load_cifar10,
        "objects, 50k/10k",
        _torchvision_cifar10,
        CIFAR_CLASSES,
        lambda split: tuple(f"{CIFAR_FOLDER}/{f}" for f, _ in cifar_all()),  # every split needs every file
        CIFAR_URL,
    ),
)
