"""The batch loop shared by ``cxr predict``, ``cxr age`` and ``cxr convert``: one row per file
into a resumable CSV/JSONL, a progress bar on a terminal, a summary, exit 3 when files failed,
and on Ctrl-C one line saying what was kept, exit 130, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import CxrkitError
from ..predict import PredictionSummary, PredictionWriter, iter_image_files
from ._output import EXIT_INTERRUPTED, EXIT_PARTIAL, err

__all__ = ["input_files", "rows_into", "report", "add_maps"]

RowStep = Callable[[list[dict]], None]


def input_files(paths: Sequence[Path]) -> list[Path]:
    """The image files under ``paths``; a path that does not exist is an error, not an empty run."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CxrkitError(f"no such file or folder: {', '.join(missing)}")
    return list(iter_image_files(paths))


@contextmanager
def rows_into(writer: PredictionWriter, files: Sequence[Path], verb: str,
              before_write: RowStep | None = None) -> Iterator[RowStep]:
    """A ``rows -> None`` sink that completes rows (``before_write``), writes them and advances a bar.

    Ctrl-C inside the block ends the command here: every row handed to the writer is already
    on disk (it flushes each batch, whole rows only), so the run prints one line saying how
    many rows were kept and how to continue, and exits 130.
    """
    todo = sum(1 for f in files if str(f) not in writer.done)
    written = [0]
    try:
        with Progress(TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, disable=not sys.stderr.isatty(), transient=False) as progress:
            task = progress.add_task(verb, total=todo)

            def sink(rows: list[dict]) -> None:
                if before_write is not None:
                    before_write(rows)
                writer.write(rows)
                written[0] += len(rows)
                progress.advance(task, len(rows))

            yield sink
    except KeyboardInterrupt:
        where = f"in {writer.path}" if writer.path is not None else "on standard output"
        hint = "; rerun the same command with --resume to continue" if writer.path is not None else ""
        err.print(f"interrupted: {written[0]} new rows kept {where} "
                  f"({len(writer.done) + written[0]} of {len(files)} files done){hint}", highlight=False, markup=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def report(summary: PredictionSummary, output: Path | None, detail: str) -> None:
    """Print the run's counts and first errors; exit 3 when some files failed."""
    where = f" -> {output}" if output else ""
    err.print(f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} already done "
              f"({summary.images_per_second:.1f} img/s, {detail}){where}", highlight=False)
    for name, error in summary.errors[:5]:
        err.print(f"  failed: {name}: {error}", highlight=False, markup=False)
    if summary.failed > 5:
        err.print(f"  ... and {summary.failed - 5} more (see the error column)", highlight=False)
    if summary.failed:
        raise typer.Exit(EXIT_PARTIAL)


def add_maps(rows: list[dict], draw: Callable[[str, dict], list[Path]], column: str) -> None:
    """Fill each ok row's ``column`` with the ``;``-joined paths ``draw`` writes for it; a map that
    fails is noted in the row's error cell, never fatal to a batch of thousands."""
    for row in rows:
        row[column] = ""
        if row["status"] != "ok":
            continue
        try:
            row[column] = ";".join(str(p) for p in draw(row["file"], row))
        except Exception as exc:
            reason = str(exc) if isinstance(exc, CxrkitError) else f"unexpected {type(exc).__name__}: {exc}"
            row["error"] = f"{column} failed: {reason}"
