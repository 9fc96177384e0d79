import io
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench import keys
from reports import tables

FID = keys.eval_key("lenet-mnist", keys.FID)


LABELS = {"lenet-mnist": "LeNet", "inception-v3-compat": "Inception"}


def _runs():
    rows = []
    t = 0
    for arch, fids in (("dcgan", [10.0, 12.0, 17.0]), ("vanilla", [30.0, 34.0])):
        for seed, fid in enumerate(fids):
            t += 1
            rows.append(
                {
                    "run_id": f"{arch}{seed}",
                    "arch": arch,
                    "seed": seed,
                    "status": "FINISHED",
                    "start_time": t,
                    FID: fid,
                    keys.D_ACC_REAL: 0.5 + seed / 10,
                    "labels": LABELS,  # as the runs record them (tags protocol.<extractor>.label)
                }
            )
    rows.append(
        {
            "run_id": "x",
            "arch": "vanilla",
            "seed": 9,
            "status": "FAILED",
            "start_time": 99,
            FID: 1.0,
            keys.D_ACC_REAL: 1.0,
            "labels": LABELS,
        }
    )
    return pd.DataFrame(rows)


def test_aggregate_mean_std_over_finished_runs_only():
    agg = tables.aggregate(_runs()).set_index("arch")
    assert list(agg.index) == ["dcgan", "vanilla"]  # order of first start
    assert agg.loc["dcgan", f"{FID} mean"] == pytest.approx(13.0)
    assert agg.loc["dcgan", f"{FID} std"] == pytest.approx(np.std([10, 12, 17], ddof=1))
    assert agg.loc["vanilla", f"{FID} mean"] == pytest.approx(32.0)  # the FAILED run's 1.0 is not averaged
    assert (agg.loc["vanilla", "n_seeds"], agg.loc["vanilla", "n_failed"]) == (2, 1)
    assert agg.loc["dcgan", f"{keys.D_ACC_REAL} mean"] == pytest.approx(0.6)  # CSV keeps fractions


def test_single_seed_has_no_std():
    df = _runs()
    df = df[(df["arch"] != "dcgan") | (df["seed"] == 0)]
    agg = tables.aggregate(df).set_index("arch")
    assert math.isnan(agg.loc["dcgan", f"{FID} std"])
    assert tables.display_frame(df).iloc[0]["FID (LeNet) ↓"] == "**10.00**"  # best of the two, no std


def test_markdown_latex_and_csv():
    df = _runs()
    md = tables.to_markdown(df)
    assert "FID (LeNet) ↓" in md and "**13.00 ± 3.61**" in md and "32.00 ± 2.83" in md  # lower FID is best
    assert "D acc real (%)" in md and "60.0 ± 10.0" in md and "**60.0" not in md  # accuracy is not ranked
    tex = tables.latex_tabular(tables.display_frame(df, "latex"))
    assert r"\textbf{13.00 $\pm$ 3.61}" in tex and r"D acc real (\%)" in tex and r"$\downarrow$" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and "±" not in tex
    csv = pd.read_csv(io.StringIO(tables.to_csv(df)))
    runs, agg = csv[csv["row"] == "run"], csv[csv["row"] == "aggregate"].set_index("arch")
    assert len(runs) == 6 and set(runs["status"]) == {"FINISHED", "FAILED"}  # every run, failed ones too
    assert list(agg.index) == ["dcgan", "vanilla"]
    assert agg.loc["dcgan", FID] == pytest.approx(13.0)
    half = sps.t.ppf(0.975, 2) * np.std([10, 12, 17], ddof=1) / np.sqrt(3)
    assert agg.loc["dcgan", f"{FID} ci95_low"] == pytest.approx(13.0 - half)
    assert agg.loc["dcgan", f"{FID} ci95_high"] == pytest.approx(13.0 + half)


def test_ties_are_not_marked_best():
    df = _runs().assign(**{FID: 5.0})
    assert "**" not in tables.to_markdown(df).split("FID (LeNet)")[1].split("|")[0]
    cells = tables.display_frame(df)["FID (LeNet) ↓"]
    assert not any(c.startswith("**") for c in cells)


def test_paper_layout():
    df = _runs().assign(**{keys.D_ACC_FAKE: 0.25, keys.EPOCHS: 2.0})
    frame = tables.paper_frame(df, "lenet-mnist")
    assert list(frame.columns) == ["Model", "FID (LeNet) ↓", "IS (LeNet) ↑", "Epochs", "D accuracy real / fake (%)"]
    row = frame.set_index("Model").loc["dcgan"]
    assert (
        row["FID (LeNet) ↓"] == "13.00 ± 3.61"
        and row["Epochs"] == "2.0"
        and row["D accuracy real / fake (%)"] == "60.0 / 25.0"
    )
    assert row["IS (LeNet) ↑"] == "n/a"  # no IS in these runs


def test_latex_document_compiles(tmp_path):
    from tests.reports.tools import need

    pdflatex = need("pdflatex", "texlive-latex-base texlive-latex-recommended")
    df = _runs()
    notes = ["Protocol: lenet-mnist (sha256 4b83): 10000 samples_x & 100% --inception-weights"]
    doc = tables.latex_document(
        [
            (tables.latex_tabular(tables.display_frame(df, "latex")), notes),
            (tables.latex_tabular(tables.paper_frame(df, "lenet-mnist", "latex")), notes),
        ]
    )
    (tmp_path / "t.tex").write_text(doc)
    p = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_columns_follow_the_extractors_present():
    df = _runs().assign(**{keys.eval_key("inception-v3-compat", keys.FID): 5.0})
    headers = [c.header for c in tables.columns_for(df)]
    assert "FID (Inception) ↓" in headers and "FID (LeNet) ↓" in headers


def test_the_terminal_summary_fits_80_columns_and_drops_empty_columns():
    from reports.summary import summary_frame

    frame, note = summary_frame(_runs())
    assert list(frame.columns) == ["architecture", "FID", "seeds"]  # no IS, recall, AUC or timing in these runs
    assert list(frame["FID"]) == ["13.00 ± 3.61", "32.00 ± 2.83"]  # the failed run's 1.0 is not averaged in
    from reports.summary import terminal_markdown

    text = terminal_markdown(frame) + "\n" + note
    assert max(len(line) for line in text.splitlines()) <= 80 and "LeNet" in note


def _useful_runs():
    k10 = {what: keys.augment_key(10, what) for what in ("real", "real_std", "augmented", "augmented_std", "gain")}
    base = {"status": "FINISHED", "labels": LABELS, FID: 20.0}
    rows = [
        {**base, "run_id": "d", "arch": "dcgan", "seed": 0, "kind": "run", "start_time": 1},
        {**base, "run_id": "a0", "arch": "acgan", "seed": 0, "kind": "run", "start_time": 2, keys.CAS: 0.8,
         k10["real"]: 0.70, k10["real_std"]: 0.03, k10["augmented"]: 0.76, k10["augmented_std"]: 0.04,
         k10["gain"]: 0.06, k10["gain"] + "_std": 0.02},
        {**base, "run_id": "a1", "arch": "acgan", "seed": 1, "kind": "run", "start_time": 3, keys.CAS: 0.9,
         k10["real"]: 0.70, k10["real_std"]: 0.03, k10["augmented"]: 0.74, k10["augmented_std"]: 0.02,
         k10["gain"]: 0.04, k10["gain"] + "_std": 0.02},
        {**base, "run_id": "f", "arch": "real-floor", "seed": 0, "kind": "real-floor", "start_time": 4,
         keys.CAS: 0.95, k10["real"]: 0.70, k10["real_std"]: 0.03},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_usefulness_table_pools_the_seed_std_and_the_floor_row_is_the_ceiling():
    frame = tables.usefulness_frame(_useful_runs()).set_index("architecture")
    assert list(frame.index) == ["acgan", tables.FLOOR_LABEL]  # dcgan is unconditional: no row
    assert frame.loc["acgan", "CAS (%)"] == "85.0" and frame.loc[tables.FLOOR_LABEL, "CAS (%)"] == "95.0"
    pooled = 100 * math.sqrt((0.04**2 + 0.02**2) / 2)  # the root mean square of the runs' stds over seeds
    assert frame.loc["acgan", "k=10 + gen."] == f"75.0 ± {pooled:.1f}"
    assert frame.loc["acgan", "k=10 gain"] == "5.0 ± 2.0"
    assert frame.loc[tables.FLOOR_LABEL, "k=10 real"] == "70.0 ± 3.0"
    assert frame.loc[tables.FLOOR_LABEL, "k=10 + gen."] == "–"
    latex = tables.usefulness_frame(_useful_runs(), "latex")
    assert "CAS (\\%)" in latex.columns and latex.iloc[0, 2].endswith(r"$\pm$ 3.0")  # % would end the line
    headers = [c.header for c in tables.columns_for(_useful_runs())]
    assert "CAS (%) ↑" in headers and "aug. gain k=10 (pp) ↑" in headers
    assert "CAS (%) ↑" not in [c.header for c in tables.columns_for(_runs())]  # unconditional runs only


def test_usefulness_and_class_histogram_figures(tmp_path):
    from reports import figures

    assert figures.usefulness_vs_k(_useful_runs(), tmp_path).stat().st_size > 0
    assert figures.usefulness_vs_k(_runs().assign(kind="run"), tmp_path) is None
    df = _useful_runs()
    for c in range(3):
        df[keys.eval_key("lenet-mnist", f"{keys.CLASS_SHARE}/{c}")] = [0.2, 0.5, 0.4, 1 / 3] if c == 0 else 0.3
    assert figures.class_histogram(df, tmp_path, "lenet-mnist", ["a", "b", "c"]).stat().st_size > 0
    assert figures.class_histogram(_runs().assign(kind="run"), tmp_path, "lenet-mnist") is None


def test_the_class_histogram_uses_the_classifier_that_logged_shares_whatever_the_primary_metric():
    from reports.build import _classifier_of

    df = _useful_runs()
    assert _classifier_of(df) == ""
    df[keys.eval_key("inception-v3-compat", keys.FID)] = 1.0
    df["floor_std/" + keys.eval_key("lenet-mnist", f"{keys.CLASS_SHARE}/0")] = 0.0  # as the floor logs
    assert _classifier_of(df) == ""
    df[keys.eval_key("lenet-mnist", f"{keys.CLASS_SHARE}/0")] = 0.1
    assert _classifier_of(df) == "lenet-mnist"


def test_the_full_terminal_summary_of_a_wide_comparison_fits_80_columns():
    """Every column (FID ± std, IS, recall, modes, D AUC, ms/step, seeds) at Stacked MNIST's widths."""
    from reports.summary import summary_frame, terminal_markdown

    ext = "lenet-mnist"
    df = _runs().assign(
        **{
            FID: lambda d: d[FID] * 400 + 1234.567,  # four-digit FIDs with a three-digit std
            keys.eval_key(ext, keys.IS_MEAN): 793.43,
            keys.eval_key(ext, keys.RECALL): 0.862,
            keys.eval_key(ext, keys.MODES): 1000.0,
            keys.D_ROC_AUC: 0.995,
            keys.MS_PER_STEP_P50: 1234.5,
        }
    )
    df.loc[0, "arch"] = "sngan-projection"
    frame, note = summary_frame(df)
    assert list(frame.columns) == ["architecture", "FID", "IS", "recall", "modes", "D AUC", "ms/step", "seeds"]
    text = terminal_markdown(frame) + "\n\n" + note
    assert max(len(line) for line in text.splitlines()) <= 80, text
