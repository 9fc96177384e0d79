"""The IDX family: MNIST, Fashion-MNIST, KMNIST and the EMNIST splits (gzipped IDX files, LeCun et al.'s
MNIST format), read directly from a read-only data folder or downloaded by torchvision.

- ``mnist``, ``fashion-mnist``, ``kmnist``: ``<root>/MNIST/raw``, ``<root>/FashionMNIST/raw``,
  ``<root>/KMNIST/raw``, md5-checked against torchvision's own lists (``torchvision.datasets.MNIST.resources``).
- ``emnist-<split>`` (``letters``, ``balanced``, ``byclass``, ``bymerge``, ``digits``, ``mnist``; Cohen et al.
  2017): ``<root>/EMNIST/raw/emnist-<split>-*.gz``. The official files store each image transposed; they are
  transposed back on load. ``emnist-letters`` labels are stored 1..26 and shifted to 0..25 (= A..Z).
  Only the letters files have published per-file checksums (checked); the other splits are read unchecked
  from a local folder, or downloaded by torchvision, which checks the md5 of the whole archive.
"""

from __future__ import annotations

import functools
import gzip
import operator
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.data.registry import DATASETS, DatasetSpec, Source, check_md5, download, missing
from bench.errors import DataError


def read_idx(path: Path, md5: str | None = None) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes, checking its ``md5`` (None: unchecked).

    Returns the array in the file's shape, e.g. ``(N, 28, 28)`` uint8 images or ``(N,)`` labels.
    Raises DataError for a corrupt file or a bad header."""
    check_md5(path, md5)
    data = gzip.decompress(path.read_bytes())
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 8:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@dataclass(frozen=True)
class IdxDataset:
    """A dataset of gzipped IDX files under ``<root>/<folder>``: ``files[split] = (images, labels)``,
    ``md5[file] = hex``; ``torchvision_cls(root, train=, download=, **kwargs)`` downloads it."""

    name: str
    folder: str
    files: dict[str, tuple[str, str]]
    md5: dict[str, str]
    torchvision_cls: str
    torchvision_kwargs: tuple[tuple[str, str], ...] = ()
    transposed: bool = False  # EMNIST: images stored column-major
    label_offset: int = 0  # EMNIST letters: labels 1..26
    classes: tuple[str, ...] = ()
    url: str = ""
    download_if_absent: bool = False  # files missing under the root: download them into <workdir>/data

    def relative(self, split: str) -> tuple[str, ...]:
        return tuple(f"{self.folder}/{f}" for f in self.files[split])

    def _dataset(self, root: Path, split: str, transform: Any = None, download: bool = True) -> Any:
        import torchvision

        cls = getattr(torchvision.datasets, self.torchvision_cls)
        # the labels ganbench uses (EMNIST letters: 1..26 -> 0..25); a partial, not a lambda, so it pickles
        shift = functools.partial(operator.add, -self.label_offset) if self.label_offset else None
        return cls(
            str(root),
            train=split == "train",
            download=download,
            transform=transform,
            target_transform=shift,
            **dict(self.torchvision_kwargs),
        )

    def load(self, source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
        root, absent = source.root, None
        if root is not None:
            paths = [root / self.folder / f for f in self.files[source.split]]
            absent = next((p for p in paths if not p.is_file()), None)
            if absent is not None and not self.download_if_absent:
                raise missing(f"{self.name} {source.split} split", absent, self.folder, self.url)
            root = None if absent is not None else root
        if root is None:
            try:
                ds = download(self.name, lambda: self._dataset(source.download_dir, source.split), source.download_dir)
            except DataError as e:
                if absent is None:
                    raise
                gone = missing(f"{self.name} {source.split} split", absent, self.folder, self.url)
                raise DataError(f"{gone} (the download failed: {e})") from None
            images, labels = ds.data.numpy(), ds.targets.numpy()
        else:
            images, labels = (read_idx(p, self.md5.get(p.name)) for p in paths)
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{self.name} {source.split}: {images.shape[0]} images but {labels.shape[0]} labels")
        if self.transposed:
            images = images.transpose(0, 2, 1)
        x = torch.from_numpy(np.array(images, copy=True)).unsqueeze(1)
        return x, torch.from_numpy(labels.astype(np.int64) - self.label_offset), self.classes

    def torchvision(self, root: Path | None, cache: Path, split: str, transform: Any) -> Any:
        """The torchvision dataset unpacked in ``cache``. The read-only ``root`` is never written to: its files
        are copied into ``cache/<folder>``, where torchvision checks and unpacks them."""
        import shutil

        if root is None:
            return self._dataset(cache, split, transform)
        raw = cache / self.folder
        raw.mkdir(parents=True, exist_ok=True)
        for f in (f for pair in self.files.values() for f in pair):  # torchvision checks every split's files
            if self.transposed:  # torchvision's EMNIST reads the unpacked files (and downloads only the zip)
                if not (raw / f.removesuffix(".gz")).exists():
                    (raw / f.removesuffix(".gz")).write_bytes(gzip.decompress((root / self.folder / f).read_bytes()))
            elif not (raw / f).exists():
                shutil.copyfile(root / self.folder / f, raw / f)
        return self._dataset(cache, split, transform, download=not self.transposed)

    def spec(self, image_shape: tuple[int, int, int], summary: str) -> DatasetSpec:
        return DatasetSpec(
            image_shape,
            len(self.classes),
            tuple(self.files),
            functools.lru_cache(maxsize=4)(self.load),
            summary,
            self.torchvision,
            self.classes,
            self.relative,
            self.url,
        )


def _torchvision_md5(cls_name: str) -> dict[str, str]:
    import torchvision

    return dict(getattr(torchvision.datasets, cls_name).resources)


def _mnist_like(name: str, folder: str, cls: str, classes: tuple[str, ...], url: str, summary: str) -> None:
    files = {
        s: (f"{p}-images-idx3-ubyte.gz", f"{p}-labels-idx1-ubyte.gz") for s, p in (("train", "train"), ("test", "t10k"))
    }
    ds = IdxDataset(name, f"{folder}/raw", files, _torchvision_md5(cls), cls, classes=classes, url=url)
    DATASETS.register(name, ds.spec((1, 28, 28), summary))


_mnist_like("mnist", "MNIST", "MNIST", tuple(string.digits), "http://yann.lecun.com/exdb/mnist/", "digits, 60k/10k")
_mnist_like(
    "fashion-mnist",
    "FashionMNIST",
    "FashionMNIST",
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "https://github.com/zalandoresearch/fashion-mnist",
    "clothes, 60k/10k",
)
_mnist_like(
    "kmnist",
    "KMNIST",
    "KMNIST",
    ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    "https://github.com/rois-codh/kmnist",
    "cursive Japanese, 60k/10k",
)

# md5 of the official EMNIST letters files (members of NIST's gzip.zip). Their published checksums are sha256
# (train images 6288f418..., train labels 9759af91..., test images 50f0e93d..., test labels 924955c3...); the
# md5s below were taken from files matching those, so torchvision's check_integrity can check them.
EMNIST_MD5 = {
    "emnist-letters-train-images-idx3-ubyte.gz": "8795078f199c478165fe18db82625747",
    "emnist-letters-train-labels-idx1-ubyte.gz": "c16de4f1848ddcdddd39ab65d2a7be52",
    "emnist-letters-test-images-idx3-ubyte.gz": "382093a19703f68edac6d01b8dfdfcad",
    "emnist-letters-test-labels-idx1-ubyte.gz": "d4108920cd86601ec7689a97f2de7f59",
}
EMNIST_SPLITS = {  # split -> (classes, sizes) as in Cohen et al. 2017, table II
    "letters": (tuple(string.ascii_uppercase), "124.8k/20.8k"),
    "balanced": (tuple(sorted(set(string.digits + string.ascii_letters) - set("cijklmopsuvwxyz"))), "112.8k/18.8k"),
    "byclass": (tuple(sorted(string.digits + string.ascii_letters)), "698k/116k"),
    "bymerge": (tuple(sorted(set(string.digits + string.ascii_letters) - set("cijklmopsuvwxyz"))), "698k/116k"),
    "digits": (tuple(string.digits), "240k/40k"),
    "mnist": (tuple(string.digits), "60k/10k"),
}
for _split, (_classes, _sizes) in EMNIST_SPLITS.items():
    _files = {
        s: (f"emnist-{_split}-{s}-images-idx3-ubyte.gz", f"emnist-{_split}-{s}-labels-idx1-ubyte.gz")
        for s in ("train", "test")
    }
    _ds = IdxDataset(
        f"emnist-{_split}",
        "EMNIST/raw",
        _files,
        EMNIST_MD5,
        "EMNIST",
        (("split", _split),),
        transposed=True,
        label_offset=1 if _split == "letters" else 0,
        classes=_classes,
        url="https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
        download_if_absent=_split != "letters",  # no per-file checksums: torchvision's zip check instead
    )
    DATASETS.register(f"emnist-{_split}", _ds.spec((1, 28, 28), f"EMNIST, {_sizes}"))
