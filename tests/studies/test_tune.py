"""ganbench tune: Optuna studies on real MNIST with a tiny budget, tracked in MLflow."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from typer.testing import CliRunner

from architectures import LOSSES
from architectures.losses import LossSpec
from bench import keys
from bench.cli import app
from bench.config import load_compare_config
from bench.errors import ConfigError
from bench.tracking import Tracker
from studies import runner
from studies.runner import StudyConfig, load_study, open_storage, run_study
from studies.throughput import throughput
from tests.reports.tools import missing

pytestmark = pytest.mark.slow
TINY = [
    "train.log_every=1",
    "train.batch_size=16",
    "train.warmup_steps=1",
    "eval.n_samples=200",
    "eval.kid_subset_size=50",
    "eval.kid_subsets=10",
    "eval.during_training_samples=100",
    "train.eval_every=2",
]


def _cli_sets(workdir):
    return [a for s in [*TINY, f'workdir="{workdir}"'] for a in ("--set", s)]


def _tune(workdir, *args):
    """``ganbench tune vanilla ARGS`` without pruning, with the tiny budget, in-process."""
    return CliRunner().invoke(app, ["tune", "vanilla", "--pruner", "none", *args, *_cli_sets(workdir)])


def _children(workdir, study):
    return [r for r in Tracker(workdir).search_runs([study]) if "mlflow.parentRunId" in r["tags"]]


def test_three_trials_tracked_and_best_config_round_trips(workdir, mnist_root):
    r = CliRunner().invoke(
        app, ["tune", "vanilla", "--trials", "3", "--steps", "4", "--pruner", "none", *_cli_sets(workdir)]
    )
    assert r.exit_code == 0, r.output
    assert "study vanilla-search: 3 COMPLETE" in r.output
    runs = Tracker(workdir).search_runs(["vanilla-search"])
    (parent,) = [x for x in runs if x["tags"].get(keys.TAG_KIND) == "study"]
    children = _children(workdir, "vanilla-search")
    assert parent["status"] == "FINISHED" and parent["metrics"]["study/n_complete"] == 3
    assert len(children) == 3 and {c["tags"]["mlflow.parentRunId"] for c in children} == {parent["run_id"]}
    assert {c["tags"]["ganbench.trial_state"] for c in children} == {"COMPLETE"}
    study = optuna.load_study(study_name="vanilla-search", storage=open_storage(None, workdir, "vanilla-search"))
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == {c["run_id"] for c in children}

    r = CliRunner().invoke(app, ["report", "--study", "vanilla-search", "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    out = workdir / "reports" / "vanilla-search"
    for fig in ("optimization-history", "param-importances", "parallel-coordinate", "intermediate-values"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
    best = study.best_trial
    r = CliRunner().invoke(
        app, ["train", "vanilla", "--config", str(out / "best-config.toml"), "-q", "--workdir", str(workdir)]
    )
    assert r.exit_code == 0, r.output
    (rerun,) = Tracker(workdir).search_runs(["vanilla-search-best"])
    assert float(rerun["params"]["model.lr_g"]) == pytest.approx(best.params["lr"], rel=1e-12)
    assert rerun["params"]["train.batch_size"] == str(best.params["batch_size"])

    r = CliRunner().invoke(app, ["report", "--study", "vanilla-search", "--reseed", "2", "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    reseeded = [
        x for x in Tracker(workdir).search_runs(["vanilla-search-reseed"]) if x["tags"].get(keys.TAG_KIND) == "run"
    ]
    assert sorted(int(x["tags"][keys.TAG_SEED]) for x in reseeded) == [0, 1]
    assert {x["status"] for x in reseeded} == {"FINISHED"}
    assert {x["params"]["model.lr_g"] for x in reseeded} == {rerun["params"]["model.lr_g"]}  # the best config
    assert any(line.startswith("vanilla ") and " ± " in line for line in r.output.splitlines())  # FID mean ± std


def test_two_workers_on_the_journal_share_the_trials(workdir, mnist_root):
    r = _tune(workdir, "--trials", "4", "--workers", "2", "--steps", "3", "--study-name", "w2")
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name="w2", storage=open_storage(None, workdir, "w2"))
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]  # none lost, none run twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["mlflow_run_id"] for t in study.trials}) == 4
    assert len(_children(workdir, "w2")) == 4
    (tp,) = throughput(study)  # trials/hour of this invocation, both workers together
    assert (tp["workers"], tp["trials"]) == (2, 4)
    assert tp["trials_per_hour"] == pytest.approx(4 / tp["wall_s"] * 3600, rel=0.01)
    assert f"throughput: 4 trials in {tp['wall_s'] / 60:.1f} min with 2 worker(s)" in r.output
    assert f"{tp['trials_per_hour']:.1f} trials/hour" in r.output
    (parent,) = [x for x in Tracker(workdir).search_runs(["w2"]) if x["tags"].get(keys.TAG_KIND) == "study"]
    assert parent["metrics"]["study/trials_per_hour"] == tp["trials_per_hour"]
    r = CliRunner().invoke(app, ["report", "--study", "w2", "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    md = (workdir / "reports" / "w2" / "study.md").read_text()
    assert "## Throughput" in md and f" {tp['trials_per_hour']:.1f} |" in md
    r = _tune(workdir, "--trials", "4", "--steps", "3", "--study-name", "w2")  # nothing left to run
    assert r.exit_code == 0, r.output
    assert "study w2: 4 COMPLETE" in r.output and "throughput:" not in r.output  # no earlier invocation's line


def test_postgres_storage_shared_by_two_workers(workdir, mnist_root):
    url = os.environ.get("GANBENCH_TEST_POSTGRES")
    if not url:
        missing("GANBENCH_TEST_POSTGRES is not set (.ci/run starts PostgreSQL with .ci/postgres and sets it)")
    name = f"pg-{os.getpid()}-{int(time.time())}"
    r = _tune(workdir, "--trials", "2", "--workers", "2", "--steps", "3", "--study-name", name, "--storage", url)
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name=name, storage=url)
    assert sorted(t.number for t in study.trials) == [0, 1]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_pruned_trial_keeps_its_partial_curve(workdir, mnist_root, monkeypatch):
    monkeypatch.setattr(runner, "_pruner", lambda sc, cc: AlwaysPrune())
    sc, cc, space = load_study(
        None, [*TINY, f'workdir="{workdir}"', "train.steps=6"], {"arch": "vanilla", "trials": 2, "name": "p"}
    )
    study, _ = run_study(sc, cc, space)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    children = _children(workdir, "p")
    assert {c["status"] for c in children} == {"KILLED"}  # not FINISHED: they did not finish
    assert {c["tags"]["ganbench.trial_state"] for c in children} == {"PRUNED"}
    curve = Tracker(workdir).metric_history(children[0]["run_id"], keys.TRAIN_FID)
    assert len(curve) == 1 and curve[0][0] == 2  # pruned at the first report, step 2


def test_diverging_trial_fails_and_the_study_completes(workdir, mnist_root):
    LOSSES.register("test-nan-3", LossSpec(lambda r, f: (r.mean() * float("nan"), f.mean(), {}), 0.0))
    try:
        overrides = {"loss": {"choices": ["bce", "test-nan-3"], "targets": ["loss"]}}
        sc = StudyConfig(arch="dummy", trials=3, name="nan", pruner="none", sampler="random")
        cc = load_compare_config(
            None, [*TINY, f'workdir="{workdir}"', "train.steps=3", 'archs=["dummy"]', 'experiment="nan"']
        )
        storage = open_storage(None, workdir, "nan")
        optuna.create_study(storage=storage, study_name="nan").enqueue_trial({"loss": "test-nan-3"})
        study, _ = run_study(sc, cc, overrides)
    finally:
        LOSSES.unregister("test-nan-3")
    states = [t.state for t in study.trials]
    assert len(states) == 3 and states[0] == optuna.trial.TrialState.FAIL
    assert "TrainingDiverged: training diverged at generator step 1" in study.trials[0].user_attrs["failure"]
    failed_run = [c for c in _children(workdir, "nan") if c["tags"]["ganbench.trial"] == "0"][0]
    assert failed_run["status"] == "FAILED" and failed_run["tags"]["ganbench.trial_state"] == "FAIL"


def test_killed_study_resumes_to_its_trial_count(workdir, mnist_root):
    args = [
        "tune",
        "vanilla",
        "--trials",
        "3",
        "--steps",
        "300",  # trials of seconds: the poll below sees a RUNNING trial after a COMPLETE one
        "--pruner",
        "none",
        "--study-name",
        "k",
        *_cli_sets(workdir),
        "--set",
        "train.eval_every=0",  # no FID curve: long trials, cheap
    ]
    cmd = [sys.executable, "-m", "bench.cli", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    storage_path = workdir / "optuna" / "k.journal"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill -9 once a trial finished and the next one is running
        assert proc.poll() is None, f"the study ended before it could be killed: {proc.stdout.read()}"
        if storage_path.exists():
            trials = optuna.load_study(study_name="k", storage=open_storage(None, workdir, "k")).trials
            if (
                any(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
                and trials[-1].state == optuna.trial.TrialState.RUNNING
            ):
                break
        time.sleep(0.2)
    assert proc.poll() is None, "no trial was seen running after a finished one"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = CliRunner().invoke(app, args)  # the same command again resumes the study
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name="k", storage=open_storage(None, workdir, "k"))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 3  # the budget counts finished trials, not the stale one
    stale = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(stale) == 1 and runner.failures(study)[stale[0].number].startswith("stale")
    killed = [c for c in _children(workdir, "k") if c["tags"]["ganbench.trial"] == str(stale[0].number)]
    # killed before its MLflow run was opened (checks come first) or after: never left RUNNING
    assert [c["status"] for c in killed] in ([], ["KILLED"])
    (tp,) = throughput(study)  # kill -9 left no record; the resumption counts only its own trials
    assert tp["trials"] == sum(t.state.name == "COMPLETE" and t.number > stale[0].number for t in study.trials)
    assert {c["status"] for c in Tracker(workdir).search_runs(["k"])} <= {"FINISHED", "KILLED"}


def test_bad_study_options_exit_2(workdir):
    for args, msg in (
        (["--sampler", "grid"], "study.sampler = 'grid' is not allowed"),
        (["--metric", "is_mean"], "prunes on the FID curve"),
        (["--storage", "redis://x"], "--storage 'redis://x' is not supported"),
        (["--storage", "postgresql://nobody:x@127.0.0.1:1/none"], "cannot be opened"),
    ):
        r = CliRunner().invoke(app, ["tune", "vanilla", "--trials", "1", *args, "--workdir", str(workdir)])
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.stderr


def test_shipped_study_file_is_valid():
    from pathlib import Path

    sc, cc, space = load_study(str(Path(__file__).parents[2] / "studies" / "mnist-dcgan-search.toml"), [], {})
    assert (sc.arch, sc.trials, sc.study_name) == ("dcgan", 30, "mnist-dcgan-search")
    assert cc.train.steps == 500 and cc.eval.n_samples == 2000
    params = {p.name: p for p in runner.space_for("dcgan", space)}
    assert (params["lr"].low, params["lr"].high, params["lr"].log) == (5e-5, 1e-3, True)
    assert params["z_dim"].fixed == 100


def test_the_default_study_name_carries_the_dataset():
    sc, cc, _ = load_study(None, [], {"arch": "sngan"}, {"data": {"dataset": "fashion-mnist"}})
    assert sc.study_name == "fashion-mnist-sngan-search" and cc.experiment == sc.study_name
    assert cc.eval.extractor == "lenet-fashion-mnist"
    assert load_study(None, [], {"arch": "sngan"})[0].study_name == "sngan-search"  # MNIST: as before


def test_sigterm_of_tune_is_one_line_and_the_interrupted_trial_does_not_count(workdir, mnist_root):
    args = ["tune", "vanilla", "--trials", "2", "--steps", "3000", "--pruner", "none", "--study-name", "t"]
    cmd = [sys.executable, "-m", "bench.cli", *args, *_cli_sets(workdir), "--set", "train.eval_every=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage_path = workdir / "optuna" / "t.journal"
    deadline = time.time() + 120
    while time.time() < deadline:  # SIGTERM once the first trial runs
        assert proc.poll() is None, proc.communicate()
        if storage_path.exists():
            trials = optuna.load_study(study_name="t", storage=open_storage(None, workdir, "t")).trials
            if trials and trials[-1].state == optuna.trial.TrialState.RUNNING:
                break
        time.sleep(0.2)
    time.sleep(2)  # well inside the trial's run
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "re-run the same ganbench tune to resume the study" in err, err
    study = optuna.load_study(study_name="t", storage=open_storage(None, workdir, "t"))
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert runner.failures(study)[trial.number] == "stale: interrupted by SIGTERM"  # not counted toward --trials


def test_an_unreachable_tracking_server_is_refused_before_any_study_file(workdir, mnist_root, monkeypatch):
    """``tune`` used to write an empty Optuna journal before the tracking store refused."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a loopback port nothing listens on
    r = _tune(workdir, "--trials", "1")
    assert r.exit_code == 2 and r.stderr.startswith("error: MLFLOW_TRACKING_URI = 'http://127.0.0.1:9' is unreachable")
    assert not (workdir / "optuna").exists()


def test_a_study_file_with_a_scalar_for_a_table_is_named_in_the_error(tmp_path):
    """It was reported as "in the stored config": the study file is merged into the trials' base config."""
    from studies.runner import load_study

    path = tmp_path / "s.toml"
    path.write_text('train = 5\n[study]\narch = "dcgan"\n')
    with pytest.raises(ConfigError, match=rf"^train = 5 in study file '{path}' must be a table"):
        load_study(str(path), [], {})
