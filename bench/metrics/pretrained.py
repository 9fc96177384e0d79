"""The pretrained feature spaces torch-fidelity 0.4 provides beyond Inception, registered as ganbench extractors:
``dinov2-vit-s-14`` / ``-b-14`` / ``-l-14`` / ``-g-14`` (Oquab et al. 2023), ``clip-rn50`` ...
``clip-vit-l-14-336px`` (Radford et al. 2021) and ``vgg16`` (ImageNet classifier, fc2 after ReLU; Kynkäänniemi et al.
2019 computed precision/recall on it).

Stein et al. 2023 ("Exposing flaws of generative model evaluation metrics", NeurIPS) found that Inception's
space misranks models and recommend the Fréchet distance on DINOv2 ViT-L/14 features, FD_DINOv2; the tables name
the distance of each space so (``ExtractorSpec.fd_name``). Each takes uint8 RGB images of any size and resizes
them itself (224 px; CLIP: the model's input resolution); greyscale images are repeated to 3 channels, as for
Inception. They have no class logits, so no IS is computed in their spaces. They are *opt-in*: a run
computes one only when it is named (``--extractor lenet-mnist,dinov2-vit-l-14``, ``eval.extractor``, or
``eval.extractors.NAME.use``; a named one with ``use = "auto"`` is computed only on a GPU, as Inception).

Where their weights come from (offline, each error names the file and the folder):

- DINOv2: ``torch.hub.load("facebookresearch/dinov2", ...)`` (torch-fidelity's call): a checkout of the
  repository in ``<torch hub dir>/facebookresearch_dinov2_main/`` and
  ``<torch hub dir>/checkpoints/dinov2_vit?14_pretrain.pth``. torch-fidelity takes no other weights file for
  them.
- CLIP: OpenAI's TorchScript file, ``<torch hub dir>/checkpoints/<name>-<sha256>.pt``, or
  ``eval.extractors.<name>.weights``.
- VGG16: torchvision's ``vgg16-397923af.pth`` in ``<torch hub dir>/checkpoints/``, or
  ``eval.extractors.vgg16.weights`` (read by torch-fidelity with ``weights_only=False``, so ganbench first
  checks that it loads with ``weights_only=True``: a file that holds anything but tensors is refused)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_clip import MODEL_METADATA as CLIP_FILES
from torch_fidelity.feature_extractor_clip import MODEL_URLS as CLIP_URLS
from torch_fidelity.feature_extractor_dinov2 import MODEL_METADATA as DINOV2_MODELS

from bench.metrics.extractors import EXTRACTORS, ExtractorSpec, WeightsUnavailable, check_readable

DINOV2_REPO = "facebookresearch_dinov2_main"  # torch hub's folder for facebookresearch/dinov2 at main
DINOV2_DIMS = {"dinov2-vit-s-14": 384, "dinov2-vit-b-14": 768, "dinov2-vit-l-14": 1024, "dinov2-vit-g-14": 1536}
CLIP_DIMS = {  # OpenAI's published configurations: (embedding, input resolution)
    "clip-rn50": (1024, 224),
    "clip-rn101": (512, 224),
    "clip-rn50x4": (640, 288),
    "clip-rn50x16": (768, 384),
    "clip-rn50x64": (1024, 448),
    "clip-vit-b-32": (512, 224),
    "clip-vit-b-16": (512, 224),
    "clip-vit-l-14": (768, 224),
    "clip-vit-l-14-336px": (768, 336),
}
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"


def hub_dir() -> Path:
    """torch hub's folder (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``)."""
    return Path(torch.hub.get_dir())


def _dinov2_weights(name: str) -> Callable[[str | None, bool], Path]:
    model = DINOV2_MODELS[name]

    def locate(path: str | None, download: bool) -> Path:
        repo, file = hub_dir() / DINOV2_REPO, hub_dir() / "checkpoints" / f"{model}_pretrain.pth"
        if path:
            raise WeightsUnavailable(
                f"eval.extractors.{name}.weights: torch-fidelity loads DINOv2 only through torch hub; place "
                f"{file.name} in {file.parent}/ instead"
            )
        missing = [str(p) for p in (repo / "hubconf.py", file) if not p.is_file()]
        if missing:
            raise WeightsUnavailable(
                f"{name} needs {' and '.join(missing)}: a checkout of github.com/facebookresearch/dinov2 in "
                f"{repo}/ and https://dl.fbaipublicfiles.com/dinov2/{model}/{model}_pretrain.pth in {file.parent}/ "
                "(on a machine online, torch.hub.load('facebookresearch/dinov2', "
                f"'{model}') puts both there)"
            )
        return file

    return locate


def _clip_weights(name: str) -> Callable[[str | None, bool], Path]:
    cached_name = f"{name}-{CLIP_FILES[name]['hash']}.pt"

    def locate(path: str | None, download: bool) -> Path:
        p = Path(path).expanduser() if path else hub_dir() / "checkpoints" / cached_name
        if not p.is_file():
            where = f"eval.extractors.{name}.weights = {path!r} is not a file" if path else f"{p} is missing"
            raise WeightsUnavailable(
                f"{where}; place {CLIP_URLS[name]} as {hub_dir() / 'checkpoints' / cached_name} "
                f"or set eval.extractors.{name}.weights"
            )
        if download and not zipfile.is_zipfile(p):  # OpenAI's files are TorchScript archives (zip)
            raise WeightsUnavailable(f"{p} is not a TorchScript archive (OpenAI's CLIP .pt file)")
        return p

    return locate


def _vgg16_weights(path: str | None, download: bool) -> Path:
    p = Path(path).expanduser() if path else hub_dir() / "checkpoints" / VGG16_FILE
    if not p.is_file():
        where = f"eval.extractors.vgg16.weights = {path!r} is not a file" if path else f"{p} is missing"
        raise WeightsUnavailable(f"{where}; place {VGG16_URL} in {p.parent}/ or set eval.extractors.vgg16.weights")
    if download:
        check_readable(str(p))  # weights_only=True first: torch-fidelity reads it with weights_only=False
    return p


def register_pretrained() -> None:
    """Register the DINOv2, CLIP and VGG16 extractors (once, when ``bench.metrics`` is imported)."""
    common = {"image_shape": None, "heavy": True, "opt_in": True, "has_logits": False}
    for name, dim in DINOV2_DIMS.items():
        size = {"s": "S", "b": "B", "l": "L", "g": "g"}[name.split("-")[2]]  # ViT-g: the paper's spelling
        spec = ExtractorSpec(
            fidelity_name=name,
            label=f"DINOv2-{size}",
            weights=_dinov2_weights(name),
            summary=f"DINOv2 ViT-{size}/14 CLS token ({dim}-d), 224 px; FD_DINOv2 (Stein et al. 2023)",
            kid_features=f"CLS token ({dim}-d)",
            fd_name="FD_DINOv2",
            takes_weights_path=False,
            **common,
        )
        EXTRACTORS.register(name, spec)
    for name, (dim, px) in CLIP_DIMS.items():
        model = CLIP_FILES[name]["filename"]
        spec = ExtractorSpec(
            fidelity_name=name,
            label=f"CLIP {model}",
            weights=_clip_weights(name),
            summary=f"CLIP {model} image embedding ({dim}-d), {px} px",
            standard_sha256=CLIP_FILES[name]["hash"][:8],
            kid_features=f"image embedding ({dim}-d)",
            fd_name="FD_CLIP",
            **common,
        )
        EXTRACTORS.register(name, spec)
    spec = ExtractorSpec(
        fidelity_name="vgg16",
        label="VGG16",
        weights=_vgg16_weights,
        summary="ImageNet VGG16 fc2 after ReLU (4096-d), 224 px",
        standard_sha256="397923af",
        kid_features="fc2 after ReLU (4096-d)",
        fd_name="FD_VGG16",
        **common,
    )
    EXTRACTORS.register("vgg16", spec)


register_pretrained()
