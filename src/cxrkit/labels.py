"""The standard pathology vocabulary shared by every model, dataset and output.

The 18 names and their order are identical to TorchXRayVision's
``default_pathologies`` so that its published weights, our models and every CSV
column line up position for position and name for name.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import UnknownLabel

__all__ = ["PATHOLOGIES", "NIH_PATHOLOGIES", "index_of", "align"]

PATHOLOGIES: tuple[str, ...] = (
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "Lung Lesion",
    "Fracture",
    "Lung Opacity",
    "Enlarged Cardiomediastinum",
)

#: The 14 labels of NIH ChestX-ray14 (CheXNet's task), in standard order.
NIH_PATHOLOGIES: tuple[str, ...] = PATHOLOGIES[:14]

_INDEX = {name: i for i, name in enumerate(PATHOLOGIES)}


def index_of(label: str) -> int:
    """Position of ``label`` in :data:`PATHOLOGIES`; :class:`~cxrkit.errors.UnknownLabel` (a ``KeyError``) for a misspelling."""
    try:
        return _INDEX[label]
    except KeyError:
        raise UnknownLabel(f"unknown pathology {label!r}; standard labels are: {', '.join(PATHOLOGIES)}") from None


def align(source: Sequence[str | None], target: Sequence[str] = PATHOLOGIES) -> list[int | None]:
    """For each target label, the index of the same label in ``source`` (``None`` where absent).

    Empty strings and ``None`` in ``source`` mean "this output was not trained" and
    never match, so an untrained output can never masquerade as a prediction.
    """
    where = {name: i for i, name in enumerate(source) if name}
    return [where.get(name) for name in target]
