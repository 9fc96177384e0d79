"""Report sections about the scores themselves: whether feature spaces agree on the ranking (Kendall's tau
per pair of extractors) and whether the models copy their training data (the memorisation gallery).

Stein et al. 2023 ("Exposing flaws of generative model evaluation metrics and their unfair treatment of
diffusion models", NeurIPS) found that the Inception space misranks models that humans rank otherwise; when
runs were scored in two or more feature spaces, the agreement section says whether the ranking of this
comparison depends on the space.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import pandas as pd
from scipy import stats

from bench.tracking import Tracker, keys
from reports import tables
from reports.figures import plt, save_figure
from reports.render import Section

AGREEMENT_TEXT = (
    "Kendall's tau-b (scipy.stats.kendalltau) between the rankings of the models by mean FID in two feature "
    "spaces: 1 = the same order, 0 = unrelated, −1 = reversed. Stein et al. 2023 found that the Inception "
    "space can rank models unlike human judges and recommend DINOv2 (FD_DINOv2); a pair below 1 means this "
    "comparison's ranking depends on the space, and the listed models swap places."
)
MEMORISATION_TEXT = (
    "Does a model copy its training images? In the primary extractor's features: copy rate: the share of "
    "samples closer to their nearest training image than that image is to its own nearest other training "
    "image (held-out real images give the rate in the protocol line, not 0); NN ratio: the held-out reference "
    "images' median distance to their nearest training image over the samples' (~1: as novel as unseen data; "
    "> 1: closer to the training data than unseen data is; < 1: farther from it than unseen data, as for most GANs, "
    "whose samples are also farther from the test images). The gallery: per model, the 16 samples nearest to "
    "a training image, each followed by that image (nearest first, row by row)."
)


def fid_means(df: pd.DataFrame) -> dict[str, pd.Series]:
    """``{extractor: mean FID per ranked model}`` over the FINISHED runs, for extractors with numbers."""
    agg = tables.aggregate(df)
    agg = agg[agg["kind"].isin(keys.RANKED_KINDS)].set_index("arch")
    out = {}
    for ext in tables.extractors_in(df):
        col = f"{keys.eval_key(ext, keys.FID)} mean"
        if col in agg and agg[col].notna().sum() >= 2:
            out[ext] = agg[col].dropna()
    return out


def agreement(means: dict[str, pd.Series]) -> pd.DataFrame:
    """Per pair of extractors: ``A``, ``B``, ``n`` (models scored by both), ``tau`` (Kendall's tau-b of their
    scores; NaN below 2 models or when one ranking is all ties) and ``swapped`` (the pairs of models the two
    order differently, ``"x vs y"``)."""
    rows = []
    for a, b in itertools.combinations(means, 2):
        common = [m for m in means[a].index if m in means[b].index]
        x, y = means[a][common], means[b][common]
        tau = float(stats.kendalltau(x.to_numpy(), y.to_numpy()).statistic) if len(common) >= 2 else float("nan")
        swapped = [f"{m} vs {n}" for m, n in itertools.combinations(common, 2) if (x[m] - x[n]) * (y[m] - y[n]) < 0]
        rows.append({"A": a, "B": b, "n": len(common), "tau": tau, "swapped": swapped})
    return pd.DataFrame(rows, columns=["A", "B", "n", "tau", "swapped"])


def agreement_section(df: pd.DataFrame, on: str) -> Section | None:
    """The "Agreement between feature spaces" section, or None with fewer than two extractors' FIDs."""
    means = fid_means(df)
    if len(means) < 2:
        return None
    found = agreement(means)

    def frame(style: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "feature spaces": [
                    f"{tables.label(df, a)} vs {tables.label(df, b)}"
                    for a, b in zip(found["A"], found["B"], strict=True)
                ],
                "models": [str(n) for n in found["n"]],
                "Kendall's tau": ["–" if pd.isna(t) else f"{t:.2f}" for t in found["tau"]],
                "order differs for": [", ".join(s) or "–" for s in found["swapped"]],
            }
        )

    disagree = [f"{tables.label(df, a)} vs {tables.label(df, b)}" for a, b, s in
                zip(found["A"], found["B"], found["swapped"], strict=True) if s]  # fmt: skip
    verdict = (
        f"The feature spaces disagree on the ranking: {'; '.join(disagree)}."
        if disagree
        else "Every pair of feature spaces ranks the models in the same order."
    )
    return Section("Agreement between feature spaces" + on, frame, text=[verdict, AGREEMENT_TEXT])


def memorisation_section(df: pd.DataFrame, tracker: Tracker, fig_dir: Path, on: str) -> Section | None:
    """The "Memorisation" section: per model (first finished run) its gallery from the artifact
    ``memorisation/nearest.png``, the copy rate in the caption; None when no run logged one."""
    runs = df[(df["status"] == "FINISHED") & df["kind"].isin(keys.RANKED_KINDS)].sort_values("seed")
    figs = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in tables.arch_order(runs):
            run = runs[runs["arch"] == arch].iloc[0]
            png = tracker.download_artifact(run["run_id"], "memorisation/nearest.png", Path(tmp) / str(arch))
            if png is None:
                continue
            meta = tracker.download_artifact(run["run_id"], "memorisation/nearest.json", Path(tmp) / str(arch))
            info = json.loads(Path(meta).read_text()) if meta else {}
            split = info.get("split", "train")
            name = tables.row_labels(runs[runs["arch"] == arch].iloc[:1])[0]
            fig, ax = plt.subplots(figsize=(6, 3.4))
            ax.imshow(plt.imread(png), cmap="gray")
            ax.axis("off")
            copy = _value(run, keys.COPY_RATE, info.get("extractor"))
            ax.set_title(f"{name}: sample, nearest {split} image (×16); copy rate {copy}", fontsize=8)
            out = save_figure(fig, fig_dir, f"memorisation-{arch}")
            figs.append((out, f"{name}: the 16 samples nearest to a training image, each beside it"))
    if not figs:
        return None
    return Section("Memorisation" + on, lambda style: _memorisation_frame(df, style), text=[MEMORISATION_TEXT],
                   figures=figs)  # fmt: skip


def _memorisation_frame(df: pd.DataFrame, style: str) -> pd.DataFrame:
    """Per model: its copy rate and NN ratio (mean over its runs) beside those of held-out real images (from
    the protocol line: the level of a model that does not copy, and 1)."""
    runs = df[(df["status"] == "FINISHED") & df["kind"].isin(keys.RANKED_KINDS)]
    rows = []
    for arch in tables.arch_order(runs):
        g = runs[runs["arch"] == arch]
        copy = next((c for c in g.columns if str(c).endswith("/" + keys.COPY_RATE) and g[c].notna().any()), None)
        if copy is None:
            continue
        ratio = copy.replace(keys.COPY_RATE, keys.NN_RATIO)
        held_key = copy.replace(keys.COPY_RATE, keys.HELDOUT_COPY_RATE)
        held = f"{g[held_key].mean():.3f}" if held_key in g and g[held_key].notna().any() else "–"
        rows.append(
            {
                "model": tables.row_labels(g.iloc[:1])[0],
                "copy rate": f"{g[copy].mean():.3f}",
                "held-out images' copy rate": held,
                "NN ratio (held-out: 1)": f"{g[ratio].mean():.2f}" if ratio in g else "–",
            }
        )
    return pd.DataFrame(rows)


def _value(run: pd.Series, metric: str, extractor: str | None) -> str:
    """The run's ``metric`` in ``extractor``'s space (None: the first space that has it), formatted."""
    if extractor is not None:
        key = keys.eval_key(extractor, metric) if keys.eval_key(extractor, metric) in run.index else None
    else:
        key = next((k for k in run.index if str(k).startswith("eval/") and str(k).endswith("/" + metric)), None)
    return "n/a" if key is None or pd.isna(run[key]) else f"{run[key]:.3f}"
