"""MLflow runs -> a pandas DataFrame, one row per run.

Columns: ``run_id``, ``experiment``, ``arch``, ``seed``, ``status``, ``start_time`` (ms), ``failure``,
``protocol``, then one column per metric key (latest value) and ``param:<name>`` per param. When an
(experiment, arch, seed) was run several times, only the latest run is kept (re-running a comparison
supersedes the older run).
"""

from __future__ import annotations

import os

import pandas as pd

from bench.tracking import Tracker, keys


def collect(experiments: list[str], workdir: str | os.PathLike[str], latest_only: bool = True) -> pd.DataFrame:
    """Runs of ``experiments`` in the workspace's tracking store (raises UserError for an unknown one)."""
    rows = []
    for r in Tracker(workdir).search_runs(experiments):
        tags = r["tags"]
        seed = tags.get(keys.TAG_SEED)
        row = {
            "run_id": r["run_id"],
            "experiment": r["experiment"],
            "arch": tags.get(keys.TAG_ARCH, r["run_name"]),
            "seed": int(seed) if seed is not None and seed.lstrip("-").isdigit() else None,
            "status": r["status"],
            "start_time": r["start_time"],
            "failure": tags.get(keys.TAG_FAILURE, ""),
            "protocol": tags.get(keys.TAG_PROTOCOL, ""),
            "device": tags.get(keys.TAG_DEVICE, ""),
            **r["metrics"],
            **{f"param:{k}": v for k, v in r["params"].items()},
        }
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["run_id", "experiment", "arch", "seed", "status", "start_time", "failure"])
    df = df.sort_values("start_time")
    if latest_only:
        df = df.drop_duplicates(["experiment", "arch", "seed"], keep="last")
    return df.sort_values(["arch", "seed"]).reset_index(drop=True)
