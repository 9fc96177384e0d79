"""The training loop: ``fit()``.

For each generator step: ``n_critic`` discriminator steps (one real batch each, fakes detached, plus
λ·gradient penalty when the architecture asks for it), then one generator step. A class-conditional GAN
(``GAN.num_classes > 0``) gets each real batch with its labels and draws the fake labels uniformly. With
``n_critic = 1`` the generator step scores the same fakes again with the updated discriminator (one
generator forward per step, as in PyTorch's DCGAN example); with ``n_critic > 1`` it draws fresh z
(Gulrajani et al. 2017, Algorithm 1). The budget is generator steps or epochs of real data
(``bench.config.TrainConfig``), optionally capped by wall-clock minutes. The architecture's ``OptimSpec``
names the optimiser (Adam or RMSprop), WGAN's weight clipping of the critic after each of its steps, and a
learning-rate schedule, set before each generator step as a function of the step alone (so a resumed run
continues it exactly) and logged as ``train/lr_g`` / ``train/lr_d``.
Everything else (progress, logging, grids, evaluation, checkpoints, the NaN guard) is a hook; the speed
set-up (compile, channels-last, autocast, CUDA graphs, the Adam kernel) is made once by :func:`fast_path`.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from architectures.losses import LOSSES, gradient_penalty
from architectures.registry import GAN, OptimSpec
from bench import signals
from bench.config import OPTIMIZER_IMPLS, RunConfig, TrainConfig
from bench.data import BatchSource as Sampler
from bench.errors import ConfigError
from bench.timing import StepTimer, TimingSummary
from bench.trainer import Hook, StepOutput, Trainer


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
    """Generator steps of the budget: ``train.steps``, or ``epochs * batches_per_epoch / n_critic`` (>= 1)."""
    if train.steps is not None:
        return train.steps
    return max(1, round(train.epochs * batches_per_epoch / n_critic))


@dataclass(frozen=True)
class FitResult:
    steps: int
    d_steps: int
    epochs: float
    train_s: float
    stop_reason: str
    timing: TimingSummary
    step_ms: np.ndarray  # the timed steps' milliseconds (after warm-up), for combining several fits


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


def set_lr(trainer: Trainer, o: OptimSpec) -> dict[str, torch.Tensor]:
    """Both learning rates at the schedule's value for the coming generator step (``OptimSpec.lr_factor``);
    returns them as loss extras (logged as ``train/lr_g``, ``train/lr_d``)."""
    factor = o.lr_factor(trainer.step, trainer.total_steps)
    lrs = {"lr_g": o.lr_g * factor, "lr_d": o.lr_d * factor}
    for opt, lr in ((trainer.opt_g, lrs["lr_g"]), (trainer.opt_d, lrs["lr_d"])):
        for group in opt.param_groups:
            group["lr"] = lr
    return {k: torch.tensor(v) for k, v in lrs.items()}


def fit(
    gan: GAN,
    sampler: Sampler,
    cfg: RunConfig,
    device: torch.device,
    hooks: Sequence[Hook] = (),
    resume: dict[str, Any] | None = None,
    extra_state: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``gan`` on batches from ``sampler`` until the budget of ``cfg.train`` is spent or a hook stops it.

    Args:
        gan: built by ``architectures.build_gan``; moved to ``device``.
        sampler: real batches, float ``(B, C, H, W)`` in ``[-1, 1]`` on ``device`` (``bench.data.Sampler``).
        cfg: the resolved run config (budget, cadence; stored in checkpoints).
        hooks: called at fit start, after each generator step, at fit end (in order), and on an interrupt.
        resume: a checkpoint dict (``bench.checkpoint.load``) to continue from.
        extra_state: extra entries stored in every checkpoint.

    Returns a FitResult whose ``stop_reason`` is ``"budget"``, ``"minutes"`` or the reason a hook gave to
    ``trainer.stop()`` (e.g. ``"pruned"``). Exceptions from hooks (e.g. ``TrainingDiverged``) propagate.
    A KeyboardInterrupt (Ctrl-C, or SIGTERM through ``bench.signals``) first calls every hook's
    ``on_interrupt`` (the checkpointer saves if the last step completed), then propagates.
    """
    t, o = cfg.train, gan.optim
    fp = fast_path(gan, t, device)
    G, D, G_run, D_run = gan.generator, gan.discriminator, fp.generator, fp.discriminator
    loss_fn = LOSSES.get(gan.loss_name).fn
    trainer = Trainer(
        cfg=cfg,
        gan=gan,
        sampler=sampler,
        device=device,
        opt_g=fp.opt_g,
        opt_d=fp.opt_d,
        total_steps=total_steps(t, sampler.per_epoch, o.n_critic),
        timer=StepTimer(device, t.warmup_steps, sampler.batch_size * o.n_critic),
        extra_state=dict(extra_state or {}),
    )
    if resume is not None:
        trainer.load_state_dict(resume)
    # n_critic = 1: the generator step scores the discriminator step's fakes again (one G forward per step,
    # as PyTorch's DCGAN example); n_critic > 1: fresh z for the generator step (Gulrajani et al. 2017, Alg. 1)
    reuse_fakes = o.n_critic == 1
    batch, z_dim = sampler.batch_size, G.z_dim
    conditional, n_classes = gan.conditional, gan.num_classes  # real labels from the sampler, fake ones uniform
    scheduled = o.lr_schedule != "constant" or o.lr_warmup_steps > 0  # a function of the step: resumes exactly
    clip = list(D.parameters()) if o.clip_value > 0 else []
    deadline = time.monotonic() + t.minutes * 60 if t.minutes else math.inf
    G.train()
    D.train()
    for h in hooks:
        h.on_fit_start(trainer)
    t_start = time.perf_counter()
    try:
        while trainer.step < trainer.total_steps and trainer.stop_reason is None:
            if time.monotonic() > deadline:
                trainer.stop("minutes")
                break
            with signals.deferred():  # SIGINT/SIGTERM wait for the step to end (bench.signals)
                trainer.in_step = True
                trainer.timer.start()
                if fp.cuda_graphs:  # a new iteration: outputs of the previous step's graph replays may be reused
                    torch.compiler.cudagraph_mark_step_begin()
                lrs = set_lr(trainer, o) if scheduled else {}
                for _ in range(o.n_critic):
                    real, y_real = sampler.labelled(trainer.d_step) if conditional else (sampler(trainer.d_step), None)
                    real = real.contiguous(memory_format=fp.memory_format)
                    trainer.d_step += 1
                    z = torch.randn(batch, z_dim, device=device)
                    y_fake = torch.randint(n_classes, (batch,), device=device) if conditional else None
                    with fp.autocast:
                        with torch.set_grad_enabled(reuse_fakes):
                            fake = gan.generate(z, y_fake, G_run)
                        d_real, c_real = gan.discriminate(real, y_real, D_run)
                        d_fake, c_fake = gan.discriminate(fake.detach(), y_fake, D_run)
                        d_loss, _, extras = loss_fn(d_real.float(), d_fake.float())
                        if c_real is not None:  # AC-GAN: class loss on real and fake images (Odena et al. 2017)
                            cls = F.cross_entropy(c_real.float(), y_real) + F.cross_entropy(c_fake.float(), y_fake)
                            d_loss = d_loss + gan.aux_weight * cls
                            extras = {**extras, "class_loss": cls.detach()}
                        if o.gp_weight > 0:  # eager D: double backward; a conditional critic scores the
                            # interpolates with the real batch's labels
                            gp = gradient_penalty(lambda x, y=y_real: gan.discriminate(x, y)[0], real, fake)
                            d_loss = d_loss + o.gp_weight * gp
                            extras = {**extras, "gp": gp.detach()}
                    trainer.opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    trainer.opt_d.step()
                    if clip:  # WGAN (Arjovsky et al. 2017, Algorithm 1): every critic weight in [-c, c]
                        with torch.no_grad():
                            for p in clip:
                                p.clamp_(-o.clip_value, o.clip_value)

                D.requires_grad_(False)  # no discriminator gradients in the generator step
                if not reuse_fakes:
                    z = torch.randn(batch, z_dim, device=device)
                    y_fake = torch.randint(n_classes, (batch,), device=device) if conditional else None
                    with fp.autocast:
                        fake = gan.generate(z, y_fake, G_run)
                with fp.autocast:
                    g_scores, g_classes = gan.discriminate(fake, y_fake, D_run)
                    _, g_loss, _ = loss_fn(d_real.detach().float(), g_scores.float())
                    if g_classes is not None:
                        g_loss = g_loss + gan.aux_weight * F.cross_entropy(g_classes.float(), y_fake)
                trainer.opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                trainer.opt_g.step()
                D.requires_grad_(True)
                if not t.fast:  # the plain path reads the losses back every step, as classic training scripts do
                    d_loss.item(), g_loss.item()
                trainer.timer.stop()

                trainer.step += 1
                trainer.in_step = False
            out = StepOutput(trainer.step, d_loss.detach(), g_loss.detach(), {**extras, **lrs})
            trainer.record(out)
            for h in hooks:
                h.on_step_end(trainer, out)
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: let hooks save what a resume needs, then stop
        for h in hooks:
            h.on_interrupt(trainer)
        raise
    train_s = time.perf_counter() - t_start
    trainer.stop_reason = trainer.stop_reason or "budget"
    for h in hooks:
        h.on_fit_end(trainer)
    return FitResult(
        steps=trainer.step,
        d_steps=trainer.d_step,
        epochs=trainer.d_step / sampler.per_epoch,
        train_s=train_s,
        stop_reason=trainer.stop_reason,
        timing=trainer.timer.summary(),
        step_ms=trainer.timer.step_times_ms(),
    )
