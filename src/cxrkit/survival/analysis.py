"""One call from a checked cohort to every survival result: Cox models and Kaplan–Meier curves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .cohort import Cohort
from .cox import CoxResults, fit_cox_models
from .km import KaplanMeier, kaplan_meier_by_quartile

__all__ = ["SurvivalAnalysis", "analyse_survival"]


@dataclass(frozen=True)
class SurvivalAnalysis:
    """Everything ``cxr survival`` reports; :func:`write_survival_report` turns it into a folder."""

    cohort: Cohort
    cox: CoxResults
    km: KaplanMeier | None

    @property
    def warnings(self) -> tuple[str, ...]:
        notes = list(self.cox.warnings)
        n_params = len(self.cox.models[-1].terms)
        if self.cohort.events < 10 * n_params:
            notes.append(f"{self.cohort.events} events for {n_params} coefficients in the adjusted model: fewer than "
                         "the usual 10 per coefficient, so its estimates may be unstable")
        return tuple(notes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers (NaN as None) for ``--format json``."""
        def clean(records: list[dict]) -> list[dict]:
            return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]

        out: dict[str, Any] = {
            "n": self.cohort.n, "events": self.cohort.events, "dropped": self.cohort.n_dropped,
            "cox": clean(self.cox.cox.to_dict("records")), "models": clean(self.cox.summary.to_dict("records")),
            "lr_test": clean(self.cox.lr_test.to_dict("records"))[0],
            "ph_test": clean(self.cox.ph_test.to_dict("records")), "warnings": list(self.warnings),
        }
        if self.km is not None:
            out["kaplan_meier"] = {"groups": clean(self.km.groups.to_dict("records")),
                                   "logrank_chi2": self.km.logrank_chi2, "logrank_p": self.km.logrank_p}
        return out


def analyse_survival(cohort: Cohort, *, kaplan_meier: bool = True) -> SurvivalAnalysis:
    """Fit the Cox models (and, unless turned off, the quartile KM curves) on a checked cohort."""
    return SurvivalAnalysis(cohort=cohort, cox=fit_cox_models(cohort),
                            km=kaplan_meier_by_quartile(cohort) if kaplan_meier else None)
