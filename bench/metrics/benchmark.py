"""``ganbench bench metrics``: how long evaluating N samples takes, per feature extractor.

Samples are real training images (so no generator time is included); the reference is the MNIST test
split. "cold" computes the reference features too (an empty cache), "warm" reads them from the cache, which
is the cost at the end of every run after the first. All of FID, IS, KID and precision/recall are computed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator

import torch

from bench.config import DataConfig, EvalConfig
from bench.data import load
from bench.errors import UserError
from bench.metrics.evaluate import INCEPTION, fidelity
from bench.metrics.extractors import EXTRACTORS
from bench.timing import device_name


def run_metrics_benchmark(
    n_samples: int, workdir: str, inception_weights: str | None = None, data_root: str | None = None
) -> Iterator[str]:
    """Yield lines of a table: extractor, samples, cold and warm seconds, samples/s (warm)."""
    if n_samples < 1000:
        raise UserError(f"--n-samples {n_samples} must be >= 1000 (KID uses subsets of 1000)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = DataConfig(root=data_root)
    reference = load(data, "test", workdir, device)
    samples = load(data, "train", workdir).images[:n_samples]
    if samples.shape[0] < n_samples:
        raise UserError(f"--n-samples {n_samples} exceeds the {samples.shape[0]} training images")
    yield f"device: {device_name(device)}; torch {torch.__version__}"
    yield f"{'extractor':22s} {'samples':>8s} {'cold (s)':>9s} {'warm (s)':>9s} {'samples/s':>10s}"
    for name in EXTRACTORS.names():
        spec = EXTRACTORS.get(name)
        if name == INCEPTION and device.type != "cuda" and inception_weights is None:
            yield f"{name:22s} skipped: no GPU (pass --inception-weights to time it on this CPU)"
            continue
        try:
            weights = spec.weights(inception_weights if name == INCEPTION else None, True)
        except UserError as e:
            yield f"{name:22s} unavailable: {e}"
            continue
        cfg = EvalConfig(n_samples=n_samples, extractor=name)
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            fidelity(samples, reference, cfg, cache, weights=weights)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            fidelity(samples, reference, cfg, cache, weights=weights)
            warm = time.perf_counter() - t0
        yield f"{name:22s} {n_samples:8d} {cold:9.2f} {warm:9.2f} {n_samples / warm:10.0f}"
