"""A report built from a small real-MNIST comparison with 2 seeds per architecture and a diverging one."""

import subprocess

import pandas as pd
import pytest
from typer.testing import CliRunner

from architectures import LOSSES
from architectures.losses import LossSpec
from bench import keys
from bench.cli import app
from tests.conftest import FAST
from tests.reports.tools import need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, mnist_root):
    workdir = tmp_path_factory.mktemp("ws")
    LOSSES.register("test-nan-2", LossSpec(lambda r, f: (r.mean() * float("nan"), f.mean(), {}), 0.0))
    try:
        sets = [a for s in [*FAST, "model.dummy.loss=test-nan-2", f'workdir="{workdir}"'] for a in ("--set", s)]
        r = CliRunner().invoke(
            app, ["compare", "vanilla", "dcgan", "dummy", "--seeds", "2", "--steps", "4", "-q", *sets]
        )
    finally:
        LOSSES.unregister("test-nan-2")
    assert r.exit_code == 1, r.output  # the diverging runs fail the command, after the report is written
    return workdir / "reports" / "mnist-compare"


FIGURES = [
    "samples-vanilla",
    "samples-dcgan",
    "samples-over-training",
    "fid-vs-step",
    "fid-vs-time",
    "losses",
    "d-accuracy",
    "quality-vs-cost",
]


def test_all_files_exist(report_dir):
    for name in ["report.md", "report.html", "table.md", "table.csv", "table.tex", "table-body.tex", "pairwise.csv"]:
        assert (report_dir / name).stat().st_size > 0, name
    for fig in FIGURES:
        for ext in ("png", "pdf"):
            assert (report_dir / "figures" / f"{fig}.{ext}").stat().st_size > 0, f"{fig}.{ext}"


def test_statistics_over_two_seeds(report_dir):
    csv = pd.read_csv(report_dir / "table.csv")
    agg = csv[csv["row"] == "aggregate"].set_index("arch")
    fid = keys.eval_key("lenet-mnist", keys.FID)
    runs = csv[(csv["row"] == "run") & (csv["arch"] == "dcgan")]
    assert agg.loc["dcgan", "n_seeds"] == 2
    assert agg.loc["dcgan", fid] == pytest.approx(runs[fid].mean())
    assert agg.loc["dcgan", f"{fid} std"] == pytest.approx(runs[fid].std(ddof=1))
    assert agg.loc["dcgan", f"{fid} ci95_low"] < agg.loc["dcgan", fid] < agg.loc["dcgan", f"{fid} ci95_high"]
    pw = pd.read_csv(report_dir / "pairwise.csv")
    # only architectures with finished runs are compared (dummy diverged in both seeds)
    assert list(zip(pw["A"], pw["B"], strict=True)) == [("vanilla", "dcgan")]
    assert 0 <= pw.loc[0, "p"] <= 1 and pw.loc[0, "p_holm"] >= pw.loc[0, "p"]
    md = (report_dir / "report.md").read_text()
    assert "## Pairwise comparison on eval/lenet-mnist/fid" in md and "## Paper layout" in md
    assert md.count("Protocol: lenet-mnist") >= 2  # under every table


def test_failed_runs_are_listed_not_dropped(report_dir):
    md = (report_dir / "report.md").read_text()
    assert "## Failed, pruned or unfinished runs" in md
    for seed in (0, 1):
        assert f"- dummy seed {seed}: FAILED — TrainingDiverged: training diverged at generator step 1" in md
    assert "dummy seed 1: FAILED" in (report_dir / "report.html").read_text()
    csv = pd.read_csv(report_dir / "table.csv")
    assert csv[(csv["row"] == "aggregate") & (csv["arch"] == "dummy")]["n_failed"].item() == 2


def test_latex_compiles(report_dir, tmp_path):
    pdflatex = need("pdflatex", "texlive-latex-base texlive-latex-recommended")
    (tmp_path / "table.tex").write_text((report_dir / "table.tex").read_text())
    p = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "table.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout[-3000:]


def test_html_in_headless_chromium(report_dir, tmp_path):
    chromium = need("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    n_figures = len(list((report_dir / "figures").glob("*.png")))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((report_dir / "report.html").as_uri(), wait_until="load")
        images = page.evaluate(
            "[...document.images].map(i => "
            "[i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width])"
        )
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []  # self-contained
    assert len(images) == n_figures
    assert all(done and w > 0 and h > 0 and shown > 0 for done, w, h, shown in images)
    assert "Runs made with git commit" in text and "Runs made with torch" in text  # provenance footer
    assert (tmp_path / "report.png").stat().st_size > 10_000
