"""``reports.build.build_report``: MLflow experiments -> a report folder. Reads MLflow only; never retrains.

Writes (``formats`` chooses among md, tex, csv, html):
- ``report.md`` and ``report.html`` (self-contained): protocol, the comparison table (best per column in
  bold), the paper-layout table, pairwise tests on the primary metric, failed / pruned runs with their
  reasons, figures, provenance;
- for a search comparison (``ganbench compare --search``) its section (``reports.search``) and ``search.csv``;
- ``table.md``, ``table.csv`` (one row per run plus the aggregate), ``table.tex`` (a standalone document
  that compiles with pdflatex) and ``table-body.tex`` (the booktabs tabulars, to ``\\input``);
- ``figures/*.png|pdf``;
- where the experiments hold ``ganbench bench speed`` rows (``--experiment ganbench-speed``): the speed
  table (latest invocation per architecture: ms/step p50/p95, img/s, peak memory, ratio to the baseline) in
  every format and ``speed.csv``; those rows never enter the comparison table.

The report is a list of :class:`reports.render.Section` s assembled once and rendered to each format by
``reports.render``. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path

import pandas as pd

import bench
from bench.atomic import write_text
from bench.errors import UserError
from bench.tracking import Tracker, keys
from reports import figures, render, scoring, search, tables
from reports.collect import collect, datasets_in, split_speed
from reports.render import Section
from reports.speed import speed_csv, speed_section
from reports.stats import pairwise

FORMATS = ("md", "tex", "csv", "html")
NEED_SEEDS = "Needs at least 2 finished seeds per architecture (e.g. `ganbench compare --seeds 3`)."
SHORT_METRICS = (keys.FID, keys.IS_MEAN, keys.KID_MEAN, keys.PRECISION, keys.RECALL)


def resolve_metric(df: pd.DataFrame, metric: str | None) -> str:
    """The primary metric key: a full key (``eval/lenet-mnist/fid``), a short name (``fid``, ``is_mean``,
    ``kid_mean``, ``precision``, ``recall``) for the first extractor with numbers, or None for FID.

    Raises UserError naming the metrics the runs have."""
    available = [c for c in df.columns if str(c).startswith("eval/") and str(c).count("/") == 2 and df[c].notna().any()]
    if metric is None:
        metric = keys.FID
    if metric in available:
        return metric
    if metric in SHORT_METRICS:
        for ext in tables.extractors_in(df):
            if keys.eval_key(ext, metric) in available:
                return keys.eval_key(ext, metric)
    raise UserError(f"--metric {metric!r} is not in these runs; available: {', '.join(sorted(available)) or '(none)'}")


def pairwise_frame(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    runs = df[(df["status"] == "FINISHED") & df["kind"].isin(keys.RANKED_KINDS)]
    groups = {a: list(runs.loc[runs["arch"] == a, metric].dropna()) for a in tables.arch_order(runs)}
    return pairwise(groups)


def _pairwise_display(pw: pd.DataFrame) -> pd.DataFrame:
    def f(x: float, fmt: str) -> str:
        return "–" if pd.isna(x) else format(x, fmt)

    return pd.DataFrame(
        {
            "A vs B": [f"{a} vs {b}" for a, b in zip(pw["A"], pw["B"], strict=True)],
            "n": [f"{x} / {y}" for x, y in zip(pw["n_A"], pw["n_B"], strict=True)],
            "mean A − B": [f(x, ".3g") for x in pw["diff"]],
            "Welch t": [f(x, ".2f") for x in pw["t"]],
            "p": [f(x, ".3g") for x in pw["p"]],
            "p (Holm)": [f(x, ".3g") for x in pw["p_holm"]],
            "Hedges' g": [f(x, ".2f") for x in pw["hedges_g"]],
            "significant (α = 0.05)": ["yes" if s else "no" for s in pw["significant"]],
        }
    )


def build_report(
    experiments: list[str],
    out_dir: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    metric: str | None = None,
    formats: tuple[str, ...] = FORMATS,
) -> Path:
    """Build the report of ``experiments`` into ``out_dir``; returns ``out_dir``.

    Raises UserError for an unknown experiment, experiments without runs, an unknown ``metric`` or format.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format {','.join(bad) or '(none)'} is not allowed; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    df = collect(experiments, workdir)
    if df.empty:
        raise UserError(f"experiment(s) {', '.join(experiments)} hold no runs")
    df, speed = split_speed(df)
    df, trials = search.split_search(df)  # a search comparison's trials: their own section
    primary = (
        resolve_metric(df, metric) if len(df) and (metric or any(str(c).startswith("eval/") for c in df)) else None
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {str(out)!r} cannot be used: {e.strerror or e}") from None
    speed_sections = [speed_section(speed)] if len(speed) else []
    failed = df[df["status"] != "FINISHED"]
    n_runs = int(df["kind"].isin(keys.RANKED_KINDS).sum())
    counts = f"Runs: {n_runs - len(failed)} finished, {len(failed)} failed, pruned or unfinished."
    sections: list[Section] = [Section(notes=[counts])] if len(df) else []
    datasets = datasets_in(df)
    pws = []
    search_csvs: list[str | None] = []
    search_cols: dict[str, pd.DataFrame] = {}
    for ds in datasets:  # one set of tables per dataset: numbers of different references never share a column
        sub = df[df["dataset"] == ds]
        ds_primary = _dataset_metric(sub, primary)
        ds_pw = pairwise_frame(sub, ds_primary) if ds_primary else pd.DataFrame()
        ds_pw = ds_pw if len(ds_pw) and ds_pw["p"].notna().any() else None
        if ds_pw is not None:
            pws.append(ds_pw.assign(dataset=ds, metric=ds_primary))
        fig_dir = out / "figures" if len(datasets) == 1 else out / "figures" / ds
        ds_sections = _sections(sub, fig_dir, workdir, ds_primary, ds_pw, ds)
        ds_trials = trials[trials["dataset"] == ds] if "dataset" in trials else trials
        found = search.search_sections(sub, ds_trials, fig_dir, ds_primary, ds_pw, f": {ds}")
        sections += ds_sections[:1] + found + ds_sections[1:]  # after the comparison table it explains
        if found:
            search_csvs.append(search.search_csv(sub, ds_trials, ds_primary))
            search_cols[ds] = search.csv_columns(ds_trials, ds_primary)
    sections += speed_sections
    title = f"ganbench report: {', '.join(experiments)}"
    provenance = _provenance(pd.concat([df, speed]), experiments)
    if "md" in formats:
        write_text(out / "report.md", render.markdown(title, sections, provenance))
        if len(df):
            comparisons = [sec for sec in sections if sec.title.startswith(COMPARISON)]
            titled = len(comparisons) > 1
            write_text(out / "table.md", "\n".join(render.markdown_table(sec, titled) for sec in comparisons))
    if "tex" in formats:
        document, body = render.latex(sections)
        write_text(out / "table.tex", document)
        write_text(out / "table-body.tex", body)
    if "csv" in formats:
        if len(df):
            write_text(out / "table.csv", tables.to_csv(df, search_cols))  # one block of rows per dataset
        if pws:  # one block per dataset
            write_text(out / "pairwise.csv", pd.concat(pws, ignore_index=True).to_csv(index=False))
        if len(speed):
            write_text(out / "speed.csv", speed_csv(speed))
        if any(search_csvs):  # one row per search trial
            write_text(out / "search.csv", "".join(c for c in search_csvs if c))
    if "html" in formats:
        write_text(out / "report.html", render.html_page(title, sections, provenance))
    return out


COMPARISON = "Comparison"


def _dataset_metric(df: pd.DataFrame, primary: str | None) -> str | None:
    """The primary metric key for one dataset's runs: ``primary`` if they have it, else the same metric of
    their own primary extractor (``eval/lenet-mnist/fid`` -> ``eval/lenet-fashion-mnist/fid``)."""
    if primary is None or (primary in df and df[primary].notna().any()):
        return primary
    try:
        return resolve_metric(df, primary.split("/")[-1])
    except UserError:
        return None


def _sections(
    df: pd.DataFrame,
    fig_dir: Path,
    workdir: str | os.PathLike[str],
    primary: str | None,
    pw: pd.DataFrame | None,
    dataset: str,
) -> list[Section]:
    """The sections of one dataset's comparison on the ``primary`` metric key: comparison table, paper
    layout, pairwise tests ``pw`` (None: too few seeds), failed runs, figures (written to ``fig_dir``).
    Every title and the first note name the dataset."""
    extractor = primary.split("/")[1] if primary else None
    label = f"{primary.split('/')[2].upper()} ({tables.label(df, extractor)})" if primary else ""
    tracker = Tracker(workdir)
    figs = _figures(df, fig_dir, tracker, primary, label)
    protocols = sorted(  # the usefulness protocol goes with its own section
        {line for d in df["protocols"] if isinstance(d, dict) for k, line in d.items() if k != "usefulness"}
    )
    unavailable = sorted({(n, why) for d in df["unavailable"] if isinstance(d, dict) for n, why in d.items()})
    selections = sorted({s for s in df["selection"].dropna() if s and s != "last checkpoint"})
    devices = sorted({d for d in df["device"].dropna() if d})
    failed = df[df["status"] != "FINISHED"]
    notes = (
        [f"Dataset: {dataset}"]
        + [f"Protocol: {p}" for p in protocols]
        + [f"Not computed (n/a): {n}: {why}" for n, why in unavailable]
    )
    notes += [f"Checkpoint selection: {s}" for s in selections] + [f"Device: {d}" for d in devices]
    notes += _budget_notes(df)
    extractors = "; ".join(f"{tables.label(df, e)}: {e}" for e in tables.extractors_in(df))
    explanation = (
        "Mean ± sample std over seeds; best mean per column in bold; ↓ lower is better, ↑ higher is better. "
        f"Feature extractors ({extractors or 'none'}) are named in the protocol lines. "
        "Precision/recall: Kynkäänniemi et al. 2019 (k = 3). modes: classes whose share of the samples is at "
        "least half their share of the real images, by the dataset's classifier; class KL: KL(p_gen || p_real) "
        "of the predicted class histograms, in nats (Metz et al. 2017; Srivastava et al. 2017). "
        "D accuracy: the trained discriminator (eval mode) "
        "on held-out real images and as many fresh fakes at its loss's threshold; ROC-AUC is threshold-free. "
        "ms/step: one generator step with its n_critic discriminator steps (median after warm-up); img/s: real "
        f"images through the discriminator per second. {tables.FLOOR_LABEL}: real training images scored as "
        "if generated, with the same protocol (what a perfect generator reaches), mean ± std over random "
        "subsets of the training split (eval.floor_subsets). KID×10³: the unbiased MMD² estimate of "
        "Bińkowski et al. 2018 times 1000; 0 means the same distribution up to noise (it can be negative). "
        "95 % confidence intervals (Student's t) are in table.csv."
    )
    on = f": {dataset}"
    sections = [
        Section(COMPARISON + on, lambda style: tables.display_frame(df, style), notes, [explanation], in_tex=True)
    ]
    if extractor:
        paper = Section("Paper layout" + on, lambda style: tables.paper_frame(df, extractor, style), notes, in_tex=True)
        sections.append(paper)
    if pw is not None:
        pw_note = (
            f"Welch's t-test on {primary} for every pair of architectures, p-values Holm-corrected; effect size "
            "Hedges' g (positive: A higher). With few seeds these tests have little power: 'no' is not evidence "
            "of equality."
        )
        sections.append(
            Section(f"Pairwise comparison on {primary}{on}", lambda style: _pairwise_display(pw), text=[pw_note])
        )
    else:
        sections.append(Section(f"Pairwise comparison on {primary}{on}", text=[NEED_SEEDS]))
    if keys.CAS in df and df[keys.CAS].notna().any():
        sections.append(_usefulness_section(df, fig_dir, on))
    sections += [
        s for s in (scoring.agreement_section(df, on), scoring.memorisation_section(df, tracker, fig_dir, on)) if s
    ]
    if len(failed):
        lines = [
            f"{r.arch} seed {r.seed}: {r.status} — {r.failure or 'no reason recorded'}" for r in failed.itertuples()
        ]
        sections.append(Section("Failed, pruned or unfinished runs" + on, items=lines))
    return sections + [Section("Figures" + on, figures=figs)]


USEFULNESS_TEXT = (
    "Is the generated data useful? CAS (Ravuri & Vinyals 2019): a fresh classifier trained only on the run's "
    "generated labelled samples (balanced classes), tested on real test images; the real-data row is the same "
    "classifier and budget trained on as many real training images (the ceiling). k=K real: the classifier "
    "trained on K real labelled images per class; + gen.: the same K images with the generated samples added; "
    "gain: the difference, in percentage points, paired per seed. Mean over the architecture's runs ± std over "
    "the augmentation seeds. Only class-conditional runs have these numbers; the recipe is in the protocol."
)


def _usefulness_section(df: pd.DataFrame, fig_dir: Path, on: str) -> Section:
    """The "Usefulness" section: CAS with its ceiling and the augmentation experiment, table and figure."""
    lines = sorted({d["usefulness"] for d in df["protocols"] if isinstance(d, dict) and "usefulness" in d})
    fig = figures.usefulness_vs_k(df, fig_dir)
    caption = "classifier accuracy against real images per class, without and with generated samples"
    return Section(
        "Usefulness" + on,
        lambda style: tables.usefulness_frame(df, style),
        [f"Protocol: {line}" for line in lines],
        [USEFULNESS_TEXT],
        figures=[(fig, caption)] if fig is not None else [],
        in_tex=True,
    )


def _figures(df: pd.DataFrame, fig_dir: Path, tracker: Tracker, primary: str | None, label: str) -> list:
    """Every figure of the comparison, written to ``fig_dir``, as ``(png path, caption)``."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    grids = figures.sample_grids(df, tracker, fig_dir)
    external = set(df.loc[df["kind"] == keys.KIND_EXTERNAL, "arch"])
    figs = [
        (p, f"{a}: the first 64 of its scored samples (external)" if a in external else
         f"{a}: samples from a fixed z at the end of training")
        for a, p in grids.items()
    ]  # fmt: skip
    for path, caption in (
        (figures.samples_over_training(df, tracker, fig_dir), "samples from the same z over training"),
        *[
            (p, f"{p.stem.replace('-', ' ')} (mean over seeds, band ±1 std)")
            for p in figures.fid_curves(df, tracker, fig_dir)
        ],
        (figures.loss_curves(df, tracker, fig_dir), "training losses"),
        (figures.d_accuracy_curves(df, tracker, fig_dir), "discriminator accuracy during training"),
        (figures.quality_vs_cost(df, fig_dir, primary, label) if primary else None, f"{label} against training time"),
        (
            figures.class_histogram(df, fig_dir, _classifier_of(df), _class_names(df)),
            "share of samples per class predicted by the dataset's classifier, beside the real images",
        ),
    ):
        if path is not None:
            figs.append((path, caption))
    return figs


BUDGET_UNITS = {  # train.budget_unit: what an epoch counts (bench.config.TrainConfig)
    "d-steps": "an epoch is a pass of the data through D, so n_critic > 1 gives fewer generator steps",
    "g-steps": "an epoch is as many generator steps as the data has batches, whatever n_critic",
    "minutes": "the budget is wall-clock minutes per run, so cheaper steps get more of them",
}


def _budget_notes(df: pd.DataFrame) -> list[str]:
    """The budget of the trained runs and its unit (``train.budget_unit``; runs made before it: d-steps)."""
    runs = df[df["kind"] == keys.KIND_RUN]
    if runs.empty:
        return []
    units = runs.get("param:train.budget_unit", pd.Series(index=runs.index, dtype=object)).fillna("d-steps")
    out = []
    for unit in sorted(set(units)):
        sub = runs[units == unit]
        amounts = []
        for key, name in (("param:train.epochs", "epochs"), ("param:train.steps", "generator steps"),
                          ("param:train.minutes", "minutes")):  # fmt: skip
            values = sorted({v for v in sub.get(key, pd.Series(dtype=object)).dropna() if v not in ("None", "")})
            amounts += [f"{v} {name}" for v in values]
        out.append(f"Budget: {' / '.join(amounts) or 'as configured'} in unit {unit} ({BUDGET_UNITS.get(unit, unit)})")
    return out


def _classifier_of(df: pd.DataFrame) -> str:
    """The extractor whose class shares the runs logged (the dataset's classifier, whatever the primary
    metric's extractor); "" when none did."""
    pattern = re.compile(rf"^eval/([^/]+)/{keys.CLASS_SHARE}/\d+$")  # not floor_std/eval/...
    found = {m.group(1) for c in df.columns if (m := pattern.match(str(c)))}
    return sorted(found)[0] if found else ""


def _class_names(df: pd.DataFrame) -> list[str] | None:
    """The class names the runs recorded (tag ``ganbench.classes``), None if none did."""
    found = [c for c in df.get("classes", pd.Series(dtype=object)).dropna() if c]
    return list(json.loads(found[0])) if found else None


def _provenance(df: pd.DataFrame, experiments: list[str]) -> list[str]:
    """The report's footer: when and from what it was made, the versions and devices the runs recorded."""
    now = _dt.datetime.now().isoformat(timespec="seconds")
    lines = [
        f"Report generated {now} by ganbench {bench.__version__} from MLflow experiment(s) {', '.join(experiments)}."
    ]
    for key, name in (
        (keys.TAG_VERSION, "ganbench"),
        (keys.TAG_GIT, "git commit"),
        (keys.TAG_TORCH, "torch"),
        (keys.TAG_CUDA, "torch's CUDA build"),
    ):
        values = sorted({d[key] for d in df["provenance"] if isinstance(d, dict) and key in d})
        if values:
            lines.append(f"Runs made with {name}: {', '.join(values)}")
    external = df[df.get("external", pd.Series("", index=df.index)).fillna("") != ""]
    lines += [
        f"External model {r.arch} (scored by ganbench eval, not trained by ganbench): {r.external}, "
        f"sha256 {r.external_sha256}"
        for r in external.drop_duplicates("arch", keep="last").itertuples()
    ]
    return lines + [f"Device: {d}" for d in sorted({d for d in df["device"].dropna() if d})]
