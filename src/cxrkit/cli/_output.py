"""The one place the CLI prints: human (rich) or JSON, results to stdout, messages to stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import (  # typer's own click, not exported
    NoArgsIsHelpError,
    UsageError,
)
from typer.core import TyperGroup

from ..errors import CxrkitError, OutputError

__all__ = ["console", "err", "emit", "table", "debug", "CxrGroup", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_PARTIAL",
           "EXIT_OUTPUT", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_ERROR = 1  # a CxrkitError stopped the command
EXIT_USAGE = 2  # bad flags (typer's own code)
EXIT_PARTIAL = 3  # the command ran, but some inputs failed (see their error rows)
EXIT_OUTPUT = 4  # the output could not be written (disk full, read-only, size limit); --resume continues
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention); finished rows are kept

console = Console()
err = Console(stderr=True)


def emit(data: Any, fmt: str = "human", human: Any = None) -> None:
    """Print ``data`` as JSON, or ``human`` (a rich renderable/str) for people."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        console.print(human if human is not None else data)


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> Table:
    out = Table(title=title, show_lines=False)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    return out


def debug() -> bool:
    """``CXRKIT_DEBUG=1``: tracebacks instead of one-line errors."""
    return os.environ.get("CXRKIT_DEBUG") == "1"


def _usage_line(exc: UsageError) -> NoReturn:
    """Typer's framed usage box becomes one line; help asked for by giving no arguments still shows."""
    if isinstance(exc, NoArgsIsHelpError) or debug():
        raise exc
    where = f"; see {exc.ctx.command_path} --help" if exc.ctx is not None else ""
    err.print(f"[bold red]error:[/] {escape(exc.format_message())}{where}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE) from None


class CxrGroup(TyperGroup):
    """Turns a ``CxrkitError`` from any command into one clear line and exit code 1."""

    def make_context(self, *args: Any, **kwargs: Any) -> typer.Context:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:  # a bad flag of `cxr` itself
            _usage_line(exc)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # bad flags of a command: one line, exit 2, like every other error
            _usage_line(exc)
        except CxrkitError as exc:
            if debug():
                raise
            # soft_wrap: one line whatever the width (rich would fold a long path at 80 columns)
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_OUTPUT if isinstance(exc, OutputError) else EXIT_ERROR) from None
        except KeyboardInterrupt:
            # Ctrl-C outside a batch (loading a model, scanning folders): one line, the shell's
            # code for SIGINT, no traceback. Batch commands say what they kept (cli/_batch.py).
            if debug():
                raise
            err.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
