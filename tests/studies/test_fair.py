"""The fair head-to-head (``ganbench compare --search N``): equal searches, re-seeded best settings, the
report's search section; and the budget units it states."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bench import keys
from bench.cli import app
from bench.config import TrainConfig
from bench.errors import ConfigError
from bench.harness import total_steps
from bench.tracking import Tracker
from reports.stats import expected_best
from tests.conftest import FAST

TINY = [*FAST, "train.eval_every=0", "train.sample_every=0"]


def test_expected_best_equals_brute_force_and_never_rises():
    """Dodge et al.'s expected best of n trials without replacement, against the mean (and spread) of the
    best of every n-subset of the observed trials; it falls with n, from the mean to the best."""
    values = np.random.default_rng(1).lognormal(4, 1, 8)
    values[3] = values[5]  # a tie
    previous = np.inf
    for n in range(1, len(values) + 1):
        bests = [min(c) for c in itertools.combinations(values, n)]
        mean, std = expected_best(values, n)
        assert mean == pytest.approx(np.mean(bests)) and std == pytest.approx(np.std(bests), abs=1e-9)
        assert mean <= previous + 1e-12
        previous = mean
    assert expected_best(values, 1)[0] == pytest.approx(values.mean())
    assert expected_best(values, len(values)) == pytest.approx((values.min(), 0.0))
    assert expected_best(values, 2, minimise=False)[0] == pytest.approx(
        np.mean([max(c) for c in itertools.combinations(values, 2)])
    )
    with pytest.raises(ValueError, match="1 <= n <= 8"):
        expected_best(values, 9)


def test_budget_units_count_what_they_say():
    """d-steps: an epoch of discriminator batches (n_critic = 5: a fifth of the generator steps); g-steps: an
    epoch of generator steps whatever n_critic; minutes needs its budget."""
    d = TrainConfig(epochs=2.0)
    g = TrainConfig(epochs=2.0, budget_unit="g-steps")
    assert total_steps(d, 100, 5) == 40 and total_steps(g, 100, 5) == 200 and total_steps(g, 100, 1) == 200
    assert total_steps(TrainConfig(steps=7, epochs=None, budget_unit="g-steps"), 100, 5) == 7
    with pytest.raises(ConfigError, match="train.budget_unit = 'minutes' needs train.minutes"):
        TrainConfig(budget_unit="minutes")


@pytest.mark.slow
def test_search_compare_end_to_end_on_mnist(workdir, mnist_root, monkeypatch):
    """``compare --search 3 --seeds 2`` on real MNIST with tiny budgets: 3 trials per architecture with
    equal budgets (read back from MLflow), the best re-run over 2 seeds and tagged, and a report with the
    three search figures and the re-seeded table. A search killed in the middle and started again ends with
    exactly 3 counted trials per architecture."""
    from bench import run as run_module

    sets = [a for s in [*TINY, f'workdir="{workdir}"', "train.batch_size=16"] for a in ("--set", s)]
    args = ["compare", "dummy", "vanilla", "--search", "3", "--seeds", "2", "--steps", "4", "--search-steps", "3",
            "--experiment", "fair", "-q", *sets]  # fmt: skip
    real_train, calls = run_module.train, []

    def killed_on_the_fourth_trial(cfg, *a, **kw):  # vanilla's second trial: Ctrl-C in the middle of the search
        calls.append(cfg.arch)
        if len(calls) == 4:  # at the end of its training: its MLflow run exists, and ends KILLED

            def interrupt():
                raise KeyboardInterrupt("killed")

            kw["owner"] = interrupt
        return real_train(cfg, *a, **kw)

    monkeypatch.setattr("studies.runner.train", killed_on_the_fourth_trial)
    first = CliRunner().invoke(app, args)
    assert first.exit_code != 0 and calls == ["dummy", "vanilla"] * 2  # one queue: the searches take turns
    monkeypatch.setattr("studies.runner.train", real_train)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "dummy seed 1: FINISHED" in r.output  # plain lines off a terminal
    import re

    rows = [line.split() for line in r.output.splitlines() if re.match(r"(dummy|vanilla)\s+\d", line)]
    assert [(row[0], row[-1]) for row in rows] == [("dummy", "2"), ("vanilla", "2")]  # the finals, not the trials

    runs = Tracker(workdir).search_runs(["fair"])
    trials = [x for x in runs if x["tags"].get(keys.TAG_KIND) == "trial"]
    finished = {
        a: [t for t in trials if t["tags"][keys.TAG_ARCH] == a and t["status"] == "FINISHED"]
        for a in ("dummy", "vanilla")
    }
    assert {a: len(v) for a, v in finished.items()} == {"dummy": 3, "vanilla": 3}
    (killed,) = [t for t in trials if t["status"] != "FINISHED"]  # the interrupted one: stale, retried
    assert killed["status"] == "KILLED" and killed["tags"][keys.TAG_FAILURE].startswith("stale")
    budgets = {
        (t["params"]["train.steps"], t["params"]["train.budget_unit"], t["metrics"][keys.G_STEPS])
        for t in trials
        if t["status"] == "FINISHED"
    }
    assert budgets == {("3", "d-steps", 3.0)}  # the same budget, in the same unit, for every trial of both
    finals = [x for x in runs if x["tags"].get(keys.TAG_KIND) == keys.KIND_RUN]
    assert sorted((x["tags"][keys.TAG_ARCH], x["tags"][keys.TAG_SEED]) for x in finals) == [
        ("dummy", "0"), ("dummy", "1"), ("vanilla", "0"), ("vanilla", "1")
    ]  # fmt: skip
    for x in finals:
        best = json.loads(x["tags"]["ganbench.search_best_params"])
        assert x["tags"]["ganbench.search_best"].startswith("trial ") and x["metrics"][keys.G_STEPS] == 4
        assert float(x["params"]["model.lr_g"]) == pytest.approx(best["lr"])

    out = workdir / "reports" / "fair"
    text = (out / "report.md").read_text()
    assert "## Search: equal tuning budget: mnist" in text and "re-seeded FID" in text
    for name in ("search-fid-distribution", "expected-best-vs-trials", "expected-best-vs-compute"):
        assert (out / "figures" / f"{name}.png").is_file()
    assert any(v in text for v in ("statistically indistinguishable", "differ (Welch", "cannot be tested"))
    assert "re-seeded FID" in (out / "table.tex").read_text() and "Search trials: 3 generator steps" in text
    search_csv = (out / "search.csv").read_text().splitlines()
    assert len(search_csv) == 1 + 6  # one row per counted trial: the killed one is not among them
    import pandas as pd

    table = pd.read_csv(out / "table.csv")
    agg = table[(table["row"] == "aggregate") & table["arch"].isin(["dummy", "vanilla"])]
    assert list(agg["search_complete"]) == [3, 3] and agg["search_best_fid"].notna().all()
    assert (agg["search_expected_best"] >= agg["search_best_fid"]).all() and list(agg["search_expected_best_n"]) == [
        1,
        1,
    ]


@pytest.mark.slow
def test_two_workers_share_the_search_queue_and_try_the_settings_one_would(workdir, mnist_root):
    """``--workers 2``: the trials of both architectures are one queue of two processes; each search ends
    with exactly its 2 trials, and they tried the settings of trials 0 and 1 of the seeded stream (what one
    worker tries); the best settings are re-run on the shared grid."""
    import optuna

    from studies.fair import study_name
    from studies.runner import open_storage
    from studies.samplers import SeededRandomSampler
    from studies.spaces import space_for

    sets = [a for s in [*TINY, f'workdir="{workdir}"'] for a in ("--set", s)]
    args = ["compare", "vanilla", "cgan", "--search", "2", "--seeds", "1", "--steps", "3", "--search-steps", "2",
            "--workers", "2", "--experiment", "fair2", "-q", *sets]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "vanilla: best of 2 trials: lr=" in r.output and "cgan: best of 2 trials: lr=" in r.output
    runs = Tracker(workdir).search_runs(["fair2"])
    for arch in ("vanilla", "cgan"):
        name = study_name("fair2", arch)
        study = optuna.load_study(study_name=name, storage=open_storage(None, workdir, name))
        assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
        expected = optuna.create_study(sampler=SeededRandomSampler(0, space_for(arch)))
        for _ in range(2):
            t = expected.ask()
            [p.suggest(t) for p in space_for(arch)]
            expected.tell(t, 1.0)
        assert [t.params for t in study.trials] == [t.params for t in expected.trials]
        trials = [x for x in runs if x["tags"].get(keys.TAG_KIND) == "trial" and x["tags"][keys.TAG_ARCH] == arch]
        assert sorted(x["status"] for x in trials) == ["FINISHED", "FINISHED"]
        (final,) = [
            x for x in runs if x["tags"].get(keys.TAG_KIND) == keys.KIND_RUN and x["tags"][keys.TAG_ARCH] == arch
        ]
        assert final["status"] == "FINISHED" and final["tags"]["ganbench.search_best"].startswith("trial ")


@pytest.mark.parametrize("name", ["mnist-fair-comparison", "mnist-fair-comparison-gpu"])
def test_the_shipped_fair_comparisons_are_valid(name):
    """Both files load, search every architecture with the same budget, and their trial configs validate."""
    import dataclasses
    from pathlib import Path

    from bench.config import load_compare_config
    from studies.fair import trial_config
    from studies.spaces import check_space, space_for

    cc = load_compare_config(Path(__file__).parents[2] / "studies" / f"{name}.toml", [])
    assert cc.search.trials >= 16 and cc.search.sampler == "random" and len(cc.seeds) >= 3
    trial = trial_config(cc)
    assert trial.train.epochs == cc.search.epochs and trial.eval.n_samples == (cc.eval.search_samples or 10_000)
    for arch in cc.archs:
        check_space(arch, space_for(arch), dataclasses.asdict(trial))
