"""What the CLI prints after a comparison, in 80 columns: the summary of each dataset's comparison and, where
the experiments hold them, the speed rows."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd

from bench.tracking import keys
from reports import tables
from reports.collect import collect, datasets_in, split_speed
from reports.search import split_search
from reports.speed import speed_markdown


def _cell(value: float, std: float, decimals: int) -> str:
    """``value (± std)`` with ``decimals``, one fewer from 1 000 on (an 80-column table has no room)."""
    if np.isnan(value):
        return "–"
    d = max(0, decimals - 1) if abs(value) >= 1000 else decimals
    return f"{value:.{d}f}" + ("" if np.isnan(std) else f" ± {std:.{d}f}")


def summary_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The comparison in 80 columns for a terminal: architecture, FID (mean ± std), IS, recall and modes
    covered (the first extractor's), the discriminator's ROC-AUC ("D AUC"), ms/step (means) and seeds; a
    column with no number in any row is left out.
    Returns the frame and a note naming the extractor and where the full table is."""
    agg = tables.aggregate(df)
    ext = next(iter(tables.extractors_in(df)), None)
    picks = [
        (keys.eval_key(ext, keys.FID), "FID", 2) if ext else None,
        (keys.eval_key(ext, keys.IS_MEAN), "IS", 2) if ext else None,
        (keys.eval_key(ext, keys.RECALL), "recall", 3) if ext else None,
        (keys.eval_key(ext, keys.MODES), "modes", 0) if ext else None,
        (keys.D_ROC_AUC, "D AUC", 3),
        (keys.MS_PER_STEP_P50, "ms/step", 1),
    ]
    out = pd.DataFrame({"architecture": tables.row_labels(agg)})
    for key, header, decimals in filter(None, picks):
        values = agg.get(f"{key} mean", pd.Series(np.nan, index=agg.index))
        stds = agg.get(f"{key} std", pd.Series(np.nan, index=agg.index)) if header == "FID" else values * np.nan
        if values.notna().any():
            out[header] = [_cell(v, e, decimals) for v, e in zip(values, stds, strict=True)]
    out["seeds"] = tables.seeds_column(agg)
    note = (
        f"FID, IS, recall, modes on {tables.label(df, ext)} features ({ext}); D AUC: the discriminator's ROC-AUC. "
        if ext
        else ""
    )
    text = note + (
        "Means (FID ± std) over seeds; the floor's over random subsets of the training split. "
        "The full table, every metric with its std, is in the report."
    )
    return out, textwrap.fill(text, width=80)


def terminal_markdown(frame: pd.DataFrame) -> str:
    """``frame`` as tabulate's "simple" table with two spaces between columns and no padding beyond the
    widest cell (tabulate's default pads each column by 2 more, which an 8-column summary cannot afford)."""
    import tabulate

    old, tabulate.MIN_PADDING = tabulate.MIN_PADDING, 0
    try:
        return frame.to_markdown(index=False, disable_numparse=True, tablefmt="simple")
    finally:
        tabulate.MIN_PADDING = old


def console_table(experiments: list[str], workdir: str | os.PathLike[str]) -> str:
    """What the CLI prints after a report, in 80 columns: the comparison's summary
    (:func:`summary_frame`), then the speed table if the experiments hold ``ganbench bench
    speed`` rows."""
    runs, speed = split_speed(collect(experiments, workdir))
    runs, _ = split_search(runs)  # a search comparison's trials and studies are not rows of its table
    parts = []
    datasets = datasets_in(runs)
    for ds in datasets or ([None] if not len(speed) else []):
        frame, note = summary_frame(runs if ds is None else runs[runs["dataset"] == ds])
        title = f"dataset: {ds}\n\n" if ds is not None else ""
        parts.append(title + terminal_markdown(frame) + "\n\n" + note)
    return "\n\n".join(parts + ([speed_markdown(speed)] if len(speed) else []))
