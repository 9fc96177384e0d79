import math

import numpy as np
import pytest
from scipy import stats as sps

from reports.stats import hedges_g, holm, pairwise, summarize


def test_summarize_known_values():
    s = summarize([10.0, 12.0, 17.0])
    assert s.mean == pytest.approx(13.0)
    assert s.std == pytest.approx(math.sqrt(13.0))  # ((-3)^2 + (-1)^2 + 4^2) / 2 = 13
    half = sps.t.ppf(0.975, 2) * math.sqrt(13.0) / math.sqrt(3)  # 4.303 * 2.082
    assert (s.ci_low, s.ci_high) == pytest.approx((13.0 - half, 13.0 + half))
    assert half == pytest.approx(8.9566, rel=1e-4)  # t(0.975, 2) = 4.3027


def test_summarize_small_and_nan():
    one = summarize([5.0, float("nan")])
    assert (one.mean, one.n) == (5.0, 1) and math.isnan(one.std) and math.isnan(one.ci_low)
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)


def test_holm_matches_hand_computation():
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, kept monotone)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    out = holm([0.01, float("nan"), 0.03])
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.03)


def test_hedges_g():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    # pooled sd = 1, d = -3, J = 1 - 3 / (4 * 6 - 9) = 0.8
    assert hedges_g(a, b) == pytest.approx(-2.4)
    assert math.isnan(hedges_g([1.0], b))


def test_pairwise_welch_against_scipy():
    rng = np.random.default_rng(0)
    groups = {"a": list(rng.normal(10, 1, 5)), "b": list(rng.normal(12, 3, 4)), "c": list(rng.normal(10, 1, 3))}
    table = pairwise(groups).set_index(["A", "B"])
    assert list(table.index) == [("a", "b"), ("a", "c"), ("b", "c")]
    for (x, y), row in table.iterrows():
        ref = sps.ttest_ind(groups[x], groups[y], equal_var=False)
        assert row["p"] == pytest.approx(ref.pvalue, rel=1e-12)
        assert row["t"] == pytest.approx(ref.statistic, rel=1e-12)
    np.testing.assert_allclose(table["p_holm"], holm(table["p"]))
    assert table["significant"].dtype == bool


def test_pairwise_with_one_seed_is_nan_not_an_error():
    table = pairwise({"a": [1.0], "b": [2.0, 3.0]})
    assert math.isnan(table.loc[0, "p"]) and not table.loc[0, "significant"]
