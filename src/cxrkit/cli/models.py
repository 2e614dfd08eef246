"""``cxr models``: list, inspect, import and fetch weights."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ..errors import InvalidArgument
from ..models import list_architectures, list_models, published, resolve_card
from ..models.card import ModelCard
from . import _options
from ._output import emit, err, speaks_flags, table

app = typer.Typer(help="List, inspect, import and fetch models.", no_args_is_help=True)


@app.command("list")
@speaks_flags()
def list_(fmt: str = _options.FORMAT) -> None:
    """Registered models (bundled and downloaded), fetchable published models, architectures."""
    cards = list_models()
    have = {c.name for c in cards}
    fetchable = [n for n in published.names() if published.cxrkit_name(n) not in have]
    architectures = list_architectures()
    data = {
        "models": [{"name": c.name, "architecture": c.architecture, "labels": len(c.trained_labels),
                    "input_size": c.input_size, "description": c.description} for c in cards],
        "fetchable": fetchable,
        "architectures": architectures,
    }
    rows = [[c.name, c.architecture, len(c.trained_labels), c.input_size, c.description[:60]] for c in cards]
    emit(data, fmt, table(["model", "architecture", "labels", "input", "description"], rows, title="Models"))
    if fmt != "json":
        emit(None, fmt, f"fetchable with `cxr models fetch NAME`: {', '.join(fetchable) or 'none'}")
        emit(None, fmt, f"architectures (random init / training): {', '.join(architectures)}")


@app.command("info")
@speaks_flags()
def info(name: str = typer.Argument(..., help="Model id, TorchXRayVision name or file."), fmt: str = _options.FORMAT) -> None:
    """Show a model's card: labels, thresholds, input contract, provenance, metrics."""
    card, path = resolve_card(name)
    evidence = card.evidence
    data = {**card.to_dict(), "card_path": str(path), "uncalibrated_labels": card.uncalibrated_labels,
            "evidence": None if evidence is None else {**asdict(evidence), "sentence": evidence.sentence()}}
    uncalibrated = set(card.uncalibrated_labels)
    rows = [[label or "(untrained)", card.thresholds.get(label, "uncalibrated: raw probability" if label in uncalibrated
                                                         else "") if label else ""] for label in card.labels]
    human = table(["label", "threshold"], rows, title=f"{card.name} ({card.architecture}, {card.input_size} px)")
    emit(data, fmt, human)
    if fmt != "json":
        verdict = "no held-out metrics on the card" if evidence is None else evidence.sentence()
        emit(None, fmt, f"{card.description}\nintended use: {card.intended_use}\nevidence: {verdict}\ncard: {path}")


@app.command("import")
@speaks_flags()
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="TorchXRayVision .pt (pickled module or state dict)."),
    output: Path = typer.Option(..., "--output", "-o", help="Destination .safetensors (its card is written beside it)."),
    fmt_in: str = typer.Option("torchxrayvision", "--format", help="Source format (torchxrayvision)."),
    name: str | None = typer.Option(None, "--name", help="Model id for the card (default: output file name)."),
    published_name: str | None = typer.Option(None, "--published", help="Take labels/thresholds from this published model."),
) -> None:
    """Convert a TorchXRayVision weight file to safetensors + model card (no code in it is run)."""
    if fmt_in != "torchxrayvision":
        raise InvalidArgument(f"unsupported --format {fmt_in!r}; supported: torchxrayvision")
    from ..models.import_xrv import import_torchxrayvision

    card_path = import_torchxrayvision(file, output, name=name, published_name=published_name)
    card = ModelCard.load(card_path)
    err.print(f"wrote {output} and {card_path.name}: {card.architecture}, {len(card.trained_labels)} labels, "
              f"{len(card.thresholds)} thresholds", highlight=False)


@app.command("fetch")
@speaks_flags()
def fetch_(
    name: str = typer.Argument(..., help="Published TorchXRayVision model, e.g. densenet121-res224-all."),
    sha256: str | None = typer.Option(None, "--sha256", help="Expected sha256 of the download (pins the file)."),
    url: str | None = typer.Option(None, "--url", help="Download from this mirror instead of the release URL."),
    timeout: float = typer.Option(60.0, "--timeout", help="Network timeout in seconds."),
) -> None:
    """Download a published TorchXRayVision model, verify it, convert it and register it."""
    from ..models.fetch import fetch

    with Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, disable=not err.is_terminal) as bar:
        task = bar.add_task("download", total=None)
        card_path = fetch(name, url=url, sha256=sha256, timeout=timeout,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
    card = ModelCard.load(card_path)
    err.print(f"registered {card.name} ({card_path}); use it with: cxr predict --model {card.name} ...", highlight=False)
