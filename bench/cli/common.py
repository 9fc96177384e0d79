"""What every command shares: the typer apps, the option types, the error handling, options as a config layer.

Errors from user input print one line (``error: ...``) and exit 2; ``--debug`` or ``GANBENCH_DEBUG=1`` shows
the traceback. Ctrl-C exits 130, SIGTERM 143.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.config import merge, nested
from bench.errors import UserError

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: '[default]' is shown, not read as rich markup
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
DataRootOpt = Annotated[
    str | None, typer.Option(help="Data folder (holding MNIST/raw/ ...), or the image folder of --dataset folder.")
]
DatasetOpt = Annotated[str | None, typer.Option(help="Dataset (see `ganbench list`) [mnist].")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N [auto].")]
EpochsOpt = Annotated[float | None, typer.Option(help="Budget: epochs of real data through D [2].")]
StepsOpt = Annotated[int | None, typer.Option(help="Budget: generator steps (replaces --epochs).")]
MinutesOpt = Annotated[float | None, typer.Option(help="Wall-clock cap per run, in minutes.")]
ExperimentOpt = Annotated[str | None, typer.Option(help="MLflow experiment name [<dataset>-compare].")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ExtractorOpt = Annotated[
    str | None,
    typer.Option(help="Feature extractor(s), comma-separated; the first is the primary [lenet-<dataset>]."),
]
PrecisionOpt = Annotated[str | None, typer.Option(help="fp32 or bf16 (autocast) [fp32].")]
CompileOpt = Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile G and D.")]
InceptionWeightsOpt = Annotated[
    str | None, typer.Option(help="Local Inception-v3 FID weights (torch-fidelity's .pth) for inception-v3-compat.")
]


RESUME_HINTS = {  # how each command continues after Ctrl-C / SIGTERM
    "compare": " (resume with the same command and --resume)",
    "train": " (resume with --resume CHECKPOINT)",
    "tune": " (re-run the same ganbench tune to resume the study)",
}


def errors(fn):
    """Turn UserError into one line on stderr and exit 2 (``--debug`` re-raises it); Ctrl-C / SIGTERM into
    exit 130 / 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            if os.environ.get("GANBENCH_DEBUG"):
                raise
            typer.echo(f"error: {one_line(str(e))}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (bench.signals): the run ended KILLED
            hint = RESUME_HINTS.get(fn.__name__, "")
            typer.echo(f"{e or 'interrupted'}; the run is marked KILLED{hint}", err=True)
            raise typer.Exit(getattr(e, "exit_code", 130)) from None

    return wrapper


def one_line(text: str) -> str:
    """Escape line breaks and other non-printable characters a user's value may bring into a message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def options_layer(
    *,
    archs: list[str] | None = None,
    seeds: list[int] | None = None,
    experiment: str | None = None,
    workdir: str | None = None,
    dataset: str | None = None,
    data_root: str | None = None,
    device: str | None = None,
    epochs: float | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    extractor: str | None = None,
    inception_weights: str | None = None,
    precision: str | None = None,
    compile_: bool | None = None,
    n_samples: int | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Command-line options as a config layer: a nested dict of the options given (they win over ``--set``,
    which wins over the file; ``--epochs`` / ``--steps`` each clear the other's default)."""
    if epochs is not None and steps is not None:
        raise UserError("give either --epochs or --steps, not both")
    given = {
        ("archs",): archs or None,
        ("seeds",): seeds,
        ("experiment",): experiment,
        ("workdir",): workdir,
        ("data", "dataset"): dataset,
        ("data", "root"): data_root,
        ("train", "device"): device,
        ("train", "epochs"): epochs,
        ("train", "steps"): steps,
        ("train", "minutes"): minutes,
        ("train", "precision"): precision,
        ("train", "compile"): compile_,
        ("train", "batch_size"): batch_size,
        ("eval", "extractor"): extractor.split(",")[0].strip() if extractor else None,
        ("eval", "extractors", "inception-v3-compat", "weights"): inception_weights,
        ("eval", "n_samples"): n_samples,
    }
    for other in (extractor or "").split(",")[1:]:  # --extractor A,B: A is the primary, B is computed too
        if not other.strip():
            raise UserError(f"--extractor {extractor!r}: expected names separated by commas, e.g. lenet-mnist,vgg16")
        given[("eval", "extractors", other.strip(), "use")] = "on"
    out: dict[str, Any] = {}
    for path, value in given.items():
        if value is not None:
            out = merge(out, nested(path, value))
    return out


bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """ganbench's own warnings (a skipped plugin, a repaired store) are one ``warning:`` line on stderr;
    other warnings keep Python's format."""
    from architectures import PluginWarning
    from bench.data.samples import SamplesWarning
    from bench.tracking import StoreWarning

    if issubclass(category, (PluginWarning, StoreWarning, SamplesWarning)):
        typer.echo(f"warning: {one_line(str(message))}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of user errors.")] = False,
) -> None:
    """Compare GAN architectures head-to-head: one harness, MLflow tracking, paper-ready reports."""
    warnings.showwarning = _show_warning
    if debug:
        os.environ["GANBENCH_DEBUG"] = "1"
