"""One evaluation end to end, as ``cxr evaluate`` runs it: inputs read, metrics, subgroups, report.

:func:`evaluate_to_folder` scores a predictions file (or a model on a dataset split) against
labels and writes the report folder; :func:`compare_to_folder` runs the paired DeLong test
of two prediction files. The CLI checks its flags and calls one of them, so a script gets
exactly what the command line gets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputFileError
from .evaluation import Evaluation, compare_predictions, evaluate_predictions
from .groups import group_table
from .loaders import LabelTable, load_labels, load_predictions
from .report import write_compare, write_report
from .shortcut import ProbeResult
from .subgroups import SubgroupResult, evaluate_subgroups

__all__ = ["EvaluationRun", "read_thresholds", "evaluate_to_folder", "compare_to_folder"]


@dataclass
class EvaluationRun:
    """What :func:`evaluate_to_folder` computed (everything is also in ``output``)."""

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


def _model_predictions(model: str, dataset: str, labels: Path, images: Path, split: str,
                       split_seed: int) -> tuple[pd.DataFrame, LabelTable, list[Path], Any]:
    from ..predict import Predictor
    from .model_eval import dataset_split_labels, predict_images

    files, table = dataset_split_labels(dataset, labels, images, split=split, seed=split_seed)
    # fp32: the numbers a model card reports were measured so, and must reproduce on any CPU
    predictor = Predictor(model, precision="fp32")
    return predict_images(files, predictor), table, files, predictor


def evaluate_to_folder(
    output: str | Path,
    labels: str | Path,
    *,
    predictions: str | Path | None = None,
    model: str | None = None,
    dataset: str | None = None,
    images: str | Path | None = None,
    split: str = "valid",
    split_seed: int = 0,
    id_column: str | None = None,
    prefix: str | None = None,
    label_options: dict[str, Any] | None = None,
    label_names: Sequence[str] | None = None,
    threshold_method: str = "youden",
    thresholds_from: str | Path | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    task: str = "multilabel",
    plots: bool = True,
    group_by: Sequence[str] = (),
    metadata: Sequence[str | Path] = (),
    age_bands: Sequence[float] | None = None,
    shortcut_check: bool = False,
    probe_input: str = "features",
    command: str | None = None,
) -> EvaluationRun:
    """Score ``predictions`` (or ``model`` run on the ``split`` of ``dataset`` under ``images``)
    against ``labels``; write metrics.csv, plots and report.md to ``output``.

    ``group_by`` adds per-group AUCs (columns of the label file, its metadata or the
    ``metadata`` CSVs); ``shortcut_check`` then probes whether the first group can be read
    off the model's features (``probe_input="features"``) or the films' pixels. ``command``
    is the command line shown in the report's "Reproduce" section.
    """
    if (predictions is None) == (model is None):
        raise InputFileError(labels, "evaluate either a predictions file or a model, not both or neither")
    output, labels = Path(output), Path(labels)
    predictor = files = None
    if model is not None:
        if dataset is None or images is None:
            raise InputFileError(labels, "a model is evaluated on a dataset split: name the dataset and its images")
        preds, table, files, predictor = _model_predictions(model, dataset, labels, Path(images), split, split_seed)
    else:
        table = load_labels(labels, dataset, **(label_options or {}))
        preds = load_predictions(predictions, id_column=id_column, prefix=prefix)
    result = evaluate_predictions(
        preds, table.labels, patients=table.patients, label_names=list(label_names) if label_names else None,
        threshold_method=threshold_method, thresholds=read_thresholds(thresholds_from) if thresholds_from else None,
        n_bootstrap=n_bootstrap, seed=seed, task=task,
    )
    subgroups = probe = None
    columns = list(group_by)
    if columns:
        groups = group_table(columns, label_file=labels, metadata=metadata, meta=table.meta, age_bands=age_bands)
        subgroups = evaluate_subgroups(result.scores, result.labels, groups, patients=result.patients,
                                       n_bootstrap=n_bootstrap, seed=seed)
        if shortcut_check:
            from .model_eval import shortcut_check as probe_groups

            if files is None and images is None:
                raise InputFileError(labels, "the shortcut probe reads the films: name their image folder")
            scored = files if files is not None else [Path(images) / name for name in result.labels.index]
            probe = probe_groups(scored, groups[columns[0]], result.patients, subgroups.rates,
                                 predictor=predictor, kind=probe_input, n_bootstrap=n_bootstrap, seed=seed)
    evaluated = str(predictions) if predictions is not None else f"model {model} on {dataset} split {split}"
    sources = {"predictions": evaluated, "labels": str(labels),
               **({"metadata": ", ".join(map(str, metadata))} if metadata else {})}
    write_report(result, output, plots=plots, command=command, subgroups=subgroups, shortcut=probe, sources=sources)
    return EvaluationRun(result=result, output=output, subgroups=subgroups, shortcut=probe)


def compare_to_folder(a: str | Path, b: str | Path, labels: str | Path, output: str | Path, *,
                      dataset: str | None = None, label_options: dict[str, Any] | None = None,
                      id_column: str | None = None, prefix: str | None = None,
                      label_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Paired DeLong test per label of predictions ``a`` vs ``b`` on the same images; writes compare.csv."""
    table = load_labels(labels, dataset, **(label_options or {}))
    first = load_predictions(a, id_column=id_column, prefix=prefix)
    second = load_predictions(b, id_column=id_column, prefix=prefix)
    result = compare_predictions(first, second, table.labels, label_names=list(label_names) if label_names else None)
    write_compare(result, Path(output), sources={"A": str(a), "B": str(b), "labels": str(labels)})
    return result
