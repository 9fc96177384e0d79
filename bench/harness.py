"""The training loop: ``fit()``.

For each generator step: ``n_critic`` discriminator steps (one real batch each, fakes detached, plus
λ·gradient penalty when the architecture asks for it), then one generator step. With ``n_critic = 1`` the
generator step scores the same fakes again with the updated discriminator (one generator forward per step,
as in PyTorch's DCGAN example); with ``n_critic > 1`` it draws fresh z (Gulrajani et al. 2017, Algorithm 1).
The budget is generator
steps or epochs of real data (``bench.config.TrainConfig``), optionally capped by wall-clock minutes.
Everything else (progress, logging, grids, evaluation, checkpoints, the NaN guard) is a hook.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from architectures.losses import LOSSES, gradient_penalty
from architectures.registry import GAN
from bench import checkpoint, signals
from bench.config import RunConfig, TrainConfig
from bench.data import BatchSampler
from bench.errors import CheckpointError
from bench.hooks import Hook
from bench.timing import StepTimer, TimingSummary

# train.optimizer_impl -> torch.optim.Adam keyword arguments
ADAM_IMPLS: dict[str, dict[str, bool]] = {
    "fused": {"fused": True},
    "foreach": {"foreach": True},
    "for-loop": {"foreach": False},
    "torch-default": {},
}


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def total_steps(train: TrainConfig, batches_per_epoch: int, n_critic: int) -> int:
    """Generator steps of the budget: ``train.steps``, or ``epochs * batches_per_epoch / n_critic`` (>= 1)."""
    if train.steps is not None:
        return train.steps
    return max(1, round(train.epochs * batches_per_epoch / n_critic))


@dataclass
class StepOutput:
    """One generator step: ``step`` (1-based), detached scalar losses, and the loss's extras."""

    step: int
    d_loss: Tensor
    g_loss: Tensor
    extras: dict[str, Tensor]


@dataclass
class Trainer:
    """The state of a run, handed to every hook."""

    cfg: RunConfig
    gan: GAN
    sampler: BatchSampler
    device: torch.device
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    total_steps: int
    timer: StepTimer
    step: int = 0
    d_step: int = 0
    stop_reason: str = "budget"
    extra_state: dict[str, Any] = field(default_factory=dict)  # stored in checkpoints (e.g. mlflow_run_id)
    before_save: list[Callable[[Trainer], None]] = field(default_factory=list)  # checks run before a save
    in_step: bool = False  # True while a step is half done (its state must not be saved)
    last_checkpoint: Path | None = None

    @torch.no_grad()
    def sample(self, z: Tensor) -> Tensor:
        """G(z) in eval mode: ``(N, C, H, W)`` in ``[-1, 1]``; restores G's mode afterwards."""
        g = self.gan.generator
        was_training = g.training
        g.eval()
        try:
            return g(z.to(self.device))
        finally:
            g.train(was_training)

    def state_dict(self) -> dict[str, Any]:
        return {
            "arch": self.cfg.arch,
            "seed": self.cfg.seed,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "d_step": self.d_step,
            "generator": self.gan.generator.state_dict(),
            "discriminator": self.gan.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": _rng_state(),
            **self.extra_state,
        }

    def save_checkpoint(self, path: Path) -> Path:
        """Run the ``before_save`` checks (e.g. the NaN guard), then write the checkpoint atomically."""
        for check in self.before_save:
            check(self)
        self.last_checkpoint = checkpoint.save(path, self.state_dict())
        return self.last_checkpoint

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint dict. Raises CheckpointError if it belongs to another architecture."""
        if state.get("arch") != self.cfg.arch:
            raise CheckpointError(f"checkpoint is for architecture {state.get('arch')!r}, not {self.cfg.arch!r}")
        try:
            self.gan.generator.load_state_dict(state["generator"])
            self.gan.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not match the model: {str(e).splitlines()[0]}") from None
        self.step, self.d_step = int(state["step"]), int(state["d_step"])
        _set_rng_state(state["rng"])


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    random.setstate(_tuples(state["python"]))


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


@dataclass(frozen=True)
class FitResult:
    steps: int
    d_steps: int
    epochs: float
    train_s: float
    stop_reason: str
    timing: TimingSummary
    step_ms: np.ndarray  # the timed steps' milliseconds (after warm-up), for combining several fits


def fit(
    gan: GAN,
    sampler: BatchSampler,
    cfg: RunConfig,
    device: torch.device,
    hooks: Sequence[Hook] = (),
    resume: dict[str, Any] | None = None,
    extra_state: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``gan`` on batches from ``sampler`` until the budget of ``cfg.train`` is spent.

    Args:
        gan: built by ``architectures.build_gan``; moved to ``device``.
        sampler: real batches, float ``(B, C, H, W)`` in ``[-1, 1]`` on ``device``.
        cfg: the resolved run config (budget, cadence; stored in checkpoints).
        hooks: called at fit start, after each generator step, at fit end (in order), and on an interrupt.
        resume: a checkpoint dict (``bench.checkpoint.load``) to continue from.
        extra_state: extra entries stored in every checkpoint.

    Returns a FitResult. Exceptions from hooks (e.g. ``TrainingDiverged``) propagate after nothing else runs.
    A KeyboardInterrupt (Ctrl-C, or SIGTERM through ``bench.signals``) first calls every hook's
    ``on_interrupt`` (the checkpointer saves if the last step completed), then propagates.
    """
    G, D = gan.generator.to(device), gan.discriminator.to(device)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    G.to(memory_format=memory_format)  # only 4-d (convolution) weights change layout
    D.to(memory_format=memory_format)
    loss_fn = LOSSES.get(gan.loss_name).fn
    o, t = gan.optim, cfg.train
    adam = ADAM_IMPLS[t.optimizer_impl]  # the same kernel on both paths: they stay bit-identical on CPU
    trainer = Trainer(
        cfg=cfg,
        gan=gan,
        sampler=sampler,
        device=device,
        opt_g=torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=o.betas, **adam),
        opt_d=torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=o.betas, **adam),
        total_steps=total_steps(t, sampler.per_epoch, o.n_critic),
        timer=StepTimer(device, t.warmup_steps, sampler.batch_size * o.n_critic),
        extra_state=dict(extra_state or {}),
    )
    if resume is not None:
        trainer.load_state_dict(resume)
    G_run, D_run = (
        (torch.compile(G, mode=t.compile_mode), torch.compile(D, mode=t.compile_mode)) if t.compile else (G, D)
    )
    cuda_graphs = t.compile and t.compile_mode != "default" and device.type == "cuda"
    # n_critic = 1: the generator step scores the discriminator step's fakes again (one G forward per step,
    # as PyTorch's DCGAN example); n_critic > 1: fresh z for the generator step (Gulrajani et al. 2017, Alg. 1)
    reuse_fakes = o.n_critic == 1
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")
    batch, z_dim = sampler.batch_size, G.z_dim
    deadline = time.monotonic() + t.minutes * 60 if t.minutes else math.inf
    G.train()
    D.train()
    for h in hooks:
        h.on_fit_start(trainer)
    t_start = time.perf_counter()
    try:
        while trainer.step < trainer.total_steps:
            if time.monotonic() > deadline:
                trainer.stop_reason = "minutes"
                break
            with signals.deferred():  # SIGINT/SIGTERM wait for the step to end (bench.signals)
                trainer.in_step = True
                trainer.timer.start()
                if cuda_graphs:  # a new iteration: outputs of the previous step's graph replays may be reused
                    torch.compiler.cudagraph_mark_step_begin()
                for _ in range(o.n_critic):
                    real = sampler(trainer.d_step).contiguous(memory_format=memory_format)
                    trainer.d_step += 1
                    z = torch.randn(batch, z_dim, device=device)
                    with autocast:
                        with torch.set_grad_enabled(reuse_fakes):
                            fake = G_run(z)
                        d_real = D_run(real).float()
                        d_loss, _, extras = loss_fn(d_real, D_run(fake.detach()).float())
                        if o.gp_weight > 0:
                            gp = gradient_penalty(D, real, fake)  # eager D: double backward
                            d_loss = d_loss + o.gp_weight * gp
                            extras = {**extras, "gp": gp.detach()}
                    trainer.opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    trainer.opt_d.step()

                D.requires_grad_(False)  # no discriminator gradients in the generator step
                if not reuse_fakes:
                    z = torch.randn(batch, z_dim, device=device)
                    with autocast:
                        fake = G_run(z)
                with autocast:
                    _, g_loss, _ = loss_fn(d_real.detach(), D_run(fake).float())
                trainer.opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                trainer.opt_g.step()
                D.requires_grad_(True)
                if not t.fast:  # the plain path reads the losses back every step, as classic training scripts do
                    d_loss.item(), g_loss.item()
                trainer.timer.stop()

                trainer.step += 1
                trainer.in_step = False
            out = StepOutput(trainer.step, d_loss.detach(), g_loss.detach(), extras)
            for h in hooks:
                h.on_step_end(trainer, out)
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: let hooks save what a resume needs, then stop
        for h in hooks:
            h.on_interrupt(trainer)
        raise
    train_s = time.perf_counter() - t_start
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
