"""``cxr evaluate``: score a predictions file against labels, or compare two with DeLong.

Thin on purpose: flags are checked here, the work is one call into :mod:`cxrkit.evaluate.run`
(imported on use, so ``cxr --help`` does not load scikit-learn), and the result is printed.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import typer

from ..errors import CxrkitError, MissingDependency
from . import _options
from ._output import emit, err, speaks_flags, table


def _label_options(dataset: str | None, label_id_column: str | None, patient_column: str | None) -> dict:
    if dataset not in (None, "csv"):
        if label_id_column or patient_column:
            raise CxrkitError(f"--label-id-column/--patient-column apply to --dataset csv; {dataset} label files "
                              "have fixed columns")
        return {}
    options = {}
    if label_id_column:
        options["id_column"] = label_id_column
    if patient_column:
        options["patient_column"] = patient_column
    return options


def _age_bands(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        edges = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CxrkitError(f"--age-bands must be increasing numbers like 0,40,60,80, got {text!r}") from None
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
        raise CxrkitError(f"--age-bands must be increasing numbers like 0,40,60,80, got {text!r}")
    return edges


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _localisation(boxes: Path | None, heatmaps: Path | None, dataset: str | None, output: Path, tolerance: float,
                  fmt: str) -> None:
    if boxes is None or heatmaps is None:
        raise CxrkitError("--localisation BOXES.csv and --heatmaps DIR go together (maps from cxr predict --heatmap-raw)")
    from ..evaluate.localisation import LOCALISATION_COLUMNS, localisation_report

    report = localisation_report(boxes, heatmaps, dataset=None if dataset == "csv" else dataset, tolerance=tolerance)
    paths = report.write(output)
    rows = report.table.to_dict("records")
    emit(rows, fmt, table(list(LOCALISATION_COLUMNS), [[_cell(r[c]) for c in LOCALISATION_COLUMNS] for r in rows],
                          title=f"{len(report.items) - report.missing} maps scored, {report.missing} missing -> {paths[0]}"))


@speaks_flags({"label_names": "label", 'label_options["id_column"]': "label_id_column"})
def evaluate(
    predictions: Path | None = typer.Option(None, "--predictions", "-p", help="Predictions CSV(.gz): ours, or foreign with --id-column/--prefix."),
    model: str | None = typer.Option(None, "--model", "-m", help="Evaluate this model directly on --images (a split of --dataset)."),
    images: Path | None = typer.Option(None, "--images", help="With --model: the dataset's image folder."),
    split: str = typer.Option("valid", "--split", help="With --model: valid, train, test (where defined) or all. The dataset's official split, else a seeded 80/20 patient split; it equals a training run's split only with the same data, ratios, seed and exclusions."),
    split_seed: int = typer.Option(0, "--split-seed", help="With --model: seed of the patient-level split (as data.split_seed in training)."),
    compare: tuple[Path, Path] | None = typer.Option(None, "--compare", help="Two prediction files A B: paired DeLong test per label."),
    labels: Path | None = typer.Option(None, "--labels", "-l", help="Label file: a dataset's own (e.g. NIH Data_Entry_2017_v2020.csv(.gz), CheXpert valid.csv) or a plain CSV."),
    dataset: str | None = typer.Option(None, "--dataset", help="Label source: csv (a plain labels CSV) or any dataset of `cxr datasets list` (nih, chexpert, ...), "
                                                                   "read by its adapter; image ids are matched by file name. Default: nih if the header has "
                                                                   "'Finding Labels', else csv."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
    id_column: str | None = typer.Option(None, "--id-column", help="Image id column of a foreign predictions file, e.g. 'Image Index'."),
    prefix: str | None = typer.Option(None, "--prefix", help="Prefix of the score columns of a foreign file, e.g. prob_ (stripped)."),
    label_id_column: str | None = typer.Option(None, "--label-id-column", help="Image id column of a plain labels CSV."),
    patient_column: str | None = typer.Option(None, "--patient-column", help="Patient id column of a plain labels CSV (enables patient-level bootstrap)."),
    label: list[str] | None = typer.Option(None, "--label", help="Score only this label (repeatable); missing columns are an error."),
    threshold_method: str = typer.Option("youden", "--threshold-method", help="youden, f1 or ppv80 (chosen on these data)."),
    thresholds_from: Path | None = typer.Option(None, "--thresholds-from", help="metrics.csv of a validation run: apply its thresholds instead."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap replicates for the AUC CI (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap's numpy Generator."),
    task: str = typer.Option("multilabel", "--task", help="multilabel, or multiclass (softmax: accuracy + confusion matrix)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write ROC/PR/calibration PNGs."),
    group_by: list[str] | None = typer.Option(None, "--group-by", help="Metadata column(s) for per-group AUCs, comma-separated or repeated: from the label file (View Position, Patient Gender; or view, sex, age), or a --metadata CSV (e.g. source)."),
    metadata: list[Path] | None = typer.Option(None, "--metadata", help="Sidecar CSV(s) of per-image columns (site, source, scanner), matched by image file name (repeatable)."),
    age_bands: str | None = typer.Option(None, "--age-bands", help="Cut an age column into bands at these edges, e.g. 0,40,60,80 (0-39, 40-59, 60-79, 80+)."),
    shortcut_check: bool = typer.Option(False, "--shortcut-check", help="Probe whether the model's features (or pixels) reveal the first --group-by column; warn when they do and label rates differ by group. Needs --model, or --images for --probe-input pixels."),
    probe_input: str = typer.Option("features", "--probe-input", help="What the shortcut probe sees: features (the model's pooled features) or pixels (the film at 32 x 32)."),
    localisation: Path | None = typer.Option(None, "--localisation", help="Boxes CSV (NIH BBox_List_2017.csv, --dataset rsna/vindr files, or image,label,x0,y0,x1,y1): score the maps in --heatmaps by pointing game and IoU instead."),
    heatmaps: Path | None = typer.Option(None, "--heatmaps", help="With --localisation: the folder of `cxr predict --heatmaps DIR --heatmap-raw` (its .npy maps)."),
    tolerance: float = typer.Option(15.0, "--tolerance", help="With --localisation: pointing-game margin around each box, in the map's pixels."),
    fmt: str = _options.FORMAT,
) -> None:
    """Evaluate predictions against labels: metrics.csv with bootstrap CIs, plots and report.md.

    Ids are matched by file name. With --compare A B, writes compare.csv (DeLong per label).
    With --group-by, also AUCs per subgroup with the gap to the rest (subgroups.csv, report.md).
    """
    if localisation is not None or heatmaps is not None:
        return _localisation(localisation, heatmaps, dataset, output, tolerance, fmt)
    if labels is None:
        raise CxrkitError("--labels FILE is required (or --localisation BOXES.csv --heatmaps DIR to score maps)")
    columns = [c.strip() for item in group_by or [] for c in item.split(",") if c.strip()]
    bands = _age_bands(age_bands)
    if shortcut_check and not columns:
        raise CxrkitError("--shortcut-check needs --group-by COLUMN: the group the probe should try to recognise")
    if shortcut_check and probe_input not in ("features", "pixels"):
        raise CxrkitError(f"--probe-input must be features or pixels, got {probe_input!r}")
    if shortcut_check and model is None and (probe_input == "features" or images is None):
        raise CxrkitError("--shortcut-check needs --model (features), or --images DIR with --probe-input pixels")
    if (columns or metadata) and compare is not None:
        raise CxrkitError("--group-by/--metadata apply to --predictions and --model, not to --compare")
    if sum(x is not None for x in (predictions, compare, model)) != 1:
        raise CxrkitError("give one of --predictions FILE, --model NAME (with --dataset and --images) or --compare A.csv B.csv")
    if model is not None and (dataset in (None, "csv") or images is None):
        raise CxrkitError("--model needs --dataset NAME (an adapter, e.g. nih) and --images DIR to pick the split's images")
    try:
        from .. import evaluate as ev
        from ..evaluate.run import compare_to_folder, evaluate_to_folder
    except ImportError as exc:  # scikit-learn / scipy / matplotlib are the 'evaluate' extra
        raise MissingDependency("cxrkit[evaluate]", f"cxr evaluate ({exc.name} is missing)") from None
    if dataset is not None and dataset not in ev.label_formats():
        raise CxrkitError(f"--dataset must be csv or a registered dataset ({', '.join(ev.label_formats())}), got {dataset!r}")
    options = _label_options(dataset, label_id_column, patient_column)
    if compare is not None:
        frame = compare_to_folder(compare[0], compare[1], labels, output, dataset=dataset, label_options=options,
                                  id_column=id_column, prefix=prefix, label_names=label)
        rows = frame.to_dict("records")
        emit(rows, fmt, table(list(ev.COMPARE_COLUMNS), [[_cell(r[c]) for c in ev.COMPARE_COLUMNS] for r in rows],
                              title=f"DeLong A vs B -> {output / 'compare.csv'}"))
        return
    # the exact command line, for report.md's "Reproduce" section (only when run as `cxr evaluate`)
    command = ("cxr evaluate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
               if len(sys.argv) > 1 and sys.argv[1] == "evaluate" else None)
    run = evaluate_to_folder(
        output, labels, predictions=predictions, model=model, dataset=dataset, images=images, split=split,
        split_seed=split_seed, id_column=id_column, prefix=prefix, label_options=options, label_names=label,
        threshold_method=threshold_method, thresholds_from=thresholds_from, n_bootstrap=bootstrap, seed=seed,
        task=task, plots=plots, group_by=columns, metadata=metadata or (), age_bands=bands,
        shortcut_check=shortcut_check, probe_input=probe_input, command=command)
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
