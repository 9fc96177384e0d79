"""External tools the tests use (Debian packages and a PostgreSQL server that .ci/run provides)."""

from __future__ import annotations

import os
import shutil

import pytest


def missing(message: str) -> None:
    """A prerequisite is absent: in CI (where .ci/run provides it) the test fails, elsewhere it skips."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def need(tool: str, package: str) -> str:
    """The path of ``tool``, or :func:`missing` naming the package that provides it."""
    path = shutil.which(tool)
    if path is None:
        missing(f"{tool} is not installed (Debian: apt-get install {package}; .ci/run installs it)")
    return path
