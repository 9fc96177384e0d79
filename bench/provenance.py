"""Where a number came from: ganbench version, git commit of the source, torch / CUDA versions.

Recorded as tags on every run (``ganbench.git_commit``, ``ganbench.torch``, ``ganbench.cuda``) and shown in
the report's footer.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

import torch

import bench


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the ganbench source tree ('+dirty' with uncommitted changes): read from git in a checkout
    (an editable install), else the commit setup.py recorded when the package was built from a clone, else
    says that none was recorded (a wheel built outside a git checkout)."""
    src = Path(bench.__file__).resolve().parents[1]
    if not (src / ".git").exists():  # an installed copy: the commit recorded at build time
        try:
            from bench._build_info import GIT_COMMIT
        except ImportError:
            GIT_COMMIT = None
        return f"{GIT_COMMIT} (recorded at install)" if GIT_COMMIT else "unknown (installed without a git checkout)"
    try:
        sha = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"{sha}+dirty" if dirty else sha


def provenance_tags() -> dict[str, str]:
    return {
        "ganbench.version": bench.__version__,
        "ganbench.git_commit": git_commit(),
        "ganbench.torch": torch.__version__,
        "ganbench.cuda": torch.version.cuda or "none (CPU build)",
    }
