"""SIGINT / SIGTERM: finish the current training step, write a checkpoint, end the MLflow run KILLED.

``install()`` (done by the CLI) routes both signals here. Inside a ``deferred()`` block (a training step,
a write to the tracking store) the signal waits for the block to end, so neither the checkpoint nor the
store is left half-written; anywhere else it interrupts at once. A second signal inside a block interrupts
immediately, except a SIGTERM within ``TERM_REPEAT_S`` of the first: batch systems signal every process of a
job (Slurm's ``scancel`` and time limit) and a launcher passes its own SIGTERM on to its workers, so a
worker often gets two at once, and the second must not cut short the checkpoint the first asked for (Ctrl-C
twice still forces; ``kill -9`` always does). Blocks nest: the signal is raised when the outermost block
ends. The exception is :class:`Interrupted`, a KeyboardInterrupt whose ``exit_code`` is 128 + the signal
number (130 for SIGINT, 143 for SIGTERM).

Why the store too: a signal raised inside SQLite's ``executemany`` leaves MLflow's connection holding the
write lock, and the write that ends the run KILLED then fails with "database is locked".
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

TERM_REPEAT_S = 60.0  # a SIGTERM this soon after the first is the same request (see above)


class _State:
    depth = 0  # open deferred() blocks
    pending: int | None = None  # the signal a block holds back
    term_at: float | None = None  # time.monotonic() of the first SIGTERM


_state = _State()


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _handler(signum: int, frame: object) -> None:
    if signum == signal.SIGTERM:
        now = time.monotonic()
        if _state.term_at is not None and now - _state.term_at < TERM_REPEAT_S:
            return
        _state.term_at = now
    if _state.depth and _state.pending is None:
        _state.pending = signum
        return
    _state.pending = None
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only)."""
    _state.depth, _state.pending, _state.term_at = 0, None, None
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


@contextmanager
def deferred() -> Iterator[None]:
    """A block a signal does not cut in half: it is raised as :class:`Interrupted` when the outermost block ends.

    Only the main thread receives signals; elsewhere the block is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
    pending = _state.pending
    if pending is not None and not _state.depth:
        _state.pending = None
        raise Interrupted(pending)
