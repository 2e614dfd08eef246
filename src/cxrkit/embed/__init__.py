"""Representations of films: embeddings of a whole archive and exact similar-film search.

>>> from cxrkit.embed import Embedder, EmbeddingIndex
>>> embedder = Embedder("densenet121.nih-demo", layer="features")
>>> index = EmbeddingIndex.load("embeddings.parquet")        # written by ``cxr embed``
>>> index.search(embedder.embed_files(["query.png"]), k=10)
"""

from __future__ import annotations

from .index import EmbeddingIndex, Neighbour, read_embeddings
from .runner import LAYERS, Embedder, vector_columns

__all__ = ["Embedder", "EmbeddingIndex", "LAYERS", "Neighbour", "read_embeddings", "vector_columns"]
