"""Entry point of ``cxr``: registers the command groups and maps cxrkit errors to exit codes.

Errors a user can fix (``CxrkitError``) print one line and exit 1 (4 when the output
could not be written, 130 on Ctrl-C); a traceback is shown only with ``CXRKIT_DEBUG=1``,
because a stack trace is noise to most users.
"""

from __future__ import annotations

import logging

import typer

from . import (
    age,
    bench,
    convert,
    datasets,
    embed,
    evaluate,
    explain,
    export,
    listen,
    models,
    predict,
    serve,
    similar,
    survival,
    train,
)
from ._output import CxrGroup, debug

app = typer.Typer(
    name="cxr",
    cls=CxrGroup,
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
app.command("listen")(listen.listen)
app.command("embed")(embed.embed)
app.command("ood-fit")(embed.ood_fit)
app.command("similar")(similar.similar)
app.command("export")(export.export)
app.command("bench")(bench.bench)
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")


def main() -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not debug():
        # pydicom logs every failed decoder attempt with a traceback; cxrkit already turns a
        # file no decoder can read into one error row that names the codec and the reason.
        logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    app()


if __name__ == "__main__":
    main()
