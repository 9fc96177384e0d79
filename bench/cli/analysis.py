"""``ganbench report`` and ``ganbench tune``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import (
    ConfigOpt,
    DataRootOpt,
    DatasetOpt,
    DeviceOpt,
    EpochsOpt,
    SetOpt,
    WorkdirOpt,
    app,
    errors,
    options_layer,
)
from bench.errors import UserError


@app.command()
@errors
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
    from reports.build import build_report
    from reports.summary import console_table

    if (experiment is None) == (study is None):
        raise UserError("give either --experiment NAME (repeatable) or --study NAME")
    if study is not None:
        from studies.report import build_study_report, reseed_best

        folder = build_study_report(study, out or Path(workdir) / "reports" / study, workdir, storage)
        typer.echo((folder / "study.md").read_text())
        typer.echo(f"report: {folder}")
        if reseed:
            experiment = [reseed_best(study, reseed, workdir, storage)]
            build_report(experiment, Path(workdir) / "reports" / experiment[0], workdir)
            typer.echo(console_table(experiment, workdir))
        return
    if reseed:
        raise UserError("--reseed applies to --study")
    out = out or Path(workdir) / "reports" / "+".join(experiment)
    formats = tuple(f.strip() for f in format_.split(",") if f.strip())
    build_report(list(experiment), out, workdir, metric=metric, formats=formats)
    typer.echo(console_table(list(experiment), workdir))
    typer.echo(f"\nreport: {out}")


@app.command()
@errors
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
    study_name: Annotated[
        str | None,
        typer.Option(help="Study (and MLflow experiment) name [<arch>-search; <dataset>-<arch>-search off MNIST]."),
    ] = None,
    storage: Annotated[str | None, typer.Option(help="postgresql://... (RDB) or journal:PATH [journal file].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes on this host [1].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sampler and of every trial [0].")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: WorkdirOpt = None,
    dataset: DatasetOpt = None,
    data_root: DataRootOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Optuna hyperparameter study: one MLflow child run per trial, pruning, parallel workers, resumable."""
    from studies.runner import load_study, run_study

    study_sets = dict(
        arch=arch, trials=trials, timeout=timeout, metric=metric, sampler=sampler, pruner=pruner,
        name=study_name, storage=storage, workers=workers, seed=seed,
    )  # fmt: skip
    options = options_layer(
        workdir=workdir, dataset=dataset, data_root=data_root, device=device, epochs=epochs, steps=steps
    )
    sc, cc, space = load_study(str(config) if config else None, set_ or [], study_sets, options)
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
