"""Dataset registry and on-device batching.

A dataset split is loaded once as a uint8 tensor ``(N, C, H, W)`` on the training device; batches are drawn
by index there and normalised to ``[-1, 1]`` per batch: no per-sample PIL transforms, no worker processes.

Datasets (``ganbench list`` shows them, with whether their files are present):

- ``mnist``, ``fashion-mnist``, ``kmnist``: torchvision's IDX files (``<root>/MNIST/raw``,
  ``<root>/FashionMNIST/raw``, ``<root>/KMNIST/raw``), md5-checked against torchvision's lists.
- ``emnist-<split>`` (``letters``, ``balanced``, ``byclass``, ``bymerge``, ``digits``, ``mnist``; Cohen et al.
  2017): ``<root>/EMNIST/raw/emnist-<split>-*.gz``. The official files store each image transposed; they are
  transposed back on load. ``emnist-letters`` labels are stored 1..26 and shifted to 0..25 (= A..Z).
  Only the letters files have published per-file checksums (sha256, checked); the other splits are read
  unchecked from a local folder, or downloaded by torchvision, which checks the md5 of the whole archive.
- ``cifar10``: torchvision's ``<root>/cifar-10-batches-py`` pickled batches (Krizhevsky 2009), md5-checked.
- ``folder``: a user's own images, ``data.root`` = a folder of images (PNG/JPEG/...), either flat or one
  sub-folder per class (torchvision ``ImageFolder``'s layout); if it holds ``train/`` and ``test/`` those are
  the splits, else every 10th image (sorted paths) is the test split. Images are decoded by
  PIL (as torchvision's ``ImageFolder`` loader does; ``torchvision.io.decode_image`` is deprecated since
  torchvision 0.29) and resized (shorter side, then centre crop) to ``data.image_size`` [64] with
  ``data.channels`` [3] channels by ``torchvision.transforms.v2``, once, at load time.

Files are found under ``data.root`` / ``$GANBENCH_DATA`` (read, never written to); with neither, torchvision
downloads them into ``<workdir>/data``. ``data.image_size`` / ``data.channels`` resize / convert any dataset
(e.g. MNIST at 32x32 as in the DCGAN paper's setups).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import operator
import os
import pickle
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from architectures.registry import Registry
from bench.config import DataConfig
from bench.errors import ConfigError, DataError


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


def _digest(raw: bytes, kind: str) -> str:
    return hashlib.md5(raw).hexdigest() if kind == "md5" else hashlib.sha256(raw).hexdigest()


def _check(path: Path, raw: bytes, checksum: tuple[str, str] | None) -> None:
    if checksum is not None and _digest(raw, checksum[0]) != checksum[1]:
        kind, want = checksum
        raise DataError(f"{path} is corrupt: {kind} {_digest(raw, kind)} != expected {want}")


def read_idx(path: Path, checksum: tuple[str, str] | None = None) -> np.ndarray:
    """Read a gzipped IDX file (LeCun et al.'s MNIST format), checking its ``(kind, hex)`` md5 or sha256.

    Raises DataError for a corrupt file or a bad header."""
    raw = path.read_bytes()
    _check(path, raw, checksum)
    data = gzip.decompress(raw)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 8:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _missing(name: str, path: Path, folder: str, url: str) -> DataError:
    where = f"from {url} " if url else ""
    return DataError(
        f"{name} not found: {path} does not exist; put the file {where}there (GANBENCH_DATA / --data-root is "
        f"the folder holding {folder}/), or unset both to let torchvision download it into <workdir>/data"
    )


def _download(name: str, make: Callable[[], Any], download_dir: Path) -> Any:
    try:
        return make()
    except Exception as e:  # no network, no permission
        raise DataError(
            f"{name} is not available offline and the download into {download_dir} failed "
            f"({type(e).__name__}: {' '.join(str(e).split())[:160]}); set GANBENCH_DATA or --data-root to the "
            "folder holding it"
        ) from None


@dataclass(frozen=True)
class IdxDataset:
    """A dataset of gzipped IDX files under ``<root>/<folder>``: ``files[split] = (images, labels)``,
    ``checksums[file] = (kind, hex)``; ``torchvision_cls(root, train=, download=, **kwargs)`` downloads it."""

    name: str
    folder: str
    files: dict[str, tuple[str, str]]
    checksums: dict[str, tuple[str, str]]
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
                raise _missing(f"{self.name} {source.split} split", absent, self.folder, self.url)
            root = None if absent is not None else root
        if root is None:
            try:
                ds = _download(self.name, lambda: self._dataset(source.download_dir, source.split), source.download_dir)
            except DataError as e:
                if absent is None:
                    raise
                missing = _missing(f"{self.name} {source.split} split", absent, self.folder, self.url)
                raise DataError(f"{missing} (the download failed: {e})") from None
            images, labels = ds.data.numpy(), ds.targets.numpy()
        else:
            images, labels = (read_idx(p, self.checksums.get(p.name)) for p in paths)
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


def _torchvision_md5(cls_name: str) -> dict[str, tuple[str, str]]:
    import torchvision

    return {f: ("md5", md5) for f, md5 in getattr(torchvision.datasets, cls_name).resources}


def _mnist_like(name: str, folder: str, cls: str, classes: tuple[str, ...], url: str, summary: str) -> None:
    files = {
        s: (f"{p}-images-idx3-ubyte.gz", f"{p}-labels-idx1-ubyte.gz") for s, p in (("train", "train"), ("test", "t10k"))
    }
    ds = IdxDataset(name, f"{folder}/raw", files, _torchvision_md5(cls), cls, classes=classes, url=url)
    DATASETS.register(name, ds.spec((1, 28, 28), summary))


_mnist_like(
    "mnist",
    "MNIST",
    "MNIST",
    tuple(string.digits),
    "http://yann.lecun.com/exdb/mnist/",
    "digits, 60k/10k",
)
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


STACKED_SEEDS = {"train": 0, "test": 1}  # the fixed draws of stacked-mnist's splits (part of the dataset)


def _stacked_mnist(source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Stacked MNIST (Metz et al. 2017, sec. 3.3; VEEGAN; PacGAN): each image's 3 channels are 3 MNIST digits
    of the same split, drawn independently (channel c takes the split in the order of its own seeded
    permutation, so every digit appears once per channel); label ``100 * d0 + 10 * d1 + d2``, 1 000 modes.
    60 000 / 10 000 images, the same for every user (seeds ``STACKED_SEEDS``)."""
    images, labels, _ = DATASETS.get("mnist").load(source)
    g = torch.Generator().manual_seed(STACKED_SEEDS[source.split])
    perms = [torch.randperm(len(images), generator=g) for _ in range(3)]
    stacked = torch.cat([images[p] for p in perms], dim=1)
    return stacked, 100 * labels[perms[0]] + 10 * labels[perms[1]] + labels[perms[2]], STACKED_CLASSES


STACKED_CLASSES = tuple(f"{i:03d}" for i in range(1000))
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

# sha256 of the official EMNIST letters files (members of the NIST gzip.zip); see shared/data/PROVENANCE.txt
EMNIST_SHA256 = {
    "emnist-letters-train-images-idx3-ubyte.gz": "6288f418a917e007bf5fddb823a2dc7a5c6a35031401b93292a539cb12bd881f",
    "emnist-letters-train-labels-idx1-ubyte.gz": "9759af91ea6bccdf07a6040fd085861f2ec88e37f7c3f5760f6feb57106fbe5c",
    "emnist-letters-test-images-idx3-ubyte.gz": "50f0e93d75b99b463e9760b8345866f22587fa2c2fba472730a5ba09c693412d",
    "emnist-letters-test-labels-idx1-ubyte.gz": "924955c31fe7fd809b7303b5c0141282955f4b8390c74cdfd5d80435e0f4b4cb",
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
        {k: ("sha256", v) for k, v in EMNIST_SHA256.items()},
        "EMNIST",
        (("split", _split),),
        transposed=True,
        label_offset=1 if _split == "letters" else 0,
        classes=_classes,
        url="https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
        download_if_absent=_split != "letters",  # no per-file checksums: torchvision's zip check instead
    )
    DATASETS.register(f"emnist-{_split}", _ds.spec((1, 28, 28), f"EMNIST, {_sizes}"))

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def cifar_files() -> dict[str, list[tuple[str, str]]]:
    """{split: [(batch file, md5)]}: torchvision's list of CIFAR-10's pickled batches and their md5."""
    import torchvision

    c = torchvision.datasets.CIFAR10
    return {"train": [tuple(x) for x in c.train_list], "test": [tuple(x) for x in c.test_list]}


@functools.lru_cache(maxsize=4)
def _load_cifar10(source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    if source.root is None:
        import torchvision

        ds = _download(
            "cifar10",
            lambda: torchvision.datasets.CIFAR10(
                str(source.download_dir), train=source.split == "train", download=True
            ),
            source.download_dir,
        )
        images, labels = ds.data, np.asarray(ds.targets)
    else:
        parts, label_parts = [], []
        for name, md5 in cifar_files()[source.split]:
            path = source.root / CIFAR_FOLDER / name
            if not path.is_file():
                raise _missing(f"cifar10 {source.split} split", path, CIFAR_FOLDER, CIFAR_URL + " (unpacked)")
            raw = path.read_bytes()
            _check(path, raw, ("md5", md5))
            entry = pickle.loads(raw, encoding="latin1")  # torchvision's reader, same format
            parts.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            label_parts.append(np.asarray(entry.get("labels", entry.get("fine_labels"))))
        images, labels = np.concatenate(parts).transpose(0, 2, 3, 1), np.concatenate(label_parts)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return x, torch.from_numpy(labels.astype(np.int64)), CIFAR_CLASSES


def _torchvision_cifar10(root: Path | None, cache: Path, split: str, transform: Any) -> Any:
    import torchvision

    return torchvision.datasets.CIFAR10(
        str(root or cache), train=split == "train", download=root is None, transform=transform
    )


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
        lambda split: tuple(f"{CIFAR_FOLDER}/{f}" for f, _ in cifar_files()[split]),
        CIFAR_URL,
    ),
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_SIZE, FOLDER_CHANNELS = 64, 3  # data.image_size / data.channels defaults for a folder of images


def _classes(folders: list[Path]) -> tuple[str, ...]:
    """The class names of an ImageFolder layout: the sub-folders of any of ``folders``, sorted (the same
    label for a class in train and test); ``("images",)`` for flat folders."""
    names = {d.name for f in folders for d in f.iterdir() if d.is_dir() and not d.name.startswith(".")}
    return tuple(sorted(names)) or ("images",)


def _images_in(folder: Path, classes: tuple[str, ...]) -> tuple[list[Path], list[int]]:
    """Image paths and labels: one class per sub-folder (ImageFolder's layout), or all of a flat folder."""

    def found(p: Path) -> list[Path]:
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)

    if classes == ("images",):
        paths = found(folder)
        return paths, [0] * len(paths)
    pairs = [(f, y) for y, c in enumerate(classes) if (folder / c).is_dir() for f in found(folder / c)]
    return [f for f, _ in pairs], [y for _, y in pairs]


@functools.lru_cache(maxsize=4)
def _load_folder(source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    from PIL import Image
    from torchvision.transforms import v2

    if source.root is None:
        raise DataError("dataset 'folder' needs data.root (--data-root): the folder of images")
    root = source.root
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    classes = _classes([root / "train", root / "test"] if has_splits else [root])
    paths, labels = _images_in(root / source.split if has_splits else root, classes)
    if not has_splits:  # every 10th image in sorted order (class by class) is the test split
        keep = [i for i in range(len(paths)) if (i % 10 == 9) == (source.split == "test")]
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    if not paths:
        layout = f"{root}/{source.split}/" if has_splits else f"every 10th image of {root}"
        raise DataError(
            f"the {source.split} split of {root} has no images ({layout}; suffixes {', '.join(IMAGE_SUFFIXES)}); "
            "give at least 10 images, or train/ and test/ sub-folders"
        )
    size, channels = source.image_size or FOLDER_SIZE, source.channels or FOLDER_CHANNELS
    mode = "RGB" if channels == 3 else "L"
    resize = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    out = torch.empty(len(paths), channels, size, size, dtype=torch.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as image:
                out[i] = resize(v2.functional.pil_to_tensor(image.convert(mode)))
        except Exception as e:
            raise DataError(f"{p} cannot be read as an image ({type(e).__name__}: {str(e)[:100]})") from None
    return out, torch.tensor(labels, dtype=torch.int64), classes


DATASETS.register(
    "folder",
    DatasetSpec(
        None,
        None,
        ("train", "test"),
        _load_folder,
        "your images in data.root",
    ),
)


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
    """Whether ``name``'s files are under ``root``: ``"yes"``, ``"no: <split> missing"``, or how it is found."""
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


def _convert(images: Tensor, size: int | None, channels: int | None) -> Tensor:
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
        images = _convert(images, cfg.image_size, cfg.channels)
    origin = str(source.root) if spec.image_shape is None and source.root else ""
    return ImageData(cfg.dataset, split, images.to(device), labels.to(device), spec, tuple(classes), origin)


def image_shape(cfg: DataConfig) -> tuple[int, int, int] | None:
    """The ``(C, H, W)`` of ``cfg``'s images without loading them (None for ``folder`` before it is read)."""
    spec = DATASETS.get(cfg.dataset)
    if spec.image_shape is None:
        return (cfg.channels or FOLDER_CHANNELS, cfg.image_size or FOLDER_SIZE, cfg.image_size or FOLDER_SIZE)
    c, h, w = spec.image_shape
    return (cfg.channels or c, cfg.image_size or h, cfg.image_size or w)


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
    images per batch; ``per_epoch``: batches per pass over the split; ``sampler.labelled(index)``: the same
    batch with its labels, ``(images, labels (batch_size,) int64)`` (what a class-conditional GAN trains on).
    :class:`BatchSampler` is ganbench's; ``bench.speed.LoaderSampler`` wraps a torchvision ``DataLoader`` for
    the baseline.
    """

    batch_size: int
    per_epoch: int

    def __call__(self, index: int) -> Tensor: ...

    def labelled(self, index: int) -> tuple[Tensor, Tensor]: ...


class BatchSampler:
    """Shuffled batches drawn on the device, addressed by a global batch index.

    Batch ``i`` is batch ``i % per_epoch`` of epoch ``i // per_epoch``; each epoch's permutation comes from
    a CPU generator seeded with ``(seed, epoch)``, so the order is fixed by the seed and a resumed run
    continues where it stopped by index alone. The last incomplete batch of an epoch is dropped.

    ``labels`` ``(N,)`` (optional): the images' labels, for :meth:`labelled`.

    Raises ConfigError if ``batch_size`` exceeds the number of images.
    """

    def __init__(
        self,
        images: Tensor,
        batch_size: int,
        seed: int,
        device: torch.device | str | None = None,
        labels: Tensor | None = None,
    ):
        check_batch_size(batch_size, images.shape[0])
        self.images, self.batch_size, self.seed, self.labels = images, batch_size, seed, labels
        self.device = torch.device(device) if device is not None else images.device
        self.per_epoch = images.shape[0] // batch_size
        self._epoch, self._perm = -1, None

    def _index(self, index: int) -> Tensor:
        epoch, pos = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.images.shape[0], generator=g).to(self.images.device)
            self._epoch = epoch
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def __call__(self, index: int) -> Tensor:
        """Batch ``index`` as float ``(batch_size, C, H, W)`` in ``[-1, 1]`` on ``device`` (default: the
        images' device; images held on the host are copied batch by batch, the plain path)."""
        return to_float(self.images[self._index(index)].to(self.device, non_blocking=True))

    def labelled(self, index: int) -> tuple[Tensor, Tensor]:
        """Batch ``index`` and its labels ``(batch_size,)`` int64 on ``device``.

        Raises ValueError if the sampler was made without labels."""
        if self.labels is None:
            raise ValueError("this BatchSampler has no labels (pass labels= to sample labelled batches)")
        idx = self._index(index)
        images = to_float(self.images[idx].to(self.device, non_blocking=True))
        return images, self.labels[idx.to(self.labels.device)].to(self.device, non_blocking=True)
