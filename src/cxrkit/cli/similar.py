"""``cxr similar``: the films of an embeddings table closest to a query film (exact cosine search)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..embed import Embedder, EmbeddingIndex, VectorTransform
from ..errors import InvalidArgument
from . import _options
from ._output import emit, speaks_flags, table


@speaks_flags()
def similar(
    queries: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Query image file(s)."),
    index: Path = typer.Option(..., "--index", "-i", help="Embeddings written by cxr embed (Parquet folder or file)."),
    k: int = typer.Option(10, "-k", "--top", min=1, help="How many neighbours per query."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model to embed the queries with (default: the one the index names; its weights must match)."),
    include_self: bool = typer.Option(False, "--include-self", help="Keep a query that is itself in the index in its own answer."),
    transform: str = typer.Option("auto", "--transform", help="auto (the one stored with the index: centred, whitened against altered copies), whiten (on the index alone), centre, or none (plain cosine of the raw vectors)."),
    device: str = _options.DEVICE,
    precision: str | None = typer.Option(None, "--precision", help="Precision of the query's forward pass (default: the index's)."),
    fmt: str = _options.FORMAT,
) -> None:
    """Nearest films by cosine similarity of their embeddings (1 = same direction), best first.

    The query is embedded with the index's model and layer (stored in the table). Vectors are
    centred and whitened on the index first, so a weak model's features still tell films apart.
    For archives beyond memory, feed the same vectors to FAISS (see docs/representations.md).
    """
    if transform not in ("auto", "whiten", "centre", "none"):
        raise InvalidArgument(f"--transform must be auto, whiten, centre or none; got {transform!r}")
    found = EmbeddingIndex.load(index, transform=transform)
    embedder = Embedder.for_table(found.metadata, model=model, device=device, precision=precision)
    vectors = embedder.embed_files(queries)
    names = [str(q) for q in queries]
    exclude = None if include_self else _as_indexed(queries, found.files)
    answers = found.search(vectors, k=k, exclude=exclude)
    # the index fits its transform when it loads, so this is the fitted one's method, not a name
    method = found.transform.method if isinstance(found.transform, VectorTransform) else found.transform
    data = {"index": str(index), "model": embedder.card.name, "layer": embedder.layer, "transform": method,
            "results": [{"query": name, "neighbours": [{"rank": n.rank, "file": n.file, "similarity": round(n.similarity, 6)}
                                                       for n in hits]} for name, hits in zip(names, answers, strict=True)]}
    rows = [[name, n.rank, n.file, f"{n.similarity:.4f}"] for name, hits in zip(names, answers, strict=True) for n in hits]
    emit(data, fmt, table(["query", "rank", "file", "cosine"], rows, title=f"nearest films ({embedder.card.name}, {embedder.layer}, {method})"))


def _as_indexed(queries: list[Path], files: list[str]) -> list[str | None]:
    """Each query as the index spells it (None when it is not in the archive); only index entries
    with a query's file name are resolved, not the whole archive."""
    wanted = {q.name for q in queries}
    spelled = {str(Path(f).resolve()): f for f in files if Path(f).name in wanted}
    return [spelled.get(str(q.resolve())) for q in queries]
