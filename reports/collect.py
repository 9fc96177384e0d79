"""MLflow runs -> a pandas DataFrame, one row per run.

Columns: ``run_id``, ``experiment``, ``arch``, ``seed``, ``status``, ``start_time`` / ``end_time`` (ms),
``trial`` (a search trial's number, else ""), ``kind`` ("run", "real-floor", "external", and a search's "study"
and "trial" runs), ``failure``, ``protocols`` / ``unavailable`` / ``labels`` / ``fd_names`` ({extractor:
protocol line / reason / short name / name of its Fréchet distance}), ``selection`` (which checkpoint was
evaluated), ``external`` / ``external_sha256`` (an external model's source and the sha256 of its samples or
generator; empty for ganbench's runs), ``device``, ``speed_path`` / ``speed_session`` (rows of ``ganbench bench
speed``; empty for training runs), ``provenance`` (versions, git commit), then one column per metric key (latest
value) and ``param:<name>`` per param. When an (experiment, arch, seed, speed path) was run several times, only
the latest run is kept (re-running a comparison supersedes the older run)."""

from __future__ import annotations

import os

import pandas as pd

from bench.errors import UserError
from bench.tracking import Tracker, keys, latest_floor, store_exists


def _prefixed(tags: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix)}


def collect(experiments: list[str], workdir: str | os.PathLike[str], latest_only: bool = True) -> pd.DataFrame:
    """Runs of ``experiments`` in the workspace's tracking store (raises UserError for an unknown one, and
    when there is no store: none is created to be read)."""
    if not store_exists(workdir):
        raise UserError(
            f"no MLflow store in {workdir} (no mlflow.db there, MLFLOW_TRACKING_URI unset); give the --workdir "
            "the runs were made in"
        )
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
            "end_time": r.get("end_time"),
            "trial": tags.get("ganbench.trial", ""),
            "trial_params": tags.get(
                "ganbench.trial_params", ""
            ),  # its suggested values, JSON  # a search trial's number (studies.fair); "" otherwise
            "kind": tags.get(keys.TAG_KIND, keys.KIND_RUN),
            "dataset": r["params"].get("data.dataset", "mnist"),  # runs of ganbench 0.1 are all MNIST
            "failure": tags.get(keys.TAG_FAILURE, ""),
            "protocols": _prefixed(tags, keys.TAG_PROTOCOL),
            "unavailable": _prefixed(tags, keys.TAG_UNAVAILABLE),
            "labels": {
                k.split(".")[1]: v for k, v in tags.items() if k.startswith("protocol.") and k.endswith(".label")
            },
            "fd_names": {
                k.split(".")[1]: v for k, v in tags.items() if k.startswith("protocol.") and k.endswith(".fd_name")
            },
            "selection": tags.get(keys.TAG_SELECTION, ""),
            "external": tags.get(keys.TAG_EXTERNAL, ""),  # an external model's source (bench.external)
            "external_sha256": tags.get(keys.TAG_EXTERNAL_SHA256, ""),
            "classes": tags.get(keys.TAG_CLASSES, ""),  # JSON list of the dataset's class names (<= 62)
            "device": tags.get(keys.TAG_DEVICE, ""),
            "speed_path": tags.get(keys.TAG_SPEED_PATH, ""),
            "speed_session": tags.get(keys.TAG_SPEED_SESSION, ""),
            "provenance": {
                k: tags[k] for k in (keys.TAG_VERSION, keys.TAG_GIT, keys.TAG_TORCH, keys.TAG_CUDA) if k in tags
            },
            **r["metrics"],
            **{f"param:{k}": v for k, v in r["params"].items()},
        }
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        columns = ["run_id", "experiment", "arch", "seed", "status", "start_time", "kind", "dataset", "failure",
                   "speed_path", "trial"]  # fmt: skip
        return pd.DataFrame(columns=columns)
    df = df.sort_values("start_time")
    if latest_only:
        floor = df["kind"] == keys.KIND_FLOOR
        counted = [  # per experiment and dataset, the floor run that counts (bench.tracking.latest_floor)
            latest_floor(group.to_dict("records")) for _, group in df[floor].groupby(["experiment", "dataset"])
        ]
        keep = {r["run_id"] for r in counted if r is not None}
        done = {(r["experiment"], r["dataset"]) for r in counted if r is not None}
        groups = zip(df["experiment"], df["dataset"], df["run_id"], strict=True)
        other = [(e, d) not in done or i in keep for e, d, i in groups]
        df = df[~floor | pd.Series(other, index=df.index)]  # a finished floor hides newer unfinished ones
        df = df.drop_duplicates(["experiment", "dataset", "arch", "seed", "speed_path", "trial"], keep="last")
    return df.sort_values(["arch", "seed"]).reset_index(drop=True)


def datasets_in(df: pd.DataFrame) -> list[str]:
    """The datasets of ``df``'s runs, in the order their first run started."""
    if "dataset" not in df or df.empty:
        return []
    return list(df.sort_values("start_time", kind="stable")["dataset"].drop_duplicates())


def split_speed(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training runs, ``ganbench bench speed`` rows) of a ``collect()`` frame."""
    speed = df["speed_path"].fillna("") != ""
    return df[~speed], df[speed]
