"""Feature extractors for FID / IS / KID / precision-recall, registered with ganbench and torch-fidelity.

- ``lenet-mnist`` (default, offline): the project's MNIST classifier (``bench.metrics.lenet``), its weights
  shipped in the package and pinned by sha256 so that numbers are comparable between users. FID, KID and
  precision/recall use its 128-d penultimate features; IS uses its logits (softmax inside torch-fidelity).
- ``inception-v3-compat``: torch-fidelity's port of the TensorFlow FID Inception-v3, the features that
  papers report (FID/KID/PRC on the 2048-d pool features, IS on the logits). Greyscale images are repeated
  to 3 channels (uint8, already rounded); the resize to 299x299 is torch-fidelity's own. Weights:
  ``eval.extractors.inception-v3-compat.weights`` / ``--inception-weights``, else torch hub's cache, else
  torch-fidelity's download; offline without the file a :class:`WeightsUnavailable` error names the file and
  where to put it. It is *heavy*: ``use = "auto"`` computes it only on a GPU.

Adding an extractor is one :class:`ExtractorSpec` registered in :data:`EXTRACTORS` (and, for a new network, a
torch-fidelity ``FeatureExtractorBase``): its label, the shape it reads, where its weights are, whether it is
heavy and the sha256 of its standard weights travel with it; evaluation, protocol lines and reports read them
from there (reports from the runs' tags).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from architectures.registry import Registry
from bench.errors import ConfigError, UserError
from bench.metrics.lenet import LeNet

LENET_WEIGHTS = Path(__file__).parent / "weights" / "lenet-mnist.pt"
LENET_SHA256 = "4b832653f1828778061bb80d9ab31b0639bdf5960471a63bfc7c98dd18e2593e"
INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-6726825d.pth
INCEPTION_SHA256_PREFIX = "6726825d"  # torch hub names files by their sha256 prefix


class WeightsUnavailable(UserError):
    """A feature extractor's weights cannot be found or downloaded."""


@lru_cache(maxsize=16)
def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureExtractorLeNetMNIST(FeatureExtractorBase):
    """torch-fidelity extractor over :class:`LeNet`.

    Input: uint8 ``(N, 1, 28, 28)`` in ``[0, 255]``. Features: ``"penultimate"`` ``(N, 128)`` float32,
    ``"logits"`` ``(N, 10)`` float32. Raises ValueError (torch-fidelity's convention) for other inputs, or
    when the packaged weights file does not have the pinned sha256.
    """

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kw):
        super().__init__(name, features_list)
        path = Path(feature_extractor_weights_path or LENET_WEIGHTS)
        if path.resolve() == LENET_WEIGHTS.resolve() and sha256_of(path) != LENET_SHA256:
            raise ValueError(f"{path} has sha256 {sha256_of(path)}, expected {LENET_SHA256}; reinstall ganbench")
        self.model = LeNet()
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"lenet-mnist expects uint8 images (N, 1, 28, 28), got {x.dtype} {tuple(x.shape)}")
        penultimate, logits = self.model.features(x.float() / 255.0)
        features = {"penultimate": penultimate, "logits": logits}
        return tuple(features[f] for f in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)


def _lenet_weights(path: str | None, download: bool) -> Path:
    return LENET_WEIGHTS


def inception_cache_path() -> Path:
    """Where torch-fidelity's download lands: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


@lru_cache(maxsize=8)
def _check_readable(path: str) -> None:
    """Raise WeightsUnavailable unless torch reads ``path`` as weights (tensors only)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsUnavailable(f"{path} is not a weights file torch can read ({first[:200]})") from None


def _inception_weights(path: str | None, download: bool) -> Path:
    """An explicit file, else the torch hub cache, else (if ``download``) torch-fidelity's download.

    Raises WeightsUnavailable naming the file and where to put it.
    """
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(
                f"--inception-weights / eval.extractors.inception-v3-compat.weights = {path!r} is not a file"
            )
        if download:  # it will be used: a file torch cannot read fails now, not after training
            _check_readable(str(p))
        return p
    cached = inception_cache_path()
    if cached.is_file():
        if download:
            _check_readable(str(cached))
        return cached
    hint = f"place {INCEPTION_FILE} (from {URL_INCEPTION_V3}) in {cached.parent}/ or pass --inception-weights PATH"
    if not download:
        raise WeightsUnavailable(f"Inception weights not found at {cached}; {hint}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(cached), progress=False)
    except Exception as e:  # offline: URLError / OSError / HTTPError
        raise WeightsUnavailable(f"Inception weights cannot be downloaded ({type(e).__name__}); {hint}") from None
    return cached


@dataclass(frozen=True)
class ExtractorSpec:
    """A ganbench feature extractor.

    fidelity_name: its name in torch-fidelity's registry; label: short name for table headers (recorded in
    every run's protocol tags); image_shape: the exact ``(C, H, W)`` it reads, or None for any size
    (channels: 1 or 3); weights(path, download) -> Path: locate the weights, ``path`` being the user's
    ``eval.extractors.<name>.weights`` (raises WeightsUnavailable); heavy: ``use = "auto"`` computes it only
    on a GPU; standard_sha256: prefix of the sha256 of the standard weights (other weights are flagged in the
    protocol line), or None when any weights are as good.
    """

    fidelity_name: str
    label: str
    image_shape: tuple[int, int, int] | None
    weights: Callable[[str | None, bool], Path]
    summary: str = ""
    heavy: bool = False
    standard_sha256: str | None = None

    def reads(self, image_shape: tuple[int, int, int]) -> bool:
        """Whether it can read images of ``image_shape`` ``(C, H, W)``."""
        shape = tuple(image_shape)
        return (self.image_shape is None or shape == self.image_shape) and shape[0] in (1, 3)

    def weights_note(self, sha256: str) -> str:
        """``", NOT the standard weights"`` when ``sha256`` is not the standard file's, else ``""``."""
        if self.standard_sha256 and not sha256.startswith(self.standard_sha256):
            return ", NOT the standard FID weights"
        return ""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` as the extractor reads it (greyscale repeated to RGB where needed)."""
        if self.image_shape is None and images.shape[1] == 1:
            return images.expand(-1, 3, -1, -1)
        return images


EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor", ExtractorSpec)
EXTRACTORS.register(
    "lenet-mnist",
    ExtractorSpec(
        "ganbench-lenet-mnist",
        "LeNet",
        (1, 28, 28),
        _lenet_weights,
        "MNIST classifier shipped with ganbench (99.35 % test accuracy, test-set IS 9.85); offline default",
    ),
)
EXTRACTORS.register(
    "inception-v3-compat",
    ExtractorSpec(
        "inception-v3-compat",
        "Inception",
        None,
        _inception_weights,
        "torch-fidelity's TF-compatible Inception-v3 (the FID of papers); weights downloaded or --inception-weights",
        heavy=True,
        standard_sha256=INCEPTION_SHA256_PREFIX,
    ),
)
if "ganbench-lenet-mnist" not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor("ganbench-lenet-mnist", FeatureExtractorLeNetMNIST)


def check_extractor(name: str, image_shape: tuple[int, int, int]) -> ExtractorSpec:
    """The registered extractor ``name``; raises ConfigError if it cannot read images of ``image_shape``."""
    spec = EXTRACTORS.get(name)
    if not spec.reads(image_shape):
        raise ConfigError(
            f"eval.extractor = {name!r} reads images of shape {spec.image_shape}, the dataset has {tuple(image_shape)}"
        )
    return spec
