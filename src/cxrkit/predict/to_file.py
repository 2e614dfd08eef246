"""One call for a whole prediction job: films in, one file of rows out, with the extras a study asks for.

``cxr predict`` is a parser over :func:`predict_to_file`, so a notebook does in Python what a
command line does: heat maps, an out-of-distribution flag, DICOM reports and overlays, film
clean-up and orientation fixing, and a Ray cluster. Each extra is a small object made by the
package that owns it (:class:`cxrkit.explain.Heatmaps`, :class:`cxrkit.embed.Ood`,
:class:`cxrkit.dicom.Reports`, :class:`cxrkit.dicom.Overlays`); this layer sees them only as
:class:`RowStep` or :class:`RunnerWrap`, so prediction does not depend on the packages above it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidArgument, Unavailable
from ..preprocess import FilmSteps
from .engine import RowSink, RunSummary
from .job import OutputSpec, Progress, output_columns, run_files
from .predictor import Predictor
from .ray_run import RayEngine, ray_available
from .runner import Runner
from .scan import scan_inputs

__all__ = ["RowColumns", "RowStep", "RunnerWrap", "chain", "output_to", "predict_to_file", "preparing_device",
           "ray_engine", "run_with_steps"]

#: the format an output path's suffix names (anything else is CSV)
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class RowColumns:
    """What one extra adds to a run: the callback that fills each finished batch's rows, and the
    (text) columns it fills, in order."""

    complete: RowSink
    columns: tuple[str, ...]


class RowStep(Protocol):
    """An extra filled in after scoring (heat maps, reports): bound to the run's runner and its
    whole input list before the first film, so names are fixed up front and a resume keeps them."""

    def attach(self, runner: Any, files: Sequence[Path]) -> RowColumns: ...


class RunnerWrap(Protocol):
    """An extra that changes the scoring itself (the out-of-distribution columns): the runner it
    returns scores in place of the given one."""

    def wrap(self, predictor: Predictor) -> Runner: ...


def output_to(output: OutputSpec | str | os.PathLike[str] | None) -> OutputSpec:
    """``output`` as an :class:`OutputSpec`: a path's format is read from its suffix (``.jsonl``,
    ``.parquet``, else CSV); ``None`` is standard output as CSV."""
    if isinstance(output, OutputSpec):
        return output
    fmt = _SUFFIX_FORMATS.get(Path(output).suffix.lower(), "csv") if output is not None else "csv"
    return OutputSpec(output, fmt)


def chain(sinks: Sequence[RowSink]) -> RowSink | None:
    """One callback running ``sinks`` in order on each batch (None when there are none)."""
    if not sinks:
        return None

    def run_all(rows: list[dict[str, Any]]) -> None:
        for sink in sinks:
            sink(rows)

    return run_all


def run_with_steps(files: Sequence[Path], runner: Runner, output: OutputSpec, steps: Sequence[RowColumns], *,
                   first: RowSink | None = None, extra_columns: Sequence[str] = (),
                   batch_size: int = 8, workers: int = 1, progress: Progress | None = None,
                   engine: RayEngine | None = None) -> RunSummary:
    """:func:`run_files` over scanned ``files`` with the steps' columns after the runner's (and
    ``extra_columns`` between them, filled by ``first``), Parquet told which columns hold text."""
    columns = output_columns(runner) + list(extra_columns) + [c for step in steps for c in step.columns]
    if output.fmt == "parquet":
        film = runner.film  # declared by the Runner protocol
        named = [*output.options.get("text", []), *(film.columns if film is not None else []),
                 *(c for step in steps for c in step.columns)]
        output = replace(output, options={**output.options, "text": list(dict.fromkeys(named))})
    sinks = ([first] if first is not None else []) + [step.complete for step in steps]
    return run_files(files, runner, output, columns=columns, batch_size=batch_size, workers=workers,
                     complete=chain(sinks), progress=progress, engine=engine, scanned=True)


def predict_to_file(
    paths: Iterable[str | os.PathLike[str]],
    model: str | Predictor,
    output: OutputSpec | str | os.PathLike[str] | None,
    *,
    heatmaps: RowStep | None = None,
    ood: RunnerWrap | None = None,
    overlays: RowStep | None = None,
    reports: RowStep | None = None,
    engine: RayEngine | None = None,
    batch_size: int = 8,
    workers: int = 1,
    progress: Progress | None = None,
) -> RunSummary:
    """Score every image under ``paths`` into ``output``: one row per file, errors included, in order.

    ``model`` is a :class:`Predictor` (its device, precision and calibration as built) or a
    model name/file (a default CPU predictor). ``output`` is an :class:`OutputSpec` (to resume
    or overwrite) or a path (format from its suffix) or None (CSV on standard output).

    Film steps (clean-up, orientation fix; they add the orientation columns) belong to the
    predictor: ``Predictor(name, film=FilmSteps(...))``. Extras, each optional:
    ``heatmaps`` (one overlay per film and label, computed on the film as scored), ``ood``
    (``ood_score`` and ``ood`` columns), ``overlays`` (the top finding's map as a DICOM
    Secondary Capture; needs ``heatmaps``), ``reports`` (a DICOM structured report per DICOM
    film), ``engine`` (a :class:`~cxrkit.predict.ray_run.RayEngine`, see :func:`ray_engine`).
    Returns the run's :class:`RunSummary` (rows ok, failed, skipped on resume).
    """
    if overlays is not None and heatmaps is None:
        raise InvalidArgument("`overlays` needs `heatmaps`: the overlay it stores is the top finding's map")
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    files = scan_inputs(paths)
    # bound before the OOD wrap: maps and reports speak of the classifier, on the film as scored
    steps = [step.attach(predictor, files) for step in (heatmaps, overlays, reports) if step is not None]
    runner: Runner = ood.wrap(predictor) if ood is not None else predictor
    return run_with_steps(files, runner, output_to(output), steps, batch_size=batch_size, workers=workers,
                          progress=progress, engine=engine)


def preparing_device(ray: str | None, device: str) -> str:
    """Where this process runs its model and film steps: ``device``, except the CPU when Ray
    actors run the model on GPUs (the films are prepared in read tasks that have none)."""
    return "cpu" if ray is not None and device != "cpu" else device


def ray_engine(ray: str | None, model: str, *, actors: int = 1, device: str = "cpu",
               precision: str = "auto", calibrate: bool = True, backend: str = "auto", ood: bool = False,
               heatmaps: bool = False, film: FilmSteps | None = None) -> tuple[RayEngine | None, Predictor]:
    """The Ray engine for cluster address ``ray`` (None: no engine) and the predictor of this process.

    ``ray`` is ``local`` (start a cluster here), ``auto`` (the cluster this node is in) or
    ``ray://HEAD:10001``. On a CPU the predictor built here is the one the model actors run.
    On a GPU (``device`` cuda) each actor builds its own predictor on its GPU, while this
    process (maybe GPU-less) keeps a CPU fp32 one that prepares the films in the read tasks;
    heat maps and the OOD flag need the model in this process, so they run on a CPU only.
    ``film`` steps run where the films are prepared, on :func:`preparing_device`.
    """
    here = preparing_device(ray, device)
    engine = None
    if ray is not None:
        if not ray_available():
            raise Unavailable("`ray` needs Ray Data: pip install 'cxrkit[ray]'")
        if Path(ray).exists() and "://" not in ray:
            raise InvalidArgument(f"`ray` takes a cluster address (local, auto or ray://HEAD:10001), got the path {ray!r}")
        if device == "cpu":
            engine = RayEngine(address=ray, actors=actors, gpus=0.0)
        elif ood or heatmaps:
            raise InvalidArgument("`ood` and `heatmaps` run with `ray` only on `device` cpu")
        else:
            build = partial(Predictor, model, device=device, precision=precision, calibrate=calibrate, backend=backend)
            engine = RayEngine(address=ray, actors=actors, gpus=1.0, build=build)
    predictor = Predictor(model, device=here, precision=precision if here == device else "fp32", calibrate=calibrate,
                          backend=backend, film=film)
    return engine, predictor
