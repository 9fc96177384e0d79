"""The speed table of ``ganbench bench speed`` rows (``--experiment ganbench-speed``): the latest invocation per
architecture, ms/step p50/p95, img/s, peak memory and the ratio to the torchvision baseline, as a frame for
every format, ``speed.csv``, and the report's section with its notes. Those rows never enter the comparison
table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.tracking import keys
from reports import tables
from reports.render import Section

SPEED_TITLE = "Training speed (ganbench bench speed)"


SPEED_COLUMNS = (
    (keys.MS_PER_STEP_P50, "ms/step p50", 1),
    (keys.MS_PER_STEP_P95, "ms/step p95", 1),
    (keys.IMG_PER_S, "img/s", 0),
    (keys.PEAK_MEM_MB, "peak MB", 0),
    (keys.SPEEDUP, "vs baseline", 2),
)


def latest_speed_rows(speed: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``ganbench bench speed`` (``speed_path`` set): per architecture, those of its latest
    invocation, architectures in the order they were first benchmarked, paths in the order they ran."""
    speed = speed.sort_values("start_time", kind="stable")
    keep = []
    for arch in speed["arch"].drop_duplicates():
        rows = speed[speed["arch"] == arch]
        latest = rows["speed_session"].iloc[-1]
        keep.append(rows[rows["speed_session"] == latest] if latest else rows)
    return pd.concat(keep, ignore_index=True)


def speed_frame(speed: pd.DataFrame, style: str = "md") -> pd.DataFrame:
    """The speed table: Architecture | Path | ms/step p50 | p95 | img/s | peak MB | vs baseline (×)."""
    rows = latest_speed_rows(speed)
    frame = pd.DataFrame({"Architecture": rows["arch"], "Path": rows["speed_path"]})
    for key, header, decimals in SPEED_COLUMNS:
        values = rows[key] if key in rows else pd.Series(np.nan, index=rows.index)
        suffix = "×" if key == keys.SPEEDUP else ""
        frame[header] = [f"{v:.{decimals}f}{suffix}" if pd.notna(v) else "n/a" for v in values]
    if style == "latex":
        frame = frame.apply(lambda col: col.str.replace("×", r"$\times$", regex=False))
    return frame


def speed_markdown(speed: pd.DataFrame) -> str:
    return tables.md(speed_frame(speed))


def speed_csv(speed: pd.DataFrame) -> str:
    """The latest speed rows with their raw values (one row per architecture and path)."""
    rows = latest_speed_rows(speed)
    return rows.reindex(columns=["arch", "speed_path", "device", *[k for k, _, _ in SPEED_COLUMNS], "run_id"]).to_csv(
        index=False
    )


def speed_section(speed: pd.DataFrame) -> Section:
    """The speed table of ``ganbench bench speed`` rows with its notes."""
    return Section(SPEED_TITLE, lambda style: speed_frame(speed, style), notes=speed_notes(speed), in_tex=True)


def speed_notes(speed: pd.DataFrame) -> list[str]:
    rows = latest_speed_rows(speed)
    settings = []
    for param, what in (
        ("param:batch_size", "batch"),
        ("param:steps", "timed generator steps per row"),
        ("param:rounds", "interleaved rounds"),
    ):
        values = sorted({str(v) for v in rows.get(param, pd.Series(dtype=object)).dropna()})
        if values:
            settings.append(f"{what} {'/'.join(values)}")
    devices = sorted({d for d in rows["device"].dropna() if d})
    return [
        "Latest `ganbench bench speed` per architecture"
        + (f" ({', '.join(settings)})" if settings else "")
        + (f" on {', '.join(devices)}" if devices else "")
        + ". ms/step: one generator step with its n_critic discriminator steps (p50 / p95 after warm-up).",
        "baseline: the same models fed by a torchvision DataLoader over the dataset's torchvision class with "
        "ToTensor() + Normalize(), torch's default Adam, NCHW, losses read back every step; vs baseline: "
        "baseline ms/step p50 over the row's (above 1 is faster). Peak MB: CUDA max allocated, or the "
        "process's peak RSS on a CPU.",
    ]
