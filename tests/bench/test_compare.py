"""One compare path: the outcome of a grid, read back from MLflow by bench.compare.results for the sequential
compare and the shared grid alike (a fake store stands in for MLflow)."""

from bench import keys
from bench.compare import FLOOR_CELL, PENDING, CompareResult, cells, results
from bench.config import load_compare_config

CC = load_compare_config(None, overrides={"archs": ["dummy", "vanilla"], "seeds": [0]})


class Store:
    """What results() reads of bench.tracking.Tracker."""

    def __init__(self, runs):
        self.runs = runs

    def experiment_id(self, name, create=True):
        return "1"

    def search_runs(self, experiments):
        return self.runs


def _run(run_id, t, status, kind="run", arch=None, seed=0, fid=1.0):
    tags = {keys.TAG_KIND: kind}
    if arch:
        tags |= {keys.TAG_ARCH: arch, keys.TAG_SEED: str(seed)}
    return {"run_id": run_id, "start_time": t, "status": status, "tags": tags, "metrics": {"fid": fid}}


def test_the_floor_that_counts_is_the_newest_finished_one():
    runs = [
        _run("f-old", 1, "FINISHED", keys.KIND_FLOOR),
        _run("f-new", 2, "FINISHED", keys.KIND_FLOOR),
        _run("f-failed", 3, "FAILED", keys.KIND_FLOOR),
        _run("d", 4, "FINISHED", arch="dummy"),
        _run("v", 5, "FINISHED", arch="vanilla"),
    ]
    out = {r.arch: r for r in results(CC, Store(runs))}
    assert out[keys.KIND_FLOOR].run_id == "f-new" and out["dummy"].run_id == "d"
    assert cells(CC) == ["dummy/0", "vanilla/0", FLOOR_CELL]


def test_a_cell_that_made_no_run_this_time_is_failed_even_with_an_older_finished_run():
    runs = [_run("d-old", 1, "FINISHED", arch="dummy"), _run("v", 2, "FINISHED", arch="vanilla")]
    out = {r.arch: r for r in results(CC, Store(runs), why={"dummy/0": "ValueError: cannot build"})}
    assert (out["dummy"].status, out["dummy"].run_id, out["dummy"].error) == (
        "FAILED",
        None,
        "ValueError: cannot build",
    )
    assert out["vanilla"].status == "FINISHED"


def test_cells_other_workers_still_run_are_pending_not_failed():
    runs = [_run("d", 1, "RUNNING", arch="dummy"), _run("v", 2, "FINISHED", arch="vanilla")]
    result = CompareResult(results(CC, Store(runs), pending={"dummy/0", FLOOR_CELL}))
    assert [r.arch for r in result.pending] == ["dummy", keys.KIND_FLOOR] and not result.failed
    assert all(r.status == PENDING for r in result.pending)
    alone = CompareResult(results(CC, Store(runs)))  # the same store, nobody running it: failed
    assert [r.arch for r in alone.failed] == ["dummy", keys.KIND_FLOOR]


def test_a_launcher_left_without_workers_says_what_is_pending_and_leaves_the_report(tmp_path, monkeypatch):
    """Chaos on a shared grid: a launcher whose worker restarts ran out while another launcher still ran the
    grid said "4 of 7 runs failed", exited 1 and wrote a partial report."""
    from typer.testing import CliRunner

    import studies.grid
    from bench.cli import app
    from bench.run import RunResult

    pending = CompareResult(
        [RunResult("dummy", 0, "r", PENDING, error="running"), RunResult("vanilla", 0, "v", "FINISHED")]
    )
    monkeypatch.setattr(studies.grid, "run_grid", lambda *a, **k: pending)
    r = CliRunner().invoke(app, ["compare", "dummy", "vanilla", "--workers", "2", "--workdir", str(tmp_path / "ws")])
    assert r.exit_code == 0, r.output
    assert "1 of 2 runs are still running or waiting on other workers of this grid" in r.stderr
    assert "failed" not in r.output and not (tmp_path / "ws" / "reports").exists()


def test_the_report_counts_the_floor_compare_counts(workdir):
    """A --resume whose new floor run was killed: compare keeps the older FINISHED floor, and so does the
    report (it took the newest floor run whatever its status)."""
    import pytest

    from bench.tracking import Tracker
    from reports.collect import collect

    t = Tracker(workdir)
    tags = {keys.TAG_KIND: keys.KIND_FLOOR, keys.TAG_ARCH: keys.KIND_FLOOR, keys.TAG_SEED: 0}
    with t.run("exp", "real-floor", tags) as done:
        done.log_metrics({"eval/lenet-mnist/fid": 9.5})
    with pytest.raises(KeyboardInterrupt), t.run("exp", "real-floor", tags):
        raise KeyboardInterrupt
    floors = collect(["exp"], workdir).query("kind == @keys.KIND_FLOOR")
    assert list(floors["run_id"]) == [done.run_id] and list(floors["status"]) == ["FINISHED"]


def test_a_floor_that_raises_is_a_failed_cell_in_both_paths(monkeypatch):
    """The sequential compare let the floor's error escape after all training (no report); the grid settled
    it as failed. run_one returns it FAILED for both."""
    import bench.compare as compare

    def boom(cc, tracker):
        raise RuntimeError("disk full")

    monkeypatch.setattr(compare, "floor", boom)
    result = compare.run_one(FLOOR_CELL, CC, Store([]), None, resume=False)
    assert (result.arch, result.status, result.error) == (keys.KIND_FLOOR, "FAILED", "RuntimeError: disk full")


def test_run_end_lines_print_above_a_live_progress_bar(tmp_path, monkeypatch):
    """On a terminal, the line that ends a run used to land glued to the end of the progress bar's row
    (printed past rich's live display); it is now printed through it, on a line of its own."""
    import io

    from typer.testing import CliRunner

    import bench.compare
    from bench.cli import app
    from bench.progress import progress_bar
    from bench.run import RunResult

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()

    def fake_compare(cc, show_progress, on_run_end, resume):
        with progress_bar(screen) as progress:
            task = progress.add_task("vanilla s0", total=2, losses="", speed="")
            progress.update(task, completed=2)
            on_run_end(RunResult("vanilla", 0, "r", "FINISHED", {}))
        return CompareResult([RunResult("vanilla", 0, "r", "FINISHED", {})])

    monkeypatch.setattr(bench.compare, "compare", fake_compare)
    r = CliRunner().invoke(app, ["compare", "vanilla", "--steps", "1", "--no-report", "--workdir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    shown = screen.getvalue()
    assert "\x1b[2Kvanilla seed 0: FINISHED" in shown  # the bar's row cleared, the line written, the bar redrawn
