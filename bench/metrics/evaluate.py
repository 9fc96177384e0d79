"""End-of-run evaluation: FID / IS / KID through ``torch_fidelity.calculate_metrics``, and the
discriminator's real/fake accuracy.

Protocol (recorded with every number, see :class:`Protocol`): ``n_samples`` generated images (z from a
generator seeded with the run seed) vs the whole reference split, the feature extractor and the sha256 of
its weights. Generated images are quantised to uint8 by rounding (``bench.data.to_uint8``), like images
saved to PNG. Reference features are cached by torch-fidelity under ``<workdir>/cache/torch-fidelity``,
keyed by dataset, split, extractor, weights hash and size, so a changed key never reuses stale numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch_fidelity
from torch import nn

from architectures.losses import LOSSES
from architectures.registry import GAN
from bench import keys
from bench.config import EvalConfig
from bench.data import ImageData, to_float, to_uint8
from bench.metrics.discriminator import accuracy
from bench.metrics.extractors import check_extractor


@dataclass(frozen=True)
class Protocol:
    """How a number was computed; logged as MLflow params ``protocol.*`` and printed in reports."""

    extractor: str
    extractor_sha256: str
    n_samples: int
    reference: str  # "<dataset>/<split>"
    n_reference: int
    seed: int

    def line(self) -> str:
        return (
            f"{self.n_samples} generated samples vs {self.n_reference} {self.reference} images; "
            f"extractor {self.extractor} (sha256 {self.extractor_sha256[:12]}); sample seed {self.seed}"
        )

    def params(self) -> dict[str, object]:
        return {f"protocol.{k}": v for k, v in asdict(self).items()}


class _Images(torch.utils.data.Dataset):
    """uint8 ``(N, C, H, W)`` as a dataset of ``(C, H, W)`` tensors, the form torch-fidelity reads."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@torch.no_grad()
def generate(generator: nn.Module, n: int, batch_size: int, seed: int, device: torch.device) -> torch.Tensor:
    """``n`` samples from ``generator`` in eval mode as float ``(n, C, H, W)`` in ``[-1, 1]`` on CPU.

    z comes from its own CPU generator seeded with ``seed`` (the global RNG, and so training, is untouched);
    the samples do not depend on ``batch_size``.
    """
    # all of z in one draw: torch's normal sampler gives different numbers for different chunkings
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    generator.eval()
    try:
        out = [generator(z[i : i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)


def fidelity(
    generated: torch.Tensor,
    reference: ImageData,
    cfg: EvalConfig,
    workdir: str | Path,
    metrics: tuple[str, ...] = ("fid", "isc", "kid"),
    seed: int = 0,
) -> tuple[dict[str, float], Protocol]:
    """FID / IS / KID of uint8 ``generated (N, C, H, W)`` against all of ``reference``.

    Returns ``({eval/<extractor>/<metric>: value}, protocol)``. KID uses
    ``min(cfg.kid_subset_size, N, len(reference))`` per subset.
    """
    spec = check_extractor(cfg.extractor, tuple(generated.shape[1:]))
    sha = spec.weights_sha256()
    ref = reference.images.cpu()
    n_ref = ref.shape[0]
    cache_name = f"{reference.name}-{reference.split}-{cfg.extractor}-{sha[:16]}-n{n_ref}"
    out = torch_fidelity.calculate_metrics(
        input1=_Images(generated),
        input2=_Images(ref),
        input2_cache_name=cache_name,
        cache_root=str(Path(workdir).resolve() / "cache" / "torch-fidelity"),
        cache=True,
        cuda=torch.cuda.is_available() and reference.images.is_cuda,
        batch_size=cfg.batch_size,
        feature_extractor=spec.fidelity_name,
        isc="isc" in metrics,
        fid="fid" in metrics,
        kid="kid" in metrics,
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=min(cfg.kid_subset_size, generated.shape[0], n_ref),
        rng_seed=seed,
        save_cpu_ram=True,  # no DataLoader worker processes
        verbose=False,
    )
    names = {
        torch_fidelity.KEY_METRIC_FID: keys.FID,
        torch_fidelity.KEY_METRIC_ISC_MEAN: keys.IS_MEAN,
        torch_fidelity.KEY_METRIC_ISC_STD: keys.IS_STD,
        torch_fidelity.KEY_METRIC_KID_MEAN: keys.KID_MEAN,
        torch_fidelity.KEY_METRIC_KID_STD: keys.KID_STD,
    }
    result = {keys.eval_key(cfg.extractor, names[k]): float(v) for k, v in out.items() if k in names}
    protocol = Protocol(cfg.extractor, sha, generated.shape[0], f"{reference.name}/{reference.split}", n_ref, seed)
    return result, protocol


@torch.no_grad()
def discriminator_scores(
    discriminator: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """D's scores for float ``images (N, C, H, W)`` in ``[-1, 1]``, D in eval mode; ``(N,)`` float64."""
    was_training = discriminator.training
    discriminator.eval()
    try:
        return torch.cat(
            [
                discriminator(images[i : i + batch_size].to(device)).double().cpu()
                for i in range(0, len(images), batch_size)
            ]
        ).numpy()
    finally:
        discriminator.train(was_training)


def evaluate(
    gan: GAN, reference: ImageData, cfg: EvalConfig, workdir: str | Path, seed: int, device: torch.device
) -> tuple[dict[str, float], Protocol]:
    """All end-of-run metrics of a trained GAN.

    Fidelity metrics on ``cfg.n_samples`` fresh samples; the discriminator is scored (eval mode) on the
    first ``min(n_samples, len(reference))`` reference images and as many of the same fresh fakes.
    """
    fakes = generate(gan.generator, cfg.n_samples, cfg.batch_size, seed, device)
    metrics, protocol = fidelity(to_uint8(fakes), reference, cfg, workdir, seed=seed)
    n = min(cfg.n_samples, reference.images.shape[0])
    s_real = discriminator_scores(gan.discriminator, to_float(reference.images[:n]), cfg.batch_size, device)
    s_fake = discriminator_scores(gan.discriminator, fakes[:n], cfg.batch_size, device)
    metrics.update(accuracy(s_real, s_fake, LOSSES.get(gan.loss_name).threshold))
    return metrics, protocol


def training_fid(reference: ImageData, cfg: EvalConfig, workdir: str | Path, seed: int, device: torch.device):
    """A callable ``G -> {train/fid: value}`` on ``cfg.during_training_samples`` samples (for the curve)."""

    def fn(generator: nn.Module) -> dict[str, float]:
        fakes = generate(generator, cfg.during_training_samples, cfg.batch_size, seed, device)
        m, _ = fidelity(to_uint8(fakes), reference, cfg, workdir, metrics=("fid",), seed=seed)
        return {keys.TRAIN_FID: m[keys.eval_key(cfg.extractor, keys.FID)]}

    return fn
