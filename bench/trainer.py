"""The trainer: one object that owns a run's state and its loop (as minGPT's ``Trainer`` and detectron2's
``SimpleTrainer``), and the :class:`Hook` interface the rest of a run plugs into.

:meth:`Trainer.fit` reads top to bottom: until the budget is spent or a hook stops it, :meth:`Trainer.run_step`
makes one generator step, i.e. ``n_critic`` calls of :meth:`Trainer.d_step` (one real batch each, fakes
detached, plus λ·gradient penalty when the architecture asks for it) and one call of :meth:`Trainer.g_step`.
Each is a method a subclass overrides to change one step (a new regulariser, another penalty) without copying
the loop. A class-conditional GAN (``GAN.num_classes > 0``) gets each real batch with its labels and draws the
fake labels uniformly. With ``n_critic = 1`` the generator step scores the same fakes again with the updated
discriminator (one generator forward per step, as in PyTorch's DCGAN example); with ``n_critic > 1`` it draws
fresh z (Gulrajani et al. 2017, Algorithm 1). The budget is generator steps or epochs of real data
(``bench.config.TrainConfig``), optionally capped by wall-clock minutes. The architecture's ``OptimSpec``
names the optimiser (Adam or RMSprop), WGAN's weight clipping of the critic after each of its steps, and a
learning-rate schedule, set before each generator step as a function of the step alone (so a resumed run
continues it exactly) and logged as ``train/lr_g`` / ``train/lr_d``.

Everything else (progress, logging, grids, evaluation, checkpoints, the NaN guard) is a hook that receives the
trainer. A hook changes the run only through the trainer's methods: :meth:`Trainer.stop` ends the loop with a
reason (a result, not an exception); :meth:`Trainer.save_checkpoint` writes a checkpoint, which is never the
state of a diverged run. The speed set-up (compile, channels-last, autocast, CUDA graphs, the Adam kernel) is
made once, in the constructor, by ``bench.harness.fast_path``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from architectures.losses import LOSSES, gradient_penalty
from architectures.registry import GAN
from bench import checkpoint, keys, signals
from bench.config import RunConfig
from bench.data import BatchSource
from bench.errors import CheckpointError, TrainingDiverged
from bench.harness import fast_path, total_steps
from bench.timing import StepTimer, TimingSummary


@dataclass
class StepOutput:
    """One generator step: ``step`` (1-based), detached scalar losses, and the loss's extras."""

    step: int
    d_loss: Tensor
    g_loss: Tensor
    extras: dict[str, Tensor]


@dataclass
class DStep:
    """What one discriminator step leaves for the generator step: its loss and extras, D's scores of the real
    batch, and the fakes (with their labels) it scored, which the generator step reuses when ``n_critic = 1``."""

    d_loss: Tensor
    extras: dict[str, Tensor]
    d_real: Tensor
    fake: Tensor
    y_fake: Tensor | None


@dataclass(frozen=True)
class FitResult:
    steps: int
    d_steps: int
    epochs: float
    train_s: float
    stop_reason: str
    timing: TimingSummary
    step_ms: np.ndarray  # the timed steps' milliseconds (after warm-up), for combining several fits


class Hook:
    """Base class; override what you need. Raising from a hook stops the run (it ends FAILED); a hook that
    wants the run to end early without failing calls ``trainer.stop(reason)``."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def on_interrupt(self, trainer: Trainer) -> None:
        """Ctrl-C or SIGTERM stopped training (``trainer.in_step`` says whether mid-step)."""


class Trainer:
    """Trains ``gan`` on ``batches`` under ``cfg``'s budget; owns the optimisers, the step counters and the loop.

    Args:
        gan: built by ``architectures.build_gan``; moved to ``device`` (in the configured memory format).
        batches: real batches, float ``(B, C, H, W)`` in ``[-1, 1]`` on ``device`` (``bench.data.BatchSource``).
        cfg: the resolved run config (budget, cadence, speed options; stored in checkpoints).
        hooks: called at fit start, after each generator step, at fit end (in order), and on an interrupt.
        extra_state: extra entries stored in every checkpoint (e.g. ``mlflow_run_id``).

    State a hook may read: ``step`` (generator steps done), ``d_steps`` (discriminator steps done = real
    batches drawn), ``total_steps``, ``stop_reason`` (None while training; ``"budget"``, ``"minutes"`` or what a
    hook passed to :meth:`stop`), ``in_step`` (True while a step is half done: its state must not be saved),
    ``timer``, ``opt_g`` / ``opt_d``, ``last_checkpoint``. The first step whose losses were not finite is kept on
    the device (no host sync in the step) and read by :meth:`divergence`.
    """

    def __init__(
        self,
        gan: GAN,
        batches: BatchSource,
        cfg: RunConfig,
        device: torch.device,
        hooks: Sequence[Hook] = (),
        extra_state: dict[str, Any] | None = None,
    ):
        t, o = cfg.train, gan.optim
        self.cfg, self.gan, self.batches, self.device, self.hooks = cfg, gan, batches, device, list(hooks)
        self.fast = fast_path(gan, t, device)
        self.opt_g, self.opt_d = self.fast.opt_g, self.fast.opt_d
        self.loss_fn = LOSSES.get(gan.loss_name).fn
        self.total_steps = total_steps(t, batches.per_epoch, o.n_critic)
        self.timer = StepTimer(device, t.warmup_steps, batches.batch_size * o.n_critic)
        self.extra_state = dict(extra_state or {})
        self.step = self.d_steps = 0
        self.stop_reason: str | None = None
        self.in_step = False
        self.last_checkpoint: Path | None = None
        self._bad_step: Tensor | None = None  # first step with a non-finite loss (-1: none yet), on the device
        self._bad_losses: Tensor | None = None  # its (d_loss, g_loss)
        self._clip = list(gan.discriminator.parameters()) if o.clip_value > 0 else []

    # --- the loop ---------------------------------------------------------------------------------------

    def fit(self, resume: dict[str, Any] | None = None) -> FitResult:
        """Train until the budget of ``cfg.train`` is spent or a hook stops the run; ``resume``: a checkpoint
        dict (``bench.checkpoint.load``) to continue from.

        Returns a FitResult whose ``stop_reason`` is ``"budget"``, ``"minutes"`` or the reason a hook gave to
        :meth:`stop` (e.g. ``"pruned"``). Exceptions from hooks (e.g. ``TrainingDiverged``) propagate. A
        KeyboardInterrupt (Ctrl-C, or SIGTERM through ``bench.signals``) first calls every hook's
        ``on_interrupt`` (the checkpointer saves if the last step completed), then propagates.
        """
        if resume is not None:
            self.load_state_dict(resume)
        minutes = self.cfg.train.minutes
        deadline = time.monotonic() + minutes * 60 if minutes else math.inf
        self.gan.generator.train()
        self.gan.discriminator.train()
        self._call("on_fit_start")
        t_start = time.perf_counter()
        try:
            while self.step < self.total_steps and self.stop_reason is None:
                if time.monotonic() > deadline:
                    self.stop("minutes")
                    break
                with signals.deferred():  # SIGINT/SIGTERM wait for the step to end (bench.signals)
                    self.in_step = True
                    self.timer.start()
                    out = self.run_step()
                    self.timer.stop()
                    self.step += 1
                    self.in_step = False
                out = StepOutput(self.step, out.d_loss, out.g_loss, out.extras)
                self.record(out)
                self._call("on_step_end", out)
        except KeyboardInterrupt:  # Ctrl-C / SIGTERM: let hooks save what a resume needs, then stop
            self._call("on_interrupt")
            raise
        train_s = time.perf_counter() - t_start
        self.stop_reason = self.stop_reason or "budget"
        self._call("on_fit_end")
        return FitResult(
            steps=self.step,
            d_steps=self.d_steps,
            epochs=self.d_steps / self.batches.per_epoch,
            train_s=train_s,
            stop_reason=self.stop_reason,
            timing=self.timer.summary(),
            step_ms=self.timer.step_times_ms(),
        )

    def run_step(self) -> StepOutput:
        """One generator step: the learning rates of the schedule, ``n_critic`` :meth:`d_step` calls, one
        :meth:`g_step`. Returns the detached losses (``step`` is the index of this step, 0-based)."""
        o = self.gan.optim
        if self.fast.cuda_graphs:  # a new iteration: outputs of the previous step's graph replays may be reused
            torch.compiler.cudagraph_mark_step_begin()
        lrs = self.set_lr() if o.lr_schedule != "constant" or o.lr_warmup_steps > 0 else {}
        for _ in range(o.n_critic):
            d = self.d_step(*self.next_batch())
        g_loss = self.g_step(d)
        if not self.cfg.train.fast:  # the plain path reads the losses back every step, as classic scripts do
            d.d_loss.item(), g_loss.item()
        return StepOutput(self.step, d.d_loss.detach(), g_loss.detach(), {**d.extras, **lrs})

    def next_batch(self) -> tuple[Tensor, Tensor | None]:
        """The next real batch ``(images (B, C, H, W) in [-1, 1], labels (B,) or None)``, in the configured
        memory format; counts a discriminator step."""
        i = self.d_steps
        real, y = self.batches.labelled(i) if self.gan.conditional else (self.batches(i), None)
        self.d_steps += 1
        return real.contiguous(memory_format=self.fast.memory_format), y

    def draw_fakes(self, grad: bool) -> tuple[Tensor, Tensor | None]:
        """Fresh fakes ``G(z)`` (``G(z, y)`` with uniform labels ``y`` for a conditional GAN) of a batch's size,
        with the autograd graph through G when ``grad``."""
        batch, gan = self.batches.batch_size, self.gan
        z = torch.randn(batch, gan.generator.z_dim, device=self.device)
        y = torch.randint(gan.num_classes, (batch,), device=self.device) if gan.conditional else None
        with self.fast.autocast, torch.set_grad_enabled(grad):
            return gan.generate(z, y, self.fast.generator), y

    def d_step(self, real: Tensor, y_real: Tensor | None) -> DStep:
        """One discriminator (critic) update on ``real`` and fresh fakes: the loss on logits, AC-GAN's class
        loss, λ·gradient penalty, the optimiser step, then WGAN's weight clipping."""
        gan, o, D_run = self.gan, self.gan.optim, self.fast.discriminator
        fake, y_fake = self.draw_fakes(grad=o.n_critic == 1)  # n_critic = 1: the G step reuses them
        with self.fast.autocast:
            d_real, c_real = gan.discriminate(real, y_real, D_run)
            d_fake, c_fake = gan.discriminate(fake.detach(), y_fake, D_run)
            d_loss, _, extras = self.loss_fn(d_real.float(), d_fake.float())
            if c_real is not None:  # AC-GAN: class loss on real and fake images (Odena et al. 2017)
                cls = F.cross_entropy(c_real.float(), y_real) + F.cross_entropy(c_fake.float(), y_fake)
                d_loss = d_loss + gan.aux_weight * cls
                extras = {**extras, "class_loss": cls.detach()}
            if o.gp_weight > 0:  # eager D: double backward; a conditional critic scores the interpolates with
                # the real batch's labels
                gp = gradient_penalty(lambda x, y=y_real: gan.discriminate(x, y)[0], real, fake)
                d_loss = d_loss + o.gp_weight * gp
                extras = {**extras, "gp": gp.detach()}
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        if self._clip:  # WGAN (Arjovsky et al. 2017, Algorithm 1): every critic weight in [-c, c]
            with torch.no_grad():
                for p in self._clip:
                    p.clamp_(-o.clip_value, o.clip_value)
        return DStep(d_loss, extras, d_real, fake, y_fake)

    def g_step(self, last: DStep) -> Tensor:
        """One generator update against the discriminator, which gets no gradients; ``last``: the final
        discriminator step of this generator step (its fakes are reused when ``n_critic = 1``)."""
        gan, D = self.gan, self.gan.discriminator
        D.requires_grad_(False)
        fake, y_fake = (last.fake, last.y_fake) if gan.optim.n_critic == 1 else self.draw_fakes(grad=True)
        with self.fast.autocast:
            g_scores, g_classes = gan.discriminate(fake, y_fake, self.fast.discriminator)
            _, g_loss, _ = self.loss_fn(last.d_real.detach().float(), g_scores.float())
            if g_classes is not None:
                g_loss = g_loss + gan.aux_weight * F.cross_entropy(g_classes.float(), y_fake)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        D.requires_grad_(True)
        return g_loss

    def set_lr(self) -> dict[str, Tensor]:
        """Both learning rates at the schedule's value for the coming generator step (``OptimSpec.lr_factor``);
        returns them as loss extras (logged as ``train/lr_g``, ``train/lr_d``)."""
        o = self.gan.optim
        factor = o.lr_factor(self.step, self.total_steps)
        lrs = {"lr_g": o.lr_g * factor, "lr_d": o.lr_d * factor}
        for opt, lr in ((self.opt_g, lrs["lr_g"]), (self.opt_d, lrs["lr_d"])):
            for group in opt.param_groups:
                group["lr"] = lr
        return {k: torch.tensor(v) for k, v in lrs.items()}

    def stop(self, reason: str) -> None:
        """End the loop after the current step's hooks, with ``reason`` as the fit's stop reason."""
        self.stop_reason = reason

    def _call(self, event: str, *args: Any) -> None:
        for h in self.hooks:
            getattr(h, event)(self, *args)

    @torch.no_grad()
    def sample(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G(z) (G(z, y) with labels ``y`` for a conditional GAN) in eval mode: ``(N, C, H, W)`` in
        ``[-1, 1]``; restores G's mode afterwards."""
        g = self.gan.generator
        was_training = g.training
        g.eval()
        try:
            return self.gan.generate(z.to(self.device), None if y is None else y.to(self.device))
        finally:
            g.train(was_training)

    # --- divergence -----------------------------------------------------------------------------------

    def record(self, out: StepOutput) -> None:
        """Remember the first step whose losses are NaN or infinite, on the device (the step never waits)."""
        values = torch.stack([out.d_loss.float(), out.g_loss.float()])
        if self._bad_step is None:
            self._bad_step = torch.full((), -1, dtype=torch.long, device=values.device)
            self._bad_losses = torch.zeros_like(values)
        take = (self._bad_step < 0) & ~torch.isfinite(values).all()
        self._bad_step = torch.where(take, torch.full_like(self._bad_step, out.step), self._bad_step)
        self._bad_losses = torch.where(take, values, self._bad_losses)

    def loss_divergence(self) -> TrainingDiverged | None:
        """The first non-finite loss recorded, as the error to raise (reads the device), or None."""
        if self._bad_step is None or int(self._bad_step) < 0:
            return None
        d, g = self._bad_losses.tolist()
        name, value = (keys.D_LOSS, d) if not math.isfinite(d) else (keys.G_LOSS, g)
        return TrainingDiverged(int(self._bad_step), name, value, self.last_checkpoint)

    def divergence(self) -> TrainingDiverged | None:
        """:meth:`loss_divergence`, else the first NaN or infinite weight of either network, or None."""
        found = self.loss_divergence()
        if found is not None:
            return found
        for net in ("generator", "discriminator"):
            for pname, p in getattr(self.gan, net).named_parameters():
                flat = p.detach().flatten()
                if not bool(torch.isfinite(flat).all()):
                    bad = flat[~torch.isfinite(flat)][0].item()
                    return TrainingDiverged(self.step, f"{net} weight {pname}", bad, self.last_checkpoint)
        return None

    def check_finite(self) -> None:
        """Raise :class:`bench.errors.TrainingDiverged` if :meth:`divergence` finds anything."""
        found = self.divergence()
        if found is not None:
            raise found

    # --- checkpoints ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs: G, D, both optimisers, the step counters, the RNG states, the config and the
        registry name (plus ``extra_state``)."""
        return {
            "arch": self.cfg.arch,
            "seed": self.cfg.seed,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "d_step": self.d_steps,
            "generator": self.gan.generator.state_dict(),
            "discriminator": self.gan.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": checkpoint.rng_state(),
            **self.extra_state,
        }

    def save_checkpoint(self, path: Path) -> Path:
        """Write the checkpoint atomically; raises TrainingDiverged instead when the state is not finite."""
        self.check_finite()
        self.last_checkpoint = checkpoint.save(path, self.state_dict())
        return self.last_checkpoint

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint dict. Raises CheckpointError if it does not fit the model."""
        try:
            checkpoint.load_weights(self.gan, state)
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not match the model: {str(e).splitlines()[0]}") from None
        self.step, self.d_steps = int(state["step"]), int(state["d_step"])
        checkpoint.set_rng_state(state["rng"])


def fit(
    gan: GAN,
    batches: BatchSource,
    cfg: RunConfig,
    device: torch.device,
    hooks: Sequence[Hook] = (),
    resume: dict[str, Any] | None = None,
    extra_state: dict[str, Any] | None = None,
) -> FitResult:
    """``Trainer(gan, batches, cfg, device, hooks, extra_state).fit(resume)``: train with the built-in steps."""
    return Trainer(gan, batches, cfg, device, hooks, extra_state).fit(resume)
