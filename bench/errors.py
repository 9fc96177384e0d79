"""The exception types users see.

Every error caused by user input derives from :class:`UserError`; the CLI prints its message as one line
and exits with code 2. Anything else is a bug or a failure of the run itself.
"""

from __future__ import annotations

# the root and the registry's error live with the generic Registry (the lowest layer), so that
# ``architectures`` needs nothing of ``bench``
from architectures.registry import UnknownNameError, UserError

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "TakenOver",
    "TrainingDiverged",
    "UnknownNameError",
    "UserError",
]


class ConfigError(UserError):
    """An unknown config key, a value of the wrong type, or a value out of range."""


class DataError(UserError):
    """The dataset cannot be found, or its files are corrupt."""


class CheckpointError(UserError):
    """A checkpoint file that is missing, truncated, or not a ganbench checkpoint."""


class TakenOver(Exception):
    """Another worker of a shared grid took this run over (this worker looked dead to it, e.g. its heartbeat
    stopped): this process stops at once and leaves the run, its MLflow status and its checkpoint to the other.
    """


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite; the run is marked FAILED.

    Attributes: ``step`` (generator step, 1-based), ``loss`` (what diverged), ``value`` (the bad value),
    ``checkpoint`` (the last good checkpoint, or None).
    """

    def __init__(self, step: int, loss: str, value: float, checkpoint: object = None):
        where = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was written"
        super().__init__(f"training diverged at generator step {step}: {loss} = {value} ({where})")
        self.step, self.loss, self.value, self.checkpoint = step, loss, value, checkpoint
