"""One evaluation end to end, as ``cxr evaluate`` runs it: inputs read, metrics, subgroups, report.

One function per kind of evaluation, each writing its report folder and returning what it
computed: :func:`evaluate_file_to_folder` scores a predictions file against labels,
:func:`evaluate_model_to_folder` runs a model on a dataset split first, :func:`compare_to_folder`
runs the paired DeLong test of two prediction files and :func:`localisation_to_folder` scores
saliency maps against boxes. Each ``cxr evaluate`` sub-command parses its flags into the specs
of :mod:`cxrkit.evaluate.spec` and calls one of them, so a script gets exactly what the command
line gets; report.md's "Reproduce" section is that call.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InvalidArgument
from .errors import InputFileError
from .evaluation import Evaluation, compare_predictions, evaluate_predictions
from .groups import group_table
from .loaders import LabelTable
from .localisation import LocalisationReport, localisation_report
from .report import write_compare, write_report
from .shortcut import ProbeResult
from .spec import DatasetSplit, LabelFile, PredictionsFile, Scoring, Subgroups
from .subgroups import SubgroupResult, evaluate_subgroups

__all__ = ["EvaluationRun", "read_thresholds", "evaluate_file_to_folder", "evaluate_model_to_folder",
           "compare_to_folder", "localisation_to_folder"]


@dataclass
class EvaluationRun:
    """What an evaluation computed (everything is also in ``output``)."""

    result: Evaluation
    output: Path
    subgroups: SubgroupResult | None = None
    shortcut: ProbeResult | None = None


def read_thresholds(path: str | Path) -> dict[str, float]:
    """Per-label thresholds from the ``metrics.csv`` of a validation run (the ``mean`` row left out),
    so a test set is scored at operating points chosen elsewhere."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises half a dozen types for a bad file
        raise InputFileError(path, f"cannot read thresholds ({exc})") from exc
    if not {"label", "threshold"} <= set(frame.columns):
        raise InputFileError(path, "thresholds come from a metrics.csv with 'label' and 'threshold' columns")
    return {str(r.label): float(r.threshold) for r in frame.itertuples()
            if r.label != "mean" and not math.isnan(float(r.threshold))}


def _call(name: str, *args: Any, **kwargs: Any) -> str:
    """The Python call that reproduces a run, for report.md (paths as ``Path('...')``)."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    text = re.sub(r"\b(?:Posix|Windows)Path\(", "Path(", f"{name}({', '.join(parts)})")
    return f"from pathlib import Path\nfrom cxrkit.evaluate import *\n{text}"


def _file(value: PredictionsFile | str | Path) -> PredictionsFile:
    return value if isinstance(value, PredictionsFile) else PredictionsFile(Path(value))


def _labels(value: LabelFile | str | Path) -> LabelFile:
    return value if isinstance(value, LabelFile) else LabelFile(Path(value))


def _score(preds: pd.DataFrame, table: LabelTable, scoring: Scoring) -> Evaluation:
    thresholds = read_thresholds(scoring.thresholds_from) if scoring.thresholds_from else None
    return evaluate_predictions(
        preds, table.labels, patients=table.patients, label_names=list(scoring.label_names or []) or None,
        threshold_method=scoring.threshold_method, thresholds=thresholds, n_bootstrap=scoring.n_bootstrap,
        seed=scoring.seed, task=scoring.task)


def _finish(result: Evaluation, table: LabelTable, label_path: Path, output: Path, *, scoring: Scoring,
            subgroups: Subgroups | None, files: list[Path] | None, predictor: Any, plots: bool,
            evaluated: str, call: str) -> EvaluationRun:
    """Subgroups, the shortcut probe and the report: the part every evaluation shares."""
    groups_result = probe = None
    if subgroups is not None and subgroups.group_by:
        columns = list(subgroups.group_by)
        groups = group_table(columns, label_file=label_path, metadata=subgroups.metadata, meta=table.meta,
                             age_bands=subgroups.age_bands)
        groups_result = evaluate_subgroups(result.scores, result.labels, groups, patients=result.patients,
                                           n_bootstrap=scoring.n_bootstrap, seed=scoring.seed)
        if subgroups.shortcut_check:
            from .model_eval import shortcut_check as probe_groups

            probe = probe_groups(files or [], groups[columns[0]], result.patients, groups_result.rates,
                                 predictor=predictor, kind=subgroups.probe_input, n_bootstrap=scoring.n_bootstrap,
                                 seed=scoring.seed)
    metadata = subgroups.metadata if subgroups is not None else ()
    sources = {"predictions": evaluated, "labels": str(label_path),
               **({"metadata": ", ".join(map(str, metadata))} if metadata else {})}
    write_report(result, output, plots=plots, command=call, subgroups=groups_result, shortcut=probe, sources=sources)
    return EvaluationRun(result=result, output=output, subgroups=groups_result, shortcut=probe)


def evaluate_file_to_folder(predictions: PredictionsFile | str | Path, labels: LabelFile | str | Path,
                            output: str | Path, *, scoring: Scoring | None = None, subgroups: Subgroups | None = None,
                            images: str | Path | None = None, plots: bool = True) -> EvaluationRun:
    """Score a predictions file against ``labels``; write metrics.csv, plots and report.md to ``output``.

    ``images`` (the films' folder) is read only by a shortcut probe on pixels: a predictions file
    carries no model whose features could be probed."""
    file, label_file, scoring = _file(predictions), _labels(labels), scoring or Scoring()
    if subgroups is not None and subgroups.shortcut_check and (subgroups.probe_input == "features" or images is None):
        raise InvalidArgument("the shortcut probe of a predictions file reads the films' pixels: give their "
                              "`images` folder and `probe_input` pixels (features need a model to evaluate)")
    table = label_file.read()
    result = _score(file.read(), table, scoring)
    files = [Path(images) / name for name in result.labels.index] if images is not None else None
    call = _call("evaluate_file_to_folder", file, label_file, Path(output), scoring=scoring, subgroups=subgroups,
                 images=None if images is None else Path(images), plots=plots)
    return _finish(result, table, label_file.path, Path(output), scoring=scoring, subgroups=subgroups, files=files,
                   predictor=None, plots=plots, evaluated=str(file.path), call=call)


def evaluate_model_to_folder(model: str, data: DatasetSplit, output: str | Path, *, scoring: Scoring | None = None,
                             subgroups: Subgroups | None = None, plots: bool = True) -> EvaluationRun:
    """Run ``model`` (in fp32: the numbers a model card reports were measured so, and must reproduce
    on any CPU) on the split ``data`` names and score it as :func:`evaluate_file_to_folder` does."""
    from ..predict import Predictor
    from .model_eval import dataset_split_labels, predict_images

    scoring = scoring or Scoring()
    assert data.dataset is not None and data.images is not None  # DatasetSplit refuses either missing
    files, table = dataset_split_labels(data.dataset, data.labels, data.images, split=data.split, seed=data.seed)
    predictor = Predictor(model, precision="fp32")
    result = _score(predict_images(files, predictor), table, scoring)
    call = _call("evaluate_model_to_folder", model, data, Path(output), scoring=scoring, subgroups=subgroups,
                 plots=plots)
    return _finish(result, table, data.labels, Path(output), scoring=scoring, subgroups=subgroups, files=files,
                   predictor=predictor, plots=plots, evaluated=f"model {model} on {data.dataset} split {data.split}",
                   call=call)


def compare_to_folder(a: PredictionsFile | str | Path, b: PredictionsFile | str | Path,
                      labels: LabelFile | str | Path, output: str | Path, *,
                      label_names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Paired DeLong test per label of predictions ``a`` vs ``b`` on the same images; writes compare.csv."""
    first, second, label_file = _file(a), _file(b), _labels(labels)
    table = label_file.read()
    result = compare_predictions(first.read(), second.read(), table.labels,
                                 label_names=list(label_names) if label_names else None)
    write_compare(result, Path(output), sources={"A": str(first.path), "B": str(second.path), "labels": str(label_file.path)})
    return result


def localisation_to_folder(boxes: str | Path, heatmaps: str | Path, output: str | Path, *,
                           dataset: str | None = None, tolerance: float = 15.0) -> tuple[LocalisationReport, list[Path]]:
    """Score the raw saliency maps in ``heatmaps`` against the boxes of ``boxes`` (pointing game
    within ``tolerance`` map pixels, IoU); write localisation.csv and its per-item table."""
    report = localisation_report(boxes, heatmaps, dataset=None if dataset == "csv" else dataset, tolerance=tolerance)
    return report, report.write(output)
