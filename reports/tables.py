"""Aggregate runs over seeds (mean ± std, n) and write the comparison table as Markdown, LaTeX
(booktabs) and CSV.

Columns: architecture, then per feature extractor FID, IS, KID, precision and recall (the extractor named in
the header; an extractor that could not be computed shows "n/a" and the report says why), discriminator
accuracy on real / fake / overall and ROC-AUC, ms per generator step (p50), images/s, train time, generator
steps, number of seeds. Only FINISHED runs are aggregated; failed runs are listed by the report. The
real-data floor (training images scored as samples) is the last row.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.tracking import keys

EXTRACTOR_LABELS = {"lenet-mnist": "LeNet", "inception-v3-compat": "Inception"}
FLOOR_LABEL = "real data (floor)"


@dataclass(frozen=True)
class Column:
    key: str  # metric key in MLflow
    header: str  # plain-text header; may contain ↓ / ↑
    decimals: int
    scale: float = 1.0  # e.g. 100 for percentages


def extractors_in(df: pd.DataFrame) -> list[str]:
    """Extractors with numbers in ``df``, then those recorded as unavailable; primary (LeNet) first."""
    found = {m.group(1) for c in df.columns if (m := re.match(r"^eval/([^/]+)/fid$", str(c))) and df[c].notna().any()}
    if "unavailable" in df:
        found |= {name for d in df["unavailable"] if isinstance(d, dict) for name in d}
    order = list(EXTRACTOR_LABELS)
    return sorted(found, key=lambda e: (order.index(e) if e in order else len(order), e))


def columns_for(df: pd.DataFrame) -> list[Column]:
    """The table's metric columns, in order, for the metrics (and unavailable extractors) in ``df``."""
    cols: list[Column] = []
    for ext in extractors_in(df):
        label = EXTRACTOR_LABELS.get(ext, ext)
        cols += [
            Column(keys.eval_key(ext, keys.FID), f"FID ({label}) ↓", 2),
            Column(keys.eval_key(ext, keys.IS_MEAN), f"IS ({label}) ↑", 2),
        ]
        if keys.eval_key(ext, keys.FID) in df.columns:  # computed: the full set; unavailable: FID and IS (n/a)
            cols += [
                Column(keys.eval_key(ext, keys.KID_MEAN), f"KID ({label}) ↓", 3),
                Column(keys.eval_key(ext, keys.PRECISION), f"Precision ({label}) ↑", 3),
                Column(keys.eval_key(ext, keys.RECALL), f"Recall ({label}) ↑", 3),
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
    # every column of a listed extractor (its missing numbers read n/a or –); other columns only if present
    return [c for c in cols if c.key in df.columns or _extractor_of(c.key) is not None]


def _extractor_of(key: str) -> str | None:
    """``"eval/lenet-mnist/fid" -> "lenet-mnist"``; None for keys that are not per-extractor."""
    parts = key.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "eval" else None


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture over its FINISHED runs, then the real-data floor if present: ``arch``,
    ``kind``, ``n_seeds``, ``n_failed`` and for every metric column ``<key> mean`` and ``<key> std`` (sample
    std, ddof=1; NaN for one seed), in the metric's own units (accuracies as fractions). Architectures in the
    order their first run started."""
    cols = columns_for(df)
    kind = df["kind"] if "kind" in df else pd.Series(keys.KIND_RUN, index=df.index)
    finished = df[df["status"] == "FINISHED"]
    ordered = df.assign(_kind=kind.map({keys.KIND_RUN: 0}).fillna(1))
    if "start_time" in ordered:
        ordered = ordered.sort_values(["_kind", "start_time"], kind="stable")
    rows = []
    for arch in ordered["arch"].drop_duplicates():
        runs = finished[finished["arch"] == arch]
        row: dict[str, object] = {
            "arch": arch,
            "kind": kind[df["arch"] == arch].iloc[0],
            "n_seeds": len(runs),
            "n_failed": int(((df["arch"] == arch) & (df["status"] != "FINISHED")).sum()),
        }
        for c in cols:
            values = runs[c.key].dropna().astype(float) if c.key in runs and len(runs) else pd.Series(dtype=float)
            row[f"{c.key} mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{c.key} std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, c: Column, pm: str, na: str) -> str:
    if mean is None or np.isnan(mean):
        return na
    s = f"{mean * c.scale:.{c.decimals}f}"
    return s if std is None or np.isnan(std) else f"{s}{pm}{std * c.scale:.{c.decimals}f}"


def display_frame(df: pd.DataFrame, latex: bool = False) -> pd.DataFrame:
    """The aggregate as strings, ``mean ± std`` per cell, ready for Markdown or LaTeX. A metric of an
    unavailable extractor reads "n/a"; a metric that does not apply (e.g. timing of the floor) reads "–"."""
    agg = aggregate(df)
    cols = columns_for(df)
    unavailable = {n for d in df.get("unavailable", []) if isinstance(d, dict) for n in d}
    pm = r" $\pm$ " if latex else " ± "
    labels = [FLOOR_LABEL if k == keys.KIND_FLOOR else a for a, k in zip(agg["arch"], agg["kind"], strict=True)]
    out = pd.DataFrame({"Architecture": labels})
    for c in cols:
        header = c.header
        if latex:
            header = header.replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$").replace("%", r"\%")
        na = "n/a" if _extractor_of(c.key) in unavailable else "–"
        means, stds = agg[f"{c.key} mean"], agg[f"{c.key} std"]
        out[header] = [_cell(m, s, c, pm, na) for m, s in zip(means, stds, strict=True)]
    out["seeds"] = [str(n) if k == keys.KIND_RUN else "–" for n, k in zip(agg["n_seeds"], agg["kind"], strict=True)]
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
    """The aggregate, numeric (``<key> mean`` / ``<key> std`` columns), one row per architecture + floor."""
    return aggregate(df).to_csv(index=False)
