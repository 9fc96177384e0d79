"""A model's samples written by other code, read into the form ganbench scores: uint8 ``(N, C, H, W)`` and
optional int64 labels ``(N,)`` (``ganbench eval --samples PATH``).

PATH is one of:

- a folder of images (PNG/JPEG/...; decoded by PIL, never resized): flat, or one sub-folder per class
  (torchvision ``ImageFolder``'s layout) for class-conditional samples, the sub-folders named by the
  dataset's class names or by their label ``0 .. K-1``. RGB images of a greyscale dataset are accepted when
  their three channels are equal (``torchvision.utils.save_image`` writes greyscale images so);
- a ``.npz`` with ``x`` (the images) and optionally ``y`` (int labels in ``[0, K)``);
- a ``.npy`` holding the images alone.

Images in an array are ``(N, H, W)`` (greyscale), ``(N, C, H, W)`` or ``(N, H, W, C)``; uint8 in ``[0, 255]``,
or float in the range named by ``value_range`` (``"-1,1"``, ``"0,1"``; quantised to uint8 by rounding, as
``bench.data.to_uint8`` does with ganbench's own samples, so the same images as uint8 and as float give
identical numbers). Anything else raises :class:`bench.errors.DataError` with one line saying what was found
and what is expected.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from bench.data.batches import to_uint8
from bench.data.folder import IMAGE_SUFFIXES
from bench.errors import DataError


class SamplesWarning(UserWarning):
    """Samples that fit their stated range but fill little of it (e.g. [0, 1] images given as -1,1)."""


RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0), "0,255": (0.0, 255.0)}
TOLERANCE = 1e-3  # float samples may overshoot their range by this much (a tanh output, rounding)


@dataclass(frozen=True)
class Samples:
    """Samples read from ``path``: ``images`` uint8 ``(N, C, H, W)``; ``labels`` int64 ``(N,)`` or None;
    ``kind``: ``"folder"``, ``"npz"`` or ``"npy"``; ``sha256``: of the file (of a folder: of its image files'
    relative paths and bytes, in sorted order), recorded as the run's provenance."""

    images: Tensor
    labels: Tensor | None
    kind: str
    sha256: str
    path: str


def parse_range(value_range: str | None) -> tuple[float, float] | None:
    """``"-1,1"`` -> ``(-1.0, 1.0)``; None stays None. Raises DataError for any other value."""
    if value_range is None:
        return None
    key = value_range.replace(" ", "")
    if key not in RANGES:
        raise DataError(f"--range {value_range!r} is not allowed; choose from {', '.join(RANGES)}")
    return RANGES[key]


def read_samples(
    path: str | Path,
    image_shape: tuple[int, int, int],
    classes: tuple[str, ...] = (),
    value_range: str | None = None,
) -> Samples:
    """Read samples from ``path`` for a dataset of ``image_shape`` ``(C, H, W)`` with class names ``classes``.

    Raises DataError for a missing or unreadable path, a shape, channel count, dtype or range other than the
    dataset's, or labels outside ``[0, len(classes))``.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        images, labels, sha = _read_folder(p, image_shape, classes)
        kind = "folder"
    elif p.is_file():
        if p.suffix.lower() not in (".npz", ".npy"):
            raise DataError(f"--samples {str(p)!r}: expected a folder of images, a .npz or a .npy file")
        kind = p.suffix.lower()[1:]
        x, y = _read_array_file(p)
        images = to_images(x, image_shape, parse_range(value_range), f"{p.name}" + (":x" if kind == "npz" else ""))
        labels = None if y is None else check_labels(y, len(images), len(classes), f"{p.name}:y")
        sha = sha256_file(p)
    else:
        raise DataError(f"--samples {str(p)!r} does not exist")
    return Samples(images, labels, kind, sha, str(p.resolve()))


def _read_array_file(p: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if p.suffix.lower() == ".npy":
            return np.load(p, allow_pickle=False), None
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z.files:
                raise DataError(f"{p.name} has arrays {', '.join(z.files) or '(none)'}; expected x (and optionally y)")
            return z["x"], (z["y"] if "y" in z.files else None)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise DataError(f"{p} cannot be read as a NumPy {p.suffix} file ({first})") from None


def to_images(
    x: np.ndarray | Tensor, image_shape: tuple[int, int, int], value_range: tuple[float, float] | None, what: str
) -> Tensor:
    """Array ``x`` -> uint8 ``(N, C, H, W)`` of ``image_shape``; see the module's docstring for what is accepted.

    ``what`` names ``x`` in errors. Raises DataError."""
    c, h, w = image_shape
    t = _tensor(x, what)
    expected = f"(N, {c}, {h}, {w}) or (N, {h}, {w}, {c})" + (f" or (N, {h}, {w})" if c == 1 else "")
    if t.dim() == 3 and c == 1 and tuple(t.shape[1:]) == (h, w):
        t = t.unsqueeze(1)
    if t.dim() != 4:
        raise DataError(f"{what} has shape {tuple(t.shape)}; expected {expected} for this dataset")
    if tuple(t.shape[1:]) != (c, h, w) and tuple(t.shape[1:]) == (h, w, c):
        t = t.permute(0, 3, 1, 2)
    if tuple(t.shape[1:]) != (c, h, w):
        found_c = t.shape[1] if t.shape[2:] == (h, w) else t.shape[3] if t.shape[1:3] == (h, w) else None
        detail = f"{found_c} channels, the dataset has {c}" if found_c is not None else f"expected {expected}"
        raise DataError(f"{what} has shape {tuple(t.shape)}: {detail}")
    dtype = str(t.dtype).removeprefix("torch.")
    if t.dtype == torch.uint8:
        if value_range not in (None, RANGES["0,255"]):
            raise DataError(f"{what} is uint8 (0..255); --range applies to float samples only (or give 0,255)")
        return t.contiguous()
    if not t.dtype.is_floating_point:
        raise DataError(f"{what} has dtype {dtype}; expected uint8 (0..255) or float with --range -1,1 or 0,1")
    if value_range is None:
        raise DataError(f"{what} is {dtype}: say its range with --range -1,1 or --range 0,1")
    t = t.float()  # float32, as ganbench's own samples are quantised (bench.data.to_uint8)
    lo, hi = value_range
    if not torch.isfinite(t).all():
        raise DataError(f"{what} holds NaN or infinite values")
    found_lo, found_hi = float(t.min()), float(t.max())
    slack = TOLERANCE * (hi - lo)
    if found_lo < lo - slack or found_hi > hi + slack:
        raise DataError(
            f"{what} has values in [{found_lo:.4g}, {found_hi:.4g}], outside --range {lo:g},{hi:g}"
            + ("; try --range -1,1" if found_lo < 0 <= lo else "")
            + ("; images in 0..255: --range 0,255" if found_hi > 1 + slack and hi <= 1 else "")
        )
    if found_lo >= lo + 0.25 * (hi - lo) or found_hi <= lo + 0.75 * (hi - lo):
        warnings.warn(
            f"{what} spans only [{found_lo:.3g}, {found_hi:.3g}] of --range {lo:g},{hi:g}: is that its range?",
            SamplesWarning,
            stacklevel=2,
        )
    if (lo, hi) == (-1.0, 1.0):
        return to_uint8(t).contiguous()  # the very function ganbench's samples go through
    return ((t - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8).contiguous()


def _tensor(x: np.ndarray | Tensor, what: str) -> Tensor:
    """``x`` as a CPU tensor; raises DataError for dtypes torch cannot hold (strings, objects, uint16+)."""
    if isinstance(x, Tensor):
        return x.detach().cpu()
    a = np.asarray(x)
    if a.dtype.kind not in "uif" or a.dtype.itemsize > 8 or (a.dtype.kind == "u" and a.dtype.itemsize > 1):
        raise DataError(f"{what} has dtype {a.dtype}; expected uint8 (0..255) or float with --range -1,1 or 0,1")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return torch.from_numpy(np.ascontiguousarray(a))


def check_labels(y: np.ndarray | Tensor, n: int, num_classes: int, what: str) -> Tensor:
    """Labels ``y`` as int64 ``(n,)`` in ``[0, num_classes)``; raises DataError otherwise."""
    a = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if a.dtype.kind not in "iu" or a.dtype == np.bool_:
        raise DataError(f"{what} has dtype {a.dtype}; expected integer class labels")
    t = torch.from_numpy(a.astype(np.int64))
    if tuple(t.shape) != (n,):
        raise DataError(f"{what} has shape {tuple(t.shape)}; expected ({n},), one label per image")
    if num_classes == 0:
        raise DataError(f"{what}: the dataset has no classes, so samples cannot carry labels")
    if n and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise DataError(f"{what} has labels in [{int(t.min())}, {int(t.max())}]; expected [0, {num_classes})")
    return t.to(torch.int64)


def _read_folder(root: Path, image_shape: tuple[int, int, int], classes: tuple[str, ...]):
    def found(p: Path) -> list[Path]:  # hidden files and folders (.ipynb_checkpoints) are not samples
        return sorted(
            f
            for f in p.rglob("*")
            if f.is_file()
            and f.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in f.relative_to(p).parts)
        )

    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    loose = [f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if subdirs and loose:
        raise DataError(f"{root} mixes images and sub-folders; put every image in a class sub-folder, or none")
    if subdirs:
        label_of = {str(i): i for i in range(len(classes))} | {name: i for i, name in enumerate(classes)}
        unknown = [d.name for d in subdirs if d.name not in label_of]
        if unknown:
            allowed = ", ".join(classes[:12]) + (" ..." if len(classes) > 12 else "") if classes else "(none)"
            raise DataError(
                f"{root}: sub-folder {unknown[0]!r} is not a class of the dataset; use its class names "
                f"({allowed}) or labels 0..{max(len(classes) - 1, 0)}"
            )
        pairs = [(f, label_of[d.name]) for d in subdirs for f in found(d)]
    else:
        pairs = [(f, -1) for f in found(root)]
    if not pairs:
        raise DataError(f"{root} holds no images (suffixes {', '.join(IMAGE_SUFFIXES)})")
    images = torch.stack([_decode(f, image_shape) for f, _ in pairs])
    labels = torch.tensor([y for _, y in pairs], dtype=torch.int64) if subdirs else None
    h = hashlib.sha256()
    for f, _ in pairs:
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return images, labels, h.hexdigest()


def _decode(path: Path, image_shape: tuple[int, int, int]) -> Tensor:
    """One image file as uint8 ``image_shape`` (no resizing). Raises DataError."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    c, h, w = image_shape
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise DataError(f"{path} is a {mode} image (16-bit or float); write 8-bit images (PNG mode L or RGB)")
            t = pil_to_tensor(image.convert("L" if mode in ("1", "L", "LA") else "RGB"))
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path} cannot be read as an image ({type(e).__name__}: {str(e)[:100]})") from None
    if tuple(t.shape[1:]) != (h, w):
        raise DataError(f"{path} is {t.shape[2]}x{t.shape[1]} pixels; the dataset's images are {w}x{h}")
    if t.shape[0] == 3 and c == 1:
        if not (torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])):
            raise DataError(f"{path} is a colour image; the dataset is greyscale (1 channel)")
        t = t[:1]
    elif t.shape[0] == 1 and c == 3:
        raise DataError(f"{path} is a greyscale image; the dataset has 3 channels (RGB)")
    return t


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
