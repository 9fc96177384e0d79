"""Report figures (matplotlib, each saved as PNG and PDF, one colour per architecture throughout).

- ``samples-<arch>``: the final fixed-z sample grid of the architecture's first finished seed;
- ``samples-over-training``: a strip of those grids at the steps they were saved, one row per architecture;
- ``fid-vs-step`` / ``fid-vs-time``: the FID curve measured during training against generator step and
  against wall-clock seconds since the run started (mean over seeds, band = ±1 std);
- ``losses``: discriminator and generator loss against generator step;
- ``d-accuracy``: the discriminator's accuracy on real and on fake images during training;
- ``quality-vs-cost``: final FID against training time, one point per run, mean ± std per architecture.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.atomic import write_atomic  # noqa: E402
from bench.tracking import Tracker, keys  # noqa: E402
from reports.tables import arch_order, augment_ks  # noqa: E402


def colours(archs: list[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per architecture name (sorted order in the tab10 cycle)."""
    cmap = plt.get_cmap("tab10")
    return {a: cmap(i % 10) for i, a in enumerate(sorted(archs))}


def _runs(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "FINISHED") & df["kind"].isin(keys.RANKED_KINDS)]


def save_figure(fig: plt.Figure, out_dir: Path, name: str) -> Path:
    for ext in ("png", "pdf"):  # atomic: hosts of a shared grid each write the report into one workspace
        path = out_dir / f"{name}.{ext}"
        write_atomic(path, lambda f, ext=ext: fig.savefig(f, format=ext, dpi=150, bbox_inches="tight"))
    plt.close(fig)
    return out_dir / f"{name}.png"


def sample_grids(df: pd.DataFrame, tracker: Tracker, out_dir: Path) -> dict[str, Path]:
    """One figure per architecture from its run's ``samples/final.png``; returns ``{arch: png path}``."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs_by_arch = _runs(df).sort_values("seed").groupby("arch")
        for arch in arch_order(_runs(df)):
            run = runs_by_arch.get_group(arch).iloc[0]
            path = tracker.download_artifact(run["run_id"], "samples/final.png", Path(tmp) / str(arch))
            if path is None:
                continue
            fig, ax = plt.subplots(figsize=(4, 4))
            ax.imshow(plt.imread(path), cmap="gray")
            steps = run.get(keys.G_STEPS)
            trained = f"seed {run['seed']}, {int(steps)} G steps" if pd.notna(steps) else "external"
            ax.set_title(f"{arch} ({trained})", fontsize=9)
            ax.axis("off")
            out[str(arch)] = save_figure(fig, out_dir, f"samples-{arch}")
    return out


def samples_over_training(df: pd.DataFrame, tracker: Tracker, out_dir: Path, max_cols: int = 6) -> Path | None:
    """Rows: architectures (first finished seed); columns: the grids saved during training, by step."""
    strips: dict[str, list[tuple[int, np.ndarray]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch, runs in _runs(df).sort_values("seed").groupby("arch", sort=False):
            folder = tracker.download_artifact(runs.iloc[0]["run_id"], "samples", Path(tmp) / str(arch))
            if folder is None:
                continue
            steps = sorted(
                (int(m.group(1)), p) for p in Path(folder).glob("step_*.png") if (m := re.match(r"step_(\d+)", p.stem))
            )
            if len(steps) > max_cols:  # evenly spaced, always keeping the last
                idx = np.linspace(0, len(steps) - 1, max_cols).round().astype(int)
                steps = [steps[i] for i in sorted(set(idx))]
            if steps:  # an external model logs its final grid only
                strips[str(arch)] = [(s, plt.imread(p)) for s, p in steps]
    if not strips:
        return None
    n_cols = max(len(v) for v in strips.values())
    fig, axes = plt.subplots(len(strips), n_cols, figsize=(1.8 * n_cols, 1.9 * len(strips)), squeeze=False)
    for r, (arch, items) in enumerate(strips.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(items):
                ax.imshow(items[c][1], cmap="gray")
                ax.set_title(f"step {items[c][0]}", fontsize=7)
        axes[r][0].text(-0.08, 0.5, arch, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=9)
    fig.suptitle("Samples from a fixed z during training (first seed)", fontsize=10)
    return save_figure(fig, out_dir, "samples-over-training")


def curves(df: pd.DataFrame, tracker: Tracker, key: str) -> dict[str, pd.DataFrame]:
    """``{arch: frame}`` of metric ``key`` over the FINISHED runs: index = generator step, columns
    ``mean``, ``std`` (over seeds, 0 for one seed) and ``seconds`` (mean wall-clock since each run started)."""
    out = {}
    for arch, runs in _runs(df).groupby("arch", sort=False):
        values, seconds = [], []
        for run in runs.itertuples():
            hist = tracker.metric_history(run.run_id, key)
            if hist:
                values.append(pd.Series([v for _, v, _ in hist], index=[s for s, _, _ in hist]))
                seconds.append(
                    pd.Series([(t - run.start_time) / 1000 for _, _, t in hist], index=[s for s, _, _ in hist])
                )
        if values:
            v, t = pd.concat(values, axis=1).sort_index(), pd.concat(seconds, axis=1).sort_index()
            out[str(arch)] = pd.DataFrame(
                {"mean": v.mean(axis=1), "std": v.std(axis=1, ddof=1).fillna(0), "seconds": t.mean(axis=1)}
            )
    return out


def _plot(ax: plt.Axes, data: dict[str, pd.DataFrame], col: dict, ylabel: str, x: str = "step") -> None:
    for arch, frame in data.items():
        xs = frame.index.to_numpy() if x == "step" else frame["seconds"].to_numpy()
        ax.plot(xs, frame["mean"], label=arch, color=col[arch], lw=1.2)
        ax.fill_between(
            xs, frame["mean"] - frame["std"], frame["mean"] + frame["std"], color=col[arch], alpha=0.2, lw=0
        )
    ax.set_xlabel("generator step" if x == "step" else "wall-clock time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _colours(df: pd.DataFrame) -> dict:
    return colours(list(df.loc[df["kind"].isin(keys.RANKED_KINDS), "arch"].unique()))


def loss_curves(df: pd.DataFrame, tracker: Tracker, out_dir: Path) -> Path | None:
    col = _colours(df)
    d, g = curves(df, tracker, keys.D_LOSS), curves(df, tracker, keys.G_LOSS)
    if not d and not g:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    _plot(axes[0], d, col, "discriminator / critic loss")
    _plot(axes[1], g, col, "generator loss")
    axes[1].legend(fontsize=8)
    fig.suptitle("Training losses (mean over seeds, band ±1 std)", fontsize=10)
    return save_figure(fig, out_dir, "losses")


def fid_curves(df: pd.DataFrame, tracker: Tracker, out_dir: Path) -> list[Path]:
    """``fid-vs-step`` and ``fid-vs-time``."""
    col, data = _colours(df), curves(df, tracker, keys.TRAIN_FID)
    if not data:
        return []
    paths = []
    for x, name in (("step", "fid-vs-step"), ("time", "fid-vs-time")):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        _plot(ax, data, col, "FID during training", x=x)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        paths.append(save_figure(fig, out_dir, name))
    return paths


def d_accuracy_curves(df: pd.DataFrame, tracker: Tracker, out_dir: Path) -> Path | None:
    col = _colours(df)
    real, fake = curves(df, tracker, keys.TRAIN_D_ACC_REAL), curves(df, tracker, keys.TRAIN_D_ACC_FAKE)
    if not real and not fake:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    _plot(axes[0], real, col, "D accuracy on real images")
    _plot(axes[1], fake, col, "D accuracy on fake images")
    for ax in axes:
        ax.set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=8)
    fig.suptitle("Discriminator accuracy during training, at each loss's threshold", fontsize=10)
    return save_figure(fig, out_dir, "d-accuracy")


def quality_vs_cost(df: pd.DataFrame, out_dir: Path, metric: str, label: str) -> Path | None:
    runs = _runs(df)
    if metric not in runs or keys.TRAIN_S not in runs or runs[metric].isna().all():
        return None
    runs = runs[runs[keys.TRAIN_S].notna()]  # an external model has no training time here
    col = _colours(df)
    fig, ax = plt.subplots(figsize=(6, 4))
    for arch, g in runs.groupby("arch", sort=False):
        ax.scatter(g[keys.TRAIN_S], g[metric], color=col[arch], alpha=0.4, s=18)
        ax.errorbar(
            g[keys.TRAIN_S].mean(),
            g[metric].mean(),
            xerr=g[keys.TRAIN_S].std(ddof=1) if len(g) > 1 else None,
            yerr=g[metric].std(ddof=1) if len(g) > 1 else None,
            fmt="o",
            color=col[arch],
            label=arch,
            capsize=3,
        )
    ax.set_xlabel("training time (s)")
    ax.set_ylabel(label)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Quality vs cost (points: runs; markers: mean ± std)", fontsize=10)
    return save_figure(fig, out_dir, "quality-vs-cost")


def class_histogram(df: pd.DataFrame, out_dir: Path, extractor: str, classes: list[str] | None = None) -> Path | None:
    """Bars of the share of samples the dataset's classifier (``extractor``) puts in each class, one bar per
    architecture (mean over its runs) beside the real training images (the real-data row); a dashed line at
    1/K. None when no run logged class shares."""
    prefix = f"eval/{extractor}/{keys.CLASS_SHARE}/"
    share_cols = sorted((c for c in df.columns if str(c).startswith(prefix)), key=lambda c: int(c.rsplit("/", 1)[1]))
    done = df[df["status"] == "FINISHED"]
    if not share_cols or done[share_cols].isna().all().all():
        return None
    order = arch_order(done)
    names = [c.rsplit("/", 1)[1] for c in share_cols]
    if classes and len(classes) == len(names):
        names = list(classes)
    col = _colours(df)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) * (len(order) + 1) / 2), 3.5))
    width = 0.8 / len(order)
    x = np.arange(len(names))
    for i, arch in enumerate(order):
        g = done[done["arch"] == arch]
        real = g["kind"].iloc[0] == keys.KIND_FLOOR
        values = g[share_cols].mean().to_numpy()
        label = "real (training images)" if real else arch
        ax.bar(x + (i - (len(order) - 1) / 2) * width, values, width, label=label, color="0.6" if real else col[arch])
    ax.axhline(1 / len(names), color="k", lw=0.8, ls="--")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("share of samples")
    ax.set_xlabel("class predicted by the dataset's classifier")
    ax.legend(fontsize=7, ncol=min(len(order), 4))
    ax.set_title("Predicted class histogram (dashed: uniform)", fontsize=10)
    return save_figure(fig, out_dir, "class-histogram")


def usefulness_vs_k(df: pd.DataFrame, out_dir: Path) -> Path | None:
    """Accuracy of the classifier trained on k real images per class (log x) alone (grey) and with each
    architecture's generated samples added, mean with a ±1 std band over the augmentation seeds (pooled
    over the architecture's runs); None when no run has augmentation numbers."""
    ks = augment_ks(df, "real")
    runs = _runs(df)
    if not ks or runs.empty:
        return None
    col = _colours(df)
    fig, ax = plt.subplots(figsize=(6, 4))

    def line(g: pd.DataFrame, what: str, colour: object, label: str) -> None:
        mean = np.array([g[keys.augment_key(k, what)].mean() for k in ks]) * 100
        std = np.array([np.sqrt(np.nanmean(g[keys.augment_key(k, what + "_std")] ** 2)) for k in ks]) * 100
        ax.plot(ks, mean, "o-", color=colour, label=label)
        ax.fill_between(ks, mean - std, mean + std, color=colour, alpha=0.2)

    line(df[df[keys.augment_key(ks[0], "real")].notna()], "real", "0.4", "real only")
    for arch in arch_order(runs):
        g = runs[runs["arch"] == arch]
        if keys.augment_key(ks[0], "augmented") in g and g[keys.augment_key(ks[0], "augmented")].notna().any():
            line(g, "augmented", col[arch], f"real + {arch}")
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("real labelled images per class (k)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Does generated data help a classifier? (band: ±1 std over seeds)", fontsize=10)
    return save_figure(fig, out_dir, "usefulness-vs-k")
