"""Honest evaluation of chest X-ray predictions, reproducible to the digit.

Predictions and labels meet as two frames indexed by image file name (see
:mod:`.loaders`); :func:`evaluate_predictions` gives per-label AUC with (patient-level)
bootstrap CIs, thresholds and operating metrics; :func:`compare_predictions` a paired
DeLong test; :func:`write_report` the output folder. Needs scikit-learn, scipy, pandas
and matplotlib.
"""

from __future__ import annotations

from .bootstrap import BootstrapCI, bootstrap_auc, bootstrap_indices, bootstrap_mean_ci, fast_auc
from .delong import DeLongResult, delong_covariance, delong_test
from .errors import (
    EvaluationError,
    InputFileError,
    LabelColumnMissing,
    NoOverlap,
    PrefixMatchesNothing,
)
from .evaluation import (
    COMPARE_COLUMNS,
    METRICS_COLUMNS,
    Evaluation,
    compare_predictions,
    evaluate_predictions,
)
from .groups import group_table
from .loaders import (
    LABEL_FORMATS,
    LabelTable,
    image_id,
    label_formats,
    load_dataset_labels,
    load_labels,
    load_labels_csv,
    load_nih_labels,
    load_predictions,
)
from .metrics import (
    THRESHOLD_METHODS,
    LabelMetrics,
    auroc,
    binary_metrics,
    choose_threshold,
    metrics_at_threshold,
)
from .multiclass import MulticlassResult, multiclass_metrics, true_classes
from .report import write_compare, write_report
from .run import (
    EvaluationRun,
    compare_to_folder,
    evaluate_file_to_folder,
    evaluate_model_to_folder,
    localisation_to_folder,
    read_thresholds,
)
from .shortcut import ProbeResult, shortcut_probe, shortcut_warning
from .spec import DatasetSplit, LabelFile, PredictionsFile, Scoring, Subgroups
from .subgroups import (
    GAP_COLUMNS,
    SUBGROUP_COLUMNS,
    SubgroupResult,
    evaluate_subgroups,
    label_rates,
)

__all__ = [
    "evaluate_file_to_folder",
    "evaluate_model_to_folder",
    "compare_to_folder",
    "localisation_to_folder",
    "PredictionsFile",
    "LabelFile",
    "DatasetSplit",
    "Scoring",
    "Subgroups",
    "read_thresholds",
    "EvaluationRun",
    "evaluate_predictions",
    "evaluate_subgroups",
    "group_table",
    "label_rates",
    "SubgroupResult",
    "SUBGROUP_COLUMNS",
    "GAP_COLUMNS",
    "shortcut_probe",
    "shortcut_warning",
    "ProbeResult",
    "compare_predictions",
    "write_report",
    "write_compare",
    "Evaluation",
    "METRICS_COLUMNS",
    "COMPARE_COLUMNS",
    "THRESHOLD_METHODS",
    "load_predictions",
    "load_labels",
    "load_labels_csv",
    "load_nih_labels",
    "load_dataset_labels",
    "label_formats",
    "LabelTable",
    "LABEL_FORMATS",
    "image_id",
    "auroc",
    "choose_threshold",
    "metrics_at_threshold",
    "binary_metrics",
    "LabelMetrics",
    "bootstrap_auc",
    "bootstrap_indices",
    "bootstrap_mean_ci",
    "fast_auc",
    "BootstrapCI",
    "delong_test",
    "delong_covariance",
    "DeLongResult",
    "multiclass_metrics",
    "true_classes",
    "MulticlassResult",
    "EvaluationError",
    "InputFileError",
    "NoOverlap",
    "LabelColumnMissing",
    "PrefixMatchesNothing",
]
