"""FID / IS / KID / precision-recall of uint8 images through ``torch_fidelity.calculate_metrics``, with the
dataset classifier's mode coverage.

Generated images are quantised to uint8 by rounding (``bench.data.to_uint8``), as images saved to PNG. The
reference is the whole split or a random subset of ``eval.n_reference`` images drawn with
``eval.reference_seed`` (the first N images of a split are not a fair sample). Reference features are cached
by torch-fidelity under ``<workdir>/cache/torch-fidelity`` with a name made of dataset, split, extractor,
weights hash and reference size, so a changed key never reuses stale statistics.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.utils import (
    create_feature_extractor,
    extract_featuresdict_from_input_id_cached,
    resolve_feature_layer_for_metric,
)

from bench import keys
from bench.config import EvalConfig
from bench.data import ImageData, random_subset
from bench.data.splits import subset_indices
from bench.errors import ConfigError
from bench.metrics.coverage import classify, coverage
from bench.metrics.density import density_coverage
from bench.metrics.extractors import ExtractorSpec, check_extractor, locate_weights, sha256_of
from bench.metrics.memorisation import Memorisation, memorisation
from bench.metrics.protocol import Protocol, with_primary

ALL_METRICS = ("fid", "isc", "kid", "prc", "modes")
_REFERENCE_CLASSES: dict[tuple[str, str], torch.Tensor] = {}  # (weights, reference cache name) -> predictions
_NAMES = {
    torch_fidelity.KEY_METRIC_FID: keys.FID,
    torch_fidelity.KEY_METRIC_ISC_MEAN: keys.IS_MEAN,
    torch_fidelity.KEY_METRIC_ISC_STD: keys.IS_STD,
    torch_fidelity.KEY_METRIC_KID_MEAN: keys.KID_MEAN,
    torch_fidelity.KEY_METRIC_KID_STD: keys.KID_STD,
    torch_fidelity.KEY_METRIC_PRECISION: keys.PRECISION,
    torch_fidelity.KEY_METRIC_RECALL: keys.RECALL,
}


class _Images(torch.utils.data.Dataset):
    """uint8 ``(N, C, H, W)`` as a dataset of ``(C, H, W)`` tensors, the form torch-fidelity reads."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def reference_images(reference: ImageData, cfg: EvalConfig) -> tuple[torch.Tensor, str]:
    """The reference split on CPU, or a random subset of ``cfg.n_reference`` of its images drawn with
    ``cfg.reference_seed`` (the same for every run), and how it was drawn (``"all"`` or
    ``"random (seed S) of M"``, recorded in the protocol).

    Raises ConfigError if the split has fewer images than asked for.
    """
    total = reference.images.shape[0]
    n = cfg.n_reference or total
    if n > total:
        raise ConfigError(f"eval.n_reference = {n} exceeds the {total} images of {reference.name}/{reference.split}")
    if n == total:
        return reference.images.cpu(), "all"
    return random_subset(reference, n, cfg.reference_seed)[0].cpu(), f"random (seed {cfg.reference_seed}) of {total}"


def fidelity(
    generated: torch.Tensor,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    device: torch.device,
    metrics: tuple[str, ...] = ALL_METRICS,
    seed: int = 0,
    extractor: str | None = None,
    weights: Path | None = None,
) -> tuple[dict[str, float], Protocol]:
    """Metrics of uint8 ``generated (N, C, H, W)`` against the reference images.

    Args:
        device: where torch-fidelity runs the extractor (the run's device: CUDA on a GPU machine).
        metrics: any of ``fid``, ``isc``, ``kid``, ``prc`` (torch-fidelity's names; ``prc`` adds density and
            coverage) and ``modes``.
        extractor: default ``cfg.extractor``; weights: default the extractor's own (located, maybe downloaded).

    Returns ``({eval/<extractor>/<metric>: value}, protocol)``.
    Raises ConfigError if ``kid_subset_size`` exceeds either sample count.
    """
    metrics_, protocol, _ = score(generated, reference, cfg, workdir, device, metrics, seed, extractor, weights)
    return metrics_, protocol


def score(
    generated: torch.Tensor,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    device: torch.device,
    metrics: tuple[str, ...] = ALL_METRICS,
    seed: int = 0,
    extractor: str | None = None,
    weights: Path | None = None,
    train: ImageData | None = None,
) -> tuple[dict[str, float], Protocol, Memorisation | None]:
    """:func:`fidelity`, and with ``train`` (the training split) and ``"prc"`` in ``metrics`` the memorisation
    numbers (``bench.metrics.memorisation``) on the same features, added to the metrics and returned for
    the gallery (None without ``train``)."""
    cfg = with_primary(cfg, reference.name)
    name = extractor or cfg.extractor
    spec = check_extractor(name, tuple(generated.shape[1:]))
    metrics = metrics if spec.has_logits else tuple(m for m in metrics if m != "isc")  # IS needs class logits
    weights = weights or locate_weights(name, cfg.options(name).weights, workdir, True)
    sha = sha256_of(weights)
    ref, subset = reference_images(reference, cfg)
    n_gen, n_ref = generated.shape[0], ref.shape[0]
    if "kid" in metrics and cfg.kid_subset_size > min(n_gen, n_ref):
        raise ConfigError(
            f"eval.kid_subset_size = {cfg.kid_subset_size} exceeds the sample counts ({n_gen} generated, "
            f"{n_ref} reference); lower it or raise eval.n_samples / eval.n_reference"
        )
    cache_name = _cache_name(reference, name, sha, n_ref, None if subset == "all" else cfg.reference_seed)
    # torch-fidelity's DataLoaders draw their seeds from the global torch RNG, once more when the reference
    # cache is cold: fork it, so evaluating never changes training (or depends on the cache's state)
    on_gpu = device.type == "cuda" and torch.cuda.is_available()  # (a test may name CUDA on a CPU machine)
    on_device = torch.cuda.device(device) if on_gpu else contextlib.nullcontext()
    options = dict(
        input1=_Images(spec.prepare(generated)),
        **(  # IS alone reads only the samples: the reference's features are not extracted
            {"input2": _Images(spec.prepare(ref)), "input2_cache_name": cache_name}
            if set(metrics) & {"fid", "kid", "prc"}
            else {}
        ),
        cache_root=str(Path(workdir).resolve() / "cache" / "torch-fidelity"),
        cache=True,
        cuda=device.type == "cuda",
        batch_size=cfg.batch_size,
        feature_extractor=spec.fidelity_name,
        feature_extractor_weights_path=str(weights) if spec.takes_weights_path else None,
        isc="isc" in metrics,
        fid="fid" in metrics,
        kid="kid" in metrics,
        prc="prc" in metrics,
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=cfg.kid_subset_size,
        prc_neighborhood=cfg.prc_neighborhood,
        rng_seed=seed,
        save_cpu_ram=True,  # no DataLoader worker processes
        verbose=False,
    )
    with torch.random.fork_rng(devices=[]), on_device:  # torch-fidelity's .cuda() uses the current device
        out = torch_fidelity.calculate_metrics(**options) if set(metrics) - {"modes"} else {}
        extra, memo = (
            _feature_metrics(options, cfg, spec, train, lambda n, seed: _cache_name(train, name, sha, n, seed))
            if "prc" in metrics
            else ({}, None)
        )
    result = {keys.eval_key(name, _NAMES[k]): float(v) for k, v in out.items() if k in _NAMES}
    result |= {keys.eval_key(name, k): v for k, v in extra.items()}
    if memo is not None:
        result |= memo.metrics(name)
    if "modes" in metrics and spec.num_classes:  # a classifier of the dataset: mode coverage
        real_key = (str(weights), cache_name)  # the reference's predictions, once per process (the floor: 5x)
        if real_key not in _REFERENCE_CLASSES and spec.coverage == "real":
            _REFERENCE_CLASSES[real_key] = classify(ref, spec, weights)
        predicted = classify(generated, spec, weights)
        cov = coverage(predicted, _REFERENCE_CLASSES.get(real_key), spec.num_classes, spec.coverage)
        result |= {keys.eval_key(name, k): v for k, v in cov.items()}
    reference_name = f"{reference.name}/{reference.split}"
    memo_line = memo.line(spec.label, f"{train.name}/{train.split}") if memo is not None else ""
    protocol = Protocol(name, spec.label, sha, n_gen, reference_name, n_ref, seed, subset, spec.kid_features, memo_line)
    return result, protocol, memo


def _cache_name(data: ImageData, extractor: str, sha: str, n: int, seed: int | None) -> str:
    """torch-fidelity's cache name of the features of ``n`` images of ``data`` (all of the split, or a random
    subset drawn with ``seed``) through ``extractor`` with weights of sha256 ``sha``."""
    drawn = "" if seed is None else f"-r{seed}"
    drawn += f"-{hashlib.sha1(data.origin.encode()).hexdigest()[:8]}" if data.origin else ""
    size = f"{data.image_shape[1]}px{data.image_shape[0]}c"
    return f"{data.name}-{data.split}-{size}-{extractor}-{sha[:16]}-n{n}{drawn}-v2"


def _feature_metrics(
    options: dict,
    cfg: EvalConfig,
    spec: ExtractorSpec,
    train: ImageData | None,
    cache_name: Callable[[int, int | None], str],
) -> tuple[dict[str, float], Memorisation | None]:
    """Density and coverage (``bench.metrics.density``) on the features precision/recall used: the same
    extractor layer, torch-fidelity's extraction, and its cache for the reference (the samples' features are
    extracted once more: torch-fidelity does not return them); with ``train`` and ``cfg.memorisation``, the
    memorisation numbers on the same features, the training split's cached as ``cache_name(n, seed)``."""
    layer = resolve_feature_layer_for_metric("prc", **options)
    extractor = create_feature_extractor(options["feature_extractor"], [layer], **options)
    fake = extract_featuresdict_from_input_id_cached(1, extractor, **options)[layer].cpu()
    real = extract_featuresdict_from_input_id_cached(2, extractor, **options)[layer].cpu()
    found = density_coverage(real, fake, cfg.prc_neighborhood)
    extra = {keys.DENSITY: found["density"], keys.COVERAGE: found["coverage"]}
    if train is None or not cfg.memorisation or cfg.reference_split == train.split:
        return extra, None  # (against the training split itself there is no held-out baseline)
    if spec.heavy and not options["cuda"] and cfg.memorisation_train is None:
        return extra, None  # a heavy network over the whole training split on a CPU: an hour; asked for only
    total = train.images.shape[0]
    n = min(cfg.memorisation_train or total, total)
    idx = subset_indices(total, n, cfg.reference_seed)  # the training images searched, as split indices
    train_options = options | {
        "input2": _Images(spec.prepare(train.images.cpu()[idx])),
        "input2_cache_name": cache_name(n, None if n == total else cfg.reference_seed),
    }
    train_features = extract_featuresdict_from_input_id_cached(2, extractor, **train_options)[layer].cpu()
    memo = memorisation(fake, train_features, real, device="cuda" if options["cuda"] else "cpu")
    gallery = [(s, int(idx[i]), d, r) for s, i, d, r in memo.gallery]  # subset rows -> split indices
    return extra, replace(memo, gallery=gallery)
