"""The dataset registry: :class:`DatasetSpec`, :data:`DATASETS`, where a split comes from (:class:`Source`),
and the errors every loader raises for missing, unreachable or corrupt files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from architectures.registry import Registry
from bench.errors import DataError


@dataclass(frozen=True)
class Source:
    """Where a split comes from: ``root`` (the data folder, or None: download into ``download_dir``) and, for
    datasets without a native size, the size and channels to decode to."""

    root: Path | None
    split: str
    download_dir: Path
    image_size: int | None = None
    channels: int | None = None


Loader = Callable[[Source], tuple[Tensor, Tensor, tuple[str, ...]]]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    image_shape: native ``(C, H, W)``, None when it depends on the files (``folder``); num_classes: None when
    unlabelled or found in the files; classes: class names, label order; splits: split names;
    load(source) -> (images uint8 ``(N, C, H, W)`` on CPU, labels int64 ``(N,)``, class names);
    files(split) -> paths relative to the data root (for ``ganbench list`` and error messages; empty when
    the dataset has no fixed files); url: where the files come from; torchvision: (root or None, cache
    folder, split, transform) -> the split as its torchvision dataset (the speed benchmark's baseline).
    """

    image_shape: tuple[int, int, int] | None
    num_classes: int | None
    splits: tuple[str, ...]
    load: Loader
    summary: str = ""
    torchvision: Callable[[Path | None, Path, str, Any], Any] | None = None
    classes: tuple[str, ...] = ()
    files: Callable[[str], tuple[str, ...]] = field(default=lambda split: ())
    url: str = ""


DATASETS: Registry[DatasetSpec] = Registry("dataset", DatasetSpec)


def check_md5(path: Path, md5: str | None) -> None:
    """Raise DataError if ``path``'s md5 is not ``md5`` (None: not checked), through torchvision's
    ``check_integrity``, the check torchvision's own dataset classes make."""
    from torchvision.datasets.utils import calculate_md5, check_integrity

    if md5 is not None and not check_integrity(str(path), md5):
        raise DataError(f"{path} is corrupt: md5 {calculate_md5(str(path))} != expected {md5}")


def missing(name: str, path: Path, folder: str, url: str) -> DataError:
    """The error for a split whose file ``path`` is not under the data root."""
    where = f"from {url} " if url else ""
    return DataError(
        f"{name} not found: {path} does not exist; put the file {where}there (GANBENCH_DATA / --data-root is "
        f"the folder holding {folder}/), or unset both to let torchvision download it into <workdir>/data"
    )


def download(name: str, make: Callable[[], Any], download_dir: Path) -> Any:
    """``make()`` (a torchvision dataset that downloads); DataError naming the dataset when it fails."""
    try:
        return make()
    except Exception as e:  # no network, no permission
        raise DataError(
            f"{name} is not available offline and the download into {download_dir} failed "
            f"({type(e).__name__}: {' '.join(str(e).split())[:160]}); set GANBENCH_DATA or --data-root to the "
            "folder holding it"
        ) from None
