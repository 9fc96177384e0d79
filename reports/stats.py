"""Statistics over seeds.

- :func:`summarize`: mean, sample standard deviation (ddof = 1), n and a two-sided 95 % confidence
  interval for the mean from Student's t distribution (mean ± t₀.₉₇₅,ₙ₋₁ · s / √n; needs n ≥ 2).
- :func:`pairwise`: every pair of architectures on one metric with Welch's unequal-variance t-test
  (``scipy.stats.ttest_ind(equal_var=False)``), p-values adjusted for multiple comparisons with Holm's
  step-down method (Holm 1979), and Hedges' g (Cohen's d with the small-sample correction
  J = 1 - 3 / (4 (n₁ + n₂) - 9); Hedges & Olkin 1985) as the effect size.

With the few seeds GAN studies can afford (3-5), these tests have little power: a non-significant result
is not evidence of equality, which the report says next to the table.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float


def summarize(values, confidence: float = 0.95) -> Summary:
    """Mean, sample std, n and the t-based confidence interval of ``values`` (NaNs dropped).

    std and the interval are NaN for n < 2; everything is NaN for n = 0.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (same order as given; NaNs stay NaN and are not counted)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def hedges_g(a, b) -> float:
    """Standardised mean difference (mean(a) - mean(b)) / pooled sd, bias-corrected; NaN if a group has < 2."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return math.nan
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return math.nan
    return (a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (n1 + n2) - 9))


def pairwise(groups: dict[str, list[float]], alpha: float = 0.05) -> pd.DataFrame:
    """All pairs of ``groups`` ({architecture: values over seeds}) in the given order.

    Columns: ``A``, ``B``, ``n_A``, ``n_B``, ``mean_A``, ``mean_B``, ``diff`` (mean_A - mean_B), ``t``,
    ``p`` (Welch), ``p_holm``, ``hedges_g``, ``significant`` (p_holm < alpha). Pairs with a group of fewer
    than 2 values get NaN statistics.
    """
    rows = []
    for a, b in itertools.combinations(groups, 2):
        x, y = np.asarray(groups[a], dtype=np.float64), np.asarray(groups[b], dtype=np.float64)
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        t = p = math.nan
        if len(x) >= 2 and len(y) >= 2 and (x.var() > 0 or y.var() > 0):
            res = stats.ttest_ind(x, y, equal_var=False)
            t, p = float(res.statistic), float(res.pvalue)
        rows.append(
            {
                "A": a,
                "B": b,
                "n_A": len(x),
                "n_B": len(y),
                "mean_A": float(x.mean()) if len(x) else math.nan,
                "mean_B": float(y.mean()) if len(y) else math.nan,
                "diff": float(x.mean() - y.mean()) if len(x) and len(y) else math.nan,
                "t": t,
                "p": p,
                "hedges_g": hedges_g(x, y),
            }
        )
    out = pd.DataFrame(rows, columns=["A", "B", "n_A", "n_B", "mean_A", "mean_B", "diff", "t", "p", "hedges_g"])
    out.insert(9, "p_holm", holm(out["p"]) if len(out) else [])
    out["significant"] = out["p_holm"] < alpha
    return out


def expected_best(values, n: int, minimise: bool = True) -> tuple[float, float]:
    """The expected best of ``n`` trials drawn without replacement from the observed trial scores ``values``
    (N of them), and its standard deviation: Dodge et al. 2019 ("Show Your Work: Improved Reporting of
    Experimental Results", EMNLP) expected validation performance, in the closed form for draws without
    replacement (Dodge et al. 2021, "Expected Validation Performance and Estimation of a Random Variable's
    Maximum"). Sorted best last, v(1) ... v(N), the best of a random n-subset is v(i) with probability
    C(i - 1, n - 1) / C(N, n).

    ``minimise``: lower is better (FID). Raises ValueError unless 1 <= n <= N. Non-increasing in n (for
    ``minimise``), equal to the mean of the values at n = 1 and to their best at n = N.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    if minimise:
        x = x[::-1]  # worst first: the best of the subset is the one latest in this order
    total = len(x)
    if not 1 <= n <= total:
        raise ValueError(f"n = {n} trials: expected 1 <= n <= {total} (the observed trials)")
    weights = np.array([math.comb(i - 1, n - 1) for i in range(1, total + 1)], dtype=object) / math.comb(total, n)
    p = weights.astype(np.float64)
    mean = float(np.dot(p, x))
    var = float(np.dot(p, x * x)) - mean * mean
    return mean, math.sqrt(max(var, 0.0))
