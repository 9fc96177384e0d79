"""A user's own images (``folder``): ``data.root`` = a folder of images (PNG/JPEG/...), either flat or one
sub-folder per class (torchvision ``ImageFolder``'s layout); if it holds ``train/`` and ``test/`` those are
the splits, else every 10th image (sorted paths) is the test split. Images are decoded by PIL (as
torchvision's ``ImageFolder`` loader does; ``torchvision.io.decode_image`` is deprecated since torchvision
0.29) and resized (shorter side, then centre crop) to ``data.image_size`` [64] with ``data.channels`` [3]
channels by ``torchvision.transforms.v2``, once, at load time."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import Tensor

from bench.data.registry import DATASETS, DatasetSpec, Source
from bench.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_SIZE, FOLDER_CHANNELS = 64, 3  # data.image_size / data.channels defaults for a folder of images


def class_names(folders: list[Path]) -> tuple[str, ...]:
    """The class names of an ImageFolder layout: the sub-folders of any of ``folders``, sorted (the same
    label for a class in train and test); ``("images",)`` for flat folders."""
    names = {d.name for f in folders for d in f.iterdir() if d.is_dir() and not d.name.startswith(".")}
    return tuple(sorted(names)) or ("images",)


def images_in(folder: Path, classes: tuple[str, ...]) -> tuple[list[Path], list[int]]:
    """Image paths and labels: one class per sub-folder (ImageFolder's layout), or all of a flat folder."""

    def found(p: Path) -> list[Path]:
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)

    if classes == ("images",):
        paths = found(folder)
        return paths, [0] * len(paths)
    pairs = [(f, y) for y, c in enumerate(classes) if (folder / c).is_dir() for f in found(folder / c)]
    return [f for f, _ in pairs], [y for _, y in pairs]


def decode(paths: list[Path], size: int, channels: int) -> Tensor:
    """uint8 ``(N, channels, size, size)``: each image decoded by PIL, resized (shorter side) and centre-cropped.

    Raises DataError naming the first file that cannot be read as an image."""
    from PIL import Image
    from torchvision.transforms import v2

    mode = "RGB" if channels == 3 else "L"
    resize = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    out = torch.empty(len(paths), channels, size, size, dtype=torch.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as image:
                out[i] = resize(v2.functional.pil_to_tensor(image.convert(mode)))
        except Exception as e:
            raise DataError(f"{p} cannot be read as an image ({type(e).__name__}: {str(e)[:100]})") from None
    return out


@functools.lru_cache(maxsize=4)
def _load_folder(source: Source) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    if source.root is None:
        raise DataError("dataset 'folder' needs data.root (--data-root): the folder of images")
    root = source.root
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    classes = class_names([root / "train", root / "test"] if has_splits else [root])
    paths, labels = images_in(root / source.split if has_splits else root, classes)
    if not has_splits:  # every 10th image in sorted order (class by class) is the test split
        keep = [i for i in range(len(paths)) if (i % 10 == 9) == (source.split == "test")]
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    if not paths:
        layout = f"{root}/{source.split}/" if has_splits else f"every 10th image of {root}"
        raise DataError(
            f"the {source.split} split of {root} has no images ({layout}; suffixes {', '.join(IMAGE_SUFFIXES)}); "
            "give at least 10 images, or train/ and test/ sub-folders"
        )
    images = decode(paths, source.image_size or FOLDER_SIZE, source.channels or FOLDER_CHANNELS)
    return images, torch.tensor(labels, dtype=torch.int64), classes


DATASETS.register("folder", DatasetSpec(None, None, ("train", "test"), _load_folder, "your images in data.root"))
