"""``ganbench report --study NAME``: the results of an Optuna study.

Writes ``study.md`` (state counts, best trials, failed and pruned trials with reasons), ``trials.csv``,
``best-config.toml`` (the best trial's configuration in the format ``ganbench train --config`` and
``ganbench compare --config`` read) and Optuna's matplotlib visualisations as PNG and PDF: optimisation
history, parameter importances (fANOVA), parallel coordinates, intermediate values. ``--reseed N`` re-runs
the best configuration over seeds 0..N-1 and reports mean ± std, the protocol of Lucic et al. 2018.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402

from bench.atomic import write_text  # noqa: E402
from bench.config import load_compare_config, to_toml  # noqa: E402
from bench.errors import UserError  # noqa: E402
from studies.runner import failures, open_storage  # noqa: E402
from studies.spaces import space_for, to_config  # noqa: E402
from studies.throughput import throughput  # noqa: E402


def load(name: str, storage: str | None, workdir: str | os.PathLike[str]) -> optuna.Study:
    """Load the study; raises UserError if the storage has no study of that name (without creating a
    journal file to look into)."""
    journals = Path(workdir).resolve() / "optuna"
    if storage is None and not (journals / f"{name}.journal").is_file():
        known = sorted(p.stem for p in journals.glob("*.journal"))
        raise UserError(f"no study {name!r} in {journals}; studies: {', '.join(known) or '(none)'}")
    st = open_storage(storage, workdir, name)
    names = [s.study_name for s in optuna.get_all_study_summaries(st)]
    if name not in names:
        raise UserError(
            f"no study {name!r} in {storage or 'the workspace journal'}; studies: {', '.join(names) or '(none)'}"
        )
    return optuna.load_study(study_name=name, storage=st)


def best_config(study: optuna.Study) -> dict:
    """The best trial's configuration as a config dict (CompareConfig form, one architecture and seed)."""
    arch, base = study.user_attrs["arch"], json.loads(study.user_attrs["base_config"])
    space = space_for(arch, json.loads(study.user_attrs.get("space", "{}")))
    params = {**{p.name: p.fixed for p in space if p.fixed is not None}, **study.best_trial.params}
    cc = load_compare_config(base=base, overrides=to_config(arch, space, params))
    out = cc.run(arch, cc.seeds[0]).to_dict()
    model = out.pop("model")
    return {
        "experiment": f"{study.study_name}-best",
        "archs": [arch],
        "seeds": [out["seed"]],
        "data": out["data"],
        "train": out["train"],
        "eval": out["eval"],
        "model": {arch: model},
    }


def _save(fig_or_ax, out: Path, name: str) -> str:
    fig = fig_or_ax.figure if hasattr(fig_or_ax, "figure") else fig_or_ax.flat[0].figure
    fig.set_size_inches(9, 5)
    for ext in ("png", "pdf"):
        fig.savefig(out / f"{name}.{ext}", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return f"{name}.png"


def build_study_report(name: str, out_dir: str | os.PathLike[str], workdir: str, storage: str | None = None) -> Path:
    """Write the study report into ``out_dir``; returns it. Raises UserError for an unknown study."""
    study = load(name, storage, workdir)
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration", "user_attrs"))
    write_text(out / "trials.csv", df.to_csv(index=False))
    complete = df[df["state"] == "COMPLETE"]
    states = df["state"].value_counts().to_dict()
    metric = study.user_attrs.get("metric", "value")
    md = [
        f"# Study {name}",
        "",
        f"Architecture `{study.user_attrs.get('arch')}`, objective {metric} ({study.direction.name.lower()}).",
        "",
    ]
    md.append("Trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    records = throughput(study)
    if records:
        tp = pd.DataFrame(records)
        tp["wall_min"] = tp["wall_s"] / 60
        cols = ["started", "host", "device", "workers", "threads_per_worker", "trials", "wall_min", "trials_per_hour"]
        md += [
            "",
            "## Throughput",
            "",
            "One row per `ganbench tune` invocation: trials it finished per wall-clock hour (all workers).",
            "",
            tp[[c for c in cols if c in tp]].to_markdown(index=False, floatfmt=".1f"),
        ]
    figures = []
    plots = (
        ("optimization-history", optuna.visualization.matplotlib.plot_optimization_history),
        ("param-importances", optuna.visualization.matplotlib.plot_param_importances),
        ("parallel-coordinate", optuna.visualization.matplotlib.plot_parallel_coordinate),
        ("intermediate-values", optuna.visualization.matplotlib.plot_intermediate_values),
    )
    notes = []
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for fig_name, plot in plots:
        try:
            figures.append(_save(plot(study), out / "figures", fig_name))
        except Exception as e:  # e.g. importances need 2 complete trials with varying parameters
            notes.append(f"{fig_name}: not drawn ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            plt.close("all")
    if len(complete):
        top = complete.sort_values("value", ascending=study.direction.name == "MINIMIZE").head(10)
        cols = ["number", "value", *[c for c in top.columns if c.startswith("params_")]]
        if "user_attrs_mlflow_run_id" in top:
            cols.append("user_attrs_mlflow_run_id")
        table = top[cols].rename(columns=lambda c: c.replace("params_", "").replace("user_attrs_", ""))
        md += ["", "## Best trials", "", table.to_markdown(index=False, floatfmt=".4g")]
        write_text(
            out / "best-config.toml",
            f"# best trial {study.best_trial.number} of study {name}: {metric} = {study.best_value:.6g}\n"
            + to_toml(best_config(study)),
        )
        md += [
            "",
            f"Best configuration: `best-config.toml` "
            f"(`ganbench train {study.user_attrs.get('arch')} --config best-config.toml`).",
        ]
    bad = df[df["state"].isin(["FAIL", "PRUNED"])]
    if len(bad):
        reasons = failures(study)
        md += ["", "## Failed and pruned trials", ""]
        md += [
            f"- trial {n}: {s} {reasons.get(n, '')}".rstrip() for n, s in zip(bad["number"], bad["state"], strict=True)
        ]
    md += ["", "## Figures", ""] + [f"![{f}](figures/{f})" for f in figures] + [f"- {n}" for n in notes]
    write_text(out / "study.md", "\n".join(md) + "\n")
    return out


def reseed_best(name: str, n_seeds: int, workdir: str, storage: str | None = None) -> str:
    """Re-run the study's best configuration over seeds 0..n_seeds-1 (experiment ``<study>-reseed``) and
    return the experiment name (its report is ``ganbench report --experiment`` of it)."""
    from bench.compare import compare

    if n_seeds < 1:
        raise UserError(f"--reseed {n_seeds} must be >= 1")
    config = best_config(load(name, storage, workdir))
    identity = {"experiment": f"{name}-reseed", "seeds": list(range(n_seeds)), "workdir": workdir}
    cc = load_compare_config(base=config, overrides=identity)
    compare(cc, show_progress=False)
    return cc.experiment
