"""Dataset registry and on-device batching.

A dataset split is loaded once as a uint8 tensor ``(N, C, H, W)`` on the training device; batches are drawn
by index there and normalised to ``[-1, 1]`` per batch: no per-sample PIL transforms, no worker processes.

MNIST is found offline through ``DataConfig.root`` / ``$GANBENCH_DATA`` (a folder holding
``MNIST/raw/*.gz``, read directly and md5-checked against torchvision's list, never written to); without
either, torchvision downloads it into ``<workdir>/data``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from architectures.registry import Registry
from bench.config import DataConfig
from bench.errors import ConfigError, DataError

Loader = Callable[[Path | None, str, Path], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    load(root, split, download_dir) -> (images uint8 ``(N, C, H, W)`` on CPU, labels int64 ``(N,)``);
    root None means "download into download_dir".
    """

    image_shape: tuple[int, int, int]
    num_classes: int
    splits: tuple[str, ...]
    load: Loader
    summary: str = ""
    # (root or None, cache folder, split, transform) -> the torchvision Dataset of the split (speed baseline)
    torchvision: Callable[[Path | None, Path, str, Any], Any] | None = None


DATASETS: Registry[DatasetSpec] = Registry("dataset", DatasetSpec)


def _read_idx(path: Path, md5: str) -> np.ndarray:
    """Read a gzipped IDX file (LeCun et al.'s MNIST format), checking its md5."""
    raw = path.read_bytes()
    if hashlib.md5(raw).hexdigest() != md5:
        raise DataError(f"{path} is corrupt: md5 {hashlib.md5(raw).hexdigest()} != expected {md5}")
    data = gzip.decompress(raw)
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=8)
def _load_mnist(root: Path | None, split: str, download_dir: Path) -> tuple[Tensor, Tensor]:
    import torchvision

    train = split == "train"
    if root is None:
        try:
            ds = torchvision.datasets.MNIST(str(download_dir), train=train, download=True)
        except Exception as e:  # no network, no permission
            raise DataError(
                f"MNIST is not available offline and the download into {download_dir} failed ({e}); "
                "set GANBENCH_DATA or --data-root to a folder holding MNIST/raw/*.gz"
            ) from None
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long()
    raw = root / "MNIST" / "raw"
    prefix = "train" if train else "t10k"
    md5 = dict(torchvision.datasets.MNIST.resources)
    files = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
    for f in files:
        if not (raw / f).is_file():
            raise DataError(
                f"MNIST not found: {raw / f} does not exist (GANBENCH_DATA / --data-root must be a folder "
                "holding MNIST/raw/*.gz)"
            )
    images, labels = (_read_idx(raw / f, md5[f]) for f in files)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _torchvision_mnist(root: Path | None, cache: Path, split: str, transform: Any) -> Any:
    """``torchvision.datasets.MNIST`` unpacked in ``cache``. The read-only ``root`` is never written to: its
    ``MNIST/raw/*.gz`` are copied into ``cache/MNIST/raw``, where torchvision checks their md5 and unpacks
    them; without ``root`` torchvision downloads them there."""
    import shutil

    import torchvision

    if root is not None:
        raw = cache / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for gz in (root / "MNIST" / "raw").glob("*.gz"):
            if not (raw / gz.name).exists():
                shutil.copyfile(gz, raw / gz.name)
    return torchvision.datasets.MNIST(str(cache), train=split == "train", download=True, transform=transform)


DATASETS.register(
    "mnist",
    DatasetSpec(
        (1, 28, 28),
        10,
        ("train", "test"),
        _load_mnist,
        "MNIST digits, 60 000 train / 10 000 test",
        _torchvision_mnist,
    ),
)


def resolve_root(cfg: DataConfig) -> Path | None:
    """``cfg.root``, else ``$GANBENCH_DATA``, else None (download). Raises DataError if the folder is missing."""
    root = cfg.root or os.environ.get("GANBENCH_DATA") or None
    if root is None:
        return None
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        source = "data.root / --data-root" if cfg.root else "GANBENCH_DATA"
        raise DataError(f"{source} = {root!r} is not a folder (it must hold MNIST/raw/*.gz)")
    return path


@dataclass
class ImageData:
    """A split held on the device: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``."""

    name: str
    split: str
    images: Tensor
    labels: Tensor
    spec: DatasetSpec


def load(cfg: DataConfig, split: str, workdir: str | os.PathLike[str], device: torch.device | str = "cpu") -> ImageData:
    """Load ``split`` of ``cfg.dataset`` onto ``device`` (cached per process on the CPU side).

    Raises:
        UnknownNameError: unknown dataset. DataError: unknown split, data not found, or corrupt files.
    """
    spec = DATASETS.get(cfg.dataset)
    if split not in spec.splits:
        raise DataError(f"dataset {cfg.dataset!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    images, labels = spec.load(resolve_root(cfg), split, Path(workdir).resolve() / "data")
    return ImageData(cfg.dataset, split, images.to(device), labels.to(device), spec)


def to_float(images: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]`` (x / 127.5 - 1)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]``, rounded to nearest (not truncated), clamped."""
    return ((images.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def check_batch_size(batch_size: int, n_images: int, split: str = "the split") -> None:
    """Raise ConfigError if one batch needs more images than ``split`` holds."""
    if batch_size > n_images:
        raise ConfigError(f"train.batch_size = {batch_size} exceeds the {n_images} images of {split}")


class Sampler(Protocol):
    """What ``bench.harness.fit`` draws real batches from.

    ``sampler(index)``: batch number ``index`` (0, 1, 2, ... over the whole run: a resumed run asks for the
    next index) as float ``(batch_size, C, H, W)`` in ``[-1, 1]`` on the training device; ``batch_size``:
    images per batch; ``per_epoch``: batches per pass over the split. :class:`BatchSampler` is ganbench's;
    ``bench.speed.LoaderSampler`` wraps a torchvision ``DataLoader`` for the baseline.
    """

    batch_size: int
    per_epoch: int

    def __call__(self, index: int) -> Tensor: ...


class BatchSampler:
    """Shuffled batches drawn on the device, addressed by a global batch index.

    Batch ``i`` is batch ``i % per_epoch`` of epoch ``i // per_epoch``; each epoch's permutation comes from
    a CPU generator seeded with ``(seed, epoch)``, so the order is fixed by the seed and a resumed run
    continues where it stopped by index alone. The last incomplete batch of an epoch is dropped.

    Raises ConfigError if ``batch_size`` exceeds the number of images.
    """

    def __init__(self, images: Tensor, batch_size: int, seed: int, device: torch.device | str | None = None):
        check_batch_size(batch_size, images.shape[0])
        self.images, self.batch_size, self.seed = images, batch_size, seed
        self.device = torch.device(device) if device is not None else images.device
        self.per_epoch = images.shape[0] // batch_size
        self._epoch, self._perm = -1, None

    def __call__(self, index: int) -> Tensor:
        """Batch ``index`` as float ``(batch_size, C, H, W)`` in ``[-1, 1]`` on ``device`` (default: the
        images' device; images held on the host are copied batch by batch, the plain path)."""
        epoch, pos = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.images.shape[0], generator=g).to(self.images.device)
            self._epoch = epoch
        idx = self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]
        return to_float(self.images[idx].to(self.device, non_blocking=True))
