"""Feature extractors for FID / IS / KID, registered with ganbench and with torch-fidelity.

``lenet-mnist`` (default, offline): the project's MNIST classifier (``bench.metrics.lenet``), its weights
shipped in the package and pinned by sha256 so that numbers are comparable between users. FID and KID use
its 128-d penultimate features; IS uses its logits (softmax inside torch-fidelity).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from architectures.registry import Registry
from bench.errors import ConfigError
from bench.metrics.lenet import LeNet

LENET_WEIGHTS = Path(__file__).parent / "weights" / "lenet-mnist.pt"
LENET_SHA256 = "4b832653f1828778061bb80d9ab31b0639bdf5960471a63bfc7c98dd18e2593e"


@lru_cache(maxsize=16)
def sha256_of(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class FeatureExtractorLeNetMNIST(FeatureExtractorBase):
    """torch-fidelity extractor over :class:`LeNet`.

    Input: uint8 ``(N, 1, 28, 28)`` in ``[0, 255]``. Features: ``"penultimate"`` ``(N, 128)`` float32,
    ``"logits"`` ``(N, 10)`` float32. Raises ValueError (torch-fidelity's convention) for other inputs or
    a weights file whose sha256 is not the pinned one (unless ``feature_extractor_weights_path`` is given).
    """

    def __init__(
        self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs
    ):
        super().__init__(name, features_list)
        path = Path(feature_extractor_weights_path or LENET_WEIGHTS)
        if feature_extractor_weights_path is None and sha256_of(path) != LENET_SHA256:
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


@dataclass(frozen=True)
class ExtractorSpec:
    """A ganbench feature extractor: the torch-fidelity name, the image shape it accepts, its weights."""

    fidelity_name: str
    image_shape: tuple[int, int, int]
    weights: Path
    summary: str = ""

    def weights_sha256(self) -> str:
        return sha256_of(self.weights)


EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor", ExtractorSpec)
EXTRACTORS.register(
    "lenet-mnist",
    ExtractorSpec(
        "ganbench-lenet-mnist",
        (1, 28, 28),
        LENET_WEIGHTS,
        "MNIST classifier shipped with ganbench (99.35 % test accuracy, test-set IS 9.85); "
        "FID on its 128-d penultimate features",
    ),
)
if "ganbench-lenet-mnist" not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor("ganbench-lenet-mnist", FeatureExtractorLeNetMNIST)


def check_extractor(name: str, image_shape: tuple[int, int, int]) -> ExtractorSpec:
    """The registered extractor ``name``; raises ConfigError if it cannot read images of ``image_shape``."""
    spec = EXTRACTORS.get(name)
    if tuple(image_shape) != spec.image_shape:
        raise ConfigError(
            f"eval.extractor = {name!r} reads images of shape {spec.image_shape}, the dataset has {tuple(image_shape)}"
        )
    return spec
