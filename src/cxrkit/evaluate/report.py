"""Write an evaluation to a folder: ``metrics.csv``, PNG plots and a ``report.md`` linking them.

``metrics.csv`` keeps full float precision (pandas writes the shortest repr that
round-trips), so a published number can be checked to the last digit; ``report.md``
rounds for people and says how every number was obtained (bootstrap unit, seed,
threshold rule), because a metric without its method cannot be reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .evaluation import COMPARE_COLUMNS, METRICS_COLUMNS, Evaluation
from .plots import plot_confusion, plot_pr, plot_reliability, plot_roc, slug
from .shortcut import ProbeResult
from .subgroup_report import write_subgroups
from .subgroups import SubgroupResult

__all__ = ["write_report", "write_compare"]

_RULES = {
    "youden": "Youden's J (maximises sensitivity + specificity - 1)",
    "f1": "maximum F1",
    "ppv80": "the most sensitive threshold with PPV >= 0.8 (NaN where none reaches it)",
}


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def write_report(
    evaluation: Evaluation,
    output: str | Path,
    *,
    plots: bool = True,
    sources: Mapping[str, str] | None = None,
    command: str | None = None,
    subgroups: SubgroupResult | None = None,
    shortcut: ProbeResult | None = None,
) -> dict[str, Path]:
    """Write every artefact into ``output`` (created if needed); returns name -> path.

    ``subgroups`` / ``shortcut`` add the per-group tables, forest plots and the shortcut
    check (see :mod:`.subgroup_report`) to the folder and to ``report.md``.
    """
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    table = evaluation.table[list(METRICS_COLUMNS)]
    files["metrics.csv"] = out / "metrics.csv"
    table.to_csv(files["metrics.csv"], index=False)

    figures: list[tuple[str, str, str]] = []  # (label, roc path, pr path) relative to out
    if plots:
        rows = table.set_index("label")
        for name in evaluation.labels.columns:
            y, s = evaluation.labels[name].to_numpy(), evaluation.scores[name].to_numpy()
            r = rows.loc[name]
            roc = plot_roc(y, s, name, out / "plots" / f"roc_{slug(name)}.png", auc=r["auc"],
                           ci=(r["auc_ci_low"], r["auc_ci_high"]), threshold=r["threshold"])
            pr = plot_pr(y, s, name, out / "plots" / f"pr_{slug(name)}.png")
            files[f"roc:{name}"], files[f"pr:{name}"] = roc, pr
            figures.append((name, roc.relative_to(out).as_posix(), pr.relative_to(out).as_posix()))
        files["reliability"] = plot_reliability(evaluation.labels, evaluation.scores, out / "plots" / "reliability.png")
    multi = evaluation.multiclass
    if multi is not None:
        files["confusion_matrix.csv"] = out / "confusion_matrix.csv"
        multi.confusion.to_csv(files["confusion_matrix.csv"])
        if plots:
            files["confusion"] = plot_confusion(multi.confusion, out / "plots" / "confusion_matrix.png")

    extra: list[str] = []
    if subgroups is not None:
        group_files, extra = write_subgroups(subgroups, out, plots=plots, shortcut=shortcut)
        files.update(group_files)
    files["report.md"] = out / "report.md"
    files["report.md"].write_text(_report_md(evaluation, table, figures, files, out, sources, command, extra),
                                  encoding="utf-8")
    return files


def _report_md(ev: Evaluation, table: pd.DataFrame, figures, files, out: Path, sources, command,
               subgroup_lines: list[str]) -> str:
    lines = ["# Evaluation report", ""]
    if sources:
        lines += [f"- {key}: `{value}`" for key, value in sources.items()]
    n_patients = ev.patients.nunique() if ev.patients is not None else None
    lines += [
        f"- Images scored: {ev.n_images} (ids matched by file name; {ev.n_prediction_ids} with predictions, "
        f"{ev.n_label_ids} with labels)" + (f", {n_patients} patients" if n_patients is not None else ""),
        f"- Threshold rule: {_RULES[ev.threshold_method]}, chosen on these data. Thresholds picked on a test "
        "set overstate sensitivity/specificity: choose them on validation and carry them over.",
    ]
    if ev.bootstrap is not None:
        unit = "patients (all images of a drawn patient together)" if ev.bootstrap.patient_level else "images"
        lines.append(f"- AUC {ev.bootstrap.level:.0%} CI: percentile bootstrap, {ev.bootstrap.n_boot} replicates "
                     f"resampling {unit}, numpy seed {ev.seed}.")
    else:
        lines.append("- No bootstrap (CIs empty).")
    lines += [
        "- AUC: scikit-learn `roc_auc_score` per label on images whose label and score are both known "
        "(ties count 1/2). Labels without positives or without negatives have no AUC (—) and are left out of "
        "the mean; the `mean` row is the macro mean over the labels with an AUC (counts summed over them).",
        "", "## Metrics", "", "Full precision in [metrics.csv](metrics.csv).", "", _markdown_table(table), "",
    ]
    undefined = table[(table["label"] != "mean") & table["auc"].isna()]
    if len(undefined):
        lines += ["Labels without an AUC: " + ", ".join(
            f"{r.label} ({r.n_pos} positive, {r.n_neg} negative)" for r in undefined.itertuples()), ""]
    if ev.skipped_labels:
        by_reason: dict[str, list[str]] = {}
        for name, why in ev.skipped_labels.items():
            by_reason.setdefault(why, []).append(name)
        lines += ["Prediction columns not scored:", ""]
        lines += [f"- {why}: {', '.join(names)}" for why, names in by_reason.items()] + [""]
    lines += subgroup_lines
    if ev.multiclass is not None:
        m = ev.multiclass
        lines += ["## Multi-class", "", f"Accuracy (argmax): {_fmt(m.accuracy)} on {m.n} images.", "",
                  "One-vs-rest AUC: " + ", ".join(f"{k} {_fmt(v)}" for k, v in m.auc.items()), "",
                  "[confusion_matrix.csv](confusion_matrix.csv)", ""]
        if "confusion" in files:
            lines += [f"![confusion matrix]({files['confusion'].relative_to(out).as_posix()})", ""]
    if figures:
        lines += ["## ROC and precision-recall curves", ""]
        for name, roc, pr in figures:
            lines += [f"### {name}", "", f"![ROC {name}]({roc}) ![PR {name}]({pr})", ""]
    if "reliability" in files:
        lines += ["## Reliability diagram", "",
                  "Scores binned into tenths; the curve follows the diagonal if scores are probabilities. "
                  "Calibrated scores (the default of `Predictor` and `cxr predict`) are rescaled so 0.5 is the "
                  "model's operating threshold: they are not probabilities, and this plot shows by how much.", "",
                  f"![reliability]({files['reliability'].relative_to(out).as_posix()})", ""]
    if command:
        lines += ["## Reproduce", "", "```", command, "```", ""]
    return "\n".join(lines)


def write_compare(frame: pd.DataFrame, output: str | Path, *, sources: Mapping[str, str] | None = None) -> dict[str, Path]:
    """``compare.csv`` (full precision) and a short ``compare.md`` explaining the test."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "compare.csv", out / "compare.md"
    frame[list(COMPARE_COLUMNS)].to_csv(csv_path, index=False)
    lines = ["# Paired comparison (DeLong)", ""]
    lines += [f"- {k}: `{v}`" for k, v in (sources or {}).items()]
    lines += ["- Two-sided DeLong test of AUC(A) = AUC(B) per label, on images scored by both models with a known "
              "label (n); fast midrank algorithm (Sun & Xu 2014). p-values are not corrected for multiple labels.",
              "", _markdown_table(frame[list(COMPARE_COLUMNS)], 4), "", "Full precision in [compare.csv](compare.csv).", ""]
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return {"compare.csv": csv_path, "compare.md": md_path}
