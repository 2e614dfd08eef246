"""The subgroup and shortcut parts of an evaluation folder: CSVs, forest plots, report.md text.

Kept apart from :mod:`.report` so the plain report stays readable; ``write_report`` calls
:func:`write_subgroups` when an evaluation was grouped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .shortcut import ProbeResult
from .subgroups import SubgroupResult, differing_labels

__all__ = ["write_subgroups"]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _ci(low: float, high: float) -> str:
    return "—" if math.isnan(low) or math.isnan(high) else f"{low:.3f}–{high:.3f}"


def write_subgroups(result: SubgroupResult, out: Path, *, plots: bool = True,
                    shortcut: ProbeResult | None = None) -> tuple[dict[str, Path], list[str]]:
    """Write ``subgroups.csv``, ``subgroup_gaps.csv``, ``label_rates.csv`` (and ``shortcut.json``,
    forest plots); return the files and the markdown lines for ``report.md``."""
    files = {"subgroups.csv": out / "subgroups.csv", "subgroup_gaps.csv": out / "subgroup_gaps.csv",
             "label_rates.csv": out / "label_rates.csv"}
    result.table.to_csv(files["subgroups.csv"], index=False)
    result.gaps.to_csv(files["subgroup_gaps.csv"], index=False)
    result.rates.to_csv(files["label_rates.csv"], index=False)
    unit = "patients of the whole table jointly" if result.patient_level else "images"
    lines = ["## Subgroups", "",
             f"AUC on the images of each group, 95 % CI from {result.n_bootstrap} bootstrap replicates resampling "
             f"{unit}. The gap compares a group with all other images of its column (same replicates); p is "
             "twice the smaller bootstrap tail around zero. A pooled AUC can be high while one group sits at "
             "chance: read these rows before the pooled table. Full tables: [subgroups.csv](subgroups.csv), "
             "[subgroup_gaps.csv](subgroup_gaps.csv), [label_rates.csv](label_rates.csv).", ""]
    if shortcut is not None:
        files["shortcut.json"] = out / "shortcut.json"
        files["shortcut.json"].write_text(json.dumps(shortcut.as_dict(), indent=2) + "\n", encoding="utf-8")
        lines += ["### Shortcut check", "",
                  f"A linear probe (standardised L2 logistic regression, {shortcut.folds}-fold, folds grouped by "
                  f"patient) on the model's {shortcut.inputs} predicts `{shortcut.column}` with out-of-fold AUC "
                  f"**{_fmt(shortcut.auc)}** (95 % CI {_ci(shortcut.ci_low, shortcut.ci_high)}; "
                  f"{shortcut.n_images} images, {shortcut.n_patients} patients; groups "
                  + ", ".join(f"{k} {v}" for k, v in shortcut.groups.items()) + ").", ""]
        if shortcut.differing_labels:
            lines += ["Label rates that differ between its groups (chi-square p < 0.001): "
                      + ", ".join(shortcut.differing_labels) + ".", ""]
        lines += [f"> **Warning.** {shortcut.warning}" if shortcut.warning else
                  "No shortcut warning: the probe does not find the group easily, or label rates do not differ.", ""]
    for column in result.columns:
        part = result.table[(result.table["column"] == column) & (result.table["label"] == "mean")]
        if part.empty:
            continue
        gaps = result.gaps[(result.gaps["column"] == column) & (result.gaps["label"] == "mean")].set_index("group")
        lines += [f"### {column}", "", "| group | images | patients | mean AUC | 95 % CI | gap to rest | gap CI | p |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in part.itertuples():
            g = gaps.loc[r.group] if r.group in gaps.index else None
            lines.append(f"| {r.group} | {r.n_images} | {r.n_patients} | {_fmt(r.auc)} | {_ci(r.auc_ci_low, r.auc_ci_high)} | "
                         + (f"{g.gap:+.3f} | {_ci(g.gap_ci_low, g.gap_ci_high)} | {_fmt(g.p_value)} |" if g is not None
                            else "— | — | — |"))
        differ = differing_labels(result.rates, column)
        if differ:
            lines += ["", f"Label rates differ between these groups for: {', '.join(differ)} "
                          f"(see label_rates.csv)."]
        lines.append("")
        if plots:
            from .plots import plot_subgroups, slug

            path = plot_subgroups(result.table, column, out / "plots" / f"subgroups_{slug(column)}.png")
            files[f"subgroups:{column}"] = path
            lines += [f"![AUC by {column}]({path.relative_to(out).as_posix()})", ""]
    return files, lines
