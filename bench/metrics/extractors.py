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
from bench.data import DATASETS
from bench.data.samples import sha256_file
from bench.errors import ConfigError, UserError
from bench.metrics.lenet import load_classifier

WEIGHTS_DIR = Path(__file__).parent / "weights"
INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-6726825d.pth
INCEPTION_SHA256_PREFIX = "6726825d"  # torch hub names files by their sha256 prefix


class WeightsUnavailable(UserError):
    """A feature extractor's weights cannot be found or downloaded."""


sha256_of = lru_cache(maxsize=16)(sha256_file)  # weights files are hashed once per process


@dataclass(frozen=True)
class Shipped:
    """Weights shipped in the package: file name, sha256, and how they were made and how good they are."""

    file: str
    sha256: str
    note: str


# lenet-<dataset> weights in the package, pinned by sha256 (made by `ganbench extractor train`)
SHIPPED = {
    "mnist": Shipped(
        "lenet-mnist.pt",
        "4b832653f1828778061bb80d9ab31b0639bdf5960471a63bfc7c98dd18e2593e",
        "99.35 % test accuracy",
    ),
    # ganbench extractor train --dataset fashion-mnist --hflip --out bench/metrics/weights/lenet-fashion-mnist.pt
    "fashion-mnist": Shipped(
        "lenet-fashion-mnist.pt",
        "7689c60960c32b934aded9d270ad75a4a4994e5344fea42c612dfd59ea7105ac",
        "91.41 % test accuracy",
    ),
    # ganbench extractor train --dataset emnist-letters --epochs 6 --out bench/metrics/weights/lenet-emnist-letters.pt
    "emnist-letters": Shipped(
        "lenet-emnist-letters.pt",
        "fe201832e2362eb68d2ae713d42040c88010517738a6c0101a7a2bc3dfda7ea2",
        "94.45 % test accuracy",
    ),
}
LENET_WEIGHTS = WEIGHTS_DIR / SHIPPED["mnist"].file
LENET_SHA256 = SHIPPED["mnist"].sha256
LABELS = {
    "mnist": "LeNet",
    "fashion-mnist": "LeNet-F",
    "emnist-letters": "LeNet-L",
    "kmnist": "LeNet-K",
    "stacked-mnist": "LeNet×3",
}


def workspace_weights(workdir: str | os.PathLike[str], dataset: str) -> Path:
    """Where ``ganbench extractor train --dataset DATASET`` writes its weights by default."""
    return Path(workdir) / "extractors" / f"lenet-{dataset}.pt"


class FeatureExtractorLeNet(FeatureExtractorBase):
    """torch-fidelity extractor over :class:`LeNet`, one registered name per dataset
    (``ganbench-lenet-<dataset>``).

    Input: uint8 ``(N, C, S, S)`` in ``[0, 255]`` of the dataset's shape. Features: ``"penultimate"``
    ``(N, 128)`` float32 (FID, precision/recall); ``"penultimate-unit"``: the same scaled to norm sqrt(128)
    (KID: the kernel ``(x.y / d + 1)^3`` then sees the cosine similarity, see ``EvalConfig``); ``"logits"``
    ``(N, K)`` float32 (IS). Raises ValueError (torch-fidelity's convention) for other inputs, or when a
    shipped weights file does not have its pinned sha256.
    """

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kw):
        super().__init__(name, features_list)
        self.dataset = name.removeprefix("ganbench-lenet-")
        spec = EXTRACTORS.get(f"lenet-{self.dataset}")
        self.shape = spec.image_shape
        path = Path(feature_extractor_weights_path or spec.weights(None, False))
        shipped = SHIPPED.get("mnist" if spec.stacked else self.dataset)
        if shipped and path.resolve() == (WEIGHTS_DIR / shipped.file).resolve() and sha256_of(path) != shipped.sha256:
            raise ValueError(f"{path} has sha256 {sha256_of(path)}, expected {shipped.sha256}; reinstall ganbench")
        self.model = load_classifier(path, self.shape, spec.num_classes, spec.stacked)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"lenet-{self.dataset} expects uint8 images (N, {', '.join(map(str, self.shape))}), "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        penultimate, logits = self.model.features(x.float() / 255.0)  # (N, 128) or (N, 3 * 128) stacked
        unit = torch.nn.functional.normalize(penultimate.double(), dim=1).float() * penultimate.shape[1] ** 0.5
        features = {"penultimate": penultimate, "penultimate-unit": unit, "logits": logits}
        return tuple(features[f] for f in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate", "penultimate-unit", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "penultimate", "kid": "penultimate-unit", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:  # never called: can_be_compiled() is False
        raise NotImplementedError("lenet extractors are not compiled")


FeatureExtractorLeNetMNIST = FeatureExtractorLeNet  # the name of ganbench 0.1


def _lenet_weights(dataset: str) -> Callable[[str | None, bool], Path]:
    """The weights locator of ``lenet-<dataset>``: the user's file, else the shipped file, else a
    WeightsUnavailable that says how to train one."""

    def locate(path: str | None, download: bool) -> Path:
        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                raise WeightsUnavailable(f"eval.extractors.lenet-{dataset}.weights = {path!r} is not a file")
            if download:
                check_readable(str(p))
            return p
        if dataset in SHIPPED:
            return WEIGHTS_DIR / SHIPPED[dataset].file
        rgb = " (or --extractor inception-v3-compat for RGB images)" if dataset == "cifar10" else ""
        raise WeightsUnavailable(
            f"no lenet-{dataset} weights are shipped: train them with `ganbench extractor train --dataset {dataset}` "
            f"(written to <workdir>/extractors/lenet-{dataset}.pt, found there by every command){rgb}"
        )

    return locate


def inception_cache_path() -> Path:
    """Where torch-fidelity's download lands: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


@lru_cache(maxsize=8)
def check_readable(path: str) -> None:
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
            check_readable(str(p))
        return p
    cached = inception_cache_path()
    if cached.is_file():
        if download:
            check_readable(str(cached))
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
    protocol line), or None when any weights are as good; dataset: the one dataset whose runs it measures
    (a classifier trained on it), None for any; num_classes: its classifier's classes (0: not a classifier);
    kid_features: the features KID is computed on, recorded in the protocol; stacked: the MNIST classifier
    applied per channel (``lenet-stacked-mnist``, ``bench.metrics.lenet.StackedLeNet``); coverage: how
    ``bench.metrics.coverage`` counts modes, ``"real"`` (against the reference's class histogram) or
    ``"uniform"`` (Stacked MNIST's protocol: a mode is covered by one sample; KL to the uniform); fd_name: the
    Fréchet distance's name in table headers (``FD_DINOv2`` for DINOv2's space, as Stein et al. 2023 name it);
    has_logits: it has class logits, so IS means something (False: IS is not computed); opt_in: considered
    only when named (``--extractor``, ``eval.extractor`` or ``eval.extractors.<name>``; DINOv2, CLIP, VGG16:
    fourteen heavy spaces that no run should compute, or list as skipped, unasked);
    takes_weights_path: torch-fidelity loads the weights from the located file (False: it finds them itself,
    through torch hub; the file located is hashed for the protocol only).
    """

    fidelity_name: str
    label: str
    image_shape: tuple[int, int, int] | None
    weights: Callable[[str | None, bool], Path]
    summary: str = ""
    heavy: bool = False
    standard_sha256: str | None = None
    dataset: str | None = None
    num_classes: int = 0
    kid_features: str = "pool (2048-d)"
    stacked: bool = False
    coverage: str = "real"
    fd_name: str = "FID"
    has_logits: bool = True
    opt_in: bool = False
    takes_weights_path: bool = True

    @property
    def shipped(self) -> bool:
        """A dataset's classifier whose weights come with ganbench (pinned by sha256)."""
        return self.dataset is not None and self.standard_sha256 is not None

    def reads(self, image_shape: tuple[int, int, int]) -> bool:
        """Whether it can read images of ``image_shape`` ``(C, H, W)``."""
        shape = tuple(image_shape)
        return (self.image_shape is None or shape == self.image_shape) and shape[0] in (1, 3)

    def applies_to(self, dataset: str, image_shape: tuple[int, int, int]) -> bool:
        """Whether runs on ``dataset`` consider it without being asked: it reads the images, is not a
        classifier of another dataset, and is not ``opt_in``."""
        return self.reads(image_shape) and self.dataset in (None, dataset) and not self.opt_in

    def weights_note(self, sha256: str) -> str:
        """``", NOT the standard weights"`` when ``sha256`` is not the standard file's, else ``""``."""
        if self.standard_sha256 and not sha256.startswith(self.standard_sha256):
            return ", NOT the standard weights"
        return ""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` as the extractor reads it (greyscale repeated to RGB where needed)."""
        if self.image_shape is None and images.shape[1] == 1:
            return images.expand(-1, 3, -1, -1)
        return images


EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor", ExtractorSpec)


def register_lenet(dataset: str) -> ExtractorSpec:
    """Register ``lenet-<dataset>`` (ganbench and torch-fidelity) for a registered dataset with a fixed shape."""
    data = DATASETS.get(dataset)
    if data.image_shape is None or not data.num_classes:
        raise ValueError(f"dataset {dataset!r} has no fixed image shape and classes: no LeNet extractor for it")
    stacked = dataset == "stacked-mnist"  # the MNIST classifier on each channel
    weights_of = "mnist" if stacked else dataset
    shipped = SHIPPED.get(weights_of)
    summary = f"{dataset} classifier, {shipped.note}" if shipped else f"{dataset} classifier"
    if stacked:
        summary = f"lenet-mnist on each channel ({shipped.note}); 1 000 classes"
    spec = ExtractorSpec(
        f"ganbench-lenet-{dataset}",
        LABELS.get(dataset, f"LeNet-{dataset}"),
        data.image_shape,
        _lenet_weights(weights_of),
        summary,
        standard_sha256=shipped.sha256 if shipped else None,
        dataset=dataset,
        num_classes=data.num_classes,
        kid_features=(
            "penultimate of each channel (3 x 128), scaled to norm sqrt(384)"
            if stacked
            else "penultimate, scaled to norm sqrt(128)"
        ),
        stacked=stacked,
        coverage="uniform" if stacked else "real",
    )
    EXTRACTORS.register(f"lenet-{dataset}", spec)
    if spec.fidelity_name not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(spec.fidelity_name, FeatureExtractorLeNet)
    return spec


for _name in DATASETS.names():
    if DATASETS.get(_name).image_shape is not None:
        register_lenet(_name)
EXTRACTORS.register(
    "inception-v3-compat",
    ExtractorSpec(
        "inception-v3-compat",
        "Inception",
        None,
        _inception_weights,
        "the FID of papers (torch-fidelity's TF port); --inception-weights",
        heavy=True,
        standard_sha256=INCEPTION_SHA256_PREFIX,
    ),
)


def locate_weights(name: str, path: str | None, workdir: str | os.PathLike[str] | None, download: bool) -> Path:
    """The weights of extractor ``name``: ``path`` (the user's), else its standard or shipped weights, else
    for a ``lenet-<dataset>`` without shipped weights the file ``ganbench extractor train`` wrote into the
    workspace. Raises WeightsUnavailable saying how to get them."""
    spec = EXTRACTORS.get(name)
    if not path and workdir is not None and spec.dataset is not None and not spec.shipped:
        trained = workspace_weights(workdir, spec.dataset)
        if trained.is_file():
            path = str(trained)
    return spec.weights(path, download)


def check_extractor(name: str, image_shape: tuple[int, int, int]) -> ExtractorSpec:
    """The registered extractor ``name``; raises ConfigError if it cannot read images of ``image_shape``."""
    spec = EXTRACTORS.get(name)
    if not spec.reads(image_shape):
        raise ConfigError(
            f"eval.extractor = {name!r} reads images of shape {spec.image_shape}, the dataset has "
            f"{tuple(image_shape)}; use inception-v3-compat (any size), a lenet trained on these images "
            "(ganbench extractor train), or eval.enabled = false"
        )
    return spec
