"""``ganbench bench speed|metrics``, ``ganbench list`` and ``ganbench ui``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import (
    DataRootOpt,
    DatasetOpt,
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
    dataset: DatasetOpt = None,
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
    options = options_layer(
        archs=archs, workdir=workdir, dataset=dataset, data_root=data_root, device=device, batch_size=batch_size
    )
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
    dataset: DatasetOpt = None,
    data_root: DataRootOpt = None,
    set_: SetOpt = None,
) -> None:
    """Time the evaluation of N samples (FID, IS, KID, precision/recall) per feature extractor, and the
    usefulness experiment (CAS + augmentation) of conditional runs."""
    from bench.config import load_compare_config
    from bench.metrics.benchmark import run_metrics_benchmark

    weights = {"inception-v3-compat": inception_weights} if inception_weights else None
    cc = load_compare_config(None, set_ or [], overrides=options_layer(dataset=dataset, data_root=data_root))
    for line in run_metrics_benchmark(n_samples, workdir, weights, cc.data, cc.eval):
        typer.echo(line)


@app.command("list")
@errors
def list_(
    arch: Annotated[str | None, typer.Argument(help="An architecture: show its default hyperparameters.")] = None,
    data_root: DataRootOpt = None,
    workdir: Annotated[str, typer.Option(help="Workspace folder (extractors trained there).")] = "ganbench-runs",
) -> None:
    """Architectures, losses, datasets (present or not) and feature extractors; with ARCH, its defaults."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from architectures import ARCHITECTURES, LOSSES
    from bench.metrics.extractors import EXTRACTORS, locate_weights

    console = Console()
    if arch is not None:
        spec = ARCHITECTURES.get(arch)  # an unknown name: one error line listing the registered ones
        kind = "conditional" if spec.conditional else "unconditional"
        console.print(f"{arch} ({kind}): {spec.summary}", highlight=False)
        t = Table()
        t.add_column("key", no_wrap=True)
        t.add_column("default")
        for k, v in dataclasses.asdict(spec.config_cls()).items():
            t.add_row(k, str(v))
        console.print(t)
        console.print(f"override one with --set model.{arch}.<key>=<value>", highlight=False)
        return
    t = Table(title="architectures", caption="ganbench list ARCH: its default hyperparameters")
    t.add_column("name", no_wrap=True)
    t.add_column("cond.", no_wrap=True)
    t.add_column("loss", no_wrap=True)
    t.add_column("n_critic", no_wrap=True)
    t.add_column("summary")
    for name in ARCHITECTURES.names():
        spec = ARCHITECTURES.get(name)
        cfg = spec.config_cls()
        t.add_row(name, "yes" if spec.conditional else "", cfg.loss, str(cfg.n_critic), spec.summary)
    for name, why in sorted(ARCHITECTURES.broken().items()):  # plugins that failed to load: shown, not hidden
        t.add_row(name, "–", "–", "–", f"BROKEN, skipped: {why}")
    console.print(t)
    t = Table(title="losses")
    t.add_column("name", no_wrap=True)
    t.add_column("summary")
    for name in LOSSES.names():
        t.add_row(name, LOSSES.get(name).summary)
    console.print(t)
    console.print(datasets_table(data_root))
    t = Table(title="feature extractors", caption="a lenet-<dataset> without weights: ganbench extractor train")
    for col in ("name", "weights", "summary"):
        t.add_column(col, no_wrap=col != "summary")
    for name in EXTRACTORS.names():
        spec = EXTRACTORS.get(name)
        if spec.shipped:
            where = "shipped"
        else:
            try:
                locate_weights(name, None, workdir, False)
                where = "in the workspace" if spec.dataset else "found"
            except UserError:
                where = "no" if spec.dataset else "not found"
        t.add_row(name, where, spec.summary)
    console.print(t)


def datasets_table(data_root: str | None):
    """The datasets with their shape, classes, splits and whether their files are present."""
    from rich.table import Table

    from bench.config import DataConfig
    from bench.data import DATASETS, presence, resolve_root

    root = resolve_root(DataConfig(root=data_root)) if data_root or os.environ.get("GANBENCH_DATA") else None
    t = Table(title=f"datasets (files under {root or 'none: torchvision downloads them'})")
    for col in ("name", "shape", "classes", "splits", "present", "summary"):
        t.add_column(col, no_wrap=col in ("name", "shape"))
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        shape = "x".join(map(str, spec.image_shape)) if spec.image_shape else "3x64x64*"
        classes = str(spec.num_classes) if spec.num_classes else "folders"
        t.add_row(name, shape, classes, "/".join(spec.splits), presence(name, root), spec.summary)
    t.caption = "* data.channels x data.image_size; any dataset can be resized / converted with them"
    return t


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


extractor_app = typer.Typer(help="Feature extractors: train a dataset's classifier.", no_args_is_help=True)
app.add_typer(extractor_app, name="extractor")


@extractor_app.command("train")
@errors
def extractor_train(
    dataset: Annotated[str, typer.Option(help="Dataset to train lenet-<dataset> on (see `ganbench list`).")],
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 15,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation, order and augmentation.")] = 0,
    max_shift: Annotated[int, typer.Option(help="Random translation augmentation, pixels (0-8).")] = 0,
    hflip: Annotated[bool, typer.Option("--hflip", help="Random horizontal flips (mirror-symmetric classes).")] = False,
    out: Annotated[Path | None, typer.Option(help="Weights file [<workdir>/extractors/lenet-<dataset>.pt].")] = None,
    workdir: Annotated[str, typer.Option(help="Workspace folder.")] = "ganbench-runs",
    data_root: DataRootOpt = None,
) -> None:
    """Train the lenet-<dataset> feature extractor with ganbench's recipe; prints test accuracy and sha256."""
    from bench.config import DataConfig
    from bench.data import DATASETS
    from bench.metrics.extractors import SHIPPED, workspace_weights
    from bench.metrics.train_lenet import Recipe, train_extractor

    spec = DATASETS.get(dataset)
    if spec.image_shape is None or not spec.num_classes:
        raise UserError(f"--dataset {dataset!r} has no fixed shape and classes; use inception-v3-compat for it")
    if dataset == "stacked-mnist":
        raise UserError("--dataset 'stacked-mnist' is classified by lenet-mnist on each channel; train mnist instead")
    recipe = Recipe(epochs=epochs, seed=seed, max_shift=max_shift, hflip=hflip)
    target = out or workspace_weights(workdir, dataset)
    typer.echo(f"training lenet-{dataset}: {recipe}")
    for line in train_extractor(DataConfig(dataset=dataset, root=data_root), workdir, target, recipe):
        typer.echo(line)
    if dataset in SHIPPED:
        typer.echo(
            f"lenet-{dataset}'s shipped weights stay the default (numbers stay comparable); use these with "
            f"--set eval.extractors.lenet-{dataset}.weights={target}"
        )
