"""What ``cxr predict``, ``cxr age`` and ``cxr convert`` show around :func:`cxrkit.predict.run_files`:
a progress bar on a terminal, a summary, exit 3 when files failed, and on Ctrl-C one line
saying what was kept, exit 130, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ..errors import InvalidArgument, OutputError
from ..models import ModelCard
from ..predict import OutputExists, OutputSpec, RunSummary, scan_inputs
from ._output import EXIT_INTERRUPTED, EXIT_PARTIAL, err

__all__ = ["input_files", "output_spec", "progress_bar", "report", "warn_if_unproven"]


#: the image files under the given paths (a missing path is an error, not an empty run)
input_files = scan_inputs


class _Bar:
    """A :class:`~cxrkit.predict.Progress` on a rich bar that also counts what is on disk."""

    def __init__(self, progress: Progress, verb: str):
        self._progress, self._verb = progress, verb
        self._task: TaskID | None = None
        self.total = self.done = self.written = 0

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        self._task = self._progress.add_task(self._verb, total=total - done)

    def advance(self, rows: int) -> None:
        self.written += rows
        if self._task is not None:
            self._progress.advance(self._task, rows)


def output_spec(output: Path | None, fmt: str, resume: bool, overwrite: bool, text: Sequence[str] = ()) -> OutputSpec:
    """The ``--output/--format/--resume/--overwrite`` flags as an :class:`~cxrkit.predict.OutputSpec`.

    ``text`` names the columns that hold text (orientation, map paths): Parquet types its
    columns up front and refuses text in a number column rather than writing NaN."""
    if resume and output is None:
        raise InvalidArgument("--resume needs --output: there is no file to resume from on stdout")
    return OutputSpec(output, fmt, resume, overwrite, {"text": list(text)} if fmt == "parquet" else {})


@contextmanager
def progress_bar(verb: str, output: Path | None) -> Iterator[_Bar]:
    """A progress bar for :func:`cxrkit.predict.run_files` (shown on a terminal only), and the
    flags that fix an output problem named in its message.

    Ctrl-C inside the block ends the command here: every row handed to the writer is already
    on disk (it flushes each batch, whole rows only), so the run prints one line saying how
    many rows were kept and how to continue, and exits 130.
    """
    with Progress(TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, disable=not sys.stderr.isatty(), transient=False) as progress:
        bar = _Bar(progress, verb)
        try:
            yield bar
        except OutputExists as exc:
            raise OutputExists(exc.path, f"{exc.path} already exists; pass --resume to continue it or --overwrite to replace "
                              "it") from None
        except OutputError as exc:
            if output is None or exc.path != str(output):
                raise
            raise OutputError(exc.path, f"{exc.reason} (rerun with --resume)") from None
        except KeyboardInterrupt:
            progress.stop()
            where = f"in {output}" if output is not None else "on standard output"
            hint = "; rerun the same command with --resume to continue" if output is not None else ""
            err.print(f"interrupted: {bar.written} new rows kept {where} "
                      f"({bar.done + bar.written} of {bar.total} files done){hint}", highlight=False, markup=False,
                      soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None


def warn_if_unproven(card: ModelCard) -> None:
    """One stderr line before the scores when the card says the model is not shown to beat chance
    on held-out patients: a number printed without it reads as a model that reads films."""
    evidence = card.evidence
    if evidence is not None and not evidence.beats_chance:
        err.print(f"warning: {card.name} is {evidence.sentence()}; its scores demonstrate the pipeline, "
                  "they are not readings", highlight=False, markup=False, soft_wrap=True)


def report(summary: RunSummary, output: Path | None, detail: str) -> None:
    """Print the run's counts and first errors; exit 3 when some files failed."""
    where = f" -> {output}" if output else ""
    err.print(f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} already done "
              f"({summary.images_per_second:.1f} img/s, {detail}){where}", highlight=False, markup=False, soft_wrap=True)
    for name, error in summary.errors[:5]:
        err.print(f"  failed: {name}: {error}", highlight=False, markup=False)
    if summary.failed > 5:
        err.print(f"  ... and {summary.failed - 5} more (see the error column)", highlight=False)
    if summary.failed:
        raise typer.Exit(EXIT_PARTIAL)
