"""The state of a run that the loop and its hooks share: :class:`Trainer`, :class:`StepOutput` and :class:`Hook`.

``bench.harness.fit`` owns the loop and hands the Trainer to every hook (as minGPT's trainer hands itself
to its callbacks); ``bench.hooks`` holds the built-in hooks. A hook changes the run only through the
Trainer's methods: :meth:`Trainer.stop` ends the loop with a reason (a result, not an exception),
:meth:`Trainer.save_checkpoint` writes a checkpoint, which is never the state of a diverged run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from architectures.registry import GAN
from bench import checkpoint, keys
from bench.config import RunConfig
from bench.data import BatchSource as Sampler
from bench.errors import CheckpointError, TrainingDiverged
from bench.timing import StepTimer


@dataclass
class StepOutput:
    """One generator step: ``step`` (1-based), detached scalar losses, and the loss's extras."""

    step: int
    d_loss: Tensor
    g_loss: Tensor
    extras: dict[str, Tensor]


@dataclass
class Trainer:
    """The state of a run, handed to every hook.

    ``stop_reason``: None while training; ``"budget"``, ``"minutes"`` or what a hook passed to :meth:`stop`
    (e.g. ``"pruned"``) once the loop ended. ``in_step``: True while a step is half done (its state must not
    be saved). The first step whose losses were not finite is kept on the device (no host sync in the
    step) and read by :meth:`divergence`.
    """

    cfg: RunConfig
    gan: GAN
    sampler: Sampler
    device: torch.device
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    total_steps: int
    timer: StepTimer
    step: int = 0
    d_step: int = 0
    stop_reason: str | None = None
    extra_state: dict[str, Any] = field(default_factory=dict)  # stored in checkpoints (e.g. mlflow_run_id)
    in_step: bool = False
    last_checkpoint: Path | None = None
    _bad_step: Tensor | None = None  # first step with a non-finite loss (-1: none yet), on the device
    _bad_losses: Tensor | None = None  # its (d_loss, g_loss)

    def stop(self, reason: str) -> None:
        """End the loop after the current step's hooks, with ``reason`` as the fit's stop reason."""
        self.stop_reason = reason

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
        """Raise :class:`TrainingDiverged` if :meth:`divergence` finds anything."""
        found = self.divergence()
        if found is not None:
            raise found

    # --- checkpoints ----------------------------------------------------------------------------------

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
        """Write the checkpoint atomically; raises TrainingDiverged instead when the state is not finite."""
        self.check_finite()
        self.last_checkpoint = checkpoint.save(path, self.state_dict())
        return self.last_checkpoint

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint dict. Raises CheckpointError if it does not fit the model."""
        try:
            self.gan.generator.load_state_dict(state["generator"])
            self.gan.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not match the model: {str(e).splitlines()[0]}") from None
        self.step, self.d_step = int(state["step"]), int(state["d_step"])
        _set_rng_state(state["rng"])


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
