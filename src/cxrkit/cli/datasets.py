"""``cxr datasets``: list the adapters, summarise a dataset, write training shards."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from cxrkit.errors import CxrkitError

app = typer.Typer(help="Public chest X-ray datasets: list adapters, count labels, write training shards.",
                  no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)

RootOpt = typer.Option(None, "--root", help="Image folder of the dataset.")
LabelsOpt = typer.Option(None, "--labels", help="The dataset's label file (default: looked up under --root).")
ViewsOpt = typer.Option(None, "--views", help="Comma-separated views to keep, e.g. PA,AP (default: all).")
OnePerPatientOpt = typer.Option(False, "--one-per-patient", help="Keep one image (and its own labels) per patient.")
FormatOpt = typer.Option("human", "--format", help="human or json.")
FileOpt = typer.Option([], "--file", help="Extra label file as KEY=PATH (e.g. headers=..., bbox=...); repeatable.")
UncertainOpt = typer.Option("nan", "--uncertain", help="CheXpert-style -1 labels: nan, ones, zeros or keep.")


def _errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CxrkitError as exc:
            if os.environ.get("CXRKIT_DEBUG") == "1":
                raise
            _err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
    return wrapper


def _files(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--file expects KEY=PATH, got {pair!r}")
        out[key] = value
    return out


def _build(name: str, root: Optional[Path], labels: Optional[Path], views: Optional[str], one_per_patient: bool,
           files: list[str], uncertain: str, **kwargs: Any):
    from cxrkit.datasets import csv_dataset, folder_dataset, get_dataset

    common = dict(views=views, one_per_patient=one_per_patient, **kwargs)
    if name == "folder":
        if root is None:
            raise typer.BadParameter("the folder dataset needs --root")
        return folder_dataset(root, **common)
    if name == "csv":
        if labels is None:
            raise typer.BadParameter("the csv dataset needs --labels")
        return csv_dataset(labels, root, uncertain=uncertain, **common)
    return get_dataset(name, root, labels, files=_files(files), uncertain=uncertain, **common)


@app.command("list")
@_errors
def list_cmd(format: str = FormatOpt) -> None:
    """List the dataset adapters, their label files and licences."""
    from cxrkit.datasets import get_spec, list_datasets

    rows = []
    for name in list_datasets():
        spec = get_spec(name)
        files = [f.key + ("" if f.required else "?") for f in spec.files]
        rows.append({"name": name, "title": spec.title, "files": files,
                     "licence": spec.licence, "url": spec.url})
    rows += [{"name": "folder", "title": "your images, labels from sub-folder names", "files": [], "licence": "",
              "url": ""},
             {"name": "csv", "title": "your images, labels from a CSV", "files": ["labels"], "licence": "", "url": ""}]
    if format == "json":
        print(json.dumps(rows, indent=1))
        return
    table = Table("name", "dataset", "label files", "licence")
    for r in rows:
        table.add_row(r["name"], r["title"], ", ".join(r["files"]), r["licence"])
    _out.print(table)


@app.command("summary")
@_errors
def summary_cmd(
    name: str = typer.Argument(..., help="Dataset name (see `cxr datasets list`), or folder / csv."),
    root: Optional[Path] = RootOpt,
    labels: Optional[Path] = LabelsOpt,
    views: Optional[str] = ViewsOpt,
    one_per_patient: bool = OnePerPatientOpt,
    no_images: bool = typer.Option(False, "--no-images",
                                   help="Count from the label file alone; do not look for images."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write per-label counts to this CSV."),
    file: list[str] = FileOpt,
    uncertain: str = UncertainOpt,
    format: str = FormatOpt,
) -> None:
    """Images, patients, views and positive/negative/unknown counts per label."""
    from cxrkit.datasets.summary import summarize

    dataset = _build(name, None if no_images and name not in ("folder",) else root, labels, views, one_per_patient,
                     file, uncertain)
    summary = summarize(dataset, check_images=not no_images and root is not None)
    if output is not None:
        summary.counts.to_csv(output, index=False)
    if format == "json":
        print(json.dumps(summary.to_dict(), indent=1))
        return
    _out.print(f"[bold]{summary.dataset}[/bold]: {summary.images} images, {summary.patients} patients")
    _out.print("views: " + ", ".join(f"{k} {v}" for k, v in summary.views.items()))
    if summary.missing_images is not None:
        _out.print(f"missing images: {summary.missing_images}")
    table = Table("label", "positive", "negative", "unknown")
    for row in summary.counts.itertuples(index=False):
        table.add_row(row.label, str(row.positive), str(row.negative), str(row.unknown))
    _out.print(table)
    if output is not None:
        _out.print(f"counts written to {output}")


@app.command("shard")
@_errors
def shard_cmd(
    name: str = typer.Argument(..., help="Dataset name, or folder / csv."),
    out: Path = typer.Option(..., "--out", help="Output folder for the .tar shards and dataset.json."),
    root: Optional[Path] = RootOpt,
    labels: Optional[Path] = LabelsOpt,
    views: Optional[str] = ViewsOpt,
    one_per_patient: bool = OnePerPatientOpt,
    size: int = typer.Option(256, "--size", help="Image side in pixels after centre crop and resize."),
    per_shard: int = typer.Option(1000, "--per-shard", help="Samples per shard."),
    on_error: str = typer.Option("raise", "--on-error", help="raise, or skip unreadable images with a warning."),
    file: list[str] = FileOpt,
    uncertain: str = UncertainOpt,
    format: str = FormatOpt,
) -> None:
    """Write the dataset as pre-resized uint8 WebDataset shards for fast training."""
    from rich.progress import Progress

    from cxrkit.datasets.shards import write_shards

    dataset = _build(name, root, labels, views, one_per_patient, file, uncertain, on_error=on_error)
    if format == "json":
        index = write_shards(dataset, out, size=size, samples_per_shard=per_shard)
        print(json.dumps(index, indent=1))
        return
    with Progress(console=_err, transient=True) as bar:
        task = bar.add_task("sharding", total=len(dataset))
        index = write_shards(dataset, out, size=size, samples_per_shard=per_shard,
                             progress=lambda i, n: bar.update(task, completed=i))
    _out.print(f"wrote {index['count']} samples of {size} px in {len(index['shards'])} shards to {out}")
