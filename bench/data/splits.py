"""A dataset split held on the training device (:class:`ImageData`), found through ``data.root`` /
``$GANBENCH_DATA`` or downloaded, converted to the configured size and channels once at load time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from bench.config import DataConfig
from bench.data.folder import FOLDER_CHANNELS, FOLDER_SIZE
from bench.data.registry import DATASETS, DatasetSpec, Source
from bench.errors import DataError


def resolve_root(cfg: DataConfig) -> Path | None:
    """``cfg.root``, else ``$GANBENCH_DATA`` (not for ``folder``), else None (download).

    Raises DataError if the folder is missing."""
    root = cfg.root or (os.environ.get("GANBENCH_DATA") if cfg.dataset != "folder" else None) or None
    if root is None:
        return None
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        source = "data.root / --data-root" if cfg.root else "GANBENCH_DATA"
        raise DataError(f"{source} = {root!r} is not a folder")
    return path


def presence(name: str, root: Path | None) -> str:
    """Whether ``name``'s files are under ``root``: ``"yes"``, ``"no"``, ``"<split> only"``, or how it is found
    (``"download"``, ``"data.root"``)."""
    spec = DATASETS.get(name)
    if name == "folder":
        return "data.root"
    if root is None:
        return "download"
    present = [s for s in spec.splits if all((root / f).is_file() for f in spec.files(s))]
    if len(present) == len(spec.splits):
        return "yes"
    return f"{', '.join(present)} only" if present else "no"


@dataclass
class ImageData:
    """A split held on the device: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)`` in
    ``[0, len(classes))``; ``classes``: class names in label order."""

    name: str
    split: str
    images: Tensor
    labels: Tensor
    spec: DatasetSpec
    classes: tuple[str, ...] = ()
    origin: str = ""  # where a dataset without fixed files came from (folder: its path), for cache keys

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def random_subset(data: ImageData, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` images of ``data`` and their labels: all of it when ``n`` covers the split, else a random subset
    drawn with ``seed``, in split order (not the first n, which need not be a fair sample: MNIST's first and
    last 5 000 test images differ by LeNet FID 77)."""
    total = data.images.shape[0]
    if n >= total:
        return data.images, data.labels
    idx = subset_indices(total, n, seed)
    return data.images[idx.to(data.images.device)], data.labels[idx.to(data.labels.device)]


def subset_indices(total: int, n: int, seed: int) -> Tensor:
    """The split indices :func:`random_subset` takes: ``min(n, total)`` of ``range(total)`` drawn with ``seed``,
    ascending (all of them when ``n`` covers the split)."""
    if n >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def convert(images: Tensor, size: int | None, channels: int | None) -> Tensor:
    """Resize (bilinear, antialiased) and convert channels (grey repeated to RGB; RGB to luma) of uint8 images."""
    from torchvision.transforms import v2

    if channels is not None and channels != images.shape[1]:
        images = images.expand(-1, 3, -1, -1).contiguous() if channels == 3 else v2.functional.rgb_to_grayscale(images)
    if size is not None and size != images.shape[-1]:
        images = v2.functional.resize(images, [size, size], antialias=True)
    return images


def load(cfg: DataConfig, split: str, workdir: str | os.PathLike[str], device: torch.device | str = "cpu") -> ImageData:
    """Load ``split`` of ``cfg.dataset`` onto ``device`` (cached per process on the CPU side).

    Raises:
        UnknownNameError: unknown dataset. DataError: unknown split, data not found, or corrupt files.
    """
    spec = DATASETS.get(cfg.dataset)
    if split not in spec.splits:
        raise DataError(f"dataset {cfg.dataset!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    source = Source(resolve_root(cfg), split, Path(workdir).resolve() / "data", cfg.image_size, cfg.channels)
    images, labels, classes = spec.load(source)
    if spec.image_shape is not None:
        images = convert(images, cfg.image_size, cfg.channels)
    origin = str(source.root) if spec.image_shape is None and source.root else ""
    return ImageData(cfg.dataset, split, images.to(device), labels.to(device), spec, tuple(classes), origin)


def image_shape(cfg: DataConfig) -> tuple[int, int, int] | None:
    """The ``(C, H, W)`` of ``cfg``'s images without loading them."""
    spec = DATASETS.get(cfg.dataset)
    if spec.image_shape is None:
        return (cfg.channels or FOLDER_CHANNELS, cfg.image_size or FOLDER_SIZE, cfg.image_size or FOLDER_SIZE)
    c, h, w = spec.image_shape
    return (cfg.channels or c, cfg.image_size or h, cfg.image_size or w)
