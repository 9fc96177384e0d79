"""Evaluation: FID / IS / KID / precision-recall through ``torch_fidelity.calculate_metrics``, the
discriminator's real/fake accuracy, and the real-data floor.

Protocol (recorded with every number, see :class:`Protocol`): ``n_samples`` generated images (z from a
generator seeded with the run seed) vs the reference split (all of it, or a random subset of
``n_reference`` images drawn with ``eval.reference_seed``: the first N images of a split are not a fair
sample, e.g. MNIST's first and last 5 000 test images differ by LeNet FID 77), the feature extractor and
the sha256 of its weights, and the features KID is computed on. Generated images are quantised to uint8 by
rounding (``bench.data.to_uint8``), as images saved to PNG. Reference features are cached by torch-fidelity
under ``<workdir>/cache/torch-fidelity`` with a name made of dataset, split, extractor, weights hash and
reference size, so a changed key never reuses stale statistics.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch_fidelity
from torch import nn

from architectures.losses import LOSSES
from architectures.registry import GAN
from bench import keys
from bench.config import EvalConfig, default_extractor
from bench.data import ImageData, to_float, to_uint8
from bench.errors import ConfigError
from bench.metrics.coverage import classify, coverage
from bench.metrics.discriminator import accuracy
from bench.metrics.extractors import EXTRACTORS, WeightsUnavailable, check_extractor, locate_weights, sha256_of
from bench.metrics.usefulness import Usefulness

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


@dataclass(frozen=True)
class Protocol:
    """How one extractor's numbers were computed; stored as MLflow tags (``protocol.<extractor>.<field>`` and
    the line in ``ganbench.protocol.<extractor>``) and printed in reports."""

    extractor: str
    label: str  # the extractor's short name for table headers
    extractor_sha256: str
    n_samples: int
    reference: str  # "<dataset>/<split>"
    n_reference: int
    seed: int
    reference_subset: str = "all"  # "all", or "random (seed S) of M"
    kid_features: str = ""

    def line(self) -> str:
        note = EXTRACTORS.get(self.extractor).weights_note(self.extractor_sha256)
        subset = "" if self.reference_subset == "all" else f" ({self.reference_subset})"
        kid = f"; KID on {self.kid_features}" if self.kid_features else ""
        return (
            f"{self.extractor} (sha256 {self.extractor_sha256[:12]}{note}): {self.n_samples} generated samples "
            f"vs {self.n_reference} {self.reference} images{subset}; z from the run's seed{kid}"
        )

    def tags(self) -> dict[str, object]:
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extractor"}
        out: dict[str, object] = {f"protocol.{self.extractor}.{k}": v for k, v in fields.items()}
        out[keys.TAG_PROTOCOL + self.extractor] = self.line()
        return out


@dataclass(frozen=True)
class ExtractorPlan:
    """Which extractors the end-of-run evaluation uses: ``use`` ({name: weights path}, the primary first) and
    ``skipped`` ({name: why not}) for the other registered extractors that could read the images."""

    use: dict[str, Path]
    skipped: dict[str, str]

    def params(self, cfg: EvalConfig) -> dict[str, str | None]:
        """MLflow params: the resolved options of every extractor considered (``eval.extractors.<name>.*``)."""
        out: dict[str, str | None] = {}
        for name in [*self.use, *self.skipped]:
            options = cfg.options(name)
            out |= {f"eval.extractors.{name}.use": options.use, f"eval.extractors.{name}.weights": options.weights}
        return out

    def tags(self) -> dict[str, str]:
        """Run tags: why each skipped extractor was not computed, and every extractor's label."""
        out = {keys.TAG_UNAVAILABLE + n: why for n, why in self.skipped.items()}
        return out | {f"protocol.{n}.label": EXTRACTORS.get(n).label for n in [*self.use, *self.skipped]}


def plan_extractors(
    cfg: EvalConfig, dataset: str, image_shape: tuple[int, int, int], device: torch.device, workdir: str | Path
) -> ExtractorPlan:
    """Plan the end-of-run evaluation of runs on ``dataset``: the primary ``cfg.extractor`` always, then every
    other registered extractor that applies to the dataset (``ExtractorSpec.applies_to``: it reads
    ``image_shape`` and is not another dataset's classifier), as its ``eval.extractors.<name>.use`` says
    (``auto``: a heavy one only on a GPU, see ``ExtractorSpec.heavy``). Weights are found by
    ``locate_weights`` (a ``lenet-<dataset>`` trained into ``workdir`` included).

    Raises UnknownNameError for an unknown name in ``cfg.extractors``; WeightsUnavailable when the primary, or
    an extractor with ``use = "on"``, has no weights; ConfigError when the primary cannot read the images.
    """
    for name in cfg.extractors:
        EXTRACTORS.get(name)
    cfg = with_primary(cfg, dataset)
    primary = check_extractor(cfg.extractor, image_shape)
    if primary.dataset not in (None, dataset):
        raise ConfigError(
            f"eval.extractor = {cfg.extractor!r} is the classifier of {primary.dataset}, not of {dataset}; "
            f"use lenet-{dataset} (the default) or inception-v3-compat"
        )
    use = {cfg.extractor: locate_weights(cfg.extractor, cfg.options(cfg.extractor).weights, workdir, True)}
    skipped: dict[str, str] = {}
    for name in EXTRACTORS.names():
        spec, opts = EXTRACTORS.get(name), cfg.options(name)
        if name == cfg.extractor or not spec.applies_to(dataset, image_shape):
            continue
        if opts.use == "off":
            skipped[name] = f"off (eval.extractors.{name}.use = off)"
        elif opts.use == "on" or not spec.heavy or device.type == "cuda":
            try:
                use[name] = locate_weights(name, opts.weights, workdir, True)
            except WeightsUnavailable as e:
                if opts.use == "on":
                    raise
                skipped[name] = f"unavailable: {e}"
        else:
            try:
                locate_weights(name, opts.weights, workdir, False)
                skipped[name] = (
                    f"skipped on CPU (use = auto computes it on a GPU; eval.extractors.{name}.use = on forces it)"
                )
            except WeightsUnavailable as e:
                skipped[name] = f"unavailable offline: {e}"
    return ExtractorPlan(use, skipped)


def with_primary(cfg: EvalConfig, dataset: str) -> EvalConfig:
    """``cfg`` with ``extractor`` set: the dataset's default when it is None (an EvalConfig made on its own)."""
    return cfg if cfg.extractor else replace(cfg, extractor=default_extractor(dataset))


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


def sample_labels(n: int, num_classes: int) -> torch.Tensor:
    """The labels a conditional generator is evaluated with: ``(n,)`` int64, ``0, 1, ..., K-1, 0, 1, ...``
    (every class equally often, to within one sample; the balanced sample CAS needs)."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def generate(
    generator: nn.Module, n: int, batch_size: int, seed: int, device: torch.device, num_classes: int = 0
) -> torch.Tensor:
    """``n`` samples from ``generator`` in eval mode as float ``(n, C, H, W)`` in ``[-1, 1]`` on CPU.

    z comes from its own CPU generator seeded with ``seed`` (the global RNG, and so training, is untouched);
    the samples do not depend on ``batch_size``. With ``num_classes = K > 0`` the generator is conditional
    and sample i is ``G(z_i, y_i)`` with ``y = sample_labels(n, K)``.
    """
    # all of z in one draw: torch's normal sampler gives different numbers for different chunkings
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    y = sample_labels(n, num_classes) if num_classes else None
    was_training = generator.training
    generator.eval()

    def batch(i: int) -> torch.Tensor:
        zi = z[i : i + batch_size].to(device)
        return generator(zi, y[i : i + batch_size].to(device)) if y is not None else generator(zi)

    try:
        out = [batch(i).float().cpu() for i in range(0, n, batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)


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
        metrics: any of ``fid``, ``isc``, ``kid``, ``prc`` (torch-fidelity's names).
        extractor: default ``cfg.extractor``; weights: default the extractor's own (located, maybe downloaded).

    Returns ``({eval/<extractor>/<metric>: value}, protocol)``.
    Raises ConfigError if ``kid_subset_size`` exceeds either sample count.
    """
    cfg = with_primary(cfg, reference.name)
    name = extractor or cfg.extractor
    spec = check_extractor(name, tuple(generated.shape[1:]))
    weights = weights or locate_weights(name, cfg.options(name).weights, workdir, True)
    sha = sha256_of(weights)
    ref, subset = reference_images(reference, cfg)
    n_gen, n_ref = generated.shape[0], ref.shape[0]
    if "kid" in metrics and cfg.kid_subset_size > min(n_gen, n_ref):
        raise ConfigError(
            f"eval.kid_subset_size = {cfg.kid_subset_size} exceeds the sample counts ({n_gen} generated, "
            f"{n_ref} reference); lower it or raise eval.n_samples / eval.n_reference"
        )
    drawn = "" if subset == "all" else f"-r{cfg.reference_seed}"
    drawn += f"-{hashlib.sha1(reference.origin.encode()).hexdigest()[:8]}" if reference.origin else ""
    size = f"{reference.image_shape[1]}px{reference.image_shape[0]}c"
    cache_name = f"{reference.name}-{reference.split}-{size}-{name}-{sha[:16]}-n{n_ref}{drawn}-v2"
    # torch-fidelity's DataLoaders draw their seeds from the global torch RNG, once more when the reference
    # cache is cold: fork it, so evaluating never changes training (or depends on the cache's state)
    on_gpu = device.type == "cuda" and torch.cuda.is_available()  # (a test may name CUDA on a CPU machine)
    on_device = torch.cuda.device(device) if on_gpu else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), on_device:  # torch-fidelity's .cuda() uses the current device
        out = (
            torch_fidelity.calculate_metrics(
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
                feature_extractor_weights_path=str(weights),
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
            if set(metrics) - {"modes"}
            else {}
        )
    result = {keys.eval_key(name, _NAMES[k]): float(v) for k, v in out.items() if k in _NAMES}
    if "modes" in metrics and spec.num_classes:  # a classifier of the dataset: mode coverage
        real_key = (str(weights), cache_name)  # the reference's predictions, once per process (the floor: 5x)
        if real_key not in _REFERENCE_CLASSES and spec.coverage == "real":
            _REFERENCE_CLASSES[real_key] = classify(ref, spec, weights)
        predicted = classify(generated, spec, weights)
        cov = coverage(predicted, _REFERENCE_CLASSES.get(real_key), spec.num_classes, spec.coverage)
        result |= {keys.eval_key(name, k): v for k, v in cov.items()}
    reference_name = f"{reference.name}/{reference.split}"
    return result, Protocol(name, spec.label, sha, n_gen, reference_name, n_ref, seed, subset, spec.kid_features)


def fidelity_all(
    images: torch.Tensor,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    seed: int,
    device: torch.device,
    extractors: dict[str, Path],
) -> tuple[dict[str, float], list[Protocol]]:
    """:func:`fidelity` of uint8 ``images`` for every extractor in ``extractors`` ({name: weights})."""
    metrics: dict[str, float] = {}
    protocols = []
    for name, weights in extractors.items():
        m, p = fidelity(images, reference, cfg, workdir, device, seed=seed, extractor=name, weights=weights)
        metrics.update(m)
        protocols.append(p)
    return metrics, protocols


@torch.no_grad()
def discriminator_scores(
    gan: GAN, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, device: torch.device
) -> torch.Tensor:
    """D's scores for float ``images (N, C, H, W)`` in ``[-1, 1]`` (with their ``labels (N,)`` for a
    conditional D), D in eval mode; ``(N,)`` float64 on CPU."""
    discriminator = gan.discriminator
    was_training = discriminator.training
    discriminator.eval()

    def scores(i: int) -> torch.Tensor:
        y = labels[i : i + batch_size].to(device) if gan.conditional else None
        return gan.discriminate(images[i : i + batch_size].to(device), y)[0].double().cpu()

    try:
        return torch.cat([scores(i) for i in range(0, len(images), batch_size)])
    finally:
        discriminator.train(was_training)


def evaluate(
    gan: GAN,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    seed: int,
    device: torch.device,
    extractors: dict[str, Path],
    usefulness: Usefulness | None = None,
) -> tuple[dict[str, float], list[Protocol]]:
    """All end-of-run metrics of a trained GAN, for each extractor in ``extractors`` ({name: weights}).

    Fidelity metrics on ``cfg.n_samples`` fresh samples; the discriminator (eval mode) is scored on
    ``min(n_samples, len(reference))`` reference images and as many of the same fresh fakes. A conditional
    GAN's samples (labels ``sample_labels``) also get the primary extractor's intra-FID and, with
    ``usefulness``, CAS and the augmentation gain (``bench.metrics.usefulness``).
    """
    k = gan.num_classes
    fakes = generate(gan.generator, cfg.n_samples, cfg.batch_size, seed, device, k)
    images = to_uint8(fakes)
    metrics, protocols = fidelity_all(images, reference, cfg, workdir, seed, device, extractors)
    if k:
        primary = with_primary(cfg, reference.name).extractor
        labels = sample_labels(cfg.n_samples, k)
        value = intra_fid(images, labels, reference, cfg, workdir, device, seed, primary, extractors[primary])
        if value is not None:
            metrics[keys.eval_key(primary, keys.INTRA_FID)] = value
        if usefulness is not None:
            metrics.update(usefulness.metrics(images, labels))
    n = min(cfg.n_samples, reference.images.shape[0])
    reals, real_labels = random_subset(reference, n, cfg.reference_seed)
    s_real = discriminator_scores(gan, to_float(reals), real_labels, cfg.batch_size, device)
    fake_labels = sample_labels(n, k) if k else None
    s_fake = discriminator_scores(gan, fakes[:n], fake_labels, cfg.batch_size, device)
    metrics.update(accuracy(s_real.numpy(), s_fake.numpy(), LOSSES.get(gan.loss_name).threshold))
    return metrics, protocols


INTRA_FID_MIN = 20  # images per class on each side, below which a class's FID is left out of intra-FID


def intra_fid(
    generated: torch.Tensor,
    labels: torch.Tensor,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    device: torch.device,
    seed: int,
    extractor: str,
    weights: Path,
) -> float | None:
    """Intra-FID (Miyato & Koyama 2018, sec. 5): the FID of each class's samples against the reference images
    of that class, averaged over the classes, with the primary extractor.

    uint8 ``generated (N, C, H, W)`` with their requested ``labels (N,)``; the reference as drawn for the
    other metrics (``cfg.n_reference``). Each class has about N / K samples, and FID's bias grows as the
    sample shrinks, so intra-FID is above the FID of the same samples; compare it only between runs with the
    same ``n_samples``. Classes with fewer than ``INTRA_FID_MIN`` (20) images on either side are left out;
    None when no class has enough (e.g. Stacked MNIST's 1 000 classes: about 10 test images each).
    """
    ref, subset = reference_images(reference, cfg)
    ref_labels = reference.labels.cpu() if subset == "all" else random_subset(reference, len(ref), cfg.reference_seed)[1]
    ref_labels = ref_labels.cpu()
    drawn = "" if subset == "all" else f"-r{cfg.reference_seed}n{len(ref)}"
    one = replace(cfg, n_reference=None)
    values = []
    for c in range(reference.num_classes):
        fake_c, real_c = generated[labels == c], ref[ref_labels == c]
        if min(len(fake_c), len(real_c)) < INTRA_FID_MIN:
            continue
        part = replace(reference, split=f"{reference.split}{drawn}-class{c}", images=real_c, labels=ref_labels[:0])
        m, _ = fidelity(fake_c, part, one, workdir, device, ("fid",), seed, extractor, weights)
        values.append(m[keys.eval_key(extractor, keys.FID)])
    return float(np.mean(values)) if values else None


def random_subset(reference: ImageData, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of the reference split and their labels (for the reduced reference and the
    discriminator's accuracy): all of it, or a random subset drawn with ``seed``, in split order (not the
    first n, which need not be a fair sample)."""
    total = reference.images.shape[0]
    if n >= total:
        return reference.images, reference.labels
    idx = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return reference.images[idx.to(reference.images.device)], reference.labels[idx.to(reference.labels.device)]


def check_floor_size(real: ImageData, cfg: EvalConfig) -> None:
    """Raise ConfigError if the split ``real`` has fewer images than ``cfg.n_samples`` (the floor's sample)."""
    if cfg.n_samples > real.images.shape[0]:
        raise ConfigError(
            f"eval.n_samples = {cfg.n_samples} exceeds the {real.images.shape[0]} images of {real.name}/{real.split}"
        )


FLOOR_STD = "floor_std/"  # + metric key: the std of the floor's value over its random subsets


def real_floor(
    real: ImageData,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    seed: int,
    device: torch.device,
    extractors: dict[str, Path],
) -> tuple[dict[str, float], list[Protocol]]:
    """The real-data floor: ``cfg.n_samples`` images of ``real`` (e.g. the training split) scored as if
    generated, with the same protocol: what a perfect generator would reach. The value depends on which
    images are drawn (MNIST, LeNet FID 4.2 to 5.5 over five subsets of 10 000), so it is measured on
    ``cfg.floor_subsets`` random subsets (drawn with seeds ``seed, seed + 1, ...``).

    Returns ``({key: mean over the subsets} | {FLOOR_STD + key: sample std (0 for one subset)}, protocols)``.
    """
    check_floor_size(real, cfg)
    values: dict[str, list[float]] = {}
    protocols: list[Protocol] = []
    for i in range(cfg.floor_subsets):
        g = torch.Generator().manual_seed(seed + i)
        idx = torch.randperm(real.images.shape[0], generator=g)[: cfg.n_samples]
        m, protocols = fidelity_all(real.images.cpu()[idx], reference, cfg, workdir, seed + i, device, extractors)
        for k, v in m.items():
            values.setdefault(k, []).append(v)
    out = {k: float(np.mean(v)) for k, v in values.items()}
    out |= {FLOOR_STD + k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()}
    return out, protocols


def training_metrics(
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    seed: int,
    device: torch.device,
    weights: Path,
) -> Callable[[GAN], dict[str, float]]:
    """A callable ``gan -> {train/fid, train/d_acc_real, train/d_acc_fake}`` for the curves during training:
    FID on ``cfg.during_training_samples`` samples, and the discriminator's accuracy on those fakes and as
    many reference images, at its loss's threshold."""
    cfg = with_primary(cfg, reference.name)
    n_real = min(cfg.during_training_samples, reference.images.shape[0])
    reals, real_labels = random_subset(reference, n_real, cfg.reference_seed)
    reals = to_float(reals)

    def fn(gan: GAN) -> dict[str, float]:
        n, k = cfg.during_training_samples, gan.num_classes
        fakes = generate(gan.generator, n, cfg.batch_size, seed, device, k)
        m, _ = fidelity(to_uint8(fakes), reference, cfg, workdir, device, metrics=("fid",), seed=seed, weights=weights)
        s_real = discriminator_scores(gan, reals, real_labels, cfg.batch_size, device)
        s_fake = discriminator_scores(gan, fakes, sample_labels(n, k) if k else None, cfg.batch_size, device)
        acc = accuracy(s_real.numpy(), s_fake.numpy(), LOSSES.get(gan.loss_name).threshold)
        return {
            keys.TRAIN_FID: m[keys.eval_key(cfg.extractor, keys.FID)],
            keys.TRAIN_D_ACC_REAL: acc[keys.D_ACC_REAL],
            keys.TRAIN_D_ACC_FAKE: acc[keys.D_ACC_FAKE],
        }

    return fn
