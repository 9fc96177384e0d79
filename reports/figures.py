"""Report figures (matplotlib, each saved as PNG and PDF, one colour per architecture throughout).

- ``samples-<arch>``: the final fixed-z sample grid of the architecture's first finished seed;
- ``losses``: discriminator and generator loss against generator step (mean over seeds, band = ±1 std);
- ``fid-vs-step``: the FID curve measured during training (same band).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.tracking import Tracker, keys  # noqa: E402


def colours(archs: list[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per architecture name (sorted order in the tab10 cycle)."""
    cmap = plt.get_cmap("tab10")
    return {a: cmap(i % 10) for i, a in enumerate(sorted(archs))}


def _save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = out_dir / f"{name}.{ext}"
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def sample_grids(df: pd.DataFrame, tracker: Tracker, out_dir: Path) -> dict[str, Path]:
    """One figure per architecture from its run's ``samples/final.png``; returns ``{arch: png path}``."""
    out = {}
    finished = df[(df["status"] == "FINISHED") & (df["kind"] == keys.KIND_RUN)].sort_values("seed")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, runs in finished.groupby("arch"):
            run = runs.iloc[0]
            path = tracker.download_artifact(run["run_id"], "samples/final.png", Path(tmp) / str(arch))
            if path is None:
                continue
            fig, ax = plt.subplots(figsize=(4, 4))
            ax.imshow(plt.imread(path), cmap="gray")
            ax.set_title(f"{arch} (seed {run['seed']}, {int(run.get(keys.G_STEPS, 0))} G steps)", fontsize=9)
            ax.axis("off")
            out[str(arch)] = _save(fig, out_dir, f"samples-{arch}")[0]
    return out


def _curves(df: pd.DataFrame, tracker: Tracker, key: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{arch: (steps, mean, std)}`` of metric ``key`` over the FINISHED runs' histories."""
    out = {}
    for arch, runs in df[(df["status"] == "FINISHED") & (df["kind"] == keys.KIND_RUN)].groupby("arch"):
        series = []
        for run_id in runs["run_id"]:
            hist = tracker.metric_history(run_id, key)
            if hist:
                series.append(pd.Series([v for _, v, _ in hist], index=[s for s, _, _ in hist]))
        if not series:
            continue
        table = pd.concat(series, axis=1).sort_index()
        out[str(arch)] = (
            table.index.to_numpy(),
            table.mean(axis=1).to_numpy(),
            table.std(axis=1, ddof=1).fillna(0).to_numpy(),
        )
    return out


def _plot_curves(ax: plt.Axes, curves: dict, col: dict, ylabel: str) -> None:
    for arch, (x, mean, std) in sorted(curves.items()):
        ax.plot(x, mean, label=arch, color=col[arch], lw=1.2)
        ax.fill_between(x, mean - std, mean + std, color=col[arch], alpha=0.2, lw=0)
    ax.set_xlabel("generator step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def loss_curves(df: pd.DataFrame, tracker: Tracker, out_dir: Path) -> Path | None:
    col = colours(list(df.loc[df["kind"] == keys.KIND_RUN, "arch"].unique()))
    d, g = _curves(df, tracker, keys.D_LOSS), _curves(df, tracker, keys.G_LOSS)
    if not d and not g:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    _plot_curves(axes[0], d, col, "discriminator / critic loss")
    _plot_curves(axes[1], g, col, "generator loss")
    axes[1].legend(fontsize=8)
    fig.suptitle("Training losses (mean over seeds, band ±1 std)", fontsize=10)
    return _save(fig, out_dir, "losses")[0]


def metric_vs_step(df: pd.DataFrame, tracker: Tracker, out_dir: Path, key: str = keys.TRAIN_FID) -> Path | None:
    col = colours(list(df.loc[df["kind"] == keys.KIND_RUN, "arch"].unique()))
    curves = _curves(df, tracker, key)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    _plot_curves(ax, curves, col, "FID during training")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "fid-vs-step")[0]
