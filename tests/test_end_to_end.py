"""End to end on real MNIST with a tiny budget: the CLI, MLflow, evaluation and the report together."""

import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from architectures import LOSSES
from architectures.losses import LossSpec
from bench import keys
from bench.cli import app
from bench.tracking import Tracker

pytestmark = pytest.mark.slow
runner = CliRunner()
FOUR = ["vanilla", "dcgan", "wgan-gp", "sngan"]


def _sets(fast_sets):
    return [a for s in fast_sets for a in ("--set", s)]


def test_compare_writes_report_and_four_finished_runs(fast_sets, workdir, mnist_root):
    r = runner.invoke(app, ["compare", "--steps", "3", "--experiment", "e2e", "-q", *_sets(fast_sets)])
    assert r.exit_code == 0, r.output
    out = workdir / "reports" / "e2e"
    report = (out / "report.md").read_text()
    assert "| Architecture" in report
    assert "Protocol: lenet-mnist (sha256 4b832653f182): 200 generated samples vs 10000 mnist/test images" in report
    assert "Not computed (n/a): inception-v3-compat: unavailable offline" in report  # this machine is offline
    assert "| FID (Inception) ↓" in report and "| real data (floor)" in report
    csv = pd.read_csv(out / "table.csv")
    table = csv[csv["row"] == "aggregate"]
    assert list(table["arch"]) == [*FOUR, "real-floor"]  # in the order of the comparison, then the floor
    assert len(csv[csv["row"] == "run"]) == 5
    fid = keys.eval_key("lenet-mnist", keys.FID)
    by_arch = table.set_index("arch")
    assert by_arch.loc["real-floor", fid] * 10 < by_arch.loc[FOUR, fid].min()  # real data is far better
    table = table[table["kind"] == "run"]
    assert table[keys.eval_key("inception-v3-compat", keys.FID)].isna().all()  # n/a, not invented
    metric_cols = [fid, keys.D_ROC_AUC, keys.MS_PER_STEP_P50, keys.eval_key("lenet-mnist", keys.PRECISION)]
    assert all(math.isfinite(v) for v in table[metric_cols].to_numpy().ravel())
    assert (table["n_seeds"] == 1).all() and (table[keys.G_STEPS] == 3).all()
    tex = (out / "table.tex").read_text()
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule")) and "wgan-gp" in tex
    for arch in FOUR:
        assert (out / "figures" / f"samples-{arch}.png").stat().st_size > 0
        assert (out / "figures" / f"samples-{arch}.pdf").stat().st_size > 0
    assert (out / "figures" / "losses.png").exists() and (out / "figures" / "fid-vs-step.pdf").exists()

    runs = Tracker(workdir).search_runs(["e2e"])
    assert sorted(r["tags"][keys.TAG_ARCH] for r in runs) == sorted([*FOUR, "real-floor"])
    assert {r["status"] for r in runs} == {"FINISHED"}
    dcgan = next(r for r in runs if r["tags"][keys.TAG_ARCH] == "dcgan")
    assert dcgan["params"]["model.lr_g"] == "0.0002" and dcgan["params"]["train.steps"] == "3"
    assert dcgan["tags"]["protocol.lenet-mnist.extractor_sha256"].startswith("4b832653")
    assert dcgan["tags"]["protocol.lenet-mnist.n_samples"] == "200"
    assert 0 <= dcgan["metrics"][keys.D_ACC] <= 1
    assert len(Tracker(workdir).metric_history(dcgan["run_id"], keys.D_LOSS)) == 3  # log_every=1

    # `ganbench report` rebuilds the same table from MLflow alone
    r2 = runner.invoke(
        app, ["report", "--experiment", "e2e", "--workdir", str(workdir), "--out", str(workdir / "again")]
    )
    assert r2.exit_code == 0, r2.output
    again = pd.read_csv(workdir / "again" / "table.csv")
    assert again.equals(csv)


def test_train_then_resume_continues_the_same_run(fast_sets, workdir, mnist_root):
    r = runner.invoke(
        app, ["train", "dcgan", "--steps", "2", "-q", *_sets(fast_sets), "--set", "model.dcgan.g_width=8"]
    )
    assert r.exit_code == 0, r.output
    ckpt = next(workdir.glob("runs/mnist-compare/dcgan-seed0-*/checkpoint.pt"))
    run_id = r.output.split("MLflow run: ")[1].strip()
    r = runner.invoke(app, ["train", "dcgan", "--resume", str(ckpt), "--steps", "4", "-q"])
    assert r.exit_code == 0, r.output
    assert r.output.split("MLflow run: ")[1].strip() == run_id
    (run,) = Tracker(workdir).search_runs(["mnist-compare"])
    assert run["status"] == "FINISHED"
    assert run["metrics"][keys.G_STEPS] == 4
    assert run["params"]["model.g_width"] == "8"  # the checkpoint's config, not the defaults


@pytest.fixture
def nan_loss():
    LOSSES.register("test-nan", LossSpec(lambda r, f: (r.mean() * float("nan"), f.mean(), {}), 0.0))
    yield "test-nan"
    LOSSES.unregister("test-nan")


def test_a_diverging_run_is_failed_and_the_comparison_goes_on(fast_sets, workdir, mnist_root, nan_loss):
    r = runner.invoke(
        app,
        [
            "compare",
            "dummy",
            "vanilla",
            "--steps",
            "2",
            "-q",
            "--set",
            f"model.dummy.loss={nan_loss}",
            *_sets(fast_sets),
        ],
    )
    assert r.exit_code == 1
    assert (
        "dummy seed 0: FAILED: TrainingDiverged: training diverged at generator step 1: train/d_loss = nan" in r.stderr
    )
    runs = {r["tags"][keys.TAG_ARCH]: r for r in Tracker(workdir).search_runs(["mnist-compare"])}
    assert (
        runs["dummy"]["status"] == "FAILED"
        and "diverged at generator step 1" in runs["dummy"]["tags"][keys.TAG_FAILURE]
    )
    assert runs["vanilla"]["status"] == "FINISHED"
    report = (workdir / "reports" / "mnist-compare" / "report.md").read_text()
    assert "## Failed, pruned or unfinished runs" in report and "- dummy seed 0: FAILED" in report


def test_keep_best_then_eval_a_run_logs_back(fast_sets, workdir, mnist_root):
    r = runner.invoke(
        app,
        [
            "train",
            "vanilla",
            "--steps",
            "6",
            "-q",
            *_sets(fast_sets),
            "--set",
            "train.keep_best=true",
            "--set",
            "train.eval_every=2",
        ],
    )
    assert r.exit_code == 0, r.output
    run_id = r.output.split("MLflow run: ")[1].strip()
    (run,) = Tracker(workdir).search_runs(["mnist-compare"])
    assert run["tags"][keys.TAG_SELECTION].startswith("best train/fid over 3 evaluations: step ")
    assert run["metrics"][keys.BEST_STEP] in (2, 4, 6)
    assert next(workdir.glob("runs/mnist-compare/vanilla-seed0-*/best.pt")).is_file()

    r = runner.invoke(app, ["eval", run_id, "--n-samples", "300", "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    assert "protocol: lenet-mnist (sha256 4b832653f182): 300 generated samples" in r.output
    assert f"logged to MLflow run {run_id}" in r.output
    (run,) = Tracker(workdir).search_runs(["mnist-compare"])
    assert run["status"] == "FINISHED"  # re-evaluation does not reopen the run
    assert run["tags"]["protocol.lenet-mnist.n_samples"] == "300"
    fid = keys.eval_key("lenet-mnist", keys.FID)
    t = Tracker(workdir)
    raw = sorted(t.client.get_metric_history(run_id, fid), key=lambda m: m.timestamp)
    assert [m.step for m in raw] == [6, 6]  # the re-evaluation is logged beside the first, at the final step
    assert t.metric_history(run_id, fid) == [(6, raw[1].value, raw[1].timestamp)]  # curves take the later one

    r = runner.invoke(app, ["eval", "not-a-run-or-file", "--workdir", str(workdir)])
    assert r.exit_code == 2 and "neither a checkpoint file nor an MLflow run" in r.stderr


USEFUL_FAST = ["eval.classifier_steps=10", "eval.classifier_test=500", "eval.augment_seeds=2"]


def test_eval_real_floor_command(workdir, mnist_root):
    args = [
        "eval",
        "--real",
        "--n-samples",
        "2000",
        "--workdir",
        str(workdir),
        "--experiment",
        "f",
        *_sets(USEFUL_FAST),
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    (run,) = Tracker(workdir).search_runs(["f"])
    assert run["tags"][keys.TAG_KIND] == keys.KIND_FLOOR
    m = run["metrics"]
    assert m[keys.eval_key("lenet-mnist", keys.IS_MEAN)] > 9.5
    assert 0 <= m[keys.eval_key("lenet-mnist", keys.FID)] < 20
    assert 0.5 < m[keys.eval_key("lenet-mnist", keys.RECALL)] <= 1
    # asked for by name, the floor has the CAS ceiling and the k-shot accuracies (a labelled dataset)
    assert 0.1 < m[keys.CAS_REAL] == m[keys.CAS] <= 1 and keys.augment_key(100, "real") in m
    assert "eval/cas/real_accuracy" in r.output


def test_conditional_and_unconditional_variants_in_one_comparison(fast_sets, workdir, mnist_root):
    """The issue's command, `ganbench compare cgan acgan sngan-projection dcgan`, with a tiny budget: one table
    on the shared metrics, the conditional runs' CAS / augmentation / intra-FID, the Usefulness section."""
    archs = ["cgan", "acgan", "sngan-projection", "dcgan"]
    sets = _sets([*fast_sets, *USEFUL_FAST])
    r = runner.invoke(app, ["compare", *archs, "--steps", "2", "--experiment", "cond", "-q", *sets])
    assert r.exit_code == 0, r.output
    out = workdir / "reports" / "cond"
    csv = pd.read_csv(out / "table.csv")
    table = csv[csv["row"] == "aggregate"].set_index("arch")
    assert list(table.index) == [*archs, "real-floor"]
    gain = keys.augment_key(10, "gain")
    assert table.loc[archs[:3], [keys.CAS, gain]].notna().all().all()
    assert table.loc[["dcgan", "real-floor"], gain].isna().all()  # unconditional / real: no augmentation gain
    assert table.loc["real-floor", keys.CAS] == table.loc["cgan", keys.CAS_REAL]  # the floor row is the ceiling
    assert table[keys.eval_key("lenet-mnist", keys.MODES)].notna().all()  # shared metrics: every row
    assert table.loc[archs[:3], keys.eval_key("lenet-mnist", keys.INTRA_FID)].notna().all()
    report = (out / "report.md").read_text()
    assert "## Usefulness: mnist" in report and "| CAS (%) ↑" in report and "aug. gain k=10 (pp)" in report
    assert "Protocol: CAS and augmentation: LeNet, Adam(1e-3), 10 steps of batch 64" in report
    for fig in ("usefulness-vs-k", "class-histogram", "samples-acgan"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
    runs = {x["tags"][keys.TAG_ARCH]: x for x in Tracker(workdir).search_runs(["cond"])}
    assert {x["status"] for x in runs.values()} == {"FINISHED"}
    assert "usefulness" not in " ".join(runs["dcgan"]["tags"])  # no experiment for an unconditional run


def test_bench_metrics_prints_figures(workdir, mnist_root):
    sets = [a for s in USEFUL_FAST for a in ("--set", s)]
    r = runner.invoke(app, ["bench", "metrics", "--n-samples", "1000", "--workdir", str(workdir), *sets])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    start = lines.index("conditional runs, 1000 labelled samples (seconds):")
    useful = lines[start:]
    assert max(len(line) for line in useful) <= 80
    per_run = next(line for line in useful if "CAS + augmentation" in line)
    assert float(per_run.split()[3]) > 0 and "per run (CAS" in per_run
    assert any(line.startswith("  intra-FID (lenet-mnist)") for line in useful)
    assert "10 steps of batch 64" in " ".join(useful)
    row = next(line for line in r.output.splitlines() if line.startswith("lenet-mnist"))
    cold, warm, rate = (float(x) for x in row.split()[2:5])
    assert cold > 0 and warm > 0 and rate > 0
    assert "inception-v3-compat    skipped: no GPU" in r.output or "inception-v3-compat" in r.output
