"""``ganbench bench speed|metrics``, ``ganbench list`` and ``ganbench ui``."""

from __future__ import annotations

from typing import Annotated

import typer

from bench.cli.common import (
    DataRootOpt,
    DeviceOpt,
    InceptionWeightsOpt,
    SetOpt,
    app,
    bench_app,
    errors,
    options_layer,
)
from bench.errors import UserError


@bench_app.command("speed")
@errors
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
    options = options_layer(archs=archs, workdir=workdir, data_root=data_root, device=device, batch_size=batch_size)
    for line in run_speed_benchmark(
        load_compare_config(None, set_ or [], overrides=options), steps, compile_, rounds=rounds
    ):
        typer.echo(line)


@bench_app.command("metrics")
@errors
def bench_metrics(
    n_samples: Annotated[int, typer.Option(help="Samples to evaluate.")] = 10_000,
    workdir: Annotated[str, typer.Option(help="Workspace folder (reference cache).")] = "ganbench-runs",
    inception_weights: InceptionWeightsOpt = None,
    data_root: DataRootOpt = None,
) -> None:
    """Time the evaluation of N samples (FID, IS, KID, precision/recall) per feature extractor."""
    from bench.metrics.benchmark import run_metrics_benchmark

    weights = {"inception-v3-compat": inception_weights} if inception_weights else None
    for line in run_metrics_benchmark(n_samples, workdir, weights, data_root):
        typer.echo(line)


@app.command("list")
@errors
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
    t.add_column("name", no_wrap=True)
    for col in ("loss", "n_critic", "defaults", "summary"):
        t.add_column(col)
    for name in ARCHITECTURES.names():
        spec = ARCHITECTURES.get(name)
        cfg = spec.config_cls()
        d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("loss", "n_critic")}
        t.add_row(name, cfg.loss, str(cfg.n_critic), ", ".join(f"{k}={v}" for k, v in d.items()), spec.summary)
    for name, why in sorted(ARCHITECTURES.broken().items()):  # plugins that failed to load: shown, not hidden
        t.add_row(name, "–", "–", "–", f"BROKEN, skipped: {why}")
    console.print(t)
    for title, reg in (("losses", LOSSES), ("datasets", DATASETS), ("feature extractors", EXTRACTORS)):
        t = Table(title=title)
        t.add_column("name", no_wrap=True)
        t.add_column("summary")
        for name in reg.names():
            t.add_row(name, reg.get(name).summary)
        console.print(t)


@app.command()
@errors
def ui(
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 for the workspace's tracking store."""
    from bench.tracking import serve_ui

    typer.echo(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    raise typer.Exit(serve_ui(workdir, port))
