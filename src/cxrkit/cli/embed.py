"""``cxr embed``: one vector per film under the given paths, into a resumable Parquet dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from ..embed import RETRIEVAL_TRIM, Embedder, embed_to_file
from ..models import DEFAULT_MODEL
from ..predict import OutputSpec
from . import _options
from ._batch import progress_bar, report
from ._output import err, speaks_flags


@speaks_flags()
def embed(
    paths: list[Path] = typer.Argument(..., help="Image files and/or folders (scanned recursively; DICOM found by content)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model id, TorchXRayVision name (e.g. 101-elastic) or .safetensors file."),
    layer: str = typer.Option("features", "--layer", help="features (pooled vector, any model) or latent (an autoencoder's whole latent map)."),
    trim: float = typer.Option(RETRIEVAL_TRIM, "--trim", help="Fraction of each side of the film left out (turns, crops and frames change the border most); 0 embeds the whole film, as the classifier sees it. Stored with the vectors; cxr similar embeds queries the same way."),
    output: Path = typer.Option(..., "--output", "-o", help="Output: a Parquet dataset folder (e.g. embeddings.parquet), or a .csv/.jsonl file with one column per component."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
    workers: int = _options.WORKERS,
    resume: bool = _options.RESUME,
    overwrite: bool = _options.OVERWRITE,
    flush_rows: int = typer.Option(2048, "--flush-rows", min=1, help="Parquet: write a part file every this many rows..."),
    flush_seconds: float = typer.Option(30.0, "--flush-seconds", min=0.0, help="...or this many seconds, whichever comes first (a kill loses at most that much work)."),
    clean_film: bool = _options.CLEAN_FILM,
    fix_orientation: bool = _options.FIX_ORIENTATION,
    fix_mirror: bool = _options.FIX_MIRROR,
    orientation_model: str = _options.ORIENTATION_MODEL,
) -> None:
    """Embed each film: one row per file (file, status, error, vector), errors included.

    Parquet output is a folder of part files written as the run goes, readable as one table
    by pyarrow, pandas, Polars, DuckDB or Spark; `cxr similar` searches it. Exit 3 when some
    files failed (their rows say why, with an empty vector).
    """
    film = _options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, device)
    embedder = Embedder(model, layer=layer, device=device, precision=precision, trim=trim, film=film)
    fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(output.suffix.lower(), "parquet")
    with progress_bar("embed", output) as bar:
        summary = embed_to_file(paths, embedder, OutputSpec(output, fmt, resume, overwrite),
                                flush_rows=flush_rows, flush_seconds=flush_seconds, batch_size=batch_size,
                                workers=workers, progress=bar)
    report(summary, output, f"model {embedder.card.name}, layer {layer} ({embedder.dim}-d), {embedder.precision}")


@speaks_flags()
def ood_fit(
    train: Path = typer.Option(..., "--train", exists=True, help="Embeddings of the model's training films (cxr embed, layer features)."),
    val: Path = typer.Option(..., "--val", exists=True, help="Embeddings of in-distribution validation films (not in --train)."),
    k: int = typer.Option(5, "-k", min=1, help="Distance to the k-th nearest training film."),
    quantile: float = typer.Option(0.99, "--quantile", help="Threshold at this quantile of the validation scores (0.99: ~1 % of ordinary films flagged)."),
    for_model: str | None = typer.Option(None, "--for", help="The model whose cxr predict --ood uses this detector (default: the embeddings' model; another model's features may separate better)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Detector file (default: MODEL.ood.safetensors in the model cache, where cxr predict --ood finds it)."),
) -> None:
    """Fit the out-of-distribution detector `cxr predict --ood` uses: k-NN feature distance to the training films."""
    from ..embed.ood import OodDetector, detector_path
    from ..models import cache_dir, resolve_card

    detector = OodDetector.fit_tables(train, val, k=k, quantile=quantile)
    user = resolve_card(for_model)[0].name if for_model else detector.info["model"]
    target = output or detector_path(user, cache_dir() / "models")
    detector.save(target)
    err.print(f"wrote {target}: threshold {detector.threshold:.4f} (k={k}, {len(detector.reference)} reference films; "
              f"{detector.info['validation_flagged']:.1%} of {detector.info['n_validation']} validation films flagged)", highlight=False)
