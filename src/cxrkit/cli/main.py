"""Entry point of ``cxr``: registers the command groups and maps cxrkit errors to exit codes.

Errors a user can fix (``CxrkitError``) print one line and exit 1 (4 when the output
could not be written, 130 on Ctrl-C); a traceback is shown only with ``CXRKIT_DEBUG=1``,
because a stack trace is noise to most users.

Each command's module is imported only when that command runs or shows its own help:
importing them all (PyTorch, torchvision, FastAPI, Lightning, ...) cost seconds before
``cxr --help`` could print a line, and most of a short job's wall time.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import typer

from .. import log_policy
from ..allocator import keep_heap
from ._output import CxrGroup, debug, root

#: command -> (module in cxrkit.cli, its typer command function or app, the one-line help
#: `cxr --help` lists without importing the module; a test keeps each equal to the command's own)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "predict": ("predict", "predict", "Predict the 18 standard pathologies for each image: one row per file, errors included."),
    "age": ("age", "age", "Estimate each film's chest X-ray age in years: one row per file, errors included."),
    "convert": ("convert", "convert", "Convert films to 8-bit PNGs (shortest side 512 by default), one manifest row per input file."),
    "train": ("train", "train", "Train on a dataset split by patient; select checkpoint, seed and thresholds on validation only."),
    "tune": ("train", "tune", "Optuna search over the config's tune.space; every trial scored on validation only."),
    "evaluate": ("evaluate", "app", "Evaluate against labels: predictions, model, compare (DeLong), localisation (maps vs boxes)."),
    "explain": ("explain", "explain", "Explain a prediction: a colour map over the radiograph, captioned with label and probability."),
    "survival": ("survival", "survival", "Cox PH hazard ratios per 5 years of CXR-Age and age, LR test of CXR-Age's added value, PH check, KM by quartile."),
    "serve": ("serve", "serve", "Serve the page at / and the API at /v1 (OpenAPI at /docs) until Ctrl-C; in-flight requests finish first."),
    "listen": ("listen", "listen", "Answer C-ECHO and C-STORE; report on each radiograph received and send the report (DICOM SR) on."),
    "embed": ("embed", "embed", "Embed each film: one row per file (file, status, error, vector), errors included."),
    "ood-fit": ("embed", "ood_fit", "Fit the out-of-distribution detector `cxr predict --ood` uses: k-NN feature distance to the training films."),
    "similar": ("similar", "similar", "Nearest films by cosine similarity of their embeddings (1 = same direction), best first."),
    "export": ("export", "export", "Export MODEL to a single ONNX file with a dynamic batch axis and its model card as metadata."),
    "bench": ("bench", "bench", "Time prediction on your own films and say which backend, precision and batch size is fastest here."),
    "models": ("models", "app", "Registered, bundled and fetchable models: list, info, import, fetch."),
    "datasets": ("datasets", "app", "Dataset adapters: list, summary, shard, and duplicates within and across datasets and splits."),
}


def load_command(name: str) -> Any:
    """The click command ``cxr NAME`` runs, importing its module now."""
    module_name, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(f"{__package__}.{module_name}"), attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


def _listed(name: str) -> Any:
    """A stand-in that carries only the name and one-line help, for the command list of `cxr --help`."""

    def command() -> None: ...

    command.__doc__ = COMMANDS[name][2]
    single = typer.Typer()
    single.command(name)(command)
    return typer.main.get_command(single)


class LazyGroup(CxrGroup):
    """``cxr``'s group: commands from :data:`COMMANDS`, each imported on first use."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in COMMANDS:
            return None
        if name not in self.commands:
            if self._listing:
                return _listed(name)
            self.commands[name] = load_command(name)
        return self.commands[name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="cxr",
    cls=LazyGroup,
    help="cxrkit: deep learning on chest X-rays.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


app.callback()(root)  # `cxr --version`


def main() -> None:
    # One stderr handler, with the patient-data policy of cxrkit.log_policy on it, and the file
    # parsers' loggers routed through that policy: their messages can quote header values
    # (a corrupt length puts the patient's name into them) and every failed decoder attempt
    # comes with a traceback, while cxrkit already reports each unreadable file in one row.
    handler = log_policy.attach(logging.StreamHandler())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug() else logging.WARNING, handlers=[handler])
    log_policy.guard(log_policy.READERS + log_policy.SERVERS)
    keep_heap()  # every command runs batches of large tensors; see cxrkit.allocator
    app()


if __name__ == "__main__":
    main()
