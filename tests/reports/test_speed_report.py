"""The speed table of reports: rows of `ganbench bench speed`, kept apart from the comparison table."""

import pandas as pd
from typer.testing import CliRunner

from bench import keys
from bench.cli import app
from bench.tracking import Tracker
from reports import speed
from reports.build import build_report

FID = keys.eval_key("lenet-mnist", keys.FID)


def _speed_rows():
    rows, t = [], 0
    for session, arch, paths in (
        ("s1", "vanilla", {"baseline": 20.0, "ganbench": 10.0}),
        ("s1", "dcgan", {"baseline": 40.0, "ganbench": 32.0}),
        ("s2", "vanilla", {"baseline": 16.0, "ganbench": 8.0, "ganbench bf16": 4.0}),
    ):
        for path, ms in paths.items():
            t += 1
            base = paths["baseline"]
            rows.append(
                {
                    "arch": arch,
                    "speed_path": path,
                    "speed_session": session,
                    "start_time": t,
                    "device": "cpu",
                    keys.MS_PER_STEP_P50: ms,
                    keys.SPEEDUP: base / ms,
                }
            )
    return pd.DataFrame(rows)


def test_latest_invocation_per_architecture():
    rows = speed.latest_speed_rows(_speed_rows())
    assert list(zip(rows["arch"], rows["speed_path"], strict=True)) == [
        ("vanilla", "baseline"),
        ("vanilla", "ganbench"),
        ("vanilla", "ganbench bf16"),  # session s2 replaced s1 for vanilla
        ("dcgan", "baseline"),
        ("dcgan", "ganbench"),
    ]


def test_speed_frame_formats_and_marks_missing_values():
    frame = speed.speed_frame(_speed_rows())
    assert list(frame.columns) == ["Architecture", "Path", *[h for _, h, _ in speed.SPEED_COLUMNS]]
    assert list(frame["vs baseline"]) == ["1.00×", "2.00×", "4.00×", "1.00×", "1.25×"]
    assert list(frame["ms/step p50"])[:3] == ["16.0", "8.0", "4.0"]
    assert set(frame["img/s"]) == {"n/a"}  # not in these rows
    assert speed.speed_frame(_speed_rows(), "latex")["vs baseline"].iloc[1] == r"2.00$\times$"


def _log(tracker, experiment, name, tags, metrics):
    with tracker.run(experiment, name, tags) as run:
        run.log_metrics(metrics)


def test_report_keeps_speed_rows_out_of_the_comparison(workdir):
    tracker = Tracker(workdir)
    for seed, fid in ((0, 30.0), (1, 34.0)):
        tags = {keys.TAG_ARCH: "dcgan", keys.TAG_SEED: str(seed)}
        _log(tracker, "cmp", f"dcgan-{seed}", tags, {FID: fid, keys.MS_PER_STEP_P50: 50.0})
    for path, ms in (("baseline", 60.0), ("ganbench", 40.0)):
        tags = {keys.TAG_ARCH: "dcgan", keys.TAG_SPEED_PATH: path, keys.TAG_SPEED_SESSION: "s"}
        _log(tracker, "ganbench-speed", f"dcgan-{path}", tags, {keys.MS_PER_STEP_P50: ms, keys.SPEEDUP: 60.0 / ms})

    out = build_report(["cmp", "ganbench-speed"], workdir / "both", workdir)
    md = (out / "report.md").read_text()
    assert "Runs: 2 finished, 0 failed" in md  # the speed rows are not counted as runs
    assert "32.00 ± 2.83" in md  # dcgan's FID over its two seeds only
    speed_md = md.split("## Training speed (ganbench bench speed)")[1]
    assert "| dcgan          | ganbench | 40.0" in speed_md and "1.50×" in speed_md
    assert "Training speed" in (out / "report.html").read_text()
    assert len(pd.read_csv(out / "speed.csv")) == 2

    only = build_report(["ganbench-speed"], workdir / "speed", workdir)
    assert sorted(p.name for p in only.iterdir()) == [
        "report.html",
        "report.md",
        "speed.csv",
        "table-body.tex",
        "table.tex",
    ]
    assert "1.50×" in (only / "report.md").read_text() and r"1.50$\times$" in (only / "table.tex").read_text()


def test_bench_speed_then_report_shows_the_latest_invocation(workdir, mnist_root):
    runner = CliRunner()
    for steps in ("3", "2"):
        args = ["bench", "speed", "vanilla", "--steps", steps, "--rounds", "1", "--workdir", str(workdir)]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", "--experiment", "ganbench-speed", "--workdir", str(workdir)])
    assert r.exit_code == 0, r.output
    printed = [line for line in r.output.splitlines() if line.startswith("| vanilla")]
    assert [line.split("|")[2].strip() for line in printed] == ["baseline", "ganbench", "ganbench bf16"]
    csv = pd.read_csv(workdir / "reports" / "ganbench-speed" / "speed.csv")
    assert len(csv) == 3 and csv[keys.SPEEDUP].iloc[0] == 1.0
    md = (workdir / "reports" / "ganbench-speed" / "report.md").read_text()
    assert "timed generator steps per row 2," in md  # the second invocation's rows, not the first's
