"""Aggregate runs over seeds (mean ± std, n) and write the comparison table as Markdown, LaTeX
(booktabs) and CSV.

Columns: architecture, FID, IS, KID (per feature extractor, named in the header), discriminator accuracy on
real / fake / overall and ROC-AUC, ms per generator step (p50), images/s, train time, generator steps,
number of seeds. Only FINISHED runs are aggregated; failed runs are listed separately by the report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.tracking import keys

EXTRACTOR_LABELS = {"lenet-mnist": "LeNet", "inception-v3-compat": "Inception"}


@dataclass(frozen=True)
class Column:
    key: str  # metric key in MLflow
    header: str  # plain-text header; may contain ↓ / ↑
    decimals: int
    scale: float = 1.0  # e.g. 100 for percentages


def columns_for(df: pd.DataFrame) -> list[Column]:
    """The table's metric columns, in order, for the metrics present in ``df``."""
    cols: list[Column] = []
    extractors = sorted({m.group(1) for c in df.columns if (m := re.match(r"^eval/([^/]+)/fid$", str(c)))})
    for ext in extractors:
        label = EXTRACTOR_LABELS.get(ext, ext)
        cols += [
            Column(keys.eval_key(ext, keys.FID), f"FID ({label}) ↓", 2),
            Column(keys.eval_key(ext, keys.IS_MEAN), f"IS ({label}) ↑", 2),
            Column(keys.eval_key(ext, keys.KID_MEAN), f"KID ({label}) ↓", 3),
        ]
    cols += [
        Column(keys.D_ACC_REAL, "D acc real (%)", 1, 100),
        Column(keys.D_ACC_FAKE, "D acc fake (%)", 1, 100),
        Column(keys.D_ACC, "D acc (%)", 1, 100),
        Column(keys.D_ROC_AUC, "D ROC-AUC", 3),
        Column(keys.MS_PER_STEP_P50, "ms/step", 1),
        Column(keys.IMG_PER_S, "img/s", 0),
        Column(keys.TRAIN_S, "train time (s)", 0),
        Column(keys.G_STEPS, "G steps", 0),
    ]
    return [c for c in cols if c.key in df.columns]


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture over its FINISHED runs: ``arch``, ``n_seeds``, ``n_failed`` and for every
    metric column ``<key> mean`` and ``<key> std`` (sample std, ddof=1; NaN for one seed), in the metric's
    own units (accuracies as fractions). Architectures in the order their first run started."""
    cols = columns_for(df)
    finished = df[df["status"] == "FINISHED"]
    rows = []
    order = df.sort_values("start_time")["arch"].drop_duplicates() if "start_time" in df else df["arch"].unique()
    for arch in order:
        runs = finished[finished["arch"] == arch]
        row: dict[str, object] = {
            "arch": arch,
            "n_seeds": len(runs),
            "n_failed": int(((df["arch"] == arch) & (df["status"] != "FINISHED")).sum()),
        }
        for c in cols:
            values = runs[c.key].dropna().astype(float) if len(runs) else pd.Series(dtype=float)
            row[f"{c.key} mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{c.key} std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, c: Column, pm: str) -> str:
    if mean is None or np.isnan(mean):
        return "–"
    s = f"{mean * c.scale:.{c.decimals}f}"
    return s if std is None or np.isnan(std) else f"{s}{pm}{std * c.scale:.{c.decimals}f}"


def display_frame(df: pd.DataFrame, latex: bool = False) -> pd.DataFrame:
    """The aggregate as strings, ``mean ± std`` per cell, ready for Markdown or LaTeX."""
    agg = aggregate(df)
    cols = columns_for(df)
    pm = r" $\pm$ " if latex else " ± "
    out = pd.DataFrame({"Architecture": agg["arch"]})
    for c in cols:
        header = (
            c.header.replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$").replace("%", r"\%")
            if latex
            else c.header
        )
        out[header] = [_cell(m, s, c, pm) for m, s in zip(agg[f"{c.key} mean"], agg[f"{c.key} std"], strict=True)]
    out["seeds"] = agg["n_seeds"].astype(str)
    return out


def to_markdown(df: pd.DataFrame) -> str:
    return display_frame(df).to_markdown(index=False, disable_numparse=True)


def to_latex(df: pd.DataFrame, caption: str = "") -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), preceded by ``caption`` as a comment."""
    frame = display_frame(df, latex=True)
    frame["Architecture"] = frame["Architecture"].str.replace("_", r"\_")
    body = frame.style.hide(axis="index").to_latex(hrules=True, column_format="l" + "r" * (frame.shape[1] - 1))
    comment = "".join(f"% {line}\n" for line in caption.splitlines() if line)
    return comment + body


def to_csv(df: pd.DataFrame) -> str:
    """The aggregate, numeric (``<key> mean`` / ``<key> std`` columns), one row per architecture."""
    return aggregate(df).to_csv(index=False)
