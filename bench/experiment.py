"""One run and one comparison, as data flows: config -> model -> data -> fit -> evaluate -> MLflow.

``train(cfg)`` is ``ganbench train``; ``compare(cc)`` is ``ganbench compare`` (every architecture x seed
under the same budget, then the report).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from architectures import build_gan
from bench import checkpoint, keys
from bench.config import CompareConfig, RunConfig, flatten, load_compare_config
from bench.data import BatchSampler, ImageData, load
from bench.errors import CheckpointError, ConfigError, UserError
from bench.harness import FitResult, fit, resolve_device, seed_everything, total_steps
from bench.hooks import Checkpointer, Hook, MetricsLogger, NaNGuard, PeriodicEval, ProgressHook, SampleGrid, every
from bench.metrics.evaluate import Protocol, evaluate, plan_extractors, real_floor, reference_images, training_metrics
from bench.provenance import provenance_tags
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


@dataclass
class Prepared:
    """What a run needs that is checked before anything is written."""

    reference: ImageData
    extractors: dict[str, Path]  # {name: weights} used at the end of the run, primary first
    unavailable: dict[str, str]  # {name: why not}


def check(cfg: RunConfig, device: torch.device | None = None) -> Prepared:
    """Validate a run before anything is written; raises UserError (unknown dataset or extractor, missing
    data or weights, inconsistent options) before any MLflow run starts."""
    device = device or resolve_device(cfg.train.device)
    reference = load(cfg.data, cfg.eval.reference_split, cfg.workdir)
    if cfg.train.keep_best and not (cfg.eval.enabled and cfg.train.eval_every != 0):
        raise ConfigError("train.keep_best needs the FID curve: eval.enabled = true and train.eval_every != 0")
    if not cfg.eval.enabled:
        return Prepared(reference, {}, {})
    reference_images(reference, cfg.eval)  # n_reference fits the split
    extractors, unavailable = plan_extractors(cfg.eval, reference.spec.image_shape, device)
    return Prepared(reference, extractors, unavailable)


def _run_tags(arch: str, seed: int, kind: str, prep: Prepared) -> dict[str, Any]:
    """The tags every ganbench run carries: what it is, provenance, and extractors that were not computed."""
    return {
        keys.TAG_ARCH: arch,
        keys.TAG_SEED: seed,
        keys.TAG_KIND: kind,
        **provenance_tags(),
        **{keys.TAG_UNAVAILABLE + k: v for k, v in prep.unavailable.items()},
    }


def train(
    cfg: RunConfig,
    tracker: Tracker | None = None,
    progress: Any = None,
    resume: str | Path | None = None,
    extra_hooks: tuple[Hook, ...] = (),
    tags: dict[str, Any] | None = None,
    run_name: str | None = None,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> RunResult:
    """Train, evaluate and track one (architecture, seed) run.

    Args:
        cfg: the resolved run config.
        tracker: the MLflow store (default: the workspace's).
        progress: a rich Progress to add a task to (None: no progress bar).
        resume: a checkpoint of this architecture to continue from (its MLflow run is reopened).
        extra_hooks: appended after the built-in hooks.
        tags / run_name: extra MLflow tags and a run name (e.g. for a study's trial runs).
        on_eval: called with ``(step, metrics)`` after each evaluation of the FID curve.

    Raises UserError for bad input (before a run starts); any failure during training ends the MLflow run
    FAILED (KILLED on Ctrl-C) and propagates.
    """
    tracker = tracker or Tracker(cfg.workdir)
    device = resolve_device(cfg.train.device)
    state = checkpoint.load(resume) if resume else None
    if state is not None and state.get("arch") != cfg.arch:
        raise CheckpointError(f"checkpoint {str(resume)!r} is for architecture {state.get('arch')!r}, not {cfg.arch!r}")
    prep = check(cfg, device)
    data = load(cfg.data, "train", cfg.workdir, device if cfg.train.fast else "cpu")
    seed_everything(cfg.seed)
    gan = build_gan(cfg.arch, cfg.model, data.spec.image_shape, data.spec.num_classes)
    sampler = BatchSampler(data.images, cfg.train.batch_size, cfg.seed, device)
    all_tags = {**_run_tags(cfg.arch, cfg.seed, keys.KIND_RUN, prep), **(tags or {})}
    run_id = state.get("mlflow_run_id") if state else None

    with tracker.run(cfg.experiment, run_name or cfg.run_name, all_tags, run_id=run_id) as run:
        run_dir = cfg.run_dir.with_name(f"{cfg.run_name}-{run.run_id[:8]}")
        ckpt_path = Path(resume) if resume else run_dir / "checkpoint.pt"
        if state is None:
            run.log_params({**cfg.flat(), "loss": gan.loss_name, "torch": torch.__version__})
        total = total_steps(cfg.train, sampler.per_epoch, gan.optim.n_critic)
        t = cfg.train
        hooks: list[Hook] = [NaNGuard(t.log_every), MetricsLogger(run, t.log_every)]
        hooks.append(SampleGrid(ckpt_path.parent / "samples", every(t.sample_every, total, 5), run, seed=cfg.seed))
        curve = None
        if cfg.eval.enabled and t.eval_every != 0:
            fid = training_metrics(
                prep.reference, cfg.eval, cfg.workdir, cfg.seed, device, prep.extractors[cfg.eval.extractor]
            )
            best_path = ckpt_path.parent / "best.pt" if t.keep_best else None
            curve = PeriodicEval(fid, every(t.eval_every, total, 10), run, best_path=best_path, on_result=on_eval)
            hooks.append(curve)
        hooks.append(Checkpointer(ckpt_path, t.checkpoint_every))
        if progress is not None:
            hooks.append(ProgressHook(progress, f"{cfg.arch} s{cfg.seed}"))
        hooks.extend(extra_hooks)

        result = fit(gan, sampler, cfg, device, hooks, resume=state, extra_state={"mlflow_run_id": run.run_id})
        run.set_tags({keys.TAG_DEVICE: result.timing.device, keys.TAG_PEAK_MEM_KIND: result.timing.peak_mem_kind})
        metrics = _fit_metrics(result)
        if curve is not None and curve.best is not None:
            metrics.update({keys.BEST_TRAIN_FID: curve.best[0], keys.BEST_STEP: curve.best[1]})
        selection = "last checkpoint"
        if t.keep_best and curve is not None and curve.best is not None:
            best = checkpoint.load(ckpt_path.parent / "best.pt")
            gan.generator.load_state_dict(best["generator"])
            gan.discriminator.load_state_dict(best["discriminator"])
            selection = (
                f"best {keys.TRAIN_FID} over {curve.n_evals} evaluations: step {curve.best[1]} "
                "(Lucic et al. 2018; selected on the evaluation reference, so optimistic)"
            )
            run.log_artifact(ckpt_path.parent / "best.pt", "checkpoint")
        run.set_tags({keys.TAG_SELECTION: selection})
        if cfg.eval.enabled:
            m, protocols = evaluate(gan, prep.reference, cfg.eval, cfg.workdir, cfg.seed, device, prep.extractors)
            metrics.update(m)
            for p in protocols:
                run.set_tags(p.tags())
        run.log_metrics(metrics, result.steps)
        config_file = ckpt_path.parent / "config.json"
        config_file.write_text(_json(cfg.to_dict()))
        run.log_artifact(config_file)
        run.log_artifact(ckpt_path, "checkpoint")
    return RunResult(cfg.arch, cfg.seed, run.run_id, "FINISHED", metrics, ckpt_path)


def floor(cc: CompareConfig, tracker: Tracker | None = None, split: str = "train") -> RunResult:
    """Score ``eval.n_samples`` real images of ``split`` against the reference with the evaluation protocol
    (the real-data floor: what a perfect generator reaches) and log it as a run tagged ``real-floor``."""
    cfg = cc.run(cc.archs[0], cc.seeds[0])
    if split == cfg.eval.reference_split:
        raise ConfigError(f"the floor compares split {split!r} with the reference split; choose another split")
    tracker = tracker or Tracker(cc.workdir)
    device = resolve_device(cfg.train.device)
    prep = check(replace(cfg, eval=replace(cfg.eval, enabled=True)), device)
    real = load(cfg.data, split, cfg.workdir)
    tags = _run_tags(keys.KIND_FLOOR, cfg.seed, keys.KIND_FLOOR, prep)
    with tracker.run(cc.experiment, f"real-floor-{cfg.data.dataset}-{split}", tags) as run:
        metrics, protocols = real_floor(real, prep.reference, cfg.eval, cc.workdir, cfg.seed, prep.extractors)
        run.log_params({f"eval.{k}": v for k, v in flatten(cfg.to_dict()["eval"]).items()} | {"floor.split": split})
        for p in protocols:
            run.set_tags(p.tags())
        run.log_metrics(metrics)
    return RunResult(keys.KIND_FLOOR, cfg.seed, run.run_id, "FINISHED", metrics)


def config_from_checkpoint(state: dict[str, Any], sets: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The RunConfig stored in a checkpoint, with ``sets`` (``"a.b=value"``) applied on top and validated."""
    c = dict(state["config"])
    base = {k: c[k] for k in ("experiment", "workdir", "data", "train", "eval")}
    base.update(archs=[c["arch"]], seeds=[c["seed"]], model={c["arch"]: c["model"]})
    return load_compare_config(None, sets, base=base).run(c["arch"], c["seed"])


def evaluate_checkpoint(
    source: str, sets: list[str] | tuple[str, ...] = (), workdir: str = "ganbench-runs"
) -> tuple[dict[str, float], list[Protocol], str | None]:
    """Evaluate a checkpoint file, or the final checkpoint of an MLflow run id, with its stored config plus
    ``sets`` (``eval.*`` overrides). Logs the metrics and protocol tags back to the run when the store has
    it. Returns ``(metrics, protocols, run_id or None)``.

    Raises CheckpointError if ``source`` is neither a checkpoint file nor a run with a checkpoint.
    """
    tracker = Tracker(workdir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(source)
        if not path.is_file():
            found = (
                tracker.download_artifact(source, "checkpoint/checkpoint.pt", tmp) if tracker.has_run(source) else None
            )
            if found is None:
                raise CheckpointError(f"{source!r} is neither a checkpoint file nor an MLflow run with a checkpoint")
            path = found
        state = checkpoint.load(path)
    cfg = config_from_checkpoint(state, [*sets, f'workdir="{Path(workdir).as_posix()}"'])
    cfg = replace(cfg, eval=replace(cfg.eval, enabled=True))
    device = resolve_device(cfg.train.device)
    prep = check(cfg, device)
    gan = build_gan(cfg.arch, cfg.model, prep.reference.spec.image_shape, prep.reference.spec.num_classes)
    gan.generator.load_state_dict(state["generator"])
    gan.discriminator.load_state_dict(state["discriminator"])
    gan.generator.to(device)
    gan.discriminator.to(device)
    metrics, protocols = evaluate(gan, prep.reference, cfg.eval, workdir, cfg.seed, device, prep.extractors)
    run_id = state.get("mlflow_run_id")
    if run_id and tracker.has_run(run_id):
        run = tracker.attach(run_id)
        run.log_metrics(metrics, int(state["step"]))
        run.set_tags({k: v for p in protocols for k, v in p.tags().items()})
    else:
        run_id = None
    return metrics, protocols, run_id


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


def _previous_runs(tracker: Tracker, cc: CompareConfig) -> dict[tuple[str, int], dict[str, Any]]:
    """The latest run of each (architecture, seed) already in the experiment."""
    if tracker.experiment_id(cc.experiment, create=False) is None:
        return {}
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in sorted(tracker.search_runs([cc.experiment]), key=lambda r: r["start_time"]):
        arch, seed = r["tags"].get(keys.TAG_ARCH), r["tags"].get(keys.TAG_SEED)
        if r["tags"].get(keys.TAG_KIND) == keys.KIND_RUN and arch and seed is not None:
            out[(arch, int(seed))] = r
    return out


def compare(
    cc: CompareConfig,
    show_progress: bool = True,
    report: bool = True,
    on_run_end: Callable[[RunResult], None] | None = None,
    resume: bool = False,
) -> CompareResult:
    """Train every architecture x seed of ``cc`` under the same budget, then write the report.

    With ``resume``, an (architecture, seed) whose latest run FINISHED is skipped, one that was interrupted
    (KILLED, or left RUNNING by a killed process) continues from its checkpoint, and a FAILED one starts
    again. Bad input raises UserError before the first run starts. A run that fails (diverges or raises) is
    recorded FAILED and the comparison goes on; Ctrl-C ends the current run KILLED and stops. With
    evaluation on, the real-data floor (training images scored as samples) is added as a reference run.
    """
    runs = cc.runs()
    check(runs[0])
    tracker = Tracker(cc.workdir)
    results: list[RunResult] = []
    ctx = progress_bar() if show_progress else contextlib.nullcontext()
    previous = _previous_runs(tracker, cc) if resume else {}
    with ctx as progress:
        for cfg in runs:
            prev = previous.get((cfg.arch, cfg.seed))
            if prev is not None and prev["status"] == "FINISHED":
                results.append(RunResult(cfg.arch, cfg.seed, prev["run_id"], "FINISHED", prev["metrics"]))
                continue
            ckpt = None
            if prev is not None and prev["status"] in ("KILLED", "RUNNING"):
                found = cfg.run_dir.with_name(f"{cfg.run_name}-{prev['run_id'][:8]}") / "checkpoint.pt"
                ckpt = found if found.is_file() else None
            try:
                res = train(cfg, tracker, progress, resume=ckpt)
            except UserError:
                raise
            except Exception as e:
                res = RunResult(cfg.arch, cfg.seed, None, "FAILED", error=f"{type(e).__name__}: {e}")
            results.append(res)
            if on_run_end:
                on_run_end(res)
    if cc.eval.enabled:
        results.append(floor(cc, tracker))
    report_dir = None
    if report:
        from reports.build import build_report

        report_dir = build_report([cc.experiment], Path(cc.workdir) / "reports" / cc.experiment, workdir=cc.workdir)
    return CompareResult(results, report_dir)
