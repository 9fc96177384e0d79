# ruff: noqa: I001  (the import order below is the order of the commands in --help)
"""The ``ganbench`` command line. Each command: parse -> typed config -> one library call; no logic here.

Errors from user input print one line (``error: ...``) and exit 2; set ``GANBENCH_DEBUG=1`` to see the
traceback. Ctrl-C exits 130. The commands live in ``training`` (compare, train, eval), ``analysis`` (report,
tune) and ``tools`` (bench, list, ui); ``common`` holds what they share.
"""

from __future__ import annotations

# importing registers the commands, in the order `ganbench --help` lists them
from bench.cli import training, analysis, tools  # noqa: F401
from bench.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    from bench import signals

    signals.install()
    app(prog_name="ganbench")
