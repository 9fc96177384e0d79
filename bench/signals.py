"""SIGINT / SIGTERM: finish the current training step, write a checkpoint, end the MLflow run KILLED.

``install()`` (done by the CLI) routes both signals here. Inside a step (``deferred()``), the signal waits
for the step to end, so the checkpoint holds a consistent state; anywhere else it interrupts at once. A
second signal during a step interrupts immediately. The exception is :class:`Interrupted`, a
KeyboardInterrupt whose ``exit_code`` is 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_state: dict[str, int | bool | None] = {"defer": False, "pending": None}


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _handler(signum: int, frame: object) -> None:
    if _state["defer"] and _state["pending"] is None:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only)."""
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


@contextmanager
def deferred() -> Iterator[None]:
    """A block a signal does not cut in half: it is raised as :class:`Interrupted` when the block ends."""
    _state["defer"], _state["pending"] = True, None
    try:
        yield
    finally:
        _state["defer"] = False
    pending = _state["pending"]
    if pending is not None:
        _state["pending"] = None
        raise Interrupted(int(pending))
