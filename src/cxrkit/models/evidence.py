"""Does a model beat a no-skill answer on held-out patients? The card's answer, with its numbers.

Why: a person who sees a bar labelled "Effusion 0.83" assumes a model that reads films.
The bundled demonstration model does not (its held-out mean AUC is 0.546, CI 0.473-0.614),
and the card said so only in prose that no surface showed. :func:`assess` turns the
validation metrics a card already records into one typed verdict, so every surface that
shows scores (``cxr predict``, ``cxr age``, ``cxr models info``, the web page, DICOM
reports) can say it in the same words where it is false.

The verdict is conservative: a model *beats chance* only when the whole 95 % confidence
interval of its held-out metric lies on the right side of what a no-skill answer scores
(AUC 0.5; for a regression, the MAE of always answering the training mean). Where the
card names a less selected subgroup for model selection (``training.split.selected_on``),
that subgroup's numbers are used: the pooled ones reward recognising how the sample was
drawn. A card with no validation metrics (e.g. imported published weights) has no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Evidence", "assess"]


@dataclass(frozen=True)
class Evidence:
    """One held-out metric against its no-skill value, and whether its CI clears that value."""

    beats_chance: bool
    metric: str
    value: float
    ci: tuple[float, float]
    chance: float
    measured_on: str

    def sentence(self) -> str:
        """One plain line for people: the verdict first, then the numbers behind it."""
        numbers = (f"{self.metric} {self.value:.3g} (95 % CI {self.ci[0]:.3g}-{self.ci[1]:.3g}) against "
                   f"{self.chance:.3g} for no skill, on {self.measured_on}")
        if self.beats_chance:
            return f"better than chance on held-out patients: {numbers}"
        return f"not shown to be better than chance on held-out patients: {numbers}"


def _held_out(card: Any) -> tuple[dict[str, Any] | None, str]:
    validation = (card.metrics or {}).get("validation")
    if not isinstance(validation, dict):
        return None, ""
    chosen = (card.training or {}).get("split", {}).get("selected_on")
    if isinstance(chosen, dict):
        group = validation.get("subgroups", {}).get(chosen.get("column"), {}).get(str(chosen.get("value")))
        if isinstance(group, dict):
            return group, (f"{group.get('patients', '?')} validation patients with "
                           f"{chosen.get('column')} == {chosen.get('value')}")
    if "patients" in validation:
        return validation, f"{validation['patients']} validation patients"
    return validation, str(validation.get("measured_on", "the validation split"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def assess(card: Any) -> Evidence | None:
    """The verdict for a :class:`~cxrkit.models.ModelCard` from its validation metrics, or None
    where the card records none that can be judged."""
    data, where = _held_out(card)
    if data is None:
        return None
    if card.task == "regression":
        mae, low, high, chance = (_number(data.get(k)) for k in ("mae", "mae_ci_low", "mae_ci_high",
                                                                  "mae_of_training_mean"))
        if mae is None or low is None or high is None or chance is None:
            return None
        return Evidence(high < chance, "MAE (years)", mae, (low, high), chance, where)
    if card.task not in ("multilabel", "multiclass"):
        return None
    mean, ci = _number(data.get("auc_mean")), data.get("auc_mean_ci")
    if mean is not None and isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in map(_number, ci):
        low, high = float(ci[0]), float(ci[1])
        return Evidence(low > 0.5, "mean AUC", mean, (low, high), 0.5, where)
    per_label = [entry for entry in (data.get("auc") or {}).values() if isinstance(entry, dict)]
    given = ((_number(e.get("auc")), _number(e.get("ci_low")), _number(e.get("ci_high"))) for e in per_label)
    bounds = [(a, lo, hi) for a, lo, hi in given if a is not None and lo is not None and hi is not None]
    if not bounds:
        return None
    # without an interval for the mean, every label's own interval must clear chance
    value = sum(b[0] for b in bounds) / len(bounds)
    low, high = min(b[1] for b in bounds), max(b[2] for b in bounds)
    return Evidence(low > 0.5, "AUC of every label", value, (low, high), 0.5, where)
