"""``reports.build_report``: an MLflow experiment -> a report folder.

Writes ``report.md`` (protocol, table, failed runs, figures inline), ``table.csv`` (one row per
architecture: mean / std per metric), ``runs.csv`` (one row per run), ``table.tex`` (booktabs) and
``figures/*.png|pdf``. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path

import bench
from bench.errors import UserError
from bench.tracking import Tracker, keys
from reports import figures, tables
from reports.collect import collect


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def build_report(experiments: list[str], out_dir: str | os.PathLike[str], workdir: str | os.PathLike[str]) -> Path:
    """Build the report of ``experiments`` into ``out_dir``; returns ``out_dir``.

    Raises UserError if an experiment does not exist or holds no runs.
    """
    out = Path(out_dir)
    df = collect(experiments, workdir)
    if df.empty:
        raise UserError(f"experiment(s) {', '.join(experiments)} hold no runs")
    tracker = Tracker(workdir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    grids = figures.sample_grids(df, tracker, fig_dir)
    losses = figures.loss_curves(df, tracker, fig_dir)
    fid_curve = figures.metric_vs_step(df, tracker, fig_dir)

    protocols = sorted({line for d in df["protocols"] if isinstance(d, dict) for line in d.values()})
    unavailable = sorted({(n, why) for d in df["unavailable"] if isinstance(d, dict) for n, why in d.items()})
    selections = sorted({s for s in df["selection"].dropna() if s and s != "last checkpoint"})
    devices = sorted({d for d in df["device"].dropna() if d})
    failed = df[df["status"] != "FINISHED"]
    n_runs = int((df["kind"] == keys.KIND_RUN).sum())
    caption = "\n".join(
        [f"ganbench {bench.__version__}; experiment(s): {', '.join(experiments)}"]
        + [f"Protocol: {p}" for p in protocols]
        + [f"Not computed: {n}: {why}" for n, why in unavailable]
        + [f"Device: {d}" for d in devices]
    )

    md = [f"# ganbench report: {', '.join(experiments)}", ""]
    md.append(
        f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} by ganbench {bench.__version__}. "
        f"Runs: {n_runs - len(failed)} finished, {len(failed)} failed or unfinished."
    )
    md += [""] + [f"- Protocol: {p}" for p in protocols]
    md += [f"- Not computed (n/a): `{n}`: {why}" for n, why in unavailable]
    md += [f"- Checkpoint selection: {s}" for s in selections]
    md += [f"- Device: {d}" for d in devices] + [""]
    md += [tables.to_markdown(df), ""]
    md.append(
        "Mean ± std over seeds (sample std); ↓ lower is better, ↑ higher is better. LeNet: the MNIST classifier "
        "shipped with ganbench; Inception: the FID Inception-v3 of papers. Precision/recall: Kynkäänniemi et al. "
        "2019 (k = 3). D accuracy: the trained discriminator (eval mode) on held-out real images and as many "
        "fresh fakes, at its loss's natural threshold; ROC-AUC is threshold-free. ms/step: one generator step "
        "with its n_critic discriminator steps (median after warm-up); img/s: real images through the "
        f"discriminator per second. {tables.FLOOR_LABEL}: real training images scored as if generated, with the "
        "same protocol (what a perfect generator reaches)."
    )
    if len(failed):
        md += ["", "## Failed or unfinished runs", ""]
        md += [
            f"- `{r.arch}` seed {r.seed}: {r.status} — {r.failure or 'no reason recorded'}" for r in failed.itertuples()
        ]
    if grids:
        md += ["", "## Samples (fixed z, end of training)", ""]
        md += [f"![{arch}](figures/{p.name})" for arch, p in sorted(grids.items())]
    if losses or fid_curve:
        md += ["", "## Training curves", ""]
        md += [f"![{p.stem}](figures/{p.name})" for p in (fid_curve, losses) if p]

    write_atomic(out / "report.md", "\n".join(md) + "\n")
    write_atomic(out / "table.tex", tables.to_latex(df, caption))
    write_atomic(out / "table.csv", tables.to_csv(df))
    write_atomic(
        out / "runs.csv", df.drop(columns=[c for c in df.columns if str(c).startswith("param:")]).to_csv(index=False)
    )
    return out
