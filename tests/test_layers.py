"""The layers of docs/architecture.md, as import-linter contracts in pyproject.toml: a broken arrow is a red CI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "architectures", "studies", "reports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}  # the packages under root, not the installed ones
    return subprocess.run(
        [str(exe), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_layers_of_design_hold():
    p = _lint_imports(REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 kept, 0 broken" in p.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("architectures/registry.py", "import bench.errors", "architectures import nothing of ganbench"),
        ("bench/run.py", "import reports.build", "layers:"),
        ("bench/harness.py", "import bench.cli", "nothing imports bench.cli"),
        ("reports/tables.py", "import bench.metrics", "reports read MLflow"),
        ("bench/data/splits.py", "import bench.trainer", "no import cycles"),
    ],
)
def test_a_broken_arrow_is_caught(tmp_path, module, line, contract):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{line}  # the forbidden import\n")
    p = _lint_imports(tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert contract in p.stdout.split("Broken contracts")[1], p.stdout


def test_pytorch_fid_is_a_test_dependency_only():
    """Only a test compares with pytorch-fid's FID: no package module imports it, so it is not installed for users."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("pytorch-fid") for d in project["dependencies"])
    assert any(d.startswith("pytorch-fid") for d in project["optional-dependencies"]["dev"])
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            assert "pytorch_fid" not in path.read_text(), path
