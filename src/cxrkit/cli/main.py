"""Entry point of ``cxr``: registers the command groups and maps cxrkit errors to exit codes.

Errors a user can fix (``CxrkitError``) print one line and exit 1 (4 when the output
could not be written, 130 on Ctrl-C); a traceback is shown only with ``CXRKIT_DEBUG=1``,
because a stack trace is noise to most users.
"""

from __future__ import annotations

import logging
import os

import typer
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import CxrkitError, OutputError
from . import age, convert, datasets, evaluate, explain, models, predict, serve, survival, train
from ._output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OUTPUT, err


def _debug() -> bool:
    return os.environ.get("CXRKIT_DEBUG") == "1"


class _CxrGroup(TyperGroup):
    """Turns a ``CxrkitError`` from any command into one clear line and exit code 1."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except CxrkitError as exc:
            if _debug():
                raise
            # soft_wrap: one line whatever the width (rich would fold a long path at 80 columns)
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_OUTPUT if isinstance(exc, OutputError) else EXIT_ERROR) from None
        except KeyboardInterrupt:
            # Ctrl-C outside a batch (loading a model, scanning folders): one line, the shell's
            # code for SIGINT, no traceback. Batch commands say what they kept (cli/_batch.py).
            if _debug():
                raise
            err.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    name="cxr",
    cls=_CxrGroup,
    help="cxrkit: deep learning on chest X-rays.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("predict")(predict.predict)
app.command("age")(age.age)
app.command("convert")(convert.convert)
app.command("train")(train.train)
app.command("tune")(train.tune)
app.command("evaluate")(evaluate.evaluate)
app.command("explain")(explain.explain)
app.command("survival")(survival.survival)
app.command("serve")(serve.serve)
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")


def main() -> None:
    logging.basicConfig(
        level=logging.DEBUG if _debug() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not _debug():
        # pydicom logs every failed decoder attempt with a traceback; cxrkit already turns a
        # file no decoder can read into one error row that names the codec and the reason.
        logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    app()


if __name__ == "__main__":
    main()
