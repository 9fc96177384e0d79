"""One run and one comparison, as data flows: config -> model -> data -> fit -> evaluate -> MLflow.

``train(cfg)`` is ``ganbench train``; ``compare(cc)`` is ``ganbench compare`` (every architecture x seed
under the same budget, then the report).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import bench
from architectures import build_gan
from bench import checkpoint, keys
from bench.config import CompareConfig, RunConfig
from bench.data import BatchSampler, ImageData, load
from bench.errors import CheckpointError, UserError
from bench.harness import FitResult, fit, resolve_device, seed_everything, total_steps
from bench.hooks import Checkpointer, Hook, MetricsLogger, NaNGuard, PeriodicEval, ProgressHook, SampleGrid, every
from bench.metrics.evaluate import evaluate, training_fid
from bench.metrics.extractors import check_extractor
from bench.tracking import Tracker


@dataclass
class RunResult:
    """What one run produced. ``status`` is the MLflow status (FINISHED or FAILED)."""

    arch: str
    seed: int
    run_id: str | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    error: str | None = None


def progress_bar():
    """A rich Progress whose rows fit 80 columns: run, bar, step/total, D/G losses, img/s, ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(bar_width=12),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TextColumn("{task.fields[speed]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(compact=True),
    )


def check(cfg: RunConfig) -> ImageData:
    """Validate what a run needs before anything is written; returns the reference split.

    Raises UserError (unknown dataset or extractor, missing data) before any MLflow run starts.
    """
    reference = load(cfg.data, cfg.eval.reference_split, cfg.workdir)
    if cfg.eval.enabled:
        check_extractor(cfg.eval.extractor, reference.spec.image_shape)
    return reference


def train(
    cfg: RunConfig,
    tracker: Tracker | None = None,
    progress: Any = None,
    resume: str | Path | None = None,
    extra_hooks: tuple[Hook, ...] = (),
) -> RunResult:
    """Train, evaluate and track one (architecture, seed) run.

    Args:
        cfg: the resolved run config.
        tracker: the MLflow store (default: the workspace's).
        progress: a rich Progress to add a task to (None: no progress bar).
        resume: a checkpoint of this architecture to continue from (its MLflow run is reopened).
        extra_hooks: appended after the built-in hooks.

    Raises UserError for bad input (before a run starts); any failure during training ends the MLflow run
    FAILED (KILLED on Ctrl-C) and propagates.
    """
    tracker = tracker or Tracker(cfg.workdir)
    device = resolve_device(cfg.train.device)
    state = checkpoint.load(resume) if resume else None
    if state is not None and state.get("arch") != cfg.arch:
        raise CheckpointError(f"checkpoint {str(resume)!r} is for architecture {state.get('arch')!r}, not {cfg.arch!r}")
    reference = check(cfg)
    data = load(cfg.data, "train", cfg.workdir, device)
    seed_everything(cfg.seed)
    gan = build_gan(cfg.arch, cfg.model, data.spec.image_shape, data.spec.num_classes)
    sampler = BatchSampler(data.images, cfg.train.batch_size, cfg.seed)
    tags = {keys.TAG_ARCH: cfg.arch, keys.TAG_SEED: cfg.seed, keys.TAG_VERSION: bench.__version__}
    run_id = state.get("mlflow_run_id") if state else None

    with tracker.run(cfg.experiment, cfg.run_name, tags, run_id=run_id) as run:
        run_dir = cfg.run_dir.with_name(f"{cfg.run_name}-{run.run_id[:8]}")
        ckpt_path = Path(resume) if resume else run_dir / "checkpoint.pt"
        if state is None:
            run.log_params({**cfg.flat(), "loss": gan.loss_name, "torch": torch.__version__})
        total = total_steps(cfg.train, sampler.per_epoch, gan.optim.n_critic)
        t = cfg.train
        hooks: list[Hook] = [NaNGuard(), MetricsLogger(run, t.log_every)]
        hooks.append(SampleGrid(ckpt_path.parent / "samples", every(t.sample_every, total, 5), run, seed=cfg.seed))
        if cfg.eval.enabled:
            fid_every = every(t.eval_every, total, 10)
            hooks.append(PeriodicEval(training_fid(reference, cfg.eval, cfg.workdir, cfg.seed, device), fid_every, run))
        hooks.append(Checkpointer(ckpt_path, t.checkpoint_every))
        if progress is not None:
            hooks.append(ProgressHook(progress, f"{cfg.arch} s{cfg.seed}"))
        hooks.extend(extra_hooks)

        result = fit(gan, sampler, cfg, device, hooks, resume=state, extra_state={"mlflow_run_id": run.run_id})
        run.set_tags({keys.TAG_DEVICE: result.timing.device, keys.TAG_PEAK_MEM_KIND: result.timing.peak_mem_kind})
        metrics = _fit_metrics(result)
        if cfg.eval.enabled:
            m, protocol = evaluate(gan, reference, cfg.eval, cfg.workdir, cfg.seed, device)
            metrics.update(m)
            if state is None:
                run.log_params(protocol.params())
            run.set_tags({keys.TAG_PROTOCOL: protocol.line()})
        run.log_metrics(metrics, result.steps)
        config_file = ckpt_path.parent / "config.json"
        config_file.write_text(_json(cfg.to_dict()))
        run.log_artifact(config_file)
        run.log_artifact(ckpt_path, "checkpoint")
    return RunResult(cfg.arch, cfg.seed, run.run_id, "FINISHED", metrics, ckpt_path)


def _fit_metrics(r: FitResult) -> dict[str, float]:
    return {
        keys.G_STEPS: r.steps,
        keys.EPOCHS: r.epochs,
        keys.TRAIN_S: r.train_s,
        keys.MS_PER_STEP_P50: r.timing.ms_per_step_p50,
        keys.MS_PER_STEP_P95: r.timing.ms_per_step_p95,
        keys.MS_PER_STEP_MEAN: r.timing.ms_per_step_mean,
        keys.IMG_PER_S: r.timing.img_per_s,
        keys.PEAK_MEM_MB: r.timing.peak_mem_mb,
    }


def _json(d: dict[str, Any]) -> str:
    import json

    return json.dumps(d, indent=2, default=list)


@dataclass
class CompareResult:
    runs: list[RunResult]
    report_dir: Path | None

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if r.status != "FINISHED"]


def compare(
    cc: CompareConfig,
    show_progress: bool = True,
    report: bool = True,
    on_run_end: Callable[[RunResult], None] | None = None,
) -> CompareResult:
    """Train every architecture x seed of ``cc`` under the same budget, then write the report.

    Bad input raises UserError before the first run starts. A run that fails (diverges or raises) is
    recorded FAILED and the comparison goes on; Ctrl-C ends the current run KILLED and stops.
    """
    runs = cc.runs()
    check(runs[0])
    tracker = Tracker(cc.workdir)
    results: list[RunResult] = []
    ctx = progress_bar() if show_progress else contextlib.nullcontext()
    with ctx as progress:
        for cfg in runs:
            try:
                res = train(cfg, tracker, progress)
            except UserError:
                raise
            except Exception as e:
                res = RunResult(cfg.arch, cfg.seed, None, "FAILED", error=f"{type(e).__name__}: {e}")
            results.append(res)
            if on_run_end:
                on_run_end(res)
    report_dir = None
    if report:
        from reports.build import build_report

        report_dir = build_report([cc.experiment], Path(cc.workdir) / "reports" / cc.experiment, workdir=cc.workdir)
    return CompareResult(results, report_dir)
