"""`cxr embed`: one vector per film through the batch engine, into a resumable Parquet dataset."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.embed import RETRIEVAL_TRIM, Embedder, read_embeddings
from cxrkit.errors import CxrkitError, InvalidArgument
from cxrkit.io import read_image
from cxrkit.models import create
from cxrkit.predict.parquet import METADATA_KEY, ParquetSink, part_files
from cxrkit.predict.writer import OutputExists

pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()


@pytest.fixture()
def films(tmp_path, example_images):
    """The example PNGs plus one truncated PNG (an error row)."""
    folder = tmp_path / "films"
    folder.mkdir()
    for image in example_images:
        shutil.copy(image, folder / image.name)
    data = example_images[0].read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 3])
    return folder


@pytest.mark.slow
def test_cli_writes_one_row_per_file_and_matches_the_model(films, tiny_model_file, tmp_path):
    out = tmp_path / "emb.parquet"
    result = runner.invoke(app, ["embed", str(films), "--model", str(tiny_model_file), "-o", str(out),
                                 "--precision", "fp32", "--flush-rows", "3", "--batch-size", "2"])
    assert result.exit_code == 3, result.output  # the truncated film failed; the others did not
    table = pq.read_table(out)
    assert table.num_rows == 7 and len(part_files(out)) >= 2
    rows = {r["file"]: r for r in table.to_pylist()}
    bad = rows[str(films / "truncated.png")]
    assert bad["status"] == "error" and bad["error"] and bad["vector"] is None
    meta = json.loads(pq.read_schema(part_files(out)[0]).metadata[METADATA_KEY])
    assert meta["layer"] == "features" and meta["dim"] == 1024 and meta["model"] == "densenet121.test-tiny"
    assert meta["trim"] == RETRIEVAL_TRIM  # cxr embed makes search tables: the trimmed view
    files, vectors, _ = read_embeddings(out)
    assert vectors.shape == (6, 1024) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    # the vectors are the model's pooled features of the same inputs, seen the same way
    model = create(str(tiny_model_file))
    embedder = Embedder(model, precision="fp32", trim=meta["trim"])
    expected = embedder.embed_files(files)
    assert np.abs(vectors - expected).max() < 1e-5
    with torch.no_grad():
        x = torch.from_numpy(embedder.prepare(read_image(files[0]))[0][None])
        assert np.allclose(model.forward_head(model.forward_features(x), pre_logits=True).numpy()[0], vectors[0], atol=1e-5)


@pytest.mark.slow
def test_resume_adds_only_new_files_and_refuses_another_model(films, tiny_model_file, tmp_path, example_images):
    out = tmp_path / "emb.parquet"
    first = sorted(films.glob("0000*.png"))[:3]
    args = ["--model", str(tiny_model_file), "-o", str(out), "--precision", "fp32"]
    assert runner.invoke(app, ["embed", *map(str, first), *args]).exit_code == 0
    again = runner.invoke(app, ["embed", str(films), *args])
    assert again.exit_code == 1 and "resume" in again.output
    resumed = runner.invoke(app, ["embed", str(films), *args, "--resume"])
    assert resumed.exit_code == 3 and "3 already done" in resumed.output.replace("\n", " ")
    files = pq.read_table(out, columns=["file"]).column("file").to_pylist()
    assert len(files) == len(set(files)) == 7
    other = runner.invoke(app, ["embed", str(films), "--model", "resnet18", "-o", str(out), "--resume"])
    assert other.exit_code == 1 and "other columns, model or layer" in other.output


def test_a_kill_loses_only_the_unflushed_rows(tmp_path):
    out = tmp_path / "kill.parquet"
    columns = ["v0", "v1"]
    sink = ParquetSink(out, columns, vector=columns, metadata={"model": "m"}, flush_rows=2)
    sink.write([{"file": "a", "status": "ok", "error": "", "v0": 1.0, "v1": 2.0},
                {"file": "b", "status": "error", "error": "unreadable", "v0": float("nan"), "v1": float("nan")}])
    sink.write([{"file": "c", "status": "ok", "error": "", "v0": 3.0, "v1": 4.0}])  # buffered, never flushed
    (out / ".part-00001.parquet.dead.part").write_bytes(b"half a part")  # what a kill mid-write leaves
    # no close(): the process died here
    resumed = ParquetSink(out, columns, vector=columns, metadata={"model": "m"}, resume=True)
    assert resumed.done == {"a", "b"} and not list(out.glob(".*"))
    resumed.write([{"file": "c", "status": "ok", "error": "", "v0": 3.0, "v1": 4.0}])
    resumed.close()
    table = pq.read_table(out)
    assert table.column("file").to_pylist() == ["a", "b", "c"]
    assert table.column("vector").to_pylist() == [[1.0, 2.0], None, [3.0, 4.0]]
    with pytest.raises(CxrkitError, match="other columns, model or layer"):
        ParquetSink(out, columns, vector=columns, metadata={"model": "another"}, resume=True)
    with pytest.raises(OutputExists):
        ParquetSink(out, columns, vector=columns, metadata={"model": "m"})
    assert ParquetSink(out, columns, vector=columns, overwrite=True).done == set() and not part_files(out)
    (tmp_path / "a_file.parquet").write_bytes(b"x")
    with pytest.raises(CxrkitError, match="folder of part files"):
        ParquetSink(tmp_path / "a_file.parquet", columns)


def test_parquet_refuses_a_file_name_that_is_not_utf8(tmp_path):
    """A name with undecodable bytes cannot go into a Parquet string column: one clear error, no part written."""
    import os

    import pandas as pd

    sink = ParquetSink(tmp_path / "out.parquet", ["a"], flush_rows=1)
    with pytest.raises(CxrkitError, match="not UTF-8"):
        sink.write([{"file": os.fsdecode(b"caf\xe9.png"), "status": "ok", "error": "", "a": 1.0}])
    sink.write([{"file": "fine.png", "status": "ok", "error": "", "a": 2.0}])
    sink.close()
    assert list(pd.read_parquet(tmp_path / "out.parquet")["file"]) == ["fine.png"]


def test_csv_output_is_one_column_per_component(films, tiny_model_file, tmp_path):
    out = tmp_path / "emb.csv"
    result = runner.invoke(app, ["embed", str(films / "00001036_000.png"), "--model", str(tiny_model_file),
                                 "-o", str(out), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    header = out.read_text().splitlines()[0].split(",")
    assert header[:4] == ["file", "status", "error", "v0"] and header[-1] == "v1023"


def test_layers(example_images):
    with pytest.raises(CxrkitError, match="no latent code"):
        Embedder(create("resnet18"), layer="latent")
    with pytest.raises(InvalidArgument, match="`layer` must be one of"):
        Embedder(create("resnet18"), layer="logits")
    ae = Embedder(create("resnet101_ae"), layer="latent", precision="fp32")
    assert ae.dim == 4608 and ae.columns[-1] == "v4607"
    pooled = Embedder(ae.model, layer="features", precision="fp32")
    latent, features = ae.embed_files(example_images[:1]), pooled.embed_files(example_images[:1])
    assert latent.shape == (1, 4608) and features.shape == (1, 512)
    # the pooled features are the latent map averaged over its 3 x 3 positions
    assert np.allclose(latent.reshape(1, 512, 9).mean(axis=2), features, atol=1e-4)


@pytest.mark.subprocess
def test_sigkill_then_resume_equals_an_uninterrupted_run(shared_data, tmp_path):
    """A real process killed with SIGKILL mid-run; the resumed output has every film once, same vectors."""
    import os
    import signal
    import subprocess
    import sys
    import time

    films = sorted((shared_data / "nih" / "images").glob("*.png"))[:48]
    args = [sys.executable, "-m", "cxrkit.cli.main", "embed", *map(str, films), "--model", "resnet18.nih-orientation",
            "--precision", "fp32", "--batch-size", "4", "--flush-rows", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed.parquet"
    process = subprocess.Popen([*args, "-o", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(part_files(killed)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = pq.read_table(killed).num_rows
    assert 0 < kept < len(films)
    assert subprocess.run([*args, "-o", str(killed), "--resume"], env=env, capture_output=True).returncode == 0
    whole = tmp_path / "whole.parquet"
    assert subprocess.run([*args, "-o", str(whole)], env=env, capture_output=True).returncode == 0
    resumed, reference = pq.read_table(killed).to_pylist(), pq.read_table(whole).to_pylist()
    assert sorted(r["file"] for r in resumed) == sorted(r["file"] for r in reference) == sorted(map(str, films))
    by_file = {r["file"]: r["vector"] for r in reference}
    assert max(np.abs(np.subtract(r["vector"], by_file[r["file"]])).max() for r in resumed) < 1e-5
