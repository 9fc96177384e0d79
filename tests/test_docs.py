"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing page or a docstring
mkdocstrings cannot read fails), and its layout table matches the tree."""

import os
import re
import subprocess
import sys

from tests.conftest import REPO

PACKAGES = ("bench", "architectures", "studies", "reports")


def test_the_site_builds_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    p = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "site" / "architecture" / "index.html").is_file()
    assert "Trainer" in (tmp_path / "site" / "api" / "training" / "index.html").read_text()


def _layout_section() -> str:
    text = (REPO / "docs" / "architecture.md").read_text()
    return text[text.index("## Layout") : text.index("## The layers")]


def test_the_layout_table_names_every_module_of_the_tree():
    layout = _layout_section()
    missing = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            rel = path.relative_to(REPO).as_posix()
            if not re.search(rf"(`{re.escape(rel)}`|\b{re.escape(path.stem)}\b)", layout):
                missing.append(rel)
    assert not missing, f"docs/architecture.md's layout does not name: {missing}"


def test_every_path_in_the_layout_table_exists():
    paths = re.findall(r"`((?:bench|architectures|studies|reports)/[\w/.]*)`", _layout_section())
    assert paths and all((REPO / p).exists() for p in paths), [p for p in paths if not (REPO / p).exists()]
