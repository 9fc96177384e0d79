"""The set-up a trainer makes before its first step: seeds, the device, the budget in generator steps, and
the speed set-up (:func:`fast_path`). The loop itself is ``bench.trainer.Trainer``.

Seeds fix everything a run draws: python's ``random``, numpy, torch (CPU and CUDA); the data order comes
from the batch source's own seeded generator (``bench.data.ShuffledBatches``).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from architectures.registry import GAN, OptimSpec
from bench.config import OPTIMIZER_IMPLS, TrainConfig
from bench.errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; otherwise ``torch.device(name)``.

    Raises ConfigError for a name torch does not read (``cpu:abc``) or a device this machine does not have
    (``cuda`` without a GPU, ``cuda:9`` with fewer, ``mps`` off Apple silicon).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"train.device = {name!r} is not a device; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ConfigError(f"train.device = {name!r}, but this machine has {have}; use 'auto' or 'cpu'")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device = {name!r}, but MPS is not available here; use 'auto' or 'cpu'")
    return device


def total_steps(train: TrainConfig, batches_per_epoch: int, n_critic: int) -> int:
    """Generator steps of the budget: ``train.steps``, or ``epochs * batches_per_epoch / n_critic`` (>= 1) with
    ``train.budget_unit = "d-steps"`` (and ``"minutes"``, where it is an upper bound), ``epochs *
    batches_per_epoch`` with ``"g-steps"``."""
    if train.steps is not None:
        return train.steps
    per_epoch = batches_per_epoch if train.budget_unit == "g-steps" else batches_per_epoch / n_critic
    return max(1, round(train.epochs * per_epoch))


@dataclass
class FastPath:
    """The speed set-up of a run, made once by :func:`fast_path`, shared by the plain and the fast path.

    ``generator`` / ``discriminator``: the networks to call in the step (``torch.compile``-d with
    ``train.compile``; the gradient penalty uses the eager critic, as compiled graphs do not support double
    backward); ``memory_format``: of weights and real batches (``train.channels_last``); ``autocast``: bf16
    autocast with ``train.precision = "bf16"`` (off otherwise); ``cuda_graphs``: compiled with CUDA graphs
    (``compile_mode`` other than default on CUDA), so each iteration must mark a new step; ``opt_g`` /
    ``opt_d``: Adam with the kernel of ``train.optimizer_impl`` (the same on both paths, which keeps them
    bit-identical on CPU).
    """

    generator: nn.Module
    discriminator: nn.Module
    memory_format: torch.memory_format
    autocast: Any
    cuda_graphs: bool
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def fast_path(gan: GAN, t: TrainConfig, device: torch.device) -> FastPath:
    """Move ``gan`` to ``device`` in the configured memory format and build its optimisers and wrappers."""
    G, D = gan.generator.to(device), gan.discriminator.to(device)
    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    G.to(memory_format=memory_format)  # only 4-d (convolution) weights change layout
    D.to(memory_format=memory_format)
    o, adam = gan.optim, OPTIMIZER_IMPLS[t.optimizer_impl]
    compiled = (torch.compile(G, mode=t.compile_mode), torch.compile(D, mode=t.compile_mode)) if t.compile else (G, D)
    return FastPath(
        generator=compiled[0],
        discriminator=compiled[1],
        memory_format=memory_format,
        autocast=torch.autocast(device.type, dtype=torch.bfloat16)
        if t.precision == "bf16"
        else contextlib.nullcontext(),
        cuda_graphs=t.compile and t.compile_mode != "default" and device.type == "cuda",
        opt_g=optimizer(G.parameters(), o.lr_g, o, adam),
        opt_d=optimizer(D.parameters(), o.lr_d, o, adam),
    )


def optimizer(params: Any, lr: float, o: OptimSpec, impl: dict[str, bool]) -> torch.optim.Optimizer:
    """``o.optimizer`` (an ``OptimSpec``'s) over ``params`` at ``lr``: Adam with ``o.betas``, or RMSprop with
    torch's defaults; ``impl``: the kernel (``train.optimizer_impl``; RMSprop has no fused one: foreach)."""
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **({"foreach": True} if impl.get("fused") else impl))
    return torch.optim.Adam(params, lr=lr, betas=o.betas, **impl)
