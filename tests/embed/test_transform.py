"""Centring and whitening before cosine search: what it fixes, and that it is stored with the index."""

import logging

import numpy as np
import pytest

from cxrkit.embed import EmbeddingIndex, VectorTransform, transform_path
from cxrkit.embed.index import write_transform
from cxrkit.errors import CxrkitError

pytest.importorskip("pyarrow")


def _weak_features(n=80, dim=64, seed=0):
    """Films and altered copies as a weak classifier sees them: a large shared component, most of the
    between-film variance in 3 directions that an alteration moves too, identity in the other 60."""
    rng = np.random.default_rng(seed)
    spread = np.r_[np.full(3, 3.0), np.full(dim - 3, 0.3)]
    films = 20.0 + rng.normal(size=(n, dim)) * spread
    shift = np.zeros((n, dim))
    shift[:, :3] = rng.normal(size=(n, 3)) * 3.0
    copies = films + shift + rng.normal(size=(n, dim)) * 0.03
    return films.astype(np.float32), copies.astype(np.float32)


def _top1(method, films, copies):
    index = EmbeddingIndex([str(i) for i in range(len(films))], films, transform=method)
    return float((index.similarity(copies).argmax(axis=1) == np.arange(len(films))).mean())


def test_whitening_finds_copies_that_plain_cosine_misses():
    films, copies = _weak_features()
    plain, centred, whitened = (_top1(m, films, copies) for m in ("none", "centre", "whiten"))
    raw = EmbeddingIndex([str(i) for i in range(len(films))], films, transform="none")
    off_diagonal = (raw.vectors @ raw.vectors.T)[~np.eye(len(films), dtype=bool)]
    assert off_diagonal.min() > 0.95  # every film points the same way, as the bundled DenseNet's do
    assert plain < 0.6 and centred < 0.6
    assert whitened >= 0.95


def test_learned_whitening_shrinks_the_directions_alterations_move():
    films, copies = _weak_features(n=120)
    fit, test = slice(0, 60), slice(60, 120)  # learned on some films' copies, used on others
    learned = VectorTransform.fit(films[test], "learned", pairs=(films[fit], copies[fit]))
    index = EmbeddingIndex([str(i) for i in range(60)], films[test], transform=learned)
    assert (index.similarity(copies[test]).argmax(axis=1) == np.arange(60)).mean() >= 0.95
    assert learned.info["pairs"] == 60 and learned.matches([str(i) for i in range(60)]) is False
    with pytest.raises(CxrkitError, match="altered copies"):
        VectorTransform.fit(films, "learned")
    with pytest.raises(CxrkitError, match="altered copies"):
        EmbeddingIndex(["a", "b"], films[:2], transform="learned")


def test_transform_keeps_a_film_its_own_best_match_and_unit_length():
    films, _ = _weak_features(n=30)
    for method in ("none", "centre", "whiten"):
        index = EmbeddingIndex([str(i) for i in range(30)], films, transform=method)
        assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
        similarity = index.similarity(films * 3.0)  # a film's overall magnitude does not matter
        assert np.allclose(np.diag(similarity), 1.0, atol=1e-4)
        assert (similarity.argmax(axis=1) == np.arange(30)).all()
        hits = index.search(films[:2], k=3, exclude=["0", None])
        assert hits[0][0].file != "0" and hits[1][0].file == "1"
    with pytest.raises(CxrkitError, match="transform must be one of"):
        VectorTransform.fit(films, "pca")
    with pytest.raises(CxrkitError, match="components"):
        EmbeddingIndex(["a", "b"], films[:2]).similarity(np.zeros((1, 8)))


def _table(path, vectors, names, resume=False):
    from cxrkit.predict.parquet import ParquetSink

    columns = [f"v{i}" for i in range(vectors.shape[1])]
    sink = ParquetSink(path, columns, vector=columns, metadata={"model": "m", "layer": "features"}, resume=resume)
    sink.write([{"file": name, "status": "ok", "error": "", **dict(zip(columns, map(float, row), strict=True))}
                for name, row in zip(names, vectors, strict=True)])
    sink.close()


def test_the_transform_is_stored_with_the_index_and_refitted_when_stale(tmp_path, caplog):
    films, copies = _weak_features(n=40, dim=16)
    table = tmp_path / "emb.parquet"
    _table(table, films[:30], [f"f{i}" for i in range(30)])
    with caplog.at_level(logging.INFO, logger="cxrkit.embed.index"):
        old = EmbeddingIndex.load(table)  # an index written before transforms were stored
    assert "no stored embedding transform" in caplog.text and old.transform.method == "whiten"
    sidecar = write_transform(table)
    assert sidecar == transform_path(table) == table / "_transform.safetensors"
    import pyarrow.parquet as pq

    assert pq.read_table(table).num_rows == 30  # Parquet readers skip the sidecar
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cxrkit.embed.index"):
        loaded = EmbeddingIndex.load(table)
    assert "using the stored whiten transform" in caplog.text
    assert np.array_equal(loaded.transform.matrix, old.transform.matrix)
    assert np.allclose(loaded.similarity(copies[:30]), old.similarity(copies[:30]), atol=1e-6)
    # a resumed embedding run adds films: the stored transform no longer fits and is refitted
    _table(table, films[30:], [f"f{i}" for i in range(30, 40)], resume=True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cxrkit.embed.index"):
        grown = EmbeddingIndex.load(table)
    assert "refitted" in caplog.text and grown.transform.info["films"] == 40
    plain = EmbeddingIndex.load(table, transform="none")
    assert plain.transform.method == "none" and plain.transform.mean is None
    (table / "_transform.safetensors").write_bytes(b"not a transform")
    with pytest.raises(CxrkitError, match="delete it to refit"):
        EmbeddingIndex.load(table)


def test_single_file_index_has_its_transform_beside_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    films, _ = _weak_features(n=10, dim=8)
    path = tmp_path / "small.parquet"
    vector = pa.FixedSizeListArray.from_arrays(pa.array(films.ravel(), pa.float32()), 8)
    pq.write_table(pa.table({"file": [f"f{i}" for i in range(10)], "status": ["ok"] * 10, "vector": vector}), path)
    assert write_transform(path, method="centre") == tmp_path / "small.parquet.transform.safetensors"
    assert EmbeddingIndex.load(path).transform.method == "centre"
