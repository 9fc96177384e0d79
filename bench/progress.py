"""Progress on the terminal: a rich progress bar whose rows fit 80 columns, or plain lines when the output is
not a terminal (a batch job's log, a pipe). ``bench.hooks.ProgressHook`` feeds either from the trainer."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress


def progress_bar(stream: TextIO | None = None) -> Progress | LineProgress:
    """The progress display of a command, on ``stream`` (default: stderr, so that stdout keeps the results).

    On a terminal: a rich Progress whose rows fit 80 columns: run, bar, step/total, D/G losses, img/s, ETA.
    Otherwise (a batch job's log, a pipe): a :class:`LineProgress` of plain lines."""
    stream = stream if stream is not None else sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return LineProgress(stream)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(bar_width=12),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TextColumn("{task.fields[speed]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(compact=True),
        console=Console(file=stream),
    )


class LineProgress:
    """Progress as plain lines, for output that is not a terminal: the part of rich's Progress interface
    that :class:`ProgressHook` uses (``add_task`` / ``update``, a context manager). A task prints a line when
    it starts, then whenever another ``fraction`` of its total is done or ``interval_s`` seconds have passed
    since its last line, and when it completes, e.g.::

        00:31:12 dcgan s0     4690/46850 10% D 0.412 G 2.91 903 img/s ETA 47:10

    (wall-clock time, run, generator step / total, D/G losses and img/s as the bar shows them, and the ETA as
    m:ss or h:mm:ss from the mean pace since the task started), in at most 80 columns (a long name loses the
    percentage, then its end). ``clock``: seconds, for tests."""

    def __init__(
        self,
        stream: TextIO | None = None,
        fraction: float = 0.1,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.fraction, self.interval_s, self.clock = fraction, interval_s, clock
        self.width = 80
        self._tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int, completed: int = 0, **fields: Any) -> int:
        task = len(self._tasks)
        now = self.clock()
        self._tasks[task] = {
            "description": description, "total": max(1, int(total)), "start": (now, completed),
            "last": (now, completed), "fields": dict(fields), "done": False,
        }  # fmt: skip
        self._print(task, completed, now)
        return task

    def update(self, task: int, completed: int | None = None, **fields: Any) -> None:
        t = self._tasks[task]
        t["fields"].update({k: v for k, v in fields.items() if v})
        if completed is None or t["done"]:
            return
        now, (last_time, last_step) = self.clock(), t["last"]
        due = completed - last_step >= self.fraction * t["total"] or now - last_time >= self.interval_s
        if completed >= t["total"] or (due and completed > last_step):
            self._print(task, completed, now)

    def _print(self, task: int, completed: int, now: float) -> None:
        t = self._tasks[task]
        t["last"], t["done"] = (now, completed), completed >= t["total"]
        (t0, s0), total = t["start"], t["total"]
        eta = ""
        if completed > s0 and completed < total:
            left = (now - t0) / (completed - s0) * (total - completed)
            eta = f"ETA {_clock_time(left)}"
        elif completed >= total:
            eta = "done"
        losses, speed = t["fields"].get("losses", ""), t["fields"].get("speed", "")
        head, desc = time.strftime("%H:%M:%S"), t["description"]
        tail = [f"{completed}/{total}", f"{100 * completed // total}%", losses, speed, eta]
        line = " ".join(p for p in [head, f"{desc:<12}", *tail] if p)
        if len(line) > self.width:  # a long name and an hour-long ETA: the percentage goes, then the name's end
            tail.pop(1)
            rest = " ".join(p for p in tail if p)
            line = f"{head} {desc[: max(4, self.width - len(head) - len(rest) - 2)]} {rest}"
        self.stream.write(line.rstrip() + "\n")
        self.stream.flush()


def _clock_time(seconds: float) -> str:
    """``m:ss`` under an hour, else ``h:mm:ss``."""
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
