"""Comparison tables: aggregate runs over seeds and write Markdown, LaTeX (booktabs) and CSV.

Columns: architecture, then per feature extractor FID, IS, KID, precision and recall (the extractor named in
the header; an extractor that could not be computed shows "n/a" and the report says why), for a dataset's
classifier modes and class KL, for conditional runs intra-FID, CAS and the augmentation gain per k, discriminator
accuracy on real / fake / overall and ROC-AUC, ms per generator step (p50), images/s, train time, generator
steps, number of seeds. Cells are mean ± sample std over the FINISHED runs (``reports.stats``); the best mean
of each column is in bold. The real-data floor (training images scored as samples) is the last row and is
never marked best; its cells are mean ± std over the floor's random subsets of the training split
(``eval.floor_subsets``). KID is shown x10³.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bench.tracking import keys
from reports.stats import summarize

FLOOR_LABEL = "real data (floor)"
FLOOR_STD = "floor_std/"  # + metric key: the floor run's std over its random subsets (bench.metrics.floor)


@dataclass(frozen=True)
class Column:
    key: str  # metric key in MLflow
    header: str  # plain-text header; may contain ↓ / ↑
    decimals: int
    scale: float = 1.0  # e.g. 100 for percentages
    better: str | None = None  # "lower", "higher" or None (not ranked)


def _extractor_of(key: str) -> str | None:
    """``"eval/lenet-mnist/fid" -> "lenet-mnist"``; None for keys that are not per-extractor."""
    parts = key.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "eval" and parts[1] not in ("cas", "augment") else None


def extractors_in(df: pd.DataFrame) -> list[str]:
    """Extractors with numbers in ``df`` or recorded as unavailable: the runs' primary extractors
    (``eval.extractor``) first, then the others by name."""
    found = {m.group(1) for c in df.columns if (m := re.match(r"^eval/([^/]+)/fid$", str(c))) and df[c].notna().any()}
    found |= _unavailable(df)
    primary = list(df["param:eval.extractor"].dropna().unique()) if "param:eval.extractor" in df else []
    return sorted(found, key=lambda e: (primary.index(e) if e in primary else len(primary), e))


# the short names of the built-in extractors, for runs tracked before runs recorded them (ganbench 0.1.0)
LABELS_OF_OLDER_RUNS = {"lenet-mnist": "LeNet", "inception-v3-compat": "Inception"}


def label(df: pd.DataFrame, extractor: str) -> str:
    """The extractor's short name for headers, as its runs recorded it (tag ``protocol.<name>.label``)."""
    for d in df.get("labels", []):
        if isinstance(d, dict) and extractor in d:
            return d[extractor]
    return LABELS_OF_OLDER_RUNS.get(extractor, extractor)


def fd_name(df: pd.DataFrame, extractor: str) -> str:
    """The name of the Fréchet distance in ``extractor``'s space, as its runs recorded it (tag
    ``protocol.<name>.fd_name``: ``FD_DINOv2`` for DINOv2, Stein et al. 2023); ``FID`` by default."""
    for d in df.get("fd_names", []):
        if isinstance(d, dict) and extractor in d:
            return d[extractor]
    return "FID"


def _unavailable(df: pd.DataFrame) -> set[str]:
    return {n for d in df.get("unavailable", []) if isinstance(d, dict) for n in d}


def columns_for(df: pd.DataFrame) -> list[Column]:
    """The table's metric columns, in order, for the metrics (and unavailable extractors) in ``df``."""
    cols: list[Column] = []
    for ext in extractors_in(df):
        name = label(df, ext)
        cols += [
            Column(keys.eval_key(ext, keys.FID), f"{fd_name(df, ext)} ({name}) ↓", 2, better="lower"),
        ]
        if keys.eval_key(ext, keys.IS_MEAN) in df.columns or keys.eval_key(ext, keys.FID) not in df.columns:
            cols.append(Column(keys.eval_key(ext, keys.IS_MEAN), f"IS ({name}) ↑", 2, better="higher"))
        if keys.eval_key(ext, keys.FID) in df.columns:  # computed: the full set; unavailable: FID and IS (n/a)
            cols += [
                Column(keys.eval_key(ext, keys.KID_MEAN), f"KID×10³ ({name}) ↓", 2, 1000, better="lower"),
                Column(keys.eval_key(ext, keys.PRECISION), f"Precision ({name}) ↑", 3, better="higher"),
                Column(keys.eval_key(ext, keys.RECALL), f"Recall ({name}) ↑", 3, better="higher"),
                Column(keys.eval_key(ext, keys.DENSITY), f"Density ({name})", 3),  # ~1 for real data, unbounded
                Column(keys.eval_key(ext, keys.COVERAGE), f"Coverage ({name}) ↑", 3, better="higher"),
            ]
        if keys.eval_key(ext, keys.COPY_RATE) in df.columns:  # memorisation (the primary extractor's features)
            cols += [  # not ranked: a model of noise copies nothing; NN ratio ~1 is unseen data's
                Column(keys.eval_key(ext, keys.COPY_RATE), f"copy rate ({name})", 3),
                Column(keys.eval_key(ext, keys.NN_RATIO), f"NN ratio ({name})", 2),
            ]
        if keys.eval_key(ext, keys.MODES) in df.columns:  # a classifier of the dataset: mode coverage
            cols += [
                Column(keys.eval_key(ext, keys.MODES), f"modes ({name}) ↑", 1, better="higher"),
                Column(keys.eval_key(ext, keys.CLASS_KL), f"class KL ({name}) ↓", 3, better="lower"),
            ]
        if keys.eval_key(ext, keys.INTRA_FID) in df.columns:  # conditional runs
            cols.append(Column(keys.eval_key(ext, keys.INTRA_FID), f"intra-FID ({name}) ↓", 2, better="lower"))
    cols.append(Column(keys.CAS, "CAS (%) ↑", 1, 100, better="higher"))
    cols += [
        Column(keys.augment_key(k, "gain"), f"aug. gain k={k} (pp) ↑", 1, 100, better="higher") for k in augment_ks(df)
    ]
    cols += [
        Column(keys.D_ACC_REAL, "D acc real (%)", 1, 100),
        Column(keys.D_ACC_FAKE, "D acc fake (%)", 1, 100),
        Column(keys.D_ACC, "D acc (%)", 1, 100),
        Column(keys.D_ROC_AUC, "D ROC-AUC", 3),
        Column(keys.MS_PER_STEP_P50, "ms/step", 1, better="lower"),
        Column(keys.IMG_PER_S, "img/s", 0, better="higher"),
        Column(keys.TRAIN_S, "train time (s)", 0, better="lower"),
        Column(keys.G_STEPS, "G steps", 0),
        Column(keys.EPOCHS, "epochs", 2),
    ]
    # every column of a listed extractor (its missing numbers read n/a or –); other columns only if present
    return [c for c in cols if c.key in df.columns or _extractor_of(c.key) is not None]


def augment_ks(df: pd.DataFrame, what: str = "gain") -> list[int]:
    """The k (real images per class) of the augmentation experiment with numbers ``what`` (``gain``: of a
    generator; ``real``: the real-only baselines) in ``df``, ascending."""
    pattern = re.compile(rf"^eval/augment/k(\d+)/{what}$")
    found = {int(m.group(1)) for c in df.columns if (m := pattern.match(str(c)))}
    return sorted(k for k in found if df[keys.augment_key(k, what)].notna().any())


def arch_order(df: pd.DataFrame) -> list[str]:
    """Architectures in the order their first run started, the real-data floor last."""
    kind = df["kind"] if "kind" in df else pd.Series(keys.KIND_RUN, index=df.index)
    ordered = df.assign(_floor=(~kind.isin(keys.RANKED_KINDS)).astype(int))
    sort = ["_floor", "start_time"] if "start_time" in df else ["_floor"]
    return list(ordered.sort_values(sort, kind="stable")["arch"].drop_duplicates())


def aggregate(df: pd.DataFrame, cols: list[Column] | None = None) -> pd.DataFrame:
    """One row per architecture over its FINISHED runs, then the real-data floor if present: ``arch``,
    ``kind``, ``n_seeds``, ``n_failed`` and for every metric column (``cols``, default
    :func:`columns_for`) ``<key> mean``, ``<key> std`` (sample std), ``<key> ci95_low`` / ``<key> ci95_high``
    (t interval; NaN below 2 seeds), in the metric's own units (accuracies as fractions). Architectures in
    the order their first run started."""
    cols = columns_for(df) if cols is None else cols
    kind = df["kind"] if "kind" in df else pd.Series(keys.KIND_RUN, index=df.index)
    finished = df[df["status"] == "FINISHED"]
    rows = []
    for arch in arch_order(df):
        runs = finished[finished["arch"] == arch]
        row: dict[str, object] = {
            "arch": arch,
            "kind": kind[df["arch"] == arch].iloc[0],
            "n_seeds": len(runs),
            "n_failed": int(((df["arch"] == arch) & (df["status"] != "FINISHED")).sum()),
        }
        for c in cols:
            s = summarize(runs[c.key] if c.key in runs else [])
            spread = FLOOR_STD + c.key
            if row["kind"] == keys.KIND_FLOOR and len(runs) == 1 and spread in runs and runs[spread].notna().all():
                s = replace(s, std=float(runs[spread].iloc[0]))  # one floor run: the std over its subsets
            row.update(
                {
                    f"{c.key} mean": s.mean,
                    f"{c.key} std": s.std,
                    f"{c.key} ci95_low": s.ci_low,
                    f"{c.key} ci95_high": s.ci_high,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _best(agg: pd.DataFrame, c: Column) -> float | None:
    runs = (agg[agg["kind"].isin(keys.RANKED_KINDS)][f"{c.key} mean"].dropna() * c.scale).round(c.decimals)
    if c.better is None or runs.nunique() < 2:  # nothing to rank, or every architecture ties
        return None
    return float(runs.min() if c.better == "lower" else runs.max())


def _fmt(mean: float, std: float, c: Column, pm: str) -> str:
    s = f"{mean * c.scale:.{c.decimals}f}"
    return s if np.isnan(std) else f"{s}{pm}{std * c.scale:.{c.decimals}f}"


BOLD = {"md": "**{}**", "latex": r"\textbf{{{}}}", "html": "<b>{}</b>"}


def display_frame(df: pd.DataFrame, style: str = "md") -> pd.DataFrame:
    """The aggregate as strings (``style``: md, latex or html): ``mean ± std`` per cell, the best mean per
    column in bold. A metric of an unavailable extractor reads "n/a"; one that does not apply (e.g. timing
    of the floor) reads "–"."""
    latex = style == "latex"
    agg = aggregate(df)
    unavailable = _unavailable(df)
    pm = r" $\pm$ " if latex else " ± "
    out = pd.DataFrame({"Architecture": row_labels(agg)})
    for c in columns_for(df):
        header = _latex_header(c.header) if latex else c.header
        best = _best(agg, c)
        cells = []
        for mean, std, kind in zip(agg[f"{c.key} mean"], agg[f"{c.key} std"], agg["kind"], strict=True):
            if np.isnan(mean):
                cells.append("n/a" if _extractor_of(c.key) in unavailable else "–")
                continue
            text = _fmt(mean, std, c, pm)
            if (
                best is not None
                and kind in keys.RANKED_KINDS
                and round(mean * c.scale, c.decimals) == round(best * c.scale, c.decimals)
            ):
                text = BOLD[style].format(text)
            cells.append(text)
        out[header] = cells
    out["seeds"] = seeds_column(agg)
    return out


EXTERNAL_SUFFIX = " (external)"


def row_labels(agg: pd.DataFrame) -> list[str]:
    """The first column of a table: the architecture, ``real data (floor)``, or an external model's name with
    `` (external)`` (scored from its samples or generator, ``ganbench eval --samples``)."""
    names = {keys.KIND_FLOOR: lambda a: FLOOR_LABEL, keys.KIND_EXTERNAL: lambda a: f"{a}{EXTERNAL_SUFFIX}"}
    return [names.get(k, str)(a) for a, k in zip(agg["arch"], agg["kind"], strict=True)]


def seeds_column(agg: pd.DataFrame) -> list[str]:
    """The ``seeds`` column: the finished runs of an architecture, "–" for the floor and external models."""
    return [str(n) if k == keys.KIND_RUN else "–" for n, k in zip(agg["n_seeds"], agg["kind"], strict=True)]


def _latex_header(header: str) -> str:
    header = header.replace("%", r"\%").replace("_", r"\_")  # FD_DINOv2
    return header.replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$")


def paper_frame(df: pd.DataFrame, metric_extractor: str, style: str = "md") -> pd.DataFrame:
    """The layout papers use: Model | FID | IS | Epochs | D accuracy (real/fake), for one extractor."""
    agg = aggregate(df)
    agg = agg[agg["kind"].isin(keys.RANKED_KINDS)]
    name = label(df, metric_extractor)
    latex = style == "latex"
    pm = r" $\pm$ " if latex else " ± "
    fid = Column(keys.eval_key(metric_extractor, keys.FID), f"FID ({name}) ↓", 2, better="lower")
    is_ = Column(keys.eval_key(metric_extractor, keys.IS_MEAN), f"IS ({name}) ↑", 2, better="higher")

    def cells(c: Column) -> list[str]:
        if f"{c.key} mean" not in agg:
            return ["n/a"] * len(agg)
        return [
            "n/a" if np.isnan(m) else _fmt(m, s, c, pm)
            for m, s in zip(agg[f"{c.key} mean"], agg[f"{c.key} std"], strict=True)
        ]

    def pct(key: str) -> list[float]:
        return list(agg[f"{key} mean"] * 100) if f"{key} mean" in agg else [math.nan] * len(agg)

    acc = [
        f"{r:.1f} / {f:.1f}" if not (np.isnan(r) or np.isnan(f)) else "–"
        for r, f in zip(pct(keys.D_ACC_REAL), pct(keys.D_ACC_FAKE), strict=True)
    ]
    epochs = [
        f"{e:.1f}" if not np.isnan(e) else "–" for e in agg.get(f"{keys.EPOCHS} mean", pd.Series([math.nan] * len(agg)))
    ]
    frame = pd.DataFrame(
        {
            "Model": row_labels(agg),
            fid.header: cells(fid),
            is_.header: cells(is_),
            "Epochs": epochs,
            "D accuracy real / fake (%)": acc,
        }
    )
    if latex:
        frame.columns = [_latex_header(h) for h in frame.columns]
    return frame


def md(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def to_markdown(df: pd.DataFrame) -> str:
    return md(display_frame(df))


def paper_markdown(df: pd.DataFrame, extractor: str) -> str:
    return md(paper_frame(df, extractor))


def latex_tabular(frame: pd.DataFrame) -> str:
    """A booktabs ``tabular`` of a display frame (needs ``\\usepackage{booktabs}``)."""
    frame = frame.copy()
    frame.iloc[:, 0] = frame.iloc[:, 0].astype(str).str.replace("_", r"\_")
    return frame.style.hide(axis="index").to_latex(hrules=True, column_format="l" + "r" * (frame.shape[1] - 1))


def _latex_text(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        s = s.replace(a, b)
    s = s.replace("{", r"\{").replace("}", r"\}").replace("~", r"\textasciitilde{}").replace("^", r"\^{}")
    return s.replace("--", "-{}-")  # no en-dash ligature in option names


def latex_document(parts: list[tuple[str, list[str]]]) -> str:
    """A standalone LaTeX document (article, booktabs, landscape geometry) holding each ``(tabular, notes)``
    of ``parts``, the notes (e.g. the protocol line) in small print under their tabular. Compiles with a
    stock pdflatex."""
    body = []
    for t, notes in parts:
        # shrink to the line width only when wider (graphicx's \width is the box's natural width)
        body += [r"\begin{center}\scriptsize", r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"]
        body += [t.strip(), "}", r"\end{center}"]
        body += [r"{\footnotesize " + " \\\\\n".join(_latex_text(n) for n in notes) + r"\par}", r"\bigskip"]
    return "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage[utf8]{inputenc}",
            r"\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
            r"\usepackage{booktabs}",
            r"\usepackage{graphicx}",
            r"\pagestyle{empty}",
            r"\begin{document}",
            *body,
            r"\end{document}",
            "",
        ]
    )


def usefulness_frame(df: pd.DataFrame, style: str = "md") -> pd.DataFrame:
    """The "Usefulness" table: per architecture with CAS numbers (conditional runs, and the real-data row),
    CAS in %, then per k of the augmentation experiment the accuracy of the classifier trained on k real
    images per class alone and with the generated samples added (%), and the gain (percentage points).

    Cells: the mean over the architecture's runs ± the std over augmentation seeds (pooled over its runs:
    the root mean square of the runs' stds)."""
    pm = r" $\pm$ " if style == "latex" else " ± "
    runs = df[(df["status"] == "FINISHED") & df.get(keys.CAS, pd.Series(np.nan, index=df.index)).notna()]
    rows = []
    for arch in arch_order(runs):
        g = runs[runs["arch"] == arch]
        row = {"architecture": row_labels(g.iloc[:1])[0], "CAS (%)": f"{100 * g[keys.CAS].mean():.1f}"}
        for k in augment_ks(df, "real"):
            for what, header in (("real", f"k={k} real"), ("augmented", f"k={k} + gen."), ("gain", f"k={k} gain")):
                key = keys.augment_key(k, what)
                if key not in g or g[key].isna().all():
                    row[header] = "–"
                    continue
                std = np.sqrt(np.nanmean(g[keys.augment_key(k, what + "_std")] ** 2))
                row[header] = f"{100 * g[key].mean():.1f}{pm}{100 * std:.1f}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if style == "latex":
        frame.columns = [_latex_header(h) for h in frame.columns]
    return frame


def usefulness_details(df: pd.DataFrame) -> list[Column]:
    """The usefulness numbers behind the table's CAS and gain columns, for the CSV: the CAS ceiling of each
    run and, per k, the accuracy with k real images per class alone and with the generated samples added."""
    cols = [Column(keys.CAS_REAL, "CAS ceiling (%)", 1, 100)]
    for k in augment_ks(df, "real"):
        cols += [
            Column(keys.augment_key(k, "real"), f"k={k} real (%)", 1, 100),
            Column(keys.augment_key(k, "augmented"), f"k={k} + gen. (%)", 1, 100),
        ]
    return cols


def to_csv(df: pd.DataFrame, search: dict[str, pd.DataFrame] | None = None) -> str:
    """Per dataset: one row per run (``row = run``: its metric values, and the usefulness details of
    :func:`usefulness_details`), then one per architecture
    (``row = aggregate``: ``<key>`` = mean, plus ``<key> std`` / ``ci95_low`` / ``ci95_high``, ``n_seeds``,
    ``n_failed``); a ``dataset`` column says which. ``search``: per dataset, a search comparison's columns
    for the aggregate rows (``reports.search.csv_columns``, by ``arch``)."""
    blocks = []
    groups = df.groupby("dataset", sort=False) if "dataset" in df else [("mnist", df)]
    for dataset, sub in groups:
        cols = columns_for(sub) + [c for c in usefulness_details(sub) if c.key in sub]
        runs = sub.reindex(columns=["arch", "kind", "seed", "run_id", "status", *[c.key for c in cols]]).copy()
        runs.insert(0, "row", "run")
        agg = aggregate(sub, cols).rename(columns={f"{c.key} mean": c.key for c in cols})
        agg.insert(0, "row", "aggregate")
        if search and search.get(dataset) is not None:
            agg = agg.merge(search[dataset], on="arch", how="left")
        block = pd.concat([runs, agg], ignore_index=True)
        block.insert(1, "dataset", dataset)
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True).to_csv(index=False)
