"""The one place the CLI prints: human (rich) or JSON, results to stdout, messages to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["console", "err", "emit", "table", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_PARTIAL",
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
