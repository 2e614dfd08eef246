"""``cxr datasets``: list the adapters, summarise a dataset, write training shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from . import _options
from ._output import CxrGroup, emit, err, speaks_flags, table

app = typer.Typer(help="Public chest X-ray datasets: list adapters, count labels, write training shards.",
                  no_args_is_help=True, cls=CxrGroup)

RootOpt = typer.Option(None, "--root", help="Image folder of the dataset.")
LabelsOpt = typer.Option(None, "--labels", help="The dataset's label file (default: looked up under --root).")
ViewsOpt = typer.Option(None, "--views", help="Comma-separated views to keep, e.g. PA,AP (default: all).")
OnePerPatientOpt = typer.Option(False, "--one-per-patient", help="Keep one image (and its own labels) per patient.")
FileOpt = typer.Option([], "--file", help="Extra label file as KEY=PATH (e.g. headers=..., bbox=...); repeatable.")
UncertainOpt = typer.Option("nan", "--uncertain", help="CheXpert-style -1 labels: nan, ones, zeros or keep.")


def _files(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--file expects KEY=PATH, got {pair!r}")
        out[key] = value
    return out


def _open(name: str, root: Path | None, labels: Path | None, views: str | None, one_per_patient: bool,
          files: list[str], uncertain: str, **kwargs: Any):
    from ..datasets import open_dataset

    return open_dataset(name, root, labels, files=_files(files), views=views, one_per_patient=one_per_patient,
                        uncertain=uncertain, **kwargs)


@app.command("list")
@speaks_flags()
def list_cmd(fmt: str = _options.FORMAT) -> None:
    """List the dataset adapters, their label files and licences."""
    from ..datasets import OWN_SOURCES, get_spec, list_datasets

    rows = []
    for name in list_datasets():
        spec = get_spec(name)
        files = [f.key + ("" if f.required else "?") for f in spec.files]
        rows.append({"name": name, "title": spec.title, "files": files, "licence": spec.licence, "url": spec.url})
    rows += [{"name": name, "title": title, "files": list(files), "licence": "", "url": ""}
             for name, (title, files) in OWN_SOURCES.items()]
    emit(rows, fmt, table(["name", "dataset", "label files", "licence"],
                          [[r["name"], r["title"], ", ".join(r["files"]), r["licence"]] for r in rows]))


@app.command("summary")
@speaks_flags()
def summary_cmd(
    name: str = typer.Argument(..., help="Dataset name (see `cxr datasets list`), or folder / csv."),
    root: Path | None = RootOpt,
    labels: Path | None = LabelsOpt,
    views: str | None = ViewsOpt,
    one_per_patient: bool = OnePerPatientOpt,
    no_images: bool = typer.Option(False, "--no-images",
                                   help="Count from the label file alone; do not look for images."),
    output: Path | None = typer.Option(None, "--output", help="Write per-label counts to this CSV."),
    file: list[str] = FileOpt,
    uncertain: str = UncertainOpt,
    fmt: str = _options.FORMAT,
) -> None:
    """Images, patients, views and positive/negative/unknown counts per label."""
    from ..datasets.summary import summarize

    # a folder's labels are its sub-folders, so it needs its root even without images
    image_root = None if no_images and name != "folder" else root
    dataset = _open(name, image_root, labels, views, one_per_patient, file, uncertain)
    summary = summarize(dataset, check_images=not no_images and root is not None)
    if output is not None:
        summary.counts.to_csv(output, index=False)
    if fmt == "json":
        emit(summary.to_dict(), fmt)
        return
    emit(None, fmt, f"[bold]{summary.dataset}[/bold]: {summary.images} images, {summary.patients} patients")
    emit(None, fmt, "views: " + ", ".join(f"{k} {v}" for k, v in summary.views.items()))
    if summary.missing_images is not None:
        emit(None, fmt, f"missing images: {summary.missing_images}")
    emit(None, fmt, table(["label", "positive", "negative", "unknown"],
                          [list(row) for row in summary.counts.itertuples(index=False)]))
    if output is not None:
        emit(None, fmt, f"counts written to {output}")


@app.command("shard")
@speaks_flags()
def shard_cmd(
    name: str = typer.Argument(..., help="Dataset name, or folder / csv."),
    out: Path = typer.Option(..., "--out", help="Output folder for the .tar shards and dataset.json."),
    root: Path | None = RootOpt,
    labels: Path | None = LabelsOpt,
    views: str | None = ViewsOpt,
    one_per_patient: bool = OnePerPatientOpt,
    size: int = typer.Option(256, "--size", help="Image side in pixels after centre crop and resize."),
    per_shard: int = typer.Option(1000, "--per-shard", help="Samples per shard."),
    on_error: str = typer.Option("raise", "--on-error", help="raise, or skip unreadable images with a warning."),
    file: list[str] = FileOpt,
    uncertain: str = UncertainOpt,
    fmt: str = _options.FORMAT,
    resume: bool = typer.Option(False, "--resume", help="Keep the shards a killed run finished; write the rest."),
) -> None:
    """Write the dataset as pre-resized uint8 WebDataset shards for fast training."""
    from rich.progress import Progress

    from ..datasets.shards import write_shards

    dataset = _open(name, root, labels, views, one_per_patient, file, uncertain, on_error=on_error)
    if fmt == "json":
        emit(write_shards(dataset, out, size=size, samples_per_shard=per_shard, resume=resume), fmt)
        return
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("sharding", total=len(dataset))
        index = write_shards(dataset, out, size=size, samples_per_shard=per_shard, resume=resume,
                             progress=lambda i, n: bar.update(task, completed=i))
    emit(None, fmt, f"wrote {index['count']} samples of {size} px in {len(index['shards'])} shards to {out}")


@app.command("duplicates")
@speaks_flags()
def duplicates_cmd(
    inputs: list[Path] = typer.Argument(..., help="Folders of films and/or embeddings tables (cxr embed); each one a dataset."),
    out: Path = typer.Option(..., "--out", help="Report folder: pairs.csv, summary.json, thumbnails/, and the embeddings made."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model that embeds folders of films (default: the bundled default model)."),
    threshold: float | None = typer.Option(None, "--threshold", help="Score (whitened cosine minus the films' mean cosine to their 5 nearest films) at or above which two films are near duplicates (default 0.22: calibrated on altered copies, see docs/representations.md)."),
    metadata: Path | None = typer.Option(None, "--metadata", exists=True, dir_okay=False, help="CSV with a column naming each film, and its split and patient columns."),
    split_column: str | None = typer.Option(None, "--split-column", help="Column of --metadata holding the split (default: 'split'; else the train/valid/test folder in the film's path)."),
    group_by: str | None = typer.Option(None, "--group-by", help="Column of --metadata to compare a pair's films by, e.g. patient (same patient vs different patients)."),
    thumbnails: int = typer.Option(50, "--thumbnails", min=0, help="Side-by-side pictures of the first this many pairs."),
    no_hash: bool = typer.Option(False, "--no-hash", help="Skip the exact pixel-hash pass (it decodes every film once more)."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
    workers: int = typer.Option(2, "--workers", min=1, help="Decoding threads."),
    fmt: str = _options.FORMAT,
) -> None:
    """Exact (same pixels) and near-duplicate films within and across datasets and splits: the leakage check."""
    from ..embed import DEFAULT_THRESHOLD, duplicates_job
    from ._batch import progress_bar

    with progress_bar("embed", out) as bar:
        report = duplicates_job(inputs, out, model=model, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                                metadata=metadata, split_column=split_column, group_by=group_by, thumbnails=thumbnails,
                                hash_pixels=not no_hash, device=device, precision=precision, workers=workers, progress=bar)
    s = report.summary
    if fmt == "json":
        emit({"films": report.films, "threshold": report.threshold, **s, "report": str(out)}, fmt)
        return
    emit(None, fmt, f"{report.films} films, threshold {report.threshold:.3f}: {s['exact']} exact and {s['near']} near-duplicate "
                    f"pairs; {s['across_datasets']} across datasets, {s['across_splits']} across splits"
                    + (f", {s['different_group']} across different {group_by} / {s['same_group']} same {group_by}" if group_by else ""))
    shown = report.pairs.head(20)
    emit(None, fmt, table(["kind", "score", "cosine", "film a", "film b", "split a", "split b"],
                          [[r.kind, f"{r.score:.3f}", f"{r.similarity:.3f}", r.file_a, r.file_b, r.split_a or "", r.split_b or ""]
                           for r in shown.itertuples()]))
    emit(None, fmt, f"report written to {out}")
