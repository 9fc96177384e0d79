"""Build hook: record the git commit of the source tree in the package (``bench/_build_info.py``), so that a
``pip install .`` from a clone still tells which commit made a number (``bench.provenance``). All other
metadata is in pyproject.toml."""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def _git(*args: str) -> str:
    src = Path(__file__).resolve().parent
    return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, timeout=10, check=True).stdout


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        try:
            commit = _git("rev-parse", "--short=12", "HEAD").strip()
            if _git("status", "--porcelain", "--untracked-files=no").strip():
                commit += "+dirty"
        except (OSError, subprocess.SubprocessError):
            commit = None
        target = Path(self.build_lib) / "bench" / "_build_info.py"
        target.write_text(f'"""Written at install time by setup.py."""\n\nGIT_COMMIT = {commit!r}\n')


setup(cmdclass={"build_py": BuildPyWithCommit})
