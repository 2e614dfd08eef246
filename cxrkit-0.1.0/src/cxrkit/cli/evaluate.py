"""``cxr evaluate predictions|model|compare|localisation``: score predictions, a model, two files, or maps.

Thin on purpose: each sub-command parses its flags into the specs of :mod:`cxrkit.evaluate.spec`
(which check them), makes one call into :mod:`cxrkit.evaluate.run` (imported on use, so
``cxr --help`` does not load scikit-learn), and prints the result.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from ..errors import InvalidArgument, MissingDependency
from . import _options
from ._output import emit, err, speaks_flags, table

app = typer.Typer(help="Evaluate predictions, a model, two prediction files (DeLong) or saliency maps.",
                  no_args_is_help=True)

#: library names -> this module's flags, where they differ
_ALIASES = {"label_names": "label", "n_bootstrap": "bootstrap"}

LABELS = typer.Option(..., "--labels", "-l", help="Label file: a dataset's own (e.g. NIH Data_Entry_2017_v2020.csv(.gz), CheXpert valid.csv) or a plain CSV.")
DATASET = typer.Option(None, "--dataset", help="Label source: csv (a plain labels CSV) or any dataset of `cxr datasets list` (nih, chexpert, ...), "
                                               "read by its adapter; image ids are matched by file name. Default: nih if the header has "
                                               "'Finding Labels', else csv.")
OUTPUT = typer.Option(..., "--output", "-o", help="Output folder (created).")
ID_COLUMN = typer.Option(None, "--id-column", help="Image id column of a foreign predictions file, e.g. 'Image Index'.")
PREFIX = typer.Option(None, "--prefix", help="Prefix of the score columns of a foreign file, e.g. prob_ (stripped).")
LABEL_ID_COLUMN = typer.Option(None, "--label-id-column", help="Image id column of a plain labels CSV.")
PATIENT_COLUMN = typer.Option(None, "--patient-column", help="Patient id column of a plain labels CSV (enables patient-level bootstrap).")
LABEL = typer.Option(None, "--label", help="Score only this label (repeatable); missing columns are an error.")
THRESHOLD_METHOD = typer.Option("youden", "--threshold-method", help="youden, f1 or ppv80 (chosen on these data).")
THRESHOLDS_FROM = typer.Option(None, "--thresholds-from", help="metrics.csv of a validation run: apply its thresholds instead.")
BOOTSTRAP = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap replicates for the AUC CI (0: none).")
SEED = typer.Option(0, "--seed", help="Seed of the bootstrap's numpy Generator.")
TASK = typer.Option("multilabel", "--task", help="multilabel, or multiclass (softmax: accuracy + confusion matrix).")
PLOTS = typer.Option(True, "--plots/--no-plots", help="Write ROC/PR/calibration PNGs.")
GROUP_BY = typer.Option(None, "--group-by", help="Metadata column(s) for per-group AUCs, comma-separated or repeated: from the label file (View Position, Patient Gender; or view, sex, age), or a --metadata CSV (e.g. source).")
METADATA = typer.Option(None, "--metadata", help="Sidecar CSV(s) of per-image columns (site, source, scanner), matched by image file name (repeatable).")
AGE_BANDS = typer.Option(None, "--age-bands", help="Cut an age column into bands at these edges, e.g. 0,40,60,80 (0-39, 40-59, 60-79, 80+).")
SHORTCUT_CHECK = typer.Option(False, "--shortcut-check", help="Probe whether the model's features (or pixels) reveal the first --group-by column; warn when they do and label rates differ by group.")
PROBE_INPUT = typer.Option("features", "--probe-input", help="What the shortcut probe sees: features (the model's pooled features) or pixels (the film at 32 x 32).")


def _library() -> Any:
    try:
        from .. import evaluate
    except ImportError as exc:  # scikit-learn / scipy / matplotlib are the 'evaluate' extra
        raise MissingDependency("cxrkit[evaluate]", f"cxr evaluate ({exc.name} is missing)") from None
    return evaluate


def _age_bands(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidArgument(f"`age_bands` must be increasing numbers like 0,40,60,80, got {text!r}") from None


def _specs(ev: Any, label: list[str] | None, threshold_method: str, thresholds_from: Path | None, bootstrap: int,
           seed: int, task: str, group_by: list[str] | None, metadata: list[Path] | None, age_bands: str | None,
           shortcut_check: bool, probe_input: str) -> tuple[Any, Any]:
    scoring = ev.Scoring(label_names=tuple(label) if label else None, threshold_method=threshold_method,
                         thresholds_from=thresholds_from, n_bootstrap=bootstrap, seed=seed, task=task)
    columns = tuple(c.strip() for item in group_by or [] for c in item.split(",") if c.strip())
    subgroups = ev.Subgroups(group_by=columns, metadata=tuple(metadata or ()), age_bands=_age_bands(age_bands),
                             shortcut_check=shortcut_check, probe_input=probe_input)
    return scoring, subgroups


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _show(run: Any, output: Path, fmt: str) -> None:
    result, subgroups, probe = run.result, run.subgroups, run.shortcut
    rows = result.table.to_dict("records")
    shown = ("label", "auc", "auc_ci_low", "auc_ci_high", "n_pos", "n_neg", "sensitivity", "specificity")
    if subgroups is None:
        emit(rows, fmt, table(list(shown), [[_cell(r[c]) for c in shown] for r in rows],
                              title=f"{result.n_images} images -> {output}"))
    else:
        means = subgroups.table[subgroups.table["label"] == "mean"]
        group_rows = means.to_dict("records")
        shown_g = ("column", "group", "n_images", "auc", "auc_ci_low", "auc_ci_high")
        pooled = next(r for r in rows if r["label"] == "mean")
        emit({"metrics": rows, "subgroups": group_rows, "shortcut": probe.as_dict() if probe else None}, fmt,
             table(list(shown_g), [["(pooled)", "all", str(result.n_images), *(_cell(pooled[c]) for c in shown_g[3:])],
                                   *[[_cell(r[c]) for c in shown_g] for r in group_rows]],
                   title=f"mean AUC by group -> {output}/report.md"))
    if probe is not None and probe.warning:
        err.print(f"[bold yellow]warning:[/] {probe.warning}", highlight=False)
    # labels predicted but absent from the label file were logged as warnings by the library
    # and are listed in report.md; untrained (empty) outputs are listed there only.


@app.command("predictions")
@speaks_flags(_ALIASES)
def predictions(
    predictions: Path = typer.Argument(..., help="Predictions CSV(.gz): ours, or foreign with --id-column/--prefix."),
    labels: Path = LABELS, output: Path = OUTPUT, dataset: str | None = DATASET, id_column: str | None = ID_COLUMN,
    prefix: str | None = PREFIX, label_id_column: str | None = LABEL_ID_COLUMN, patient_column: str | None = PATIENT_COLUMN,
    label: list[str] | None = LABEL, threshold_method: str = THRESHOLD_METHOD, thresholds_from: Path | None = THRESHOLDS_FROM,
    bootstrap: int = BOOTSTRAP, seed: int = SEED, task: str = TASK, plots: bool = PLOTS, group_by: list[str] | None = GROUP_BY,
    metadata: list[Path] | None = METADATA, age_bands: str | None = AGE_BANDS, shortcut_check: bool = SHORTCUT_CHECK,
    probe_input: str = typer.Option("pixels", "--probe-input", help="What the shortcut probe sees: pixels (the film at 32 x 32); features need `cxr evaluate model`."),
    images: Path | None = typer.Option(None, "--images", help="With --shortcut-check: the folder of the films, for the probe on pixels."),
    fmt: str = _options.FORMAT,
) -> None:
    """Score a predictions file against labels: metrics.csv with bootstrap CIs, plots and report.md.

    Ids are matched by file name. With --group-by, also AUCs per subgroup with the gap to the rest.
    """
    ev = _library()
    scoring, subgroups = _specs(ev, label, threshold_method, thresholds_from, bootstrap, seed, task, group_by,
                                metadata, age_bands, shortcut_check, probe_input)
    run = ev.evaluate_file_to_folder(ev.PredictionsFile(predictions, id_column=id_column, prefix=prefix),
                                     ev.LabelFile(labels, dataset, id_column=label_id_column, patient_column=patient_column),
                                     output, scoring=scoring, subgroups=subgroups, images=images, plots=plots)
    _show(run, output, fmt)


@app.command("model")
@speaks_flags(_ALIASES)
def model(
    model: str = typer.Argument(..., help="Model name or weight file, run on the split's images."),
    labels: Path = LABELS, output: Path = OUTPUT,
    dataset: str | None = typer.Option(None, "--dataset", help="The dataset's adapter (nih, chexpert, ... of `cxr datasets list`)."),
    images: Path | None = typer.Option(None, "--images", help="The dataset's image folder."),
    split: str = typer.Option("valid", "--split", help="valid, train, test (where defined) or all. The dataset's official split, else a seeded 80/20 patient split; it equals a training run's split only with the same data, ratios, seed and exclusions."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the patient-level split (as data.split_seed in training)."),
    label: list[str] | None = LABEL, threshold_method: str = THRESHOLD_METHOD, thresholds_from: Path | None = THRESHOLDS_FROM,
    bootstrap: int = BOOTSTRAP, seed: int = SEED, task: str = TASK, plots: bool = PLOTS, group_by: list[str] | None = GROUP_BY,
    metadata: list[Path] | None = METADATA, age_bands: str | None = AGE_BANDS, shortcut_check: bool = SHORTCUT_CHECK,
    probe_input: str = PROBE_INPUT, fmt: str = _options.FORMAT,
) -> None:
    """Run a model on a dataset split and score it: metrics.csv with bootstrap CIs, plots and report.md."""
    ev = _library()
    scoring, subgroups = _specs(ev, label, threshold_method, thresholds_from, bootstrap, seed, task, group_by,
                                metadata, age_bands, shortcut_check, probe_input)
    data = ev.DatasetSplit(dataset, labels, images, split=split, seed=split_seed)
    _show(ev.evaluate_model_to_folder(model, data, output, scoring=scoring, subgroups=subgroups, plots=plots), output, fmt)


@app.command("compare")
@speaks_flags(_ALIASES)
def compare(
    a: Path = typer.Argument(..., help="Predictions A."), b: Path = typer.Argument(..., help="Predictions B, on the same images."),
    labels: Path = LABELS, output: Path = OUTPUT, dataset: str | None = DATASET, id_column: str | None = ID_COLUMN,
    prefix: str | None = PREFIX, label_id_column: str | None = LABEL_ID_COLUMN, patient_column: str | None = PATIENT_COLUMN,
    label: list[str] | None = LABEL, fmt: str = _options.FORMAT,
) -> None:
    """Compare two prediction files on the same images: paired DeLong test per label (compare.csv)."""
    ev = _library()
    frame = ev.compare_to_folder(ev.PredictionsFile(a, id_column=id_column, prefix=prefix),
                                 ev.PredictionsFile(b, id_column=id_column, prefix=prefix),
                                 ev.LabelFile(labels, dataset, id_column=label_id_column, patient_column=patient_column),
                                 output, label_names=tuple(label) if label else None)
    rows = frame.to_dict("records")
    emit(rows, fmt, table(list(ev.COMPARE_COLUMNS), [[_cell(r[c]) for c in ev.COMPARE_COLUMNS] for r in rows],
                          title=f"DeLong A vs B -> {output / 'compare.csv'}"))


@app.command("localisation")
@speaks_flags()
def localisation(
    boxes: Path = typer.Argument(..., help="Boxes CSV: NIH BBox_List_2017.csv, --dataset rsna/vindr files, or image,label,x0,y0,x1,y1."),
    heatmaps: Path = typer.Option(..., "--heatmaps", help="The folder of `cxr predict --heatmaps DIR --heatmap-raw` (its .npy maps)."),
    output: Path = OUTPUT,
    dataset: str | None = typer.Option(None, "--dataset", help="The boxes' dataset (rsna, vindr, ...); default: NIH or the plain layout."),
    tolerance: float = typer.Option(15.0, "--tolerance", help="Pointing-game margin around each box, in the map's pixels."),
    fmt: str = _options.FORMAT,
) -> None:
    """Score saliency maps against boxes: pointing game and IoU per label and method, with Wilson CIs."""
    ev = _library()
    from ..evaluate.localisation import LOCALISATION_COLUMNS

    report, paths = ev.localisation_to_folder(boxes, heatmaps, output, dataset=dataset, tolerance=tolerance)
    rows = report.table.to_dict("records")
    emit(rows, fmt, table(list(LOCALISATION_COLUMNS), [[_cell(r[c]) for c in LOCALISATION_COLUMNS] for r in rows],
                          title=f"{len(report.items) - report.missing} maps scored, {report.missing} missing -> {paths[0]}"))
