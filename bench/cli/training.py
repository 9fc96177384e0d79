"""``ganbench compare``, ``ganbench train`` and ``ganbench eval``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import (
    CompileOpt,
    ConfigOpt,
    DataRootOpt,
    DatasetOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentOpt,
    ExtractorOpt,
    InceptionWeightsOpt,
    MinutesOpt,
    PrecisionOpt,
    QuietOpt,
    SetOpt,
    StepsOpt,
    WorkdirOpt,
    app,
    errors,
    options_layer,
)
from bench.config import merge
from bench.errors import UserError


@app.command()
@errors
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
    dataset: DatasetOpt = None,
    data_root: DataRootOpt = None,
    device: DeviceOpt = None,
    extractor: ExtractorOpt = None,
    inception_weights: InceptionWeightsOpt = None,
    precision: PrecisionOpt = None,
    compile_: CompileOpt = None,
    report: Annotated[bool, typer.Option(help="Write the report at the end.")] = True,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Skip runs that FINISHED; continue interrupted ones from their checkpoint. A shared grid "
            "always does; there --resume also runs FAILED ones again.",
        ),
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes on this host that share the grid [1, or one per --devices].")
    ] = None,
    devices: Annotated[
        str | None, typer.Option(help="Comma-separated devices, one worker each in turn (e.g. cuda:0,cuda:1).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage shared by hosts: postgresql://... or journal:PATH [the workspace's journal]."
        ),
    ] = None,
    search: Annotated[
        int | None,
        typer.Option(help="Fair head-to-head: N random settings per architecture, then the best re-run per seed."),
    ] = None,
    search_steps: Annotated[int | None, typer.Option(help="A search trial's budget in generator steps.")] = None,
    search_epochs: Annotated[float | None, typer.Option(help="A search trial's budget in epochs.")] = None,
    sampler: Annotated[str | None, typer.Option(help="The search's sampler: random or tpe [random].")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train each architecture x seed under the same budget, track every run in MLflow, write the report.

    With --workers K, --devices or --storage the grid is shared: K processes here (and any host running the
    same command with the same --storage) take its runs until none is left; a dead worker's run is taken over
    from its checkpoint.

    With --search N (or [search] trials = N) every architecture first gets a random search of N settings at
    the same per-trial budget (--search-steps / --search-epochs, default the comparison's), then its best
    setting is trained over the seeds: the comparison of Lucic et al. 2018. With --workers, --devices or
    --storage the trials of all architectures are one shared queue, and the final runs a shared grid."""
    from bench.compare import compare as run_compare
    from bench.compare import run_line
    from bench.config import load_compare_config

    if seeds is not None and seeds < 1:
        raise UserError(f"--seeds {seeds} must be >= 1")
    options = options_layer(
        archs=archs,
        seeds=list(range(seeds)) if seeds else None,
        experiment=experiment,
        workdir=workdir,
        dataset=dataset,
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
    search_layer = {
        k: v for k, v in {"trials": search, "steps": search_steps, "epochs": search_epochs, "sampler": sampler}.items()
        if v is not None
    }  # fmt: skip
    cc = load_compare_config(config, set_ or [], overrides=merge(options, {"search": search_layer}))
    device_list = tuple(d.strip() for d in devices.split(",") if d.strip()) if devices is not None else ()
    if devices is not None and not device_list:
        raise UserError(f"--devices {devices!r} names no device; expected e.g. cuda:0,cuda:1")

    def on_run_end(r) -> None:
        line = run_line(r, cc.eval.extractor)
        if r.status != "FINISHED" and sys.stderr.isatty():  # red on a terminal; plain text in a log file
            line = typer.style(line, fg="red")
        # through sys.stderr, which a live rich progress bar redirects above itself (typer.secho's stream
        # bypasses it and the line lands glued to the bar on a terminal)
        print(line, file=sys.stderr, flush=True)

    if cc.search.trials:
        from studies.fair import fair_compare

        def on_search_end(o) -> None:
            values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in o.best_values.items())
            line = f"{o.arch}: best of {cc.search.trials} trials: {values}"
            wrapped = textwrap.fill(line, 80, subsequent_indent="    ", break_on_hyphens=False)  # 80 columns
            print(wrapped, file=sys.stderr, flush=True)

        n = workers if workers is not None else max(1, len(device_list))
        result = fair_compare(cc, storage, n, device_list, not quiet, on_run_end, on_search_end)
    elif workers is not None or device_list or storage is not None:
        from studies.grid import run_grid

        n = workers if workers is not None else max(1, len(device_list))
        result = run_grid(cc, storage, n, device_list, resume=resume, show_progress=not quiet)
    else:
        result = run_compare(cc, show_progress=not quiet, on_run_end=on_run_end, resume=resume)
    if result.pending:  # a shared grid this launcher left (its workers gave out) while others still run it
        typer.echo(
            f"{len(result.pending)} of {len(result.runs)} runs are still running or waiting on other workers of "
            "this grid; the report is left to the launcher that sees it complete (or run ganbench report "
            f"--experiment {cc.experiment} later)",
            err=True,
        )
    elif report:
        from reports.build import build_report
        from reports.summary import console_table

        out = build_report([cc.experiment], Path(cc.workdir) / "reports" / cc.experiment, cc.workdir)
        typer.echo(console_table([cc.experiment], cc.workdir))
        typer.echo(f"\nreport: {out}/report.md")
    if result.failed:
        typer.secho(
            f"{len(result.failed)} of {len(result.runs)} runs failed (listed in the report)", fg="red", err=True
        )
        raise typer.Exit(1)


@app.command()
@errors
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
    dataset: DatasetOpt = None,
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
    from bench.progress import progress_bar
    from bench.run import config_from_checkpoint
    from bench.run import train as run_train

    options = options_layer(
        experiment=experiment,
        workdir=workdir,
        dataset=dataset,
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
        identity = {"archs": [arch], "seeds": [seed]}
        cfg = load_compare_config(config, set_ or [], overrides=merge(options, identity)).run(arch, seed)
    else:  # the checkpoint's config, then the command line on top
        if config is not None:
            raise UserError("--config cannot be combined with --resume: the checkpoint carries its config")
        cfg = config_from_checkpoint(checkpoint.load(resume), set_ or [], options, arch=arch, source=resume)
    if quiet:
        result = run_train(cfg, resume=resume)
    else:
        with progress_bar() as progress:
            result = run_train(cfg, progress=progress, resume=resume)
    for k, v in sorted(result.metrics.items()):
        typer.echo(f"{k:32s} {v:.6g}")
    if result.checkpoint is not None:
        typer.echo(f"checkpoint: {result.checkpoint}")
    typer.echo(f"MLflow run: {result.run_id}")
    if result.status != "FINISHED":
        typer.secho(f"{arch} seed {seed}: {result.status}: {result.error}", fg="red", err=True)
        raise typer.Exit(1)


@app.command("eval")
@errors
def eval_(
    source: Annotated[str | None, typer.Argument(help="An MLflow run id or a checkpoint file.")] = None,
    real: Annotated[
        bool, typer.Option("--real", help="Score the training split as samples: the real-data floor.")
    ] = False,
    samples: Annotated[
        str | None, typer.Option(help="Score a model's samples: a folder of images, a .npz (x, y) or a .npy.")
    ] = None,
    generator: Annotated[
        str | None, typer.Option(help="Score a generator: a TorchScript file or module:function.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The external model's name in reports [external].")] = None,
    range_: Annotated[
        str | None, typer.Option("--range", help="Range of float samples: -1,1, 0,1 or 0,255 [generator: -1,1].")
    ] = None,
    z_dim: Annotated[int | None, typer.Option(help="The generator's latent size [its z_dim attribute].")] = None,
    conditional: Annotated[
        bool, typer.Option("--conditional", help="Class-conditional samples: labels required; intra-FID, CAS.")
    ] = False,
    experiment: ExperimentOpt = None,
    n_samples: Annotated[int | None, typer.Option(help="Generated samples [10000].")] = None,
    extractor: ExtractorOpt = None,
    inception_weights: InceptionWeightsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
    dataset: DatasetOpt = None,
    data_root: DataRootOpt = None,
) -> None:
    """Evaluate a run or checkpoint (logged back to its run); an external model's --samples or --generator
    (logged as a run marked external); or with --real the real-data floor."""
    from bench.config import load_compare_config
    from bench.external import External, score_external
    from bench.run import evaluate_checkpoint, floor

    given = [x for x, on in (("RUN_ID/CHECKPOINT", source is not None), ("--real", real), ("--samples", samples),
                             ("--generator", generator)) if on]  # fmt: skip
    if len(given) != 1:
        raise UserError(
            "give one of RUN_ID/CHECKPOINT, --samples PATH, --generator SPEC or --real"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    external = samples is not None or generator is not None
    for flag, value in (("--name", name), ("--range", range_), ("--z-dim", z_dim), ("--conditional", conditional)):
        if value and not external:
            raise UserError(f"{flag} applies to --samples / --generator")
    if z_dim is not None and generator is None:
        raise UserError("--z-dim applies to --generator")
    options = options_layer(
        experiment=experiment,
        dataset=dataset,
        data_root=data_root,
        extractor=extractor,
        inception_weights=inception_weights,
        n_samples=n_samples,
    )
    protocols = []
    if real or external:
        cc = load_compare_config(config, set_ or [], overrides=merge(options, {"workdir": workdir}))
        if real:
            result = floor(cc, usefulness=True)  # asked for by name: the CAS ceiling too (labelled datasets)
        else:
            ext = External(name or "external", samples, generator, range_, z_dim, conditional)
            result, protocols = score_external(cc, ext)
        metrics, run_id = result.metrics, result.run_id
    else:
        if config is not None:
            raise UserError("--config applies to --real / --samples / --generator; a checkpoint carries its own config")
        if dataset is not None:
            raise UserError("--dataset applies to --real; a checkpoint is evaluated on the dataset it was trained on")
        metrics, protocols, run_id = evaluate_checkpoint(source, set_ or [], workdir, options)
    for p in protocols:
        typer.echo(f"protocol: {p.line()}")
    width = max((len(k) for k in metrics), default=0)
    for k, v in sorted(metrics.items()):
        typer.echo(f"{k:{width}s} {v:.6g}")
    typer.echo(f"logged to MLflow run {run_id}" if run_id else "not logged (the checkpoint's run is not in this store)")
