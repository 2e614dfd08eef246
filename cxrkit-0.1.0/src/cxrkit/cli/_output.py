"""The one place the CLI prints: human (rich) or JSON, results to stdout, messages to stderr."""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from ..errors import CxrkitError, OutputError

# The click that typer runs on: typer before 0.26 depends on the `click` package, typer 0.26 and
# later carry their own copy and no longer install `click`. Both are reached through typer's public
# `BadParameter` (a click `UsageError`), so `cxr` starts with every typer the package admits and
# never names a private module; `click.globals.get_current_context` and `UsageError` are click's
# public API in either copy. `NoArgsIsHelpError` exists from click 8.2 on.
_click_exceptions = sys.modules[typer.BadParameter.__module__]
UsageError: type[Exception] = _click_exceptions.UsageError
NoArgsIsHelpError: type[Exception] | tuple[()] = getattr(_click_exceptions, "NoArgsIsHelpError", ())
get_current_context = importlib.import_module(
    _click_exceptions.__name__.rpartition(".")[0] + ".globals").get_current_context

__all__ = ["console", "err", "emit", "table", "debug", "CxrGroup", "speaks_flags", "flag_names", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_PARTIAL",
           "EXIT_OUTPUT", "EXIT_INTERRUPTED", "root"]

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


# a backticked Python name in a library message: `age_bands`, or an option key like `label_options["id_column"]`
_NAME = re.compile(r'`([A-Za-z_]\w*(?:\["\w+"\])?)`')
F = TypeVar("F", bound=Callable[..., Any])


def flag_names(text: str, params: list, aliases: Mapping[str, str] | None = None) -> str:
    """``text`` with each backticked name of one of ``params`` (click parameters) written as the
    user typed it: an option as its long flag (``age_bands`` -> ``--age-bands``), an argument as
    its metavar. ``aliases`` maps a library name to the command's parameter where the two differ
    (``label_names`` -> ``label``). Other backticked names are left as they are."""
    spelled = {}
    for param in params:
        longs = [o for o in param.opts if o.startswith("--")]
        if longs:
            spelled[param.name] = longs[0]
        elif getattr(param, "param_type_name", "") == "argument":
            spelled[param.name] = getattr(param, "metavar", None) or param.name.upper()

    def spell(match: re.Match) -> str:
        name = match.group(1)
        return spelled.get((aliases or {}).get(name, name), match.group(0))

    return _NAME.sub(spell, text)


def speaks_flags(aliases: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """Decorate a command so the ``CxrkitError`` it raises names its flags, not Python parameters.

    Library messages name parameters (`age_bands`), which is right for a Python caller; at the
    command line the same advice must read ``--age-bands``. The message is reworded in place
    (same exception object, type and attributes), so ``CxrGroup`` and tests see the CLI wording.
    """

    def wrap(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except CxrkitError as exc:
                ctx = get_current_context(silent=True)
                if ctx is not None and exc.args and isinstance(exc.args[0], str):
                    text = flag_names(exc.args[0], ctx.command.params, aliases)
                    exc.args = (text, *exc.args[1:])
                    if isinstance(getattr(exc, "msg", None), str):  # ImportError keeps its own copy
                        setattr(exc, "msg", text)  # noqa: B010 (not every CxrkitError has one)
                raise

        run.speaks_flags = True  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap


def _usage_line(exc: Any) -> NoReturn:
    """Typer's framed usage box becomes one line; help asked for by giving no arguments still shows."""
    if isinstance(exc, NoArgsIsHelpError) or debug():
        raise exc
    where = f"; see {exc.ctx.command_path} --help" if exc.ctx is not None else ""
    err.print(f"[bold red]error:[/] {escape(exc.format_message())}{where}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE) from None


class CxrGroup(TyperGroup):
    """Turns a ``CxrkitError`` from any command into one clear line and exit code 1.

    Every command is decorated with :func:`speaks_flags`, so the line names flags where the
    library named Python parameters."""

    # Contexts are typed Any: click's Context class is not part of typer's public API.
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:  # a bad flag of `cxr` itself
            _usage_line(exc)

    def invoke(self, ctx: Any) -> Any:
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


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"cxr (cxrkit) {__version__}", highlight=False)
        raise typer.Exit(EXIT_OK)


def root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the installed cxrkit version and exit."),
) -> None:
    """cxrkit: deep learning on chest X-rays."""
