"""Metrics: feature extractors, FID / IS / KID / precision-recall through torch-fidelity, D accuracy."""

from bench.metrics.evaluate import (
    ExtractorPlan,
    Protocol,
    evaluate,
    fidelity,
    generate,
    plan_extractors,
    real_floor,
    training_metrics,
)
from bench.metrics.extractors import EXTRACTORS

__all__ = [
    "EXTRACTORS",
    "ExtractorPlan",
    "Protocol",
    "evaluate",
    "fidelity",
    "generate",
    "plan_extractors",
    "real_floor",
    "training_metrics",
]
