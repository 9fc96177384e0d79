"""Hooks: everything the training loop does besides training.

A hook (:class:`bench.trainer.Hook`) receives the :class:`bench.trainer.Trainer` (state of the run) at
``on_fit_start``, ``on_step_end`` (after every generator step, with its losses), ``on_fit_end`` and
``on_interrupt``. Built-ins: progress (a rich bar, or plain lines off a terminal), MLflow metric logging,
fixed-z sample grids, periodic FID (which may stop the run, e.g. to prune a trial), atomic checkpoints, and
the NaN/inf guard. Hooks do not depend on each other's order: a checkpoint is never written from a diverged
state, whoever asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from bench import keys
from bench.errors import TakenOver
from bench.trainer import Hook, StepOutput, Trainer

if TYPE_CHECKING:
    from rich.progress import Progress


class RunLogger(Protocol):
    """What hooks need from a tracking run (see ``bench.tracking.Run``)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...


PRUNED = "pruned"  # the stop reason of a run that PeriodicEval's ``prune`` stopped: abandoned, not finished


def every(interval: int | None, total: int, points: int) -> int:
    """Resolve a cadence: None = about ``points`` times over ``total`` steps; 0 = never."""
    if interval is None:
        return max(1, math.ceil(total / points))
    return interval


class NaNGuard(Hook):
    """Stop the run with :class:`bench.errors.TrainingDiverged` naming the first step whose loss is NaN or
    infinite, or the step at which a weight was found NaN or infinite, and the last good checkpoint.

    The trainer records the first bad step on the device; the guard reads it every step on CPU, and on a GPU
    every ``every`` steps and at the end, so the step itself never waits for the host. Weights are checked
    every ``every`` steps and at the end (and by every checkpoint write, see ``Trainer.save_checkpoint``).
    """

    def __init__(self, every: int = 1):
        self.every = every

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        if out.step % self.every == 0:
            trainer.check_finite()
        elif trainer.device.type != "cuda":
            found = trainer.loss_divergence()
            if found is not None:
                raise found

    def on_fit_end(self, trainer: Trainer) -> None:
        trainer.check_finite()


class MetricsLogger(Hook):
    """Log the mean losses (and loss extras) over each window of ``every`` steps to the tracking run."""

    def __init__(self, run: RunLogger, every: int):
        self.run, self.every = run, every
        self._sums: dict[str, Tensor] = {}
        self._n = 0

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        values = {keys.D_LOSS: out.d_loss, keys.G_LOSS: out.g_loss}
        values.update({f"train/{k}": v for k, v in out.extras.items()})
        for k, v in values.items():
            self._sums[k] = self._sums[k] + v if k in self._sums else v.clone()
        self._n += 1
        if out.step % self.every == 0 or out.step == trainer.total_steps:
            self._flush(out.step)

    def on_fit_end(self, trainer: Trainer) -> None:
        """A run stopped early (``--minutes``, pruning) logs its last, partial window too."""
        self._flush(trainer.step)

    def _flush(self, step: int) -> None:
        if self._n:
            metrics = {k: float(v) / self._n for k, v in self._sums.items()}
            self.run.log_metrics(metrics, step)
        self._sums, self._n = {}, 0


class ProgressHook(Hook):
    """A rich progress-bar task: step, D/G losses, img/s and ETA."""

    def __init__(self, progress: Progress, description: str):
        self.progress, self.description = progress, description
        self.task: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.task = self.progress.add_task(
            self.description, total=trainer.total_steps, completed=trainer.step, losses="", speed=""
        )

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        fields = {}
        if out.step % trainer.cfg.train.log_every == 0 or out.step == trainer.total_steps:  # reading syncs a GPU
            fields["losses"] = f"D {float(out.d_loss):.3g} G {float(out.g_loss):.3g}"
            ms = trainer.timer.last_ms()
            if ms:
                fields["speed"] = f"{trainer.timer.images_per_step / ms * 1000:.0f} img/s"
        self.progress.update(self.task, completed=out.step, **fields)

    def on_fit_end(self, trainer: Trainer) -> None:
        self.progress.update(self.task, completed=trainer.step)


class SampleGrid(Hook):
    """Save a grid of samples from a fixed z every ``every`` steps (None: 5 times per run, 0: only at the
    end) and at the end.

    z: ``n`` vectors drawn once from a generator seeded with ``seed`` (the global RNG is untouched, so
    sampling does not change training). G is put in eval mode for sampling. Grids go to
    ``out_dir/step_XXXXXX.png`` and ``final.png``, and to the run's ``samples/`` artifacts.

    A class-conditional GAN gets one row per class (the first 26 classes when there are more; ``classes``:
    their names, written at the left of each row) and one fixed z per column (10 columns for up to 10
    classes, else 8), so that a column shows one z across classes and a row shows whether the class is right.
    """

    def __init__(
        self,
        out_dir: Path,
        every: int | None,
        run: RunLogger | None = None,
        n: int = 64,
        seed: int = 0,
        classes: tuple[str, ...] = (),
    ):
        self.out_dir, self.interval, self.run, self.n, self.seed = out_dir, every, run, n, seed
        self.classes = classes
        self.every = 0
        self.z: Tensor | None = None
        self.y: Tensor | None = None
        self.nrow = int(math.sqrt(n))

    def on_fit_start(self, trainer: Trainer) -> None:
        self.every = every(self.interval, trainer.total_steps, 5)
        g = torch.Generator().manual_seed(self.seed)
        z_dim, k = trainer.gan.generator.z_dim, trainer.gan.num_classes
        if k:
            rows = min(k, MAX_GRID_ROWS)
            self.nrow = 10 if rows <= 10 else 8
            self.z = torch.randn(self.nrow, z_dim, generator=g).repeat(rows, 1).to(trainer.device)
            self.y = torch.arange(rows).repeat_interleave(self.nrow).to(trainer.device)
        else:
            self.z = torch.randn(self.n, z_dim, generator=g).to(trainer.device)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        if self.every and out.step % self.every == 0 and out.step != trainer.total_steps:
            self.save(trainer, f"step_{out.step:06d}.png")

    def on_fit_end(self, trainer: Trainer) -> None:
        self.save(trainer, f"step_{trainer.step:06d}.png")
        self.save(trainer, "final.png")

    def save(self, trainer: Trainer, name: str) -> Path:
        images = trainer.sample(self.z, self.y)
        path = self.out_dir / name
        rows = None
        if self.y is not None:
            n_rows = images.shape[0] // self.nrow
            rows = [self.classes[i] if i < len(self.classes) else str(i) for i in range(n_rows)]
        save_grid(images, path, self.nrow, rows)
        if self.run is not None:
            self.run.log_artifact(path, "samples")
        return path


MAX_GRID_ROWS = 26  # a conditional grid shows at most this many classes (all of MNIST's 10, EMNIST's 26 letters)


def save_grid(images: Tensor, path: Path, nrow: int, row_names: list[str] | None = None) -> Path:
    """Write float ``images (N, C, H, W)`` in ``[-1, 1]`` as a PNG grid of ``nrow`` columns (torchvision's
    ``save_image``); with ``row_names``, each row's name is written in a margin at its left."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels)
    if row_names:
        margin = 8 + 7 * max(len(r) for r in row_names)
        labelled = Image.new("RGB", (image.width + margin, image.height), "white")
        labelled.paste(image, (margin, 0))
        draw, row_h = ImageDraw.Draw(labelled), (image.height - 2) / len(row_names)
        for i, name in enumerate(row_names):
            draw.text((4, 2 + i * row_h + row_h / 2 - 6), name, fill="black")
        image = labelled
    image.save(path)
    return path


class PeriodicEval(Hook):
    """Every ``every`` steps (None: 10 times per run, 0: never) and at the end, log
    ``evaluate(gan) -> {key: value}`` to the run.

    ``evaluate`` must leave the networks' train/eval modes as it found them (``bench.metrics`` does). With
    ``best_path``, the checkpoint with the lowest ``key`` so far is kept there (written atomically);
    ``best`` is ``(value, step)`` of the best evaluation and ``n_evals`` counts evaluations. ``prune`` is
    called with ``(step, metrics)`` after each evaluation; when it returns True the run stops with the stop
    reason ``"pruned"`` (e.g. an Optuna trial's pruner said so).
    """

    def __init__(
        self,
        evaluate: Callable[[Any], dict[str, float]],
        every: int | None,
        run: RunLogger,
        key: str = keys.TRAIN_FID,
        best_path: Path | None = None,
        prune: Callable[[int, dict[str, float]], bool] | None = None,
    ):
        self.evaluate, self.interval, self.run, self.key, self.best_path = evaluate, every, run, key, best_path
        self.prune = prune
        self.every = 0
        self.best: tuple[float, int] | None = None
        self.n_evals = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.every = every(self.interval, trainer.total_steps, 10)

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        if self.every and (out.step % self.every == 0 or out.step == trainer.total_steps):
            metrics = self.evaluate(trainer.gan)
            self.run.log_metrics(metrics, out.step)
            self.n_evals += 1
            value = metrics[self.key]
            if math.isfinite(value) and (self.best is None or value < self.best[0]):
                self.best = (value, out.step)
                if self.best_path is not None:
                    trainer.save_checkpoint(self.best_path)
            if self.prune is not None and self.prune(out.step, metrics):
                trainer.stop(PRUNED)


class Checkpointer(Hook):
    """Write ``path`` atomically every ``every`` steps and at the end, unless the run was pruned (see
    ``bench.checkpoint``).

    ``owner``: asked before each write whether this process still owns the run (a shared grid's worker:
    whether its trial is still its own); False raises :class:`bench.errors.TakenOver` and nothing is written.
    """

    def __init__(self, path: Path, every: int, owner: Callable[[], bool] | None = None):
        self.path, self.every, self.owner = path, every, owner

    def _still_owner(self, step: int) -> None:
        if self.owner is not None and not self.owner():
            raise TakenOver(f"another worker took this run over; this one stops at step {step} and leaves it")

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.step > 0 and self.path.is_file():  # a resumed run: its checkpoint is the last good one
            trainer.last_checkpoint = self.path

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None:
        if self.every and out.step % self.every == 0 and out.step != trainer.total_steps:
            self._still_owner(out.step)
            trainer.save_checkpoint(self.path)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.stop_reason != PRUNED:  # a pruned run is abandoned: no final checkpoint to keep
            self._still_owner(trainer.step)
            trainer.save_checkpoint(self.path)

    def on_interrupt(self, trainer: Trainer) -> None:
        """Save at a step boundary only (a half-done step is not a state to resume from); a diverged
        state is not saved either, the previous checkpoint stays."""
        if not trainer.in_step and trainer.step > 0 and trainer.divergence() is None:
            trainer.save_checkpoint(self.path)
