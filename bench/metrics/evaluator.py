"""The evaluator of a run: built once from the prepared reference, the eval config, the workspace, the device,
the extractor plan and the run's seed (as torch-fidelity resolves its options once, and detectron2's
``DatasetEvaluator`` holds what it evaluates against), then asked for every number the run reports.

Protocol (recorded with every number, see ``bench.metrics.protocol.Protocol``): ``n_samples`` generated
images (z from a generator seeded with the run seed) vs the reference split (all of it, or a random subset
of ``n_reference`` images drawn with ``eval.reference_seed``), the feature extractor and the sha256 of its
weights, and the features KID is computed on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from architectures.losses import LOSSES
from architectures.registry import GAN
from bench import keys
from bench.config import DataConfig, EvalConfig
from bench.data import ImageData, load, random_subset, to_float, to_uint8
from bench.metrics.discriminator import accuracy
from bench.metrics.fidelity import ALL_METRICS, fidelity, reference_images, score
from bench.metrics.floor import real_floor
from bench.metrics.intra_fid import intra_fid
from bench.metrics.memorisation import Memorisation
from bench.metrics.protocol import ExtractorPlan, Protocol, plan_extractors, with_primary
from bench.metrics.sampling import discriminator_scores, generate, sample_labels
from bench.metrics.usefulness import Usefulness


@dataclass
class Evaluation:
    """What :meth:`Evaluator.evaluate` found: ``metrics`` ({key: value}), ``protocols`` (one per extractor,
    the primary's first), ``memorisation`` (None when not computed) and the uint8 ``images`` scored (for the
    memorisation gallery)."""

    metrics: dict[str, float]
    protocols: list[Protocol]
    memorisation: Memorisation | None
    images: torch.Tensor


@dataclass
class Evaluator:
    """Scores a run's generator and discriminator against ``reference`` under ``cfg``'s protocol.

    reference: the reference split (``eval.reference_split``), on any device; cfg: the eval config (its
    ``extractor`` None means the dataset's default); workdir: where torch-fidelity caches reference features;
    device: where the extractors and networks run; extractors: ``{name: weights path}``, the primary first
    (``ExtractorPlan.use``; empty: the primary alone, its weights located as ``fidelity`` does); seed: the
    run's seed (z of the samples, KID's subsets); train: the training split, searched for the samples'
    nearest training images (``bench.metrics.memorisation``; None: no memorisation numbers).
    """

    reference: ImageData
    cfg: EvalConfig
    workdir: str | Path
    device: torch.device
    extractors: dict[str, Path | None]
    seed: int = 0
    train: ImageData | None = None

    def __post_init__(self) -> None:
        self.cfg = with_primary(self.cfg, self.reference.name)
        self.extractors = self.extractors or {self.primary: None}

    @property
    def primary(self) -> str:
        """The primary extractor's name (``eval.extractor``)."""
        return self.cfg.extractor  # type: ignore[return-value]

    def fidelity(
        self, images: torch.Tensor, metrics: tuple[str, ...] = ALL_METRICS, seed: int | None = None,
        extractor: str | None = None,
    ) -> tuple[dict[str, float], Protocol]:  # fmt: skip
        """``bench.metrics.fidelity.fidelity`` of uint8 ``images (N, C, H, W)`` with one extractor (default the
        primary) against the reference."""
        name = extractor or self.primary
        return fidelity(
            images, self.reference, self.cfg, self.workdir, self.device, metrics,
            self.seed if seed is None else seed, name, self.extractors.get(name),
        )  # fmt: skip

    def fidelity_all(
        self, images: torch.Tensor, seed: int | None = None, memorise: bool = False
    ) -> tuple[dict[str, float], list[Protocol], Memorisation | None]:
        """:meth:`fidelity` of uint8 ``images`` for every extractor of the plan; the metrics of all of them,
        their protocols (the primary's first) and, with ``memorise`` and a training split, the memorisation
        numbers in the primary extractor's features (also in the metrics)."""
        metrics: dict[str, float] = {}
        protocols = []
        memo = None
        for name in self.extractors:
            train = self.train if memorise and name == self.primary else None
            m, p, found = score(
                images, self.reference, self.cfg, self.workdir, self.device, ALL_METRICS,
                self.seed if seed is None else seed, name, self.extractors.get(name), train,
            )  # fmt: skip
            memo = found or memo
            metrics.update(m)
            protocols.append(p)
        return metrics, protocols, memo

    def d_accuracy(
        self, gan: GAN, reals: torch.Tensor, real_labels: torch.Tensor | None, fakes: torch.Tensor
    ) -> dict[str, float]:
        """The discriminator's accuracy (``bench.metrics.discriminator.accuracy``, at its loss's threshold) on
        float ``reals`` and ``fakes`` in ``[-1, 1]``; a conditional D scores the fakes with ``sample_labels``."""
        k, bs = gan.num_classes, self.cfg.batch_size
        s_real = discriminator_scores(gan, reals, real_labels, bs, self.device)
        s_fake = discriminator_scores(gan, fakes, sample_labels(len(fakes), k) if k else None, bs, self.device)
        return accuracy(s_real.numpy(), s_fake.numpy(), LOSSES.get(gan.loss_name).threshold)

    def evaluate(self, gan: GAN, usefulness: Usefulness | None = None) -> Evaluation:
        """All end-of-run metrics of a trained GAN, for every extractor of the plan.

        Fidelity metrics on ``cfg.n_samples`` fresh samples (:meth:`evaluate_images`); the discriminator (eval
        mode) is scored on ``min(n_samples, len(reference))`` reference images and as many of the same fresh
        fakes.
        """
        cfg, k = self.cfg, gan.num_classes
        fakes = generate(gan.generator, cfg.n_samples, cfg.batch_size, self.seed, self.device, k)
        found = self.evaluate_images(to_uint8(fakes), sample_labels(cfg.n_samples, k) if k else None, usefulness)
        n = min(cfg.n_samples, self.reference.images.shape[0])
        reals, real_labels = random_subset(self.reference, n, cfg.reference_seed)
        found.metrics.update(self.d_accuracy(gan, to_float(reals), real_labels, fakes[:n]))
        return found

    def evaluate_images(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, usefulness: Usefulness | None = None
    ) -> Evaluation:
        """The metrics of a model's uint8 samples ``images (N, C, H, W)``: every extractor's fidelity metrics,
        the memorisation numbers (with a training split and ``eval.memorisation``) and, for class-conditional
        samples (``labels (N,)``, the class each was asked for), the primary extractor's intra-FID and with
        ``usefulness`` CAS and the augmentation gain (``bench.metrics.usefulness``)."""
        metrics, protocols, memo = self.fidelity_all(images, memorise=True)
        if labels is not None:
            value = self.intra_fid(images, labels)
            if value is not None:
                metrics[keys.eval_key(self.primary, keys.INTRA_FID)] = value
            if usefulness is not None:
                metrics.update(usefulness.metrics(images, labels))
        return Evaluation(metrics, protocols, memo, images)

    def intra_fid(self, images: torch.Tensor, labels: torch.Tensor) -> float | None:
        """``bench.metrics.intra_fid.intra_fid`` of uint8 ``images`` with their requested ``labels``."""
        return intra_fid(self, images, labels)

    def floor(self, real: ImageData) -> tuple[dict[str, float], list[Protocol]]:
        """``bench.metrics.floor.real_floor``: ``real``'s images scored as if generated."""
        return real_floor(self, real)

    def training_metrics(self) -> Callable[[GAN], dict[str, float]]:
        """A callable ``gan -> {train/fid, train/d_acc_real, train/d_acc_fake}`` for the curves during training:
        the primary extractor's FID on ``cfg.during_training_samples`` samples, and the discriminator's
        accuracy on those fakes and as many reference images, at its loss's threshold."""
        cfg = self.cfg
        n_real = min(cfg.during_training_samples, self.reference.images.shape[0])
        reals, real_labels = random_subset(self.reference, n_real, cfg.reference_seed)
        reals = to_float(reals)

        def fn(gan: GAN) -> dict[str, float]:
            n = cfg.during_training_samples
            fakes = generate(gan.generator, n, cfg.batch_size, self.seed, self.device, gan.num_classes)
            m, _ = self.fidelity(to_uint8(fakes), metrics=("fid",))
            acc = self.d_accuracy(gan, reals, real_labels, fakes)
            return {
                keys.TRAIN_FID: m[keys.eval_key(self.primary, keys.FID)],
                keys.TRAIN_D_ACC_REAL: acc[keys.D_ACC_REAL],
                keys.TRAIN_D_ACC_FAKE: acc[keys.D_ACC_FAKE],
            }

        return fn


def build_evaluator(
    data: DataConfig,
    cfg: EvalConfig,
    workdir: str | Path,
    device: torch.device,
    seed: int,
    reference: ImageData | None = None,
    train_split: ImageData | None = None,
) -> tuple[Evaluator, ExtractorPlan]:
    """The evaluator of runs on ``data`` under ``cfg`` (the reference split and, for memorisation, the
    training split, loaded unless given) and its extractor plan. Raises UserError (missing data or weights,
    n_reference larger than the split) before anything is written."""
    reference = reference or load(data, cfg.reference_split, workdir)
    reference_images(reference, cfg)  # n_reference fits the split
    train_split = (train_split or load(data, "train", workdir)) if cfg.memorisation else None
    plan = plan_extractors(cfg, data.dataset, reference.image_shape, device, workdir)
    return Evaluator(reference, cfg, workdir, device, plan.use, seed, train_split), plan
