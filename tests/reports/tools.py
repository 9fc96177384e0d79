"""External tools the report tests use (Debian packages that .ci/run installs)."""

from __future__ import annotations

import os
import shutil

import pytest


def need(tool: str, package: str) -> str:
    """The path of ``tool``; in CI a missing tool fails the test, elsewhere it skips with the reason."""
    path = shutil.which(tool) if not tool.startswith("__") else None
    if path is None:
        message = f"{tool} is not installed (Debian: apt-get install {package}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
