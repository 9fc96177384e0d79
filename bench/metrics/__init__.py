"""Metrics: feature extractors, FID / IS / KID through torch-fidelity, discriminator accuracy."""

from bench.metrics.evaluate import Protocol, evaluate, fidelity, generate, training_fid
from bench.metrics.extractors import EXTRACTORS

__all__ = ["EXTRACTORS", "Protocol", "evaluate", "fidelity", "generate", "training_fid"]
