import math

import numpy as np
import pandas as pd
import pytest

from bench import keys
from reports import tables

FID = keys.eval_key("lenet-mnist", keys.FID)


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
    assert tables.display_frame(df).iloc[0]["FID (LeNet) ↓"] == "10.00"


def test_markdown_latex_and_csv():
    df = _runs()
    md = tables.to_markdown(df)
    assert "FID (LeNet) ↓" in md and "13.00 ± 3.61" in md and "D acc real (%)" in md and "60.0 ± 10.0" in md
    tex = tables.to_latex(df, caption="Protocol: test")
    assert tex.startswith("% Protocol: test\n")
    assert r"13.00 $\pm$ 3.61" in tex and r"D acc real (\%)" in tex and r"$\downarrow$" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and "±" not in tex
    csv = pd.read_csv(__import__("io").StringIO(tables.to_csv(df)))
    assert list(csv["arch"]) == ["dcgan", "vanilla"]


def test_columns_follow_the_extractors_present():
    df = _runs().assign(**{keys.eval_key("inception-v3-compat", keys.FID): 5.0})
    headers = [c.header for c in tables.columns_for(df)]
    assert "FID (Inception) ↓" in headers and "FID (LeNet) ↓" in headers
