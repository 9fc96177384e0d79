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
from bench.config import EvalConfig
from bench.data import ImageData, random_subset, to_float, to_uint8
from bench.metrics.discriminator import accuracy
from bench.metrics.fidelity import ALL_METRICS, fidelity
from bench.metrics.floor import real_floor
from bench.metrics.intra_fid import intra_fid
from bench.metrics.protocol import Protocol, with_primary
from bench.metrics.sampling import discriminator_scores, generate, sample_labels
from bench.metrics.usefulness import Usefulness


@dataclass
class Evaluator:
    """Scores a run's generator and discriminator against ``reference`` under ``cfg``'s protocol.

    reference: the reference split (``eval.reference_split``), on any device; cfg: the eval config (its
    ``extractor`` None means the dataset's default); workdir: where torch-fidelity caches reference features;
    device: where the extractors and networks run; extractors: ``{name: weights path}``, the primary first
    (``ExtractorPlan.use``; empty: the primary alone, its weights located as ``fidelity`` does); seed: the
    run's seed (z of the samples, KID's subsets).
    """

    reference: ImageData
    cfg: EvalConfig
    workdir: str | Path
    device: torch.device
    extractors: dict[str, Path | None]
    seed: int = 0

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

    def fidelity_all(self, images: torch.Tensor, seed: int | None = None) -> tuple[dict[str, float], list[Protocol]]:
        """:meth:`fidelity` of uint8 ``images`` for every extractor of the plan; the metrics of all of them
        and their protocols, the primary's first."""
        metrics: dict[str, float] = {}
        protocols = []
        for name in self.extractors:
            m, p = self.fidelity(images, seed=seed, extractor=name)
            metrics.update(m)
            protocols.append(p)
        return metrics, protocols

    def d_accuracy(
        self, gan: GAN, reals: torch.Tensor, real_labels: torch.Tensor | None, fakes: torch.Tensor
    ) -> dict[str, float]:
        """The discriminator's accuracy (``bench.metrics.discriminator.accuracy``, at its loss's threshold) on
        float ``reals`` and ``fakes`` in ``[-1, 1]``; a conditional D scores the fakes with ``sample_labels``."""
        k, bs = gan.num_classes, self.cfg.batch_size
        s_real = discriminator_scores(gan, reals, real_labels, bs, self.device)
        s_fake = discriminator_scores(gan, fakes, sample_labels(len(fakes), k) if k else None, bs, self.device)
        return accuracy(s_real.numpy(), s_fake.numpy(), LOSSES.get(gan.loss_name).threshold)

    def evaluate(self, gan: GAN, usefulness: Usefulness | None = None) -> tuple[dict[str, float], list[Protocol]]:
        """All end-of-run metrics of a trained GAN, for every extractor of the plan.

        Fidelity metrics on ``cfg.n_samples`` fresh samples; the discriminator (eval mode) is scored on
        ``min(n_samples, len(reference))`` reference images and as many of the same fresh fakes. A conditional
        GAN's samples (labels ``sample_labels``) also get the primary extractor's intra-FID and, with
        ``usefulness``, CAS and the augmentation gain (``bench.metrics.usefulness``).
        """
        cfg, k = self.cfg, gan.num_classes
        fakes = generate(gan.generator, cfg.n_samples, cfg.batch_size, self.seed, self.device, k)
        images = to_uint8(fakes)
        metrics, protocols = self.fidelity_all(images)
        if k:
            labels = sample_labels(cfg.n_samples, k)
            value = self.intra_fid(images, labels)
            if value is not None:
                metrics[keys.eval_key(self.primary, keys.INTRA_FID)] = value
            if usefulness is not None:
                metrics.update(usefulness.metrics(images, labels))
        n = min(cfg.n_samples, self.reference.images.shape[0])
        reals, real_labels = random_subset(self.reference, n, cfg.reference_seed)
        metrics.update(self.d_accuracy(gan, to_float(reals), real_labels, fakes[:n]))
        return metrics, protocols

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
