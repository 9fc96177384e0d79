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


def _rows() -> list[tuple[str, str]]:
    """(first cell, whole row) of the layout section's table rows."""
    return [(line.split("|")[1], line) for line in _layout_section().splitlines() if line.startswith("| `")]


def _named(rel: str, rows: list[tuple[str, str]]) -> bool:
    """``bench/metrics/fidelity.py`` is named by a row whose first cell holds that path, or whose first cell is
    its folder (`` `bench/metrics/` ``) or a sibling path and which holds `` `fidelity` `` or `` `fidelity.py` ``."""
    folder, name = rel.rsplit("/", 1)
    stem = name.removesuffix(".py")
    for first, row in rows:
        if f"`{rel}`" in first:
            return True
        mine = f"`{folder}/`" in first or re.search(rf"`{re.escape(folder)}/[\w.]+`", first)
        if mine and (f"`{stem}`" in row or f"`{name}`" in row):
            return True
    return False


def test_the_layout_table_names_every_module_of_the_tree():
    rows = _rows()
    missing = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if path.name not in ("__init__.py", "__main__.py") and not _named(rel, rows):
                missing.append(rel)
    assert not missing, f"docs/architecture.md's layout does not name: {missing}"


def test_every_path_in_the_layout_table_exists():
    paths = re.findall(r"`((?:bench|architectures|studies|reports)/[\w/.]*)`", _layout_section())
    assert paths and all((REPO / p).exists() for p in paths), [p for p in paths if not (REPO / p).exists()]


GENERATED = {"bench._build_info": "written by setup.py at install time"}


def _resolves(dotted: str) -> bool:
    import dataclasses
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
            if not hasattr(obj, name) and name not in fields:
                return False
            obj = getattr(obj, name, None)
        return True
    return False


def test_every_dotted_name_in_the_code_and_docs_exists():
    """No stale reference: ``bench.metrics.evaluate`` or ``bench.harness.fit`` named after they moved, in a
    docstring, a comment or a page (the module paths users read in error messages and docs)."""
    pattern = re.compile(r"\b((?:bench|architectures|studies|reports)(?:\.[A-Za-z_]\w*)+)")
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    files += [*(REPO / "docs").rglob("*.md"), REPO / "README.md"]
    stale = set()
    for path in files:
        for m in pattern.finditer(path.read_text()):
            name = m.group(1)
            if name.split(".")[-1] not in ("py", "toml", "md") and name not in GENERATED and not _resolves(name):
                stale.add(f"{path.relative_to(REPO)}: {name}")
    for path in files:  # file paths too: bench/config.py after it became a package
        for m in re.finditer(r"\b((?:bench|architectures|studies|reports|tests)/[\w/]+\.py)\b", path.read_text()):
            if not (REPO / m.group(1)).is_file():
                stale.add(f"{path.relative_to(REPO)}: {m.group(1)}")
    assert not stale, sorted(stale)
    text = "\n".join(p.read_text() for p in files)
    assert "DESIGN.md" not in text and "PROVENANCE" not in text  # files users of the package do not have
