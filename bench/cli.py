"""The ``ganbench`` command line. Each command: parse -> typed config -> one library call.

Errors from user input print one line (``error: ...``) and exit 2; set ``GANBENCH_DEBUG=1`` to see the
traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Compare GAN architectures head-to-head: one harness, MLflow tracking, paper-ready reports.",
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file (see studies/*.toml).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override a config value: section.key=value (repeatable).")
]
WorkdirOpt = Annotated[
    str | None, typer.Option(help="Workspace folder for runs, MLflow store, reports [ganbench-runs].")
]
DataRootOpt = Annotated[str | None, typer.Option(help="Folder holding MNIST/raw/*.gz [$GANBENCH_DATA].")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N [auto].")]
EpochsOpt = Annotated[float | None, typer.Option(help="Budget: epochs of real data through D [2].")]
StepsOpt = Annotated[int | None, typer.Option(help="Budget: generator steps (replaces --epochs).")]
MinutesOpt = Annotated[float | None, typer.Option(help="Wall-clock cap per run, in minutes.")]
ExperimentOpt = Annotated[str | None, typer.Option(help="MLflow experiment name [mnist-compare].")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ExtractorOpt = Annotated[str | None, typer.Option(help="Primary feature extractor [lenet-mnist].")]
PrecisionOpt = Annotated[str | None, typer.Option(help="fp32 or bf16 (autocast) [fp32].")]
CompileOpt = Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile G and D.")]
InceptionWeightsOpt = Annotated[
    str | None, typer.Option(help="Local Inception-v3 FID weights (torch-fidelity's .pth) for inception-v3-compat.")
]


def _errors(fn):
    """Turn UserError into one line on stderr and exit 2 (``--debug`` re-raises it); Ctrl-C / SIGTERM into
    exit 130 / 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            if os.environ.get("GANBENCH_DEBUG"):
                raise
            typer.echo(f"error: {_one_line(str(e))}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (bench.signals): the run ended KILLED
            typer.echo(f"{e or 'interrupted'}; the run is marked KILLED (resume with --resume)", err=True)
            raise typer.Exit(getattr(e, "exit_code", 130)) from None

    return wrapper


def _one_line(text: str) -> str:
    """Escape line breaks and other non-printable characters a user's value may bring into a message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _toml(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers and lists are valid TOML values


def _sets(
    sets: list[str] | None,
    *,
    archs: list[str] | None = None,
    seeds: list[int] | None = None,
    experiment: str | None = None,
    workdir: str | None = None,
    data_root: str | None = None,
    device: str | None = None,
    epochs: float | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    extractor: str | None = None,
    inception_weights: str | None = None,
    precision: str | None = None,
    compile_: bool | None = None,
) -> list[str]:
    """CLI options -> ``--set`` items (options win over --set, which wins over the file)."""
    out = list(sets or [])
    if epochs is not None and steps is not None:
        raise UserError("give either --epochs or --steps, not both")
    pairs = {
        "archs": archs or None,
        "seeds": seeds,
        "experiment": experiment,
        "workdir": workdir,
        "data.root": data_root,
        "train.device": device,
        "train.minutes": minutes,
        "eval.extractor": extractor,
        "eval.inception_weights": inception_weights,
        "train.precision": precision,
        "train.compile": compile_,
    }
    out += [f"{k}={_toml(v)}" for k, v in pairs.items() if v is not None]
    if epochs is not None:
        out += [f"train.epochs={_toml(epochs)}", "train.steps=none"]
    if steps is not None:
        out += [f"train.steps={_toml(steps)}", "train.epochs=none"]
    return out


@app.command()
@_errors
def compare(
    archs: Annotated[list[str] | None, typer.Argument(help="Architectures [vanilla dcgan wgan-gp sngan].")] = None,
    seeds: Annotated[int | None, typer.Option(help="Number of seeds per architecture: 0..N-1 [1].")] = None,
    epochs: EpochsOpt = None,
    steps: StepsOpt = None,
    minutes: MinutesOpt = None,
    experiment: ExperimentOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: WorkdirOpt = None,
    data_root: DataRootOpt = None,
    device: DeviceOpt = None,
    extractor: ExtractorOpt = None,
    inception_weights: InceptionWeightsOpt = None,
    precision: PrecisionOpt = None,
    compile_: CompileOpt = None,
    report: Annotated[bool, typer.Option(help="Write the report at the end.")] = True,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip runs that FINISHED; continue interrupted ones from their checkpoint.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train each architecture x seed under the same budget, track every run in MLflow, write the report."""
    from bench.config import load_compare_config
    from bench.experiment import compare as run_compare

    if seeds is not None and seeds < 1:
        raise UserError(f"--seeds {seeds} must be >= 1")
    cc = load_compare_config(
        config,
        _sets(
            set_,
            archs=archs,
            seeds=list(range(seeds)) if seeds else None,
            experiment=experiment,
            workdir=workdir,
            data_root=data_root,
            device=device,
            epochs=epochs,
            steps=steps,
            minutes=minutes,
            extractor=extractor,
            inception_weights=inception_weights,
            precision=precision,
            compile_=compile_,
        ),
    )

    def on_run_end(r) -> None:
        if r.status != "FINISHED":
            typer.secho(f"{r.arch} seed {r.seed}: {r.status}: {r.error}", fg="red", err=True)

    result = run_compare(cc, show_progress=not quiet, report=report, on_run_end=on_run_end, resume=resume)
    if result.report_dir is not None:
        from reports.build import console_table

        typer.echo(console_table([cc.experiment], cc.workdir))
        typer.echo(f"\nreport: {result.report_dir}/report.md")
    if result.failed:
        typer.secho(
            f"{len(result.failed)} of {len(result.runs)} runs failed (listed in the report)", fg="red", err=True
        )
        raise typer.Exit(1)


@app.command()
@_errors
def train(
    arch: Annotated[str, typer.Argument(help="Architecture name (see `ganbench list`).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    epochs: EpochsOpt = None,
    steps: StepsOpt = None,
    minutes: MinutesOpt = None,
    experiment: ExperimentOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: WorkdirOpt = None,
    data_root: DataRootOpt = None,
    device: DeviceOpt = None,
    extractor: ExtractorOpt = None,
    inception_weights: InceptionWeightsOpt = None,
    precision: PrecisionOpt = None,
    compile_: CompileOpt = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue from this checkpoint (same config, same MLflow run).")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train and evaluate one architecture with one seed (one MLflow run)."""
    from bench import checkpoint
    from bench.config import load_compare_config
    from bench.experiment import config_from_checkpoint, progress_bar
    from bench.experiment import train as run_train

    sets = _sets(
        set_,
        experiment=experiment,
        workdir=workdir,
        data_root=data_root,
        device=device,
        epochs=epochs,
        steps=steps,
        minutes=minutes,
        extractor=extractor,
        inception_weights=inception_weights,
        precision=precision,
        compile_=compile_,
    )
    if resume is None:
        cfg = load_compare_config(config, [*sets, *_sets(None, archs=[arch], seeds=[seed])]).run(arch, seed)
    else:  # the checkpoint's config, then the command line on top
        if config is not None:
            raise UserError("--config cannot be combined with --resume: the checkpoint carries its config")
        cfg = config_from_checkpoint(checkpoint.load(resume), sets)
        if cfg.arch != arch:
            raise UserError(f"checkpoint {str(resume)!r} is for architecture {cfg.arch!r}, not {arch!r}")
    if quiet:
        result = run_train(cfg, resume=resume)
    else:
        with progress_bar() as progress:
            result = run_train(cfg, progress=progress, resume=resume)
    for k, v in sorted(result.metrics.items()):
        typer.echo(f"{k:32s} {v:.6g}")
    typer.echo(f"checkpoint: {result.checkpoint}\nMLflow run: {result.run_id}")


@app.command()
@_errors
def report(
    experiment: Annotated[list[str] | None, typer.Option(help="MLflow experiment(s) to report (repeatable).")] = None,
    study: Annotated[str | None, typer.Option(help="An Optuna study (ganbench tune) to report instead.")] = None,
    storage: Annotated[str | None, typer.Option(help="The study's storage [the workspace journal].")] = None,
    reseed: Annotated[
        int | None, typer.Option(help="With --study: re-run the best configuration over N seeds.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder [<workdir>/reports/<name>].")] = None,
    metric: Annotated[
        str | None, typer.Option(help="Primary metric for tests and figures: fid, is_mean, ... or a full key [fid].")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="Comma-separated: md, tex, csv, html.")] = "md,tex,csv,html",
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
) -> None:
    """Write the report of experiments (tables, statistics, figures, report.html) or of a study; never retrains
    (except --reseed, which trains the best configuration on new seeds)."""
    from reports.build import build_report, console_table

    if (experiment is None) == (study is None):
        raise UserError("give either --experiment NAME (repeatable) or --study NAME")
    if study is not None:
        from studies.report import build_study_report, reseed_best

        folder = build_study_report(study, out or Path(workdir) / "reports" / study, workdir, storage)
        typer.echo((folder / "study.md").read_text())
        typer.echo(f"report: {folder}")
        if reseed:
            typer.echo(console_table([reseed_best(study, reseed, workdir, storage)], workdir))
        return
    if reseed:
        raise UserError("--reseed applies to --study")
    out = out or Path(workdir) / "reports" / "+".join(experiment)
    formats = tuple(f.strip() for f in format_.split(",") if f.strip())
    build_report(list(experiment), out, workdir, metric=metric, formats=formats)
    typer.echo(console_table(list(experiment), workdir))
    typer.echo(f"\nreport: {out}")


@app.command()
@_errors
def tune(
    arch: Annotated[str | None, typer.Argument(help="Architecture to tune (or [study] arch in --config).")] = None,
    trials: Annotated[int | None, typer.Option(help="Trials in total (all workers, all resumptions) [20].")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per worker.")] = None,
    epochs: EpochsOpt = None,
    steps: Annotated[int | None, typer.Option(help="Budget per trial in generator steps [300].")] = None,
    metric: Annotated[
        str | None, typer.Option(help="fid | kid_mean (minimised), is_mean | precision | recall [fid].")
    ] = None,
    sampler: Annotated[str | None, typer.Option(help="tpe | random | cmaes [tpe].")] = None,
    pruner: Annotated[str | None, typer.Option(help="median | hyperband | none, on the FID curve [median].")] = None,
    study_name: Annotated[str | None, typer.Option(help="Study (and MLflow experiment) name [<arch>-search].")] = None,
    storage: Annotated[str | None, typer.Option(help="postgresql://... (RDB) or journal:PATH [journal file].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes on this host [1].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sampler and of every trial [0].")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: WorkdirOpt = None,
    data_root: DataRootOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Optuna hyperparameter study: one MLflow child run per trial, pruning, parallel workers, resumable."""
    from studies.runner import load_study, run_study

    study_sets = dict(
        arch=arch, trials=trials, timeout=timeout, metric=metric, sampler=sampler, pruner=pruner,
        name=study_name, storage=storage, workers=workers, seed=seed,
    )  # fmt: skip
    sets = _sets(set_, workdir=workdir, data_root=data_root, device=device, epochs=epochs, steps=steps)
    sc, cc, space = load_study(str(config) if config else None, sets, study_sets)
    study, tp = run_study(sc, cc, space)
    states = [t.state.name for t in study.trials]
    typer.echo(f"study {sc.study_name}: " + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))))
    if any(s == "COMPLETE" for s in states):
        typer.echo(f"best trial {study.best_trial.number}: {sc.metric} = {study.best_value:.6g} {study.best_params}")
    if tp is not None and tp["trials"]:  # this invocation's, not an earlier one's
        typer.echo(
            f"throughput: {tp['trials']} trials in {tp['wall_s'] / 60:.1f} min with {tp['workers']} worker(s) "
            f"on {tp['device']}: {tp['trials_per_hour']:.1f} trials/hour"
        )
    typer.echo(f"report: ganbench report --study {sc.study_name}")


@app.command("eval")
@_errors
def eval_(
    source: Annotated[str | None, typer.Argument(help="An MLflow run id or a checkpoint file.")] = None,
    real: Annotated[
        bool, typer.Option("--real", help="Score the training split as samples: the real-data floor.")
    ] = False,
    experiment: ExperimentOpt = None,
    n_samples: Annotated[int | None, typer.Option(help="Generated samples [10000].")] = None,
    extractor: ExtractorOpt = None,
    inception_weights: InceptionWeightsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
    data_root: DataRootOpt = None,
) -> None:
    """Evaluate a run or checkpoint (logged back to its run), or with --real the real-data floor."""
    from bench.config import load_compare_config
    from bench.experiment import evaluate_checkpoint, floor

    if real == (source is not None):
        raise UserError("give either a RUN_ID/CHECKPOINT or --real")
    sets = _sets(
        set_, experiment=experiment, data_root=data_root, extractor=extractor, inception_weights=inception_weights
    )
    sets += [f"eval.n_samples={n_samples}"] if n_samples is not None else []
    if real:
        cc = load_compare_config(config, [*sets, f"workdir={_toml(workdir)}"])
        result = floor(cc)
        metrics, run_id = result.metrics, result.run_id
    else:
        if config is not None:
            raise UserError("--config applies to --real; a checkpoint carries its own config (use --set eval.*)")
        metrics, protocols, run_id = evaluate_checkpoint(source, sets, workdir)
        for p in protocols:
            typer.echo(f"protocol: {p.line()}")
    for k, v in sorted(metrics.items()):
        typer.echo(f"{k:32s} {v:.6g}")
    typer.echo(f"logged to MLflow run {run_id}" if run_id else "not logged (the checkpoint's run is not in this store)")


bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("speed")
@_errors
def bench_speed(
    archs: Annotated[list[str] | None, typer.Argument(help="Architectures [all four].")] = None,
    steps: Annotated[int, typer.Option(help="Generator steps timed per row (after warm-up).")] = 60,
    rounds: Annotated[int, typer.Option(help="Interleaved rounds the steps are split into.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    compile_: Annotated[bool, typer.Option("--compile", help="Add torch.compile to the bf16 row.")] = False,
    device: DeviceOpt = None,
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
    data_root: DataRootOpt = None,
    set_: SetOpt = None,
) -> None:
    """ms/step, img/s and peak memory of ganbench's training path vs a torchvision DataLoader baseline."""
    from bench.config import load_compare_config
    from bench.speed import run_speed_benchmark

    if rounds < 1:
        raise UserError(f"--rounds {rounds} must be >= 1")
    if steps < 2 or steps < rounds:
        raise UserError(f"--steps {steps} must be >= 2 and >= --rounds ({rounds})")
    sets = _sets(set_, archs=archs, workdir=workdir, data_root=data_root, device=device)
    sets.append(f"train.batch_size={batch_size}")
    for line in run_speed_benchmark(load_compare_config(None, sets), steps, compile_, rounds=rounds):
        typer.echo(line)


@bench_app.command("metrics")
@_errors
def bench_metrics(
    n_samples: Annotated[int, typer.Option(help="Samples to evaluate.")] = 10_000,
    workdir: Annotated[str, typer.Option(help="Workspace folder (reference cache).")] = "ganbench-runs",
    inception_weights: InceptionWeightsOpt = None,
    data_root: DataRootOpt = None,
) -> None:
    """Time the evaluation of N samples (FID, IS, KID, precision/recall) per feature extractor."""
    from bench.metrics.benchmark import run_metrics_benchmark

    for line in run_metrics_benchmark(n_samples, workdir, inception_weights, data_root):
        typer.echo(line)


@app.command("list")
@_errors
def list_() -> None:
    """Architectures (loss, default hyperparameters), losses, datasets and feature extractors."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from architectures import ARCHITECTURES, LOSSES
    from bench.data import DATASETS
    from bench.metrics.extractors import EXTRACTORS

    console = Console()
    t = Table(title="architectures", show_lines=True)
    for col in ("name", "loss", "n_critic", "defaults", "summary"):
        t.add_column(col)
    for name in ARCHITECTURES.names():
        spec = ARCHITECTURES.get(name)
        cfg = spec.config_cls()
        d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("loss", "n_critic")}
        t.add_row(name, cfg.loss, str(cfg.n_critic), ", ".join(f"{k}={v}" for k, v in d.items()), spec.summary)
    console.print(t)
    for title, reg in (("losses", LOSSES), ("datasets", DATASETS), ("feature extractors", EXTRACTORS)):
        t = Table(title=title)
        t.add_column("name")
        t.add_column("summary")
        for name in reg.names():
            t.add_row(name, reg.get(name).summary)
        console.print(t)


@app.command()
@_errors
def ui(
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 for the workspace's tracking store."""
    from bench.tracking import serve_ui

    typer.echo(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    raise typer.Exit(serve_ui(workdir, port))


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of user errors.")] = False,
) -> None:
    """Compare GAN architectures head-to-head: one harness, MLflow tracking, paper-ready reports."""
    if debug:
        os.environ["GANBENCH_DEBUG"] = "1"


def main() -> None:
    from bench import signals

    signals.install()
    app(prog_name="ganbench")


if __name__ == "__main__":
    main()
