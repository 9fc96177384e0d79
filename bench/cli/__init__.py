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
    """The ``ganbench`` script. Usage errors (unknown option, a value of the wrong type) are one
    ``error:`` line and exit 2, like every other bad input."""
    import sys

    import typer

    from bench import signals
    from bench.cli.common import one_line

    signals.install()
    try:
        code = app(prog_name="ganbench", standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as e:  # typer's (click's) usage errors: no such option, a bad value, ...
        ctx, message = getattr(e, "ctx", None), e.format_message().strip()
        see = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        if message:  # empty after no arguments: the help was shown
            print(f"error: {one_line(message)}{see}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
