"""``ganbench bench speed``: ganbench's training path against the classic one, same models, same process.

Rows per architecture (same batch size, same harness, ``steps`` generator steps after ``warmup``):

- ``baseline``: batches from a ``torchvision`` ``DataLoader`` over the dataset's torchvision class (e.g.
  ``datasets.MNIST``) with ``ToTensor()`` + ``Normalize(0.5, 0.5)`` per channel (per-sample PIL transforms,
  ``num_workers=0``, shuffled), the Adam that
  ``torch.optim.Adam`` picks when not told (for-loop on CPU, foreach on CUDA), losses read back
  (host-synchronised) every step: how the classic MNIST GAN scripts train;
- ``ganbench``: the default fast path (split resident on the device, fused Adam, channels-last
  convolutions, no host sync in the step), fp32;
- ``ganbench bf16``: the fast path with bf16 autocast (``--compile`` adds ``torch.compile``).

The ratio is baseline ms/step over the row's ms/step (p50): above 1 means faster than the baseline. Every
row is also logged as an MLflow run of the experiment ``ganbench-speed`` (tagged with its path and the
invocation), which ``ganbench report --experiment ganbench-speed`` turns into the speed table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from architectures import build_gan
from bench import keys
from bench.config import CompareConfig, RunConfig
from bench.data import DATASETS, BatchSource, ShuffledBatches, image_shape, load, resolve_root
from bench.errors import DataError
from bench.harness import resolve_device, seed_everything
from bench.provenance import provenance_tags
from bench.timing import TimingSummary, device_name, summarize
from bench.tracking import Tracker
from bench.trainer import FitResult, fit


class LoaderBatches(BatchSource):
    """A ``DataLoader`` as a :class:`bench.data.BatchSource`; each batch is copied to ``device``.

    ``index`` is ignored: the loader's own shuffled order is used, as in a classic training script.
    """

    def __init__(self, loader: torch.utils.data.DataLoader, device: torch.device):
        self.loader, self.device = loader, device
        self.batch_size, self.per_epoch = loader.batch_size, len(loader)
        self._it = iter(loader)

    def __call__(self, index: int) -> torch.Tensor:
        return self.labelled(index)[0]

    def labelled(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            images, labels = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            images, labels = next(self._it)
        return images.to(self.device), labels.to(self.device)


def torchvision_dataset(cc: CompareConfig) -> torch.utils.data.Dataset:
    """The training split as the dataset's torchvision class with ``ToTensor()`` + ``Normalize(0.5, 0.5)``,
    unpacked in ``<workdir>/cache/torchvision`` (the read-only data folder is never written to).

    Raises DataError if the dataset has no torchvision class or it cannot be loaded.
    """
    from torchvision import transforms

    spec = DATASETS.get(cc.data.dataset)
    if spec.torchvision is None:
        raise DataError(f"dataset {cc.data.dataset!r} has no torchvision class for the speed baseline")
    channels, size, _ = image_shape(cc.data)
    steps = [transforms.ToTensor()]
    if cc.data.image_size:
        steps.insert(0, transforms.Resize(size, antialias=True))
    if cc.data.channels:
        steps.insert(0, transforms.Grayscale(channels))
    transform = transforms.Compose([*steps, transforms.Normalize((0.5,) * channels, (0.5,) * channels)])
    cache = Path(cc.workdir).resolve() / "cache" / "torchvision"
    try:
        return spec.torchvision(resolve_root(cc.data), cache, "train", transform)
    except Exception as e:
        raise DataError(f"torchvision {cc.data.dataset} for the baseline is not available ({e})") from None


def _time(cfg: RunConfig, sampler: BatchSource, device: torch.device, image_shape: tuple[int, int, int], classes: int):
    """One fit from the seed; returns it and the real images one generator step consumes."""
    seed_everything(cfg.seed)
    gan = build_gan(cfg.arch, cfg.model, image_shape, classes)
    return fit(gan, sampler, cfg, device), cfg.train.batch_size * gan.optim.n_critic


def _combine(parts: list[tuple[FitResult, int]], device: torch.device) -> TimingSummary:
    """One summary of several fits of the same path: their timed steps pooled, the highest peak memory."""
    ms = np.concatenate([r.step_ms for r, _ in parts])
    peak = max(r.timing.peak_mem_mb for r, _ in parts)
    return summarize(ms, parts[0][1], device, peak, parts[0][0].timing.peak_mem_kind)


def run_speed_benchmark(
    cc: CompareConfig, steps: int, compile_: bool = False, log: bool = True, rounds: int = 3
) -> Iterator[str]:
    """Yield the lines of the table for every architecture of ``cc`` (its batch size, device, seed).

    The paths of one architecture run interleaved, ``rounds`` times each in a rotating order, each time
    from the seed for ``warm-up + steps / rounds`` generator steps; a row pools its rounds' timed steps.
    Slow drift of a shared machine (other tenants, clock changes) then hits every row alike instead of
    whichever ran last. Raises ValueError if ``steps < rounds`` or ``rounds < 1``.
    """
    if rounds < 1 or steps < rounds:
        raise ValueError(f"steps = {steps} and rounds = {rounds}: need rounds >= 1 and steps >= rounds")
    device = resolve_device(cc.train.device)
    per_round = -(-steps // rounds)
    warmup = min(cc.train.warmup_steps, 5)
    train = replace(cc.train, steps=warmup + per_round, epochs=None, minutes=None, warmup_steps=warmup)
    data = load(cc.data, "train", cc.workdir, device)  # a missing file: the one-line hint of bench.data
    baseline_data = torchvision_dataset(cc)
    images, labels, shape = data.images, data.labels, data.image_shape
    tracker = Tracker(cc.workdir) if log else None
    yield (
        f"device: {device_name(device)}; torch {torch.__version__}; batch {train.batch_size}; "
        f"{per_round * rounds} generator steps per row in {rounds} interleaved rounds (+{warmup} warm-up each)"
    )
    header = ("architecture", "path", "ms/step p50", "p95", "img/s", "peak MB", "vs baseline")
    yield "{:12s} {:20s} {:>11s} {:>8s} {:>8s} {:>8s} {:>11s}".format(*header)
    bf16_name = "ganbench bf16" + ("+compile" if compile_ else "")
    session = uuid.uuid4().hex
    for arch in cc.archs:
        run_cfg, seed = cc.run(arch, cc.seeds[0]), cc.seeds[0]
        classic = replace(train, fast=False, optimizer_impl="torch-default", channels_last=False)
        loader = torch.utils.data.DataLoader(
            baseline_data, batch_size=train.batch_size, shuffle=True, drop_last=True, num_workers=0,
            generator=torch.Generator().manual_seed(cc.seeds[0]),
        )  # fmt: skip
        paths = {  # name -> (config, sampler)
            "baseline": (replace(run_cfg, train=classic), LoaderBatches(loader, device)),
            "ganbench": (replace(run_cfg, train=train), ShuffledBatches(images, train.batch_size, seed, None, labels)),
            bf16_name: (
                replace(run_cfg, train=replace(train, precision="bf16", compile=compile_)),
                ShuffledBatches(images, train.batch_size, seed, None, labels),
            ),
        }
        names = list(paths)
        parts: dict[str, list[tuple[FitResult, int]]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                parts[name].append(_time(*paths[name], device, shape, data.num_classes))
        timings = {name: _combine(parts[name], device) for name in names}
        base_ms = timings["baseline"].ms_per_step_p50
        for path, tm in timings.items():
            ratio = base_ms / tm.ms_per_step_p50
            yield (
                f"{arch:12s} {path:20s} {tm.ms_per_step_p50:11.1f} {tm.ms_per_step_p95:8.1f} {tm.img_per_s:8.0f} "
                f"{tm.peak_mem_mb:8.0f} {ratio:10.2f}x"
            )
            if tracker is not None:
                tags = {
                    keys.TAG_ARCH: arch,
                    keys.TAG_SPEED_PATH: path,
                    keys.TAG_SPEED_SESSION: session,
                    keys.TAG_DEVICE: tm.device,
                    **provenance_tags(),
                }
                with tracker.run("ganbench-speed", f"{arch}-{path.replace(' ', '-')}", tags) as run:
                    run.log_params({"batch_size": train.batch_size, "steps": steps, "rounds": rounds, "path": path})
                    run.log_metrics(
                        {
                            keys.MS_PER_STEP_P50: tm.ms_per_step_p50,
                            keys.MS_PER_STEP_P95: tm.ms_per_step_p95,
                            keys.IMG_PER_S: tm.img_per_s,
                            keys.PEAK_MEM_MB: tm.peak_mem_mb,
                            keys.SPEEDUP: ratio,
                        }
                    )
