"""Multi-class evaluation (softmax outputs, exactly one true class per image).

covid-cxr's 3-class task (normal / pneumonia / COVID-19) is not multi-label: the
classes compete, so accuracy and a confusion matrix say more than per-label
thresholds. Per-class one-vs-rest AUCs keep it comparable with the binary reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import EvaluationError
from .metrics import auroc

__all__ = ["MulticlassResult", "true_classes", "multiclass_metrics"]


@dataclass(frozen=True)
class MulticlassResult:
    accuracy: float
    auc: pd.Series  # one-vs-rest AUC per class (NaN when a class is absent or is every image)
    n_per_class: pd.Series
    confusion: pd.DataFrame  # rows = true class, columns = predicted class (argmax)
    n: int


def true_classes(onehot: pd.DataFrame) -> pd.Series:
    """The one true class of each row of a 0/1 frame; rows that are all NaN are dropped.

    A row with zero or several 1s is not a multi-class label, and guessing which class
    was meant would corrupt the accuracy, so it raises ``ValueError`` naming the rows.
    """
    known = onehot.dropna(how="all")
    values = known.to_numpy(dtype=float)
    ones = np.nansum(values == 1, axis=1)
    bad = known.index[ones != 1]
    if len(bad):
        raise EvaluationError(
            f"{len(bad)} row(s) do not have exactly one true class (e.g. {', '.join(map(str, bad[:3]))}); "
            "multi-class evaluation needs one 1 per image"
        )
    return pd.Series(np.asarray(known.columns)[np.nanargmax(values == 1, axis=1)], index=known.index, name="class")


def multiclass_metrics(truth: pd.Series, probs: pd.DataFrame) -> MulticlassResult:
    """Accuracy (argmax), per-class one-vs-rest AUC and confusion matrix on the ids both have."""
    ids = truth.index.intersection(probs.index)
    probs = probs.loc[ids].dropna(how="any")
    truth = truth.loc[probs.index]
    classes = list(probs.columns)
    unknown = sorted(set(truth) - set(classes))
    if unknown:
        raise EvaluationError(f"true classes {unknown} have no prediction column; columns are {classes}")
    predicted = pd.Series(np.asarray(classes)[np.argmax(probs.to_numpy(), axis=1)], index=probs.index)
    confusion = pd.crosstab(
        pd.Categorical(truth, categories=classes), pd.Categorical(predicted, categories=classes), dropna=False
    )
    confusion.index = pd.Index(classes, name="true")
    confusion.columns = pd.Index(classes, name="predicted")
    auc = pd.Series({c: auroc((truth == c).to_numpy(float), probs[c].to_numpy(float)) for c in classes})
    return MulticlassResult(
        accuracy=float((predicted == truth).mean()) if len(truth) else float("nan"),
        auc=auc,
        n_per_class=truth.value_counts().reindex(classes, fill_value=0),
        confusion=confusion.astype(int),
        n=int(len(truth)),
    )
