"""One run, as data flows: config -> checks -> model and data -> fit -> select checkpoint -> evaluate -> MLflow.

:func:`train` is ``ganbench train`` (and one cell of ``ganbench compare``, one trial of ``ganbench tune``);
:func:`floor` scores real images as if generated (the real-data floor); :func:`evaluate_checkpoint` is
``ganbench eval``. Bad input raises :class:`bench.errors.UserError` before any MLflow run starts; what
happens to a run once it started is its :class:`RunResult`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from architectures import ARCHITECTURES, build_gan
from bench import checkpoint, keys
from bench.atomic import write_text
from bench.config import CompareConfig, RunConfig, flatten, load_compare_config
from bench.data import ImageData, ShuffledBatches, check_batch_size, load, to_float
from bench.errors import CheckpointError, ConfigError, TakenOver, UserError
from bench.harness import resolve_device, seed_everything
from bench.hooks import PRUNED as STOP_PRUNED
from bench.hooks import Checkpointer, MetricsLogger, NaNGuard, PeriodicEval, ProgressHook, SampleGrid, save_grid
from bench.metrics.coverage import MAX_SHARES
from bench.metrics.evaluator import Evaluation, Evaluator, build_evaluator
from bench.metrics.floor import check_floor_size
from bench.metrics.protocol import ExtractorPlan, Protocol
from bench.metrics.usefulness import Usefulness
from bench.provenance import provenance_tags
from bench.tracking import Run, Tracker, store_exists
from bench.trainer import FitResult, Hook, Trainer

FINISHED, FAILED, PRUNED = "FINISHED", "FAILED", "PRUNED"  # RunResult.status


@dataclass
class RunResult:
    """What one run produced. ``status``: FINISHED, FAILED (``error`` says why) or PRUNED (stopped by the
    FID curve's ``prune`` callback; its MLflow run ends KILLED with the partial curve). ``run_id``: the MLflow
    run it made (None if it never started)."""

    arch: str
    seed: int
    run_id: str | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunPaths:
    """Where a run's files go: ``<workdir>/runs/<experiment>/<arch>-seed<N>-<run id[:8]>/`` (a resumed run
    keeps writing beside the checkpoint it continues from)."""

    folder: Path
    checkpoint: Path

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    @property
    def samples(self) -> Path:
        return self.folder / "samples"

    @property
    def config(self) -> Path:
        return self.folder / "config.json"


def run_paths(cfg: RunConfig, run_id: str, resume: str | Path | None = None) -> RunPaths:
    """The :class:`RunPaths` of the run ``run_id`` of ``cfg`` (or of the checkpoint ``resume`` continues)."""
    if resume is not None:
        return RunPaths(Path(resume).parent, Path(resume))
    folder = Path(cfg.workdir) / "runs" / cfg.experiment / f"{cfg.run_name}-{run_id[:8]}"
    return RunPaths(folder, folder / "checkpoint.pt")


@dataclass
class Prepared:
    """What a run needs that is checked before anything is written."""

    reference: ImageData
    plan: ExtractorPlan  # the extractors used at the end of the run, primary first, and those skipped
    evaluator: Evaluator | None = None  # the run's, built once (None: eval.enabled = false)
    trainer: type = Trainer  # the architecture's trainer class (ArchSpec.trainer), the harness's by default


def prepare(cfg: RunConfig, device: torch.device) -> Prepared:
    """Validate a run before anything is written; raises UserError (unknown dataset or extractor, missing
    data or weights, a batch larger than the split, inconsistent options) before any MLflow run starts."""
    reference = load(cfg.data, cfg.eval.reference_split, cfg.workdir)
    train_split = load(cfg.data, "train", cfg.workdir)  # cached: train() takes it from here again
    check_batch_size(cfg.train.batch_size, train_split.images.shape[0], f"{cfg.data.dataset}/train")
    try:  # e.g. the convolutional backbone and an image size it cannot make
        build_gan(cfg.arch, cfg.model, reference.image_shape, reference.num_classes)
    except ValueError as e:
        shape = reference.image_shape
        raise ConfigError(f"{cfg.arch} cannot be built for {cfg.data.dataset} images {shape}: {e}") from None
    if cfg.train.keep_best and not (cfg.eval.enabled and cfg.train.eval_every != 0):
        raise ConfigError("train.keep_best needs the FID curve: eval.enabled = true and train.eval_every != 0")
    trainer = ARCHITECTURES.get(cfg.arch).trainer or Trainer
    if not issubclass(trainer, Trainer):
        raise ConfigError(f"architecture {cfg.arch!r}: its trainer {trainer.__name__} is no bench.trainer.Trainer")
    if not cfg.eval.enabled:
        return Prepared(reference, ExtractorPlan({}, {}), None, trainer)
    evaluator, plan = build_evaluator(cfg.data, cfg.eval, cfg.workdir, device, cfg.seed, reference, train_split)
    return Prepared(reference, plan, evaluator, trainer)


def run_tags(arch: str, seed: int, kind: str, plan: ExtractorPlan, classes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The tags every ganbench run carries: what it is, provenance, extractor labels and why some were skipped,
    and the dataset's class names (for the report's class histogram; up to 62 classes)."""
    names = {keys.TAG_CLASSES: json.dumps(list(classes))} if 0 < len(classes) <= MAX_SHARES else {}
    return {keys.TAG_ARCH: arch, keys.TAG_SEED: seed, keys.TAG_KIND: kind, **provenance_tags(), **plan.tags(), **names}


def standard_hooks(
    cfg: RunConfig,
    run: Run,
    paths: RunPaths,
    prep: Prepared,
    device: torch.device,
    progress: Any = None,
    prune: Callable[[int, dict[str, float]], bool] | None = None,
    owner: Callable[[], bool] | None = None,
) -> tuple[list[Hook], PeriodicEval | None]:
    """The hooks of a tracked run, in order: NaN guard, MLflow curves, sample grids, the FID curve (if
    evaluation is on; returned too, for its best value), checkpoints, and a progress-bar task."""
    t = cfg.train
    hooks: list[Hook] = [
        NaNGuard(t.log_every),
        MetricsLogger(run, t.log_every),
        SampleGrid(paths.samples, t.sample_every, run, seed=cfg.seed, classes=prep.reference.classes),
    ]
    curve = None
    if cfg.eval.enabled and t.eval_every != 0:
        fid = prep.evaluator.training_metrics()
        curve = PeriodicEval(fid, t.eval_every, run, best_path=paths.best if t.keep_best else None, prune=prune)
        hooks.append(curve)
    hooks.append(Checkpointer(paths.checkpoint, t.checkpoint_every, owner))
    if progress is not None:
        hooks.append(ProgressHook(progress, f"{cfg.arch} s{cfg.seed}"))
    return hooks, curve


def train(
    cfg: RunConfig,
    tracker: Tracker | None = None,
    progress: Any = None,
    resume: str | Path | None = None,
    tags: dict[str, Any] | None = None,
    run_name: str | None = None,
    prune: Callable[[int, dict[str, float]], bool] | None = None,
    owner: Callable[[], bool] | None = None,
) -> RunResult:
    """Train, evaluate and track one (architecture, seed) run; returns its :class:`RunResult`.

    Args:
        cfg: the resolved run config. tracker: the MLflow store (default: the workspace's).
        progress: a rich Progress to add a task to (None: no progress bar).
        resume: a checkpoint of this architecture to continue from (its MLflow run is reopened).
        tags / run_name: extra MLflow tags and a run name (e.g. for a study's trial runs).
        prune: called with ``(step, metrics)`` after each evaluation of the FID curve; True stops the run
            as PRUNED.
        owner: asked before each checkpoint write whether this process still owns the run (a shared grid);
            False raises TakenOver, and the run and its checkpoint are left to the process that took it over.

    Raises UserError for bad input, before a run starts (and for a checkpoint that cannot be written).
    A run that diverges or raises ends FAILED and is returned so; Ctrl-C ends it KILLED and propagates.
    """
    device = resolve_device(cfg.train.device)
    state = checkpoint.load(resume) if resume else None
    prep = prepare(cfg, device)
    data = load(cfg.data, "train", cfg.workdir, device if cfg.train.fast else "cpu")
    seed_everything(cfg.seed)
    gan = build_gan(cfg.arch, cfg.model, data.image_shape, data.num_classes)
    if state is not None:
        checkpoint.check_resumable(state, cfg, gan, resume)
    sampler = ShuffledBatches(data.images, cfg.train.batch_size, cfg.seed, device, data.labels)
    run_id = (state or {}).get("mlflow_run_id")
    if run_id and tracker is None and not store_exists(cfg.workdir):
        raise CheckpointError(checkpoint.foreign_run(resume, run_id, f"{cfg.workdir} (no MLflow store there)"))
    tracker = tracker or Tracker(cfg.workdir)  # everything is checked: now the store may be opened
    if run_id and not tracker.has_run(run_id):
        raise CheckpointError(checkpoint.foreign_run(resume, run_id, tracker.uri))
    all_tags = {**run_tags(cfg.arch, cfg.seed, keys.KIND_RUN, prep.plan, prep.reference.classes), **(tags or {})}
    run: Run | None = None
    try:
        with tracker.run(cfg.experiment, run_name or cfg.run_name, all_tags, run_id) as run:
            paths = run_paths(cfg, run.run_id, resume)
            if state is None:
                run.log_params(
                    {**cfg.flat(), **prep.plan.params(cfg.eval), "loss": gan.loss_name, "torch": torch.__version__}
                )
            hooks, curve = standard_hooks(cfg, run, paths, prep, device, progress, prune, owner)
            trainer = prep.trainer(gan, sampler, cfg, device, hooks, extra_state={"mlflow_run_id": run.run_id})
            result = trainer.fit(resume=state)
            run.set_tags({keys.TAG_DEVICE: result.timing.device, keys.TAG_PEAK_MEM_KIND: result.timing.peak_mem_kind})
            metrics = _fit_metrics(result)
            if curve is not None and curve.best is not None:
                metrics.update({keys.BEST_TRAIN_FID: curve.best[0], keys.BEST_STEP: curve.best[1]})
            if result.stop_reason == STOP_PRUNED:
                run.log_metrics(metrics, result.steps)
                run.end_as("KILLED", f"pruned at generator step {result.steps}")
                return RunResult(cfg.arch, cfg.seed, run.run_id, PRUNED, metrics, None, run.outcome[1])
            run.set_tags({keys.TAG_SELECTION: _select_checkpoint(cfg, gan, curve, paths, run)})
            if cfg.eval.enabled:
                metrics.update(_evaluate_and_tag(gan, cfg, prep, data, run).metrics)
            run.log_metrics(metrics, result.steps)
            write_text(paths.config, json.dumps(cfg.to_dict(), indent=2, default=list))
            run.log_artifact(paths.config)
            run.log_artifact(paths.checkpoint, "checkpoint")
    except (UserError, TakenOver):
        raise
    except Exception as e:  # the run ended FAILED (bench.tracking); the result says why
        return RunResult(cfg.arch, cfg.seed, run.run_id if run else None, FAILED, error=f"{type(e).__name__}: {e}")
    return RunResult(cfg.arch, cfg.seed, run.run_id, FINISHED, metrics, paths.checkpoint)


def usefulness(cfg: RunConfig, num_classes: int, reference: ImageData, train: ImageData | None) -> Usefulness | None:
    """The CAS / augmentation experiment of a conditional run (None for an unconditional one, or when
    ``eval.usefulness`` is off); ``train``: the training split (None: loaded here)."""
    if not (num_classes and cfg.eval.usefulness):
        return None
    return Usefulness(train or load(cfg.data, "train", cfg.workdir), reference, cfg.eval, cfg.workdir)


def _evaluate_and_tag(gan: Any, cfg: RunConfig, prep: Prepared, train: ImageData | None, run: Run | None) -> Evaluation:
    """The end-of-run evaluation of ``gan`` (its evaluator, with the usefulness experiment of a conditional
    run), its protocol tags and memorisation gallery logged to ``run`` (None: not tracked)."""
    use = usefulness(cfg, gan.num_classes, prep.reference, train)
    found = prep.evaluator.evaluate(gan, use)
    if run is not None:
        log_evaluation(run, found, prep.evaluator.train)
        if use is not None:
            run.set_tags({keys.TAG_PROTOCOL + "usefulness": use.protocol()})
    return found


def log_evaluation(run: Run, found: Evaluation, train: ImageData | None) -> None:
    """Tag ``run`` with the protocols of ``found`` and log its memorisation gallery as the artifacts
    ``memorisation/nearest.png`` (16 pairs, 4 per row, nearest first: a sample, then its nearest training
    image, a grey strip between pairs) and ``memorisation/nearest.json`` (indices and distances)."""
    run.set_tags({k: v for p in found.protocols for k, v in p.tags().items()})
    memo = found.memorisation
    if memo is None or train is None or not memo.gallery:
        return
    strip = torch.zeros(found.images.shape[1], found.images.shape[2], 4)  # mid-grey between pairs
    pairs = [
        torch.cat([to_float(found.images[s]), to_float(train.images[i].cpu()), strip], dim=2)
        for s, i, _, _ in memo.gallery
    ]
    with tempfile.TemporaryDirectory() as tmp:
        png, js = Path(tmp) / "nearest.png", Path(tmp) / "nearest.json"
        save_grid(torch.stack(pairs), png, nrow=4)
        rows = [{"sample": s, "train_index": i, "distance": d, "train_nn_distance": r} for s, i, d, r in memo.gallery]
        meta = {"split": f"{train.name}/{train.split}", "extractor": found.protocols[0].extractor, "pairs": rows}
        js.write_text(json.dumps(meta, indent=1))
        run.log_artifact(png, "memorisation")
        run.log_artifact(js, "memorisation")


def _select_checkpoint(cfg: RunConfig, gan: Any, curve: PeriodicEval | None, paths: RunPaths, run: Run) -> str:
    """With ``train.keep_best``, load the best checkpoint of the FID curve into ``gan`` (and log it); returns
    the checkpoint selection, as recorded in the tag ``ganbench.checkpoint_selection``."""
    if not (cfg.train.keep_best and curve is not None and curve.best is not None):
        return "last checkpoint"
    checkpoint.load_weights(gan, checkpoint.load(paths.best))
    run.log_artifact(paths.best, "checkpoint")
    return (
        f"best {keys.TRAIN_FID} over {curve.n_evals} evaluations: step {curve.best[1]} "
        "(Lucic et al. 2018; selected on the evaluation reference, so optimistic)"
    )


def floor(
    cc: CompareConfig, tracker: Tracker | None = None, split: str = "train", usefulness: bool | None = None
) -> RunResult:
    """Score ``eval.n_samples`` real images of ``split`` against the reference with the evaluation protocol
    (the real-data floor: what a perfect generator reaches) and log it as a run tagged ``real-floor``.

    ``usefulness``: also the real-only numbers of the usefulness experiment (the CAS ceiling, the k-shot
    accuracies) on a labelled dataset with ``eval.usefulness``; None: when ``cc`` has a conditional
    architecture (an unconditional comparison has no CAS to compare them with)."""
    cfg = cc.run(cc.archs[0], cc.seeds[0])
    if split == cfg.eval.reference_split:
        raise ConfigError(f"the floor compares split {split!r} with the reference split; choose another split")
    device = resolve_device(cfg.train.device)
    prep = prepare(replace(cfg, eval=replace(cfg.eval, enabled=True)), device)
    real = load(cfg.data, split, cfg.workdir)
    check_floor_size(real, cfg.eval)  # before the run opens: a run is never left FAILED by it
    tracker = tracker or Tracker(cc.workdir)
    tags = run_tags(keys.KIND_FLOOR, cfg.seed, keys.KIND_FLOOR, prep.plan, prep.reference.classes)
    with tracker.run(cc.experiment, f"real-floor-{cfg.data.dataset}-{split}", tags) as run:
        metrics, protocols = prep.evaluator.floor(real)
        if usefulness is None:
            usefulness = any(ARCHITECTURES.get(a).conditional for a in cc.archs)
        if usefulness and cfg.eval.usefulness and real.num_classes > 1:
            use = Usefulness(load(cfg.data, "train", cfg.workdir), prep.reference, cfg.eval, cc.workdir)
            metrics |= use.real_metrics(cfg.eval.n_samples)  # the CAS ceiling and k-shot baselines
            run.set_tags({keys.TAG_PROTOCOL + "usefulness": use.protocol()})
        params = {f"eval.{k}": v for k, v in flatten(cfg.to_dict()["eval"]).items()}
        params |= {f"data.{k}": v for k, v in flatten(cfg.to_dict()["data"]).items()}
        run.log_params(params | {"floor.split": split})
        run.set_tags({k: v for p in protocols for k, v in p.tags().items()})
        run.log_metrics(metrics)
    return RunResult(keys.KIND_FLOOR, cfg.seed, run.run_id, FINISHED, metrics)


def config_from_checkpoint(
    state: dict[str, Any],
    sets: list[str] | tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
    arch: str | None = None,
    source: str | Path = "",
) -> RunConfig:
    """The RunConfig stored in a checkpoint, with ``sets`` (``"a.b=value"``) and ``overrides`` (a nested dict)
    applied on top and validated. With ``arch``, raises CheckpointError if the checkpoint is of another."""
    if arch is not None:
        checkpoint.check_arch(state, arch, source)
    c = state["config"]
    base = {k: c[k] for k in ("experiment", "workdir", "data", "train", "eval")}
    base.update(archs=[c["arch"]], seeds=[c["seed"]], model={c["arch"]: c["model"]})
    return load_compare_config(None, sets, base=base, overrides=overrides).run(c["arch"], c["seed"])


def evaluate_checkpoint(
    source: str, sets: list[str] | tuple[str, ...] = (), workdir: str = "ganbench-runs", overrides: dict | None = None
) -> tuple[dict[str, float], list[Protocol], str | None]:
    """Evaluate a checkpoint file, or the final checkpoint of an MLflow run id, with its stored config plus
    ``sets`` / ``overrides`` (``eval.*``). Logs the metrics and protocol tags back to the run when the store
    has it. Returns ``(metrics, protocols, run_id or None)``.

    Raises CheckpointError if ``source`` is neither a checkpoint file nor a run with a checkpoint.
    """
    tracker = Tracker(workdir) if store_exists(workdir) else None  # never create a store to look into it
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(source)
        if not path.is_file():
            found = None
            if tracker is not None and tracker.has_run(source):
                found = tracker.download_artifact(source, "checkpoint/checkpoint.pt", tmp)
            if found is None:
                where = tracker.uri if tracker is not None else f"{workdir} (no MLflow store there)"
                raise CheckpointError(
                    f"{source!r} is neither a checkpoint file nor an MLflow run with a checkpoint in {where}"
                )
            path = found
        state = checkpoint.load(path)
    cfg = config_from_checkpoint(state, sets, {**(overrides or {}), "workdir": Path(workdir).as_posix()})
    cfg = replace(cfg, eval=replace(cfg.eval, enabled=True))
    device = resolve_device(cfg.train.device)
    prep = prepare(cfg, device)
    gan = build_gan(cfg.arch, cfg.model, prep.reference.image_shape, prep.reference.num_classes)
    checkpoint.load_weights(gan, state)
    gan.generator.to(device)
    gan.discriminator.to(device)
    run_id = state.get("mlflow_run_id")
    run = tracker.attach(run_id) if run_id and tracker is not None and tracker.has_run(run_id) else None
    found = _evaluate_and_tag(gan, cfg, prep, None, run)
    if run is not None:
        run.log_metrics(found.metrics, int(state["step"]))
    return found.metrics, found.protocols, run.run_id if run is not None else None


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
