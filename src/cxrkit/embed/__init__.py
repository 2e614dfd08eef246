"""Representations of films: embeddings of a whole archive, similar-film search, duplicate finding.

>>> from cxrkit.embed import Embedder, EmbeddingIndex
>>> embedder = Embedder("densenet121.nih-demo", layer="features")
>>> index = EmbeddingIndex.load("embeddings.parquet")        # written by ``cxr embed``
>>> index.search(embedder.embed_files(["query.png"]), k=10)

Search compares centred and whitened vectors (:class:`VectorTransform`, fitted on the index
and stored with it), so that it works on a weak model's features too.
"""

from __future__ import annotations

from .duplicates import DEFAULT_THRESHOLD, DuplicateReport, find_duplicates, near_pairs, pixel_hash
from .duplicates_job import duplicates_job, is_embeddings_table
from .index import EmbeddingIndex, Neighbour, read_embeddings
from .ood import Ood, OodDetector
from .runner import LAYERS, RETRIEVAL_TRIM, Embedder, vector_columns
from .to_file import embed_to_file
from .transform import METHODS, VectorTransform, transform_path

__all__ = ["DEFAULT_THRESHOLD", "DuplicateReport", "Embedder", "EmbeddingIndex", "LAYERS", "METHODS", "Neighbour",
           "Ood", "OodDetector", "RETRIEVAL_TRIM", "VectorTransform", "duplicates_job", "embed_to_file", "find_duplicates", "is_embeddings_table", "near_pairs", "pixel_hash",
           "read_embeddings", "transform_path", "vector_columns"]
