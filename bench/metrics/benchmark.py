"""``ganbench bench metrics``: how long evaluating N samples takes, per feature extractor.

Samples are real training images (so no generator time is included); the reference is the dataset's test
split. "cold" computes the reference features too (an empty cache), "warm" reads them from the cache, which
is the cost at the end of every run after the first. All of FID, IS, KID and precision/recall are computed.
For a labelled dataset it then times the usefulness experiment of conditional runs (CAS + augmentation,
``bench.metrics.usefulness``) on the same images with their labels (a perfect conditional generator): the
real-only numbers, computed once per workspace, and the part every conditional run pays.
"""

from __future__ import annotations

import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace

import torch

from bench import keys
from bench.config import DataConfig, EvalConfig, ExtractorOptions
from bench.data import load
from bench.errors import UserError
from bench.metrics.evaluator import Evaluator
from bench.metrics.extractors import EXTRACTORS, locate_weights
from bench.metrics.fidelity import fidelity
from bench.metrics.memorisation import memorisation
from bench.metrics.protocol import with_primary
from bench.metrics.usefulness import Usefulness
from bench.timing import device_name


def run_metrics_benchmark(
    n_samples: int,
    workdir: str,
    weights: dict[str, str] | None = None,
    data: DataConfig | None = None,
    eval_cfg: EvalConfig | None = None,
) -> Iterator[str]:
    """Yield lines of a table: extractor, samples, cold and warm seconds, samples/s (warm); then, for a
    labelled dataset, the seconds of the usefulness experiment (its recipe from ``eval_cfg``).

    ``weights``: {extractor: local weights file}; a heavy extractor (Inception) is timed only on a GPU or
    when its weights are given."""
    weights = weights or {}
    if n_samples < 1000:
        raise UserError(f"--n-samples {n_samples} must be >= 1000 (KID uses subsets of 1000)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = data or DataConfig()
    reference = load(data, "test", workdir, device)
    train = load(data, "train", workdir)
    samples, labels = train.images[:n_samples], train.labels[:n_samples]
    if samples.shape[0] < n_samples:
        raise UserError(f"--n-samples {n_samples} exceeds the {samples.shape[0]} training images")
    yield f"device: {device_name(device)}; torch {torch.__version__}"
    yield f"{'extractor':22s} {'samples':>8s} {'cold (s)':>9s} {'warm (s)':>9s} {'samples/s':>10s}"
    for name in EXTRACTORS.names():
        spec = EXTRACTORS.get(name)
        if not spec.applies_to(data.dataset, reference.image_shape):
            continue
        if spec.heavy and device.type != "cuda" and name not in weights:
            yield f"{name:22s} skipped: no GPU (pass its weights, e.g. --inception-weights, to time it on this CPU)"
            continue
        try:
            path = locate_weights(name, weights.get(name), workdir, True)
        except UserError as e:
            yield f"{name:22s} unavailable: {e}"
            continue
        cfg = EvalConfig(n_samples=n_samples, extractor=name, extractors={name: ExtractorOptions(weights=str(path))})
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            fidelity(samples, reference, cfg, cache, device, weights=path)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            fidelity(samples, reference, cfg, cache, device, weights=path)
            warm = time.perf_counter() - t0
        yield f"{name:22s} {n_samples:8d} {cold:9.2f} {warm:9.2f} {n_samples / warm:10.0f}"
    yield from _memorisation_cost(n_samples, train.images.shape[0], reference.images.shape[0], device)
    if train.num_classes < 2:
        return
    cfg = with_primary(replace(eval_cfg or EvalConfig(), n_samples=n_samples), data.dataset)
    with tempfile.TemporaryDirectory() as cache:
        use = Usefulness(train, reference, cfg, cache)
        t0 = time.perf_counter()
        real = use.real_metrics(n_samples)
        once = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = use.metrics(samples, labels)
        per_run = time.perf_counter() - t0
        intra = []
        try:
            path = locate_weights(cfg.extractor, None, workdir, True)
        except UserError:
            path = None
        for _ in range(2 if path is not None else 0):  # cold (the per-class reference features), then warm
            t0 = time.perf_counter()
            Evaluator(reference, cfg, cache, device, {cfg.extractor: path}).intra_fid(samples, labels)
            intra.append(time.perf_counter() - t0)
    yield f"conditional runs, {n_samples} labelled samples (seconds):"
    yield f"  CAS + augmentation       {per_run:6.1f} per run (CAS {100 * m[keys.CAS]:.1f} % on these real images)"
    yield (
        f"  real-only numbers        {once:6.1f} once per workspace (ceiling {100 * real[keys.CAS_REAL]:.1f} %, k-shot)"
    )
    if intra:
        yield f"  intra-FID ({cfg.extractor})  {intra[1]:6.1f} per run ({intra[0]:.1f} the first time)"
    yield from textwrap.wrap(f"protocol: {use.protocol()}", 80, subsequent_indent="  ")


def _memorisation_cost(n_samples: int, n_train: int, n_heldout: int, device: torch.device) -> Iterator[str]:
    """The exact k-NN of ``bench.metrics.memorisation`` at this protocol's sizes, on random features of
    LeNet's dimension (128) and, on a GPU (where heavy extractors run), Inception's (2048): seconds per run,
    the features already extracted."""
    yield f"memorisation k-NN: {n_samples} samples + {n_heldout} held-out vs {n_train} training images (seconds):"
    g = torch.Generator().manual_seed(0)
    for dim in (128, 2048) if device.type == "cuda" else (128,):
        train = torch.randn(n_train, dim, generator=g)
        samples, heldout = torch.randn(n_samples, dim, generator=g), torch.randn(n_heldout, dim, generator=g)
        t0 = time.perf_counter()
        memorisation(samples, train, heldout, device=device)
        yield f"  {dim:4d}-d features        {time.perf_counter() - t0:6.1f} per run"
