"""The report of a search comparison (``ganbench compare --search N``, ``studies.fair``): what an equal
tuning budget gives each architecture.

- the distribution of the trials' final FIDs per architecture (box and points, log scale);
- the expected best FID against the number of trials (Dodge et al. 2019; ``reports.stats.expected_best``,
  draws without replacement from the observed trials) with a ±1 std band, and the same against compute
  (device-hours: trials x their mean wall-clock time);
- per architecture: trials completed / pruned / failed, the best trial and its setting, and the re-seeded
  best setting's mean ± std (the comparison table above has every metric; the pairwise section its Welch /
  Holm tests), with a sentence saying which architectures are statistically indistinguishable.

A pruned or failed trial counts toward the budget: in the curves it is a draw that found nothing, scored as
the worst completed trial of its architecture. A trial failed as *stale* (its worker was killed, and the
study ran a replacement) is not a trial of the budget and is left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.tracking import keys
from reports import tables
from reports.figures import colours, plt, save_figure
from reports.render import Section
from reports.stats import expected_best

SEARCH_KINDS = ("study", "trial")  # studies.fair's parent and trial runs: not rows of the comparison


def split_search(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the comparison's runs, the search trials with their study's sampler and seed as the columns
    ``sampler`` / ``sampler_seed``) of a ``collect()`` frame; the studies' parent runs are not rows."""
    if "arch" not in df:  # no runs
        return df, df.copy()
    kind = df["kind"] if "kind" in df else pd.Series(keys.KIND_RUN, index=df.index)
    trials = df[kind == "trial"].copy()
    parents = df[kind == "study"]
    by_arch = {r["arch"]: r for _, r in parents.iterrows()}
    trials["sampler"] = [by_arch[a].get("param:study.sampler", "") if a in by_arch else "" for a in trials["arch"]]
    trials["sampler_seed"] = [by_arch[a].get("param:study.seed", "") if a in by_arch else "" for a in trials["arch"]]
    return df[~kind.isin(SEARCH_KINDS)], trials


def _state(row: pd.Series) -> str:
    failure = str(row.get("failure") or "")
    if row["status"] == "FINISHED":
        return "complete"
    if failure.startswith("stale"):
        return "stale"
    if failure.startswith("pruned"):
        return "pruned"
    return "failed" if row["status"] in ("FAILED", "KILLED") else "running"


def trial_table(trials: pd.DataFrame, fid_key: str) -> pd.DataFrame:
    """One row per trial of the budget: ``arch``, ``trial``, ``state`` (complete, pruned, failed), ``fid``
    (NaN unless complete), ``hours`` (its wall-clock time, training and evaluation), ``params`` (dict)."""
    rows = []
    for _, r in trials.iterrows():
        state = _state(r)
        if state in ("stale", "running"):
            continue
        end, start = r.get("end_time"), r.get("start_time")
        hours = (end - start) / 3.6e6 if pd.notna(end) and pd.notna(start) else np.nan
        fid = r.get(fid_key, np.nan) if state == "complete" else np.nan
        params = json.loads(r["trial_params"]) if isinstance(r.get("trial_params"), str) and r["trial_params"] else {}
        rows.append(
            {"arch": r["arch"], "trial": r["trial"], "state": state, "fid": fid, "hours": hours, "params": params}
        )
    return pd.DataFrame(rows, columns=["arch", "trial", "state", "fid", "hours", "params"])


def draws(table: pd.DataFrame, arch: str) -> np.ndarray:
    """The FIDs the budget curves draw from: the completed trials', a pruned or failed trial as the worst of
    them (it spent budget and found nothing better). Empty when no trial completed."""
    t = table[table["arch"] == arch]
    done = t["fid"].dropna().to_numpy(dtype=np.float64)
    if not len(done):
        return done
    return np.concatenate([done, np.full(int(t["fid"].isna().sum()), done.max())])


def budget_curve(values: np.ndarray) -> pd.DataFrame:
    """Expected best (lowest) FID and its std for n = 1 .. N trials of ``values``."""
    n = np.arange(1, len(values) + 1)
    stats = [expected_best(values, int(k)) for k in n]
    return pd.DataFrame({"n": n, "mean": [m for m, _ in stats], "std": [s for _, s in stats]})


def _figures(table: pd.DataFrame, fig_dir: Path, label: str, order: list[str]) -> list[tuple[Path, str]]:
    """The FID distribution and the two budget curves; architectures in ``order`` (the comparison table's),
    then any other searched one."""
    archs = [a for a in order if a in set(table["arch"])]
    archs += [a for a in dict.fromkeys(table["arch"]) if a not in archs]
    col = colours(archs)
    fig, ax = plt.subplots(figsize=(1.4 + 1.3 * len(archs), 3.6))
    data = [table.loc[(table["arch"] == a), "fid"].dropna().to_numpy() for a in archs]
    ax.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=archs, showfliers=False)
    rng = np.random.default_rng(0)
    for i, (a, d) in enumerate(zip(archs, data, strict=True)):
        ax.scatter(i + 1 + rng.uniform(-0.15, 0.15, len(d)), d, s=12, color=col[a], alpha=0.8, zorder=3)
    counts = table.groupby("arch")["state"].value_counts().unstack(fill_value=0)
    ax.set_xticks(range(1, len(archs) + 1))
    ax.set_xticklabels([f"{a}\n{counts.loc[a].get('complete', 0)} done, "
                        f"{counts.loc[a].get('pruned', 0) + counts.loc[a].get('failed', 0)} not" for a in archs],
                       fontsize=8)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel(f"final {label} of a trial")
    ax.grid(alpha=0.3, axis="y")
    out = [(save_figure(fig, fig_dir, "search-fid-distribution"), f"{label} of every completed trial per architecture")]
    for x, name, xlabel in (("n", "expected-best-vs-trials", "trials"), ("hours", "expected-best-vs-compute",
                            "compute (device-hours: trials x their mean time)")):  # fmt: skip
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for a in archs:
            values = draws(table, a)
            if not len(values):
                continue
            curve = budget_curve(values)
            mean_h = table.loc[table["arch"] == a, "hours"].mean()
            xs = curve["n"] if x == "n" else curve["n"] * (mean_h if pd.notna(mean_h) else np.nan)
            ax.plot(xs, curve["mean"], label=a, color=col[a], lw=1.3)
            # the best of n trials lies within the observed FIDs: the band is clipped to them (on the log
            # scale a mean - std below the best trial would plunge towards 0)
            low = np.clip(curve["mean"] - curve["std"], values.min(), values.max())
            high = np.clip(curve["mean"] + curve["std"], values.min(), values.max())
            ax.fill_between(xs, low, high, color=col[a], alpha=0.2, lw=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"expected best {label}")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        caption = (
            f"expected best {label} of n random trials (Dodge et al. 2019), band ±1 std (within the observed "
            f"FIDs), against {xlabel}"
        )
        out.append((save_figure(fig, fig_dir, name), caption))
    return out


def summary_frame(table: pd.DataFrame, runs: pd.DataFrame, fid_key: str, style: str = "md") -> pd.DataFrame:
    """Per architecture: trials (complete / pruned / failed), the best trial's FID and setting, the expected
    best of half the trials, and the re-seeded best setting's mean ± std over its seeds."""
    pm = r" $\pm$ " if style == "latex" else " ± "
    finals = runs[(runs["status"] == "FINISHED") & (runs["kind"] == keys.KIND_RUN)]
    rows = []
    order = [a for a in tables.arch_order(runs) if a in set(table["arch"])]
    for a in order + [a for a in dict.fromkeys(table["arch"]) if a not in order]:
        t = table[table["arch"] == a]
        counts = t["state"].value_counts()
        done = t.dropna(subset=["fid"])
        best = done.loc[done["fid"].idxmin()] if len(done) else None
        values = draws(table, a)
        half = expected_best(values, max(1, len(values) // 2)) if len(values) else (np.nan, np.nan)
        f = finals.loc[finals["arch"] == a, fid_key].dropna() if fid_key in finals else pd.Series(dtype=float)
        setting = ", ".join(f"{k}={_short(v)}" for k, v in best["params"].items()) if best is not None else "–"
        rows.append(
            {
                "architecture": a,
                "trials (ok/pruned/failed)": f"{counts.get('complete', 0)}/{counts.get('pruned', 0)}/"
                f"{counts.get('failed', 0)}",
                "best trial FID": f"{best['fid']:.2f}" if best is not None else "–",
                f"E[best of {max(1, len(values) // 2)}]": f"{half[0]:.2f}{pm}{half[1]:.2f}" if len(values) else "–",
                "re-seeded FID": (
                    f"{f.mean():.2f}{pm}{f.std(ddof=1):.2f} ({len(f)})"
                    if len(f) > 1
                    else f"{f.mean():.2f} (1)"
                    if len(f)
                    else "–"
                ),  # fmt: skip
                "best setting": setting.replace("_", r"\_") if style == "latex" else setting,
            }
        )
    return pd.DataFrame(rows)


def _short(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def verdict(pw: pd.DataFrame | None) -> str:
    """A plain sentence from the pairwise tests of the re-seeded runs: which pairs cannot be told apart."""
    if pw is None or not len(pw) or pw["p"].isna().all():
        return "With fewer than 2 finished seeds per architecture the re-seeded runs cannot be tested (--seeds 3)."
    same = [f"{a} and {b}" for a, b, s, p in zip(pw["A"], pw["B"], pw["significant"], pw["p"], strict=True)
            if not s and pd.notna(p)]  # fmt: skip
    apart = [f"{a} and {b}" for a, b, s in zip(pw["A"], pw["B"], pw["significant"], strict=True) if s]
    text = []
    if same:
        text.append(f"At this budget these pairs are statistically indistinguishable: {'; '.join(same)}")
    if apart:
        text.append(f"these differ (Welch, Holm-corrected p < 0.05): {'; '.join(apart)}")
    sentence = ", and ".join(text) if text else "No pair could be tested"
    return (
        sentence[0].upper()
        + sentence[1:]
        + ". With few seeds the tests have little power: not significant is not equal."
    )


def search_sections(
    df: pd.DataFrame, trials: pd.DataFrame, fig_dir: Path, fid_key: str | None, pw: pd.DataFrame | None, on: str
) -> list[Section]:
    """The search comparison's sections (none when ``trials`` is empty)."""
    if trials.empty or fid_key is None:
        return []
    table = trial_table(trials, fid_key)
    if table.empty:
        return []
    extractor = fid_key.split("/")[1]
    label = f"{tables.fd_name(df, extractor)} ({tables.label(df, extractor)})"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figs = _figures(table, fig_dir, label, tables.arch_order(df))
    budget = sorted({_trial_budget(r) for _, r in trials.iterrows()})
    notes = [f"Search trials: {b}" for b in budget]
    text = [
        "Every architecture had a search of the same size with the same sampler, seed and per-trial budget "
        "(Lucic et al. 2018); its best trial's setting was then re-run over the comparison's seeds at the "
        "comparison's budget and evaluated on the full protocol: the rows of the comparison table above. "
        "E[best of n]: the expected best FID of n trials drawn from this search (Dodge et al. 2019). A pruned "
        "or failed trial counts toward the budget, as a draw no better than the worst completed one.",
        verdict(pw),
    ]
    return [
        Section(
            "Search: equal tuning budget" + on,
            lambda style: summary_frame(table, df, fid_key, style),
            notes,
            text,
            figures=figs,
            in_tex=True,
        )  # fmt: skip
    ]


def _trial_budget(r: pd.Series) -> str:
    unit = r.get("param:train.budget_unit") or "d-steps"
    parts = []
    for k, name in (("epochs", "epochs"), ("steps", "generator steps")):
        value = r.get(f"param:train.{k}")
        if value not in (None, "None", "") and pd.notna(value):
            parts.append(f"{value} {name}")
    n = r.get("param:eval.n_samples")
    sampler = f"; {r['sampler']} sampler (seed {r['sampler_seed']})" if r.get("sampler") else ""
    return f"{' / '.join(parts) or 'as configured'} in unit {unit}, evaluated on {n} samples{sampler}"


def csv_columns(trials: pd.DataFrame, fid_key: str | None) -> pd.DataFrame | None:
    """The search's numbers per architecture, for the aggregate rows of ``table.csv``: ``arch``,
    ``search_complete`` / ``search_pruned`` / ``search_failed`` (trials), ``search_best_fid`` (the best trial),
    ``search_expected_best`` / ``search_expected_best_std`` (of half the trials, Dodge et al. 2019) with
    ``search_expected_best_n``, and ``search_best_params`` (JSON). None without a search."""
    if trials.empty or fid_key is None:
        return None
    table = trial_table(trials, fid_key)
    rows = []
    for arch in dict.fromkeys(table["arch"]):
        t = table[table["arch"] == arch]
        done = t.dropna(subset=["fid"])
        values = draws(table, arch)
        n = max(1, len(values) // 2)
        mean, std = expected_best(values, n) if len(values) else (np.nan, np.nan)
        best = done.loc[done["fid"].idxmin()] if len(done) else None
        rows.append(
            {
                "arch": arch,
                **{f"search_{s}": int((t["state"] == s).sum()) for s in ("complete", "pruned", "failed")},
                "search_best_fid": best["fid"] if best is not None else np.nan,
                "search_expected_best": mean,
                "search_expected_best_std": std,
                "search_expected_best_n": n,
                "search_best_params": json.dumps(best["params"]) if best is not None else "",
            }
        )
    counts = ["search_complete", "search_pruned", "search_failed", "search_expected_best_n"]
    return pd.DataFrame(rows).astype(dict.fromkeys(counts, "Int64"))  # integers beside the floor's blanks


def search_csv(df: pd.DataFrame, trials: pd.DataFrame, fid_key: str | None) -> str | None:
    """``search.csv``: one row per trial (arch, trial, state, fid, hours, params as JSON)."""
    if trials.empty or fid_key is None:
        return None
    table = trial_table(trials, fid_key)
    return table.assign(params=[json.dumps(p) for p in table["params"]]).to_csv(index=False)
