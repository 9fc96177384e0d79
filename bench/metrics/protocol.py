"""The protocol every number is computed under, recorded with it (:class:`Protocol`), and which feature
extractors a run's evaluation uses (:class:`ExtractorPlan`, :func:`plan_extractors`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from bench import keys
from bench.config import EvalConfig, default_extractor
from bench.errors import ConfigError
from bench.metrics.extractors import EXTRACTORS, WeightsUnavailable, check_extractor, locate_weights


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
    memorisation: str = ""  # how the memorisation numbers were computed, and the held-out baseline
    source: str = "z from the run's seed"  # where the samples came from (an external model's file and sha256)

    def line(self) -> str:
        note = EXTRACTORS.get(self.extractor).weights_note(self.extractor_sha256)
        subset = "" if self.reference_subset == "all" else f" ({self.reference_subset})"
        kid = f"; KID on {self.kid_features}" if self.kid_features else ""
        memo = f"; memorisation: {self.memorisation}" if self.memorisation else ""
        return (
            f"{self.extractor} (sha256 {self.extractor_sha256[:12]}{note}): {self.n_samples} generated samples "
            f"vs {self.n_reference} {self.reference} images{subset}; {self.source}{kid}{memo}"
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
        """Run tags: why each skipped extractor was not computed, every extractor's label and the name of its
        Fréchet distance (``FID``, ``FD_DINOv2``, ...)."""
        out = {keys.TAG_UNAVAILABLE + n: why for n, why in self.skipped.items()}
        names = [*self.use, *self.skipped]
        out |= {f"protocol.{n}.fd_name": EXTRACTORS.get(n).fd_name for n in names}
        return out | {f"protocol.{n}.label": EXTRACTORS.get(n).label for n in names}


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
        asked = spec.opt_in and name in cfg.extractors and spec.reads(image_shape)  # named: considered as others
        if name == cfg.extractor or not (spec.applies_to(dataset, image_shape) or asked):
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
