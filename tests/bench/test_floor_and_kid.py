"""The evaluation protocol beyond MNIST: KID on unit-scaled features checked against an independent
computation, the reduced reference as a seeded random subset, the floor as mean +- std over subsets, and a
report that holds several datasets."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bench import keys
from bench.cli import app
from bench.config import DataConfig, EvalConfig
from bench.data import DATASETS, ImageData, load
from bench.metrics.extractors import FeatureExtractorLeNet
from bench.metrics.fidelity import fidelity, reference_images
from bench.metrics.floor import FLOOR_STD
from bench.tracking import Tracker

CPU = torch.device("cpu")
runner = CliRunner()
KID = keys.eval_key("lenet-mnist", keys.KID_MEAN)
FID = keys.eval_key("lenet-mnist", keys.FID)


def _kid_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3 (Bińkowski et al. 2018, eq. 4),
    on features scaled to norm sqrt(d): written from the paper, not from torch-fidelity."""
    d = x.shape[1]
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(d)
    y = y / np.linalg.norm(y, axis=1, keepdims=True) * np.sqrt(d)
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m = len(x)
    off = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(off - 2 * kxy.mean())


def test_kid_matches_an_independent_computation(mnist):
    wd, train, test = mnist
    fakes, reals = train.images[:300], test.images[:300]
    reference = ImageData("mnist", "test", reals, test.labels[:300], DATASETS.get("mnist"), test.classes)
    cfg = EvalConfig(n_samples=300, kid_subsets=1, kid_subset_size=300, extractor="lenet-mnist")
    m, protocol = fidelity(fakes, reference, cfg, wd, CPU, metrics=("kid",))
    ext = FeatureExtractorLeNet("ganbench-lenet-mnist", ["penultimate"])
    with torch.no_grad():
        fx, fy = (ext(x)[0].double().numpy() for x in (fakes, reals))
    assert m[KID] == pytest.approx(_kid_by_hand(fx, fy), rel=1e-4, abs=1e-7)
    assert "KID on penultimate, scaled to norm sqrt(128)" in protocol.line()
    # a readable scale: real vs real is ~0, real vs noise is far larger than its spread
    noise = torch.randint(0, 256, (300, 1, 28, 28), dtype=torch.uint8)
    bad, _ = fidelity(noise, reference, cfg, wd, CPU, metrics=("kid",))
    assert bad[KID] > 100 * abs(m[KID]) and 0.01 < bad[KID] < 8  # bounded: the kernel lies in [0, 8]


def test_a_reduced_reference_is_a_seeded_random_subset(mnist):
    _, _, test = mnist
    a, how = reference_images(test, EvalConfig(n_reference=1000))
    b, _ = reference_images(test, EvalConfig(n_reference=1000))
    c, how_c = reference_images(test, EvalConfig(n_reference=1000, reference_seed=1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert how == "random (seed 0) of 10000" and how_c == "random (seed 1) of 10000"
    assert not torch.equal(a, test.images[:1000])  # not "the first N"
    full, how_full = reference_images(test, EvalConfig())
    assert how_full == "all" and full.shape[0] == 10000


@pytest.mark.slow
def test_the_floor_is_mean_and_std_over_seeded_subsets(mnist_root, workdir):
    sets = ["eval.n_samples=300", "eval.kid_subset_size=100", "eval.kid_subsets=10", "eval.floor_subsets=3"]
    args = ["eval", "--real", "--workdir", str(workdir), *[x for s in sets for x in ("--set", s)]]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    (run,) = Tracker(str(workdir)).search_runs(["mnist-compare"])
    # recompute each subset the way the floor draws it: seeds 0, 1, 2 over the training split
    train, test = (load(DataConfig(), s, workdir) for s in ("train", "test"))
    cfg = EvalConfig(n_samples=300, kid_subset_size=100, kid_subsets=10, extractor="lenet-mnist")
    fids = []
    for i in range(3):
        idx = torch.randperm(60000, generator=torch.Generator().manual_seed(i))[:300]
        fids.append(fidelity(train.images[idx], test, cfg, workdir, CPU, metrics=("fid",), seed=i)[0][FID])
    assert run["metrics"][FID] == pytest.approx(np.mean(fids), rel=1e-9)
    assert run["metrics"][FLOOR_STD + FID] == pytest.approx(np.std(fids, ddof=1), rel=1e-9)
    assert np.std(fids) > 0  # the subsets differ: the spread is real
    report = runner.invoke(app, ["report", "--experiment", "mnist-compare", "--workdir", str(workdir)])
    assert report.exit_code == 0, report.output
    floor_row = next(line for line in report.output.splitlines() if line.startswith("real data (floor)"))
    assert f"{np.mean(fids):.2f} ± {np.std(fids, ddof=1):.2f}" in floor_row


@pytest.mark.slow
def test_one_report_holds_several_datasets_one_table_each(mnist_root, fast_sets, workdir):
    sets = [x for s in [*fast_sets, "eval.floor_subsets=2"] for x in ("--set", s)]
    for dataset in ("mnist", "fashion-mnist"):
        r = runner.invoke(app, ["compare", "dummy", "--steps", "2", "--dataset", dataset, "-q", "--no-report", *sets])
        assert r.exit_code == 0, r.output
    out = workdir / "both"
    args = ["report", "--experiment", "mnist-compare", "--experiment", "fashion-mnist-compare"]
    r = runner.invoke(app, [*args, "--workdir", str(workdir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    mnist_part, fashion_part = md.split("## Comparison: mnist")[1].split("## Comparison: fashion-mnist")
    assert "FID (LeNet) ↓" in mnist_part.split("##")[0] and "LeNet-F" not in mnist_part.split("##")[0]
    assert "FID (LeNet-F) ↓" in fashion_part.split("##")[0] and "FID (LeNet) ↓" not in fashion_part.split("##")[0]
    assert "vs 200 fashion-mnist/test images" not in md  # the whole test split is the reference
    assert "lenet-fashion-mnist (sha256 7689c60960c3" in md and "fashion-mnist/test" in md
    assert (out / "figures" / "mnist").is_dir() and (out / "figures" / "fashion-mnist").is_dir()
    assert "dataset: mnist\n" in r.output and "dataset: fashion-mnist\n" in r.output  # one console table per dataset
    csv = (out / "table.csv").read_text()
    assert ",mnist," in csv and ",fashion-mnist," in csv


def test_the_floor_records_its_first_subsets_seed(mnist):
    """The protocol of the floor names the seed of its first subset (the run's seed), not the last one's."""
    from bench.metrics.evaluator import Evaluator

    wd, train, test = mnist
    cfg = EvalConfig(n_samples=200, kid_subset_size=50, floor_subsets=3)
    metrics, protocols = Evaluator(test, cfg, wd, CPU, {}, seed=7).floor(train)
    assert [p.seed for p in protocols] == [7] and FLOOR_STD + FID in metrics
