"""Every /v1 endpoint on real films, against the commands it stands for.

The API's promise is "the same numbers as ``cxr predict``": each test runs the real
command on the same files and compares (scores within 1e-6, error text identical).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app as cli
from cxrkit.explain import explain
from cxrkit.io import read_image
from cxrkit.labels import PATHOLOGIES
from cxrkit.preprocess import resize, to_uint8

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DICOM = EXAMPLES / "siim_chest_pa.dcm"


def cli_rows(*args: str, tmp_path: Path, name: str = "out.jsonl") -> list[dict]:
    out = tmp_path / name
    result = runner.invoke(cli, [*args, "--precision", "fp32", "--format", "jsonl", "-o", str(out)])
    assert result.exit_code in (0, 3), result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def assert_same_rows(api_rows: list[dict], reference: list[dict]) -> None:
    """Same keys in the same order, same status and error text, numbers within 1e-6."""
    assert len(api_rows) == len(reference)
    for got, want in zip(api_rows, reference, strict=True):
        assert list(got) == list(want)
        assert got["file"] == Path(want["file"]).name
        assert (got["status"], got["error"]) == (want["status"], want["error"])
        for key, value in want.items():
            if key == "file":
                continue
            if isinstance(value, str) or value is None or isinstance(value, bool):
                assert got[key] == value, key
            else:
                assert got[key] == pytest.approx(value, abs=1e-6), key


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, example_images) -> list[Path]:
    """The broken files users really send: empty, truncated, text named as an image, text."""
    folder = tmp_path_factory.mktemp("bad")
    data = example_images[0].read_bytes()
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(data[: len(data) // 3])
    (folder / "notes.dcm").write_text("this is not a DICOM file\n")
    (folder / "report.txt").write_text("no image here")
    return [folder / n for n in ("empty.png", "truncated.png", "notes.dcm", "report.txt")]


@pytest.mark.slow
def test_predict_equals_cxr_predict_with_bad_files(client, files, example_images, bad_files, tmp_path):
    inputs = [example_images[0], DICOM, *bad_files, example_images[1]]
    response = client.post("/v1/predict", files=files(*inputs))
    assert response.status_code == 200
    body = response.json()
    assert body["model"]["name"] == "densenet121.nih-demo" and body["model"]["version"]
    assert body["labels"] == list(PATHOLOGIES) and body["columns"] == ["file", "status", "error", *PATHOLOGIES]
    reference = cli_rows("predict", *map(str, inputs), tmp_path=tmp_path)
    assert_same_rows(body["rows"], reference)
    assert [r["status"] for r in body["rows"]] == ["ok", "ok", "error", "error", "error", "error", "ok"]
    assert body["rows"][2]["error"] == "file is empty (0 bytes)"
    assert "'.txt'" in body["rows"][5]["error"]  # the message quotes the upload's own extension
    assert all(body["rows"][0][label] is None for label in PATHOLOGIES[14:])  # not predicted, never 0.5


@pytest.mark.slow
def test_csv_and_jsonl_are_byte_for_byte_cxr_predict(client, files, example_images, bad_files, tmp_path):
    inputs = [example_images[2], bad_files[1]]
    for fmt in ("csv", "jsonl"):
        response = client.post(f"/v1/predict?format={fmt}", files=files(*inputs))
        assert response.status_code == 200
        out = tmp_path / f"out.{fmt}"
        result = runner.invoke(cli, ["predict", *map(str, inputs), "--precision", "fp32", "--format", fmt,
                                     "-o", str(out)])
        assert result.exit_code == 3
        expected = out.read_bytes().decode()  # as written: the CSV's \r\n line ends included
        for path in inputs:  # the command writes the path given, the API the upload's name
            expected = expected.replace(str(path), path.name)
        assert response.text == expected
    assert response.headers["content-type"].startswith("application/x-ndjson")


def test_export_csv_turns_api_rows_into_the_same_csv(client, files, example_images, bad_files):
    inputs = files(example_images[3], bad_files[0])
    rows = client.post("/v1/predict", files=inputs).json()["rows"]
    exported = client.post("/v1/export/csv", json={"rows": rows})
    direct = client.post("/v1/predict?format=csv", files=inputs)
    assert exported.status_code == 200 and exported.text == direct.text
    assert client.post("/v1/export/csv", json={"rows": [{"file": 3}]}).status_code == 422
    assert client.post("/v1/export/csv", content=b"not json", headers={"content-type": "application/json"}).status_code == 422


def test_real_dicoms_equal_cxr_predict(client, files, dicom_dir, tmp_path):
    """MONOCHROME1 JPEG 2000, 12-bit JPEG extended, JPEG-LS, and a corrupt codestream."""
    inputs = [dicom_dir / n for n in ("RG3_J2KI.dcm", "RG2_JPLY.dcm", "RG2_JLSN.dcm", "966.dcm")]
    body = client.post("/v1/predict", files=files(*inputs)).json()
    assert_same_rows(body["rows"], cli_rows("predict", *map(str, inputs), tmp_path=tmp_path))
    assert [r["status"] for r in body["rows"]] == ["ok", "ok", "ok", "error"]
    assert "JPEG 2000" in body["rows"][3]["error"]


@pytest.mark.slow
def test_fix_orientation_equals_cxr_predict(client, files, example_images, tmp_path):
    image = read_image(example_images[4])
    turned = tmp_path / "turned.png"
    cv2.imwrite(str(turned), np.ascontiguousarray(np.rot90(image.pixels, k=-1)))  # lying on its side
    body = client.post("/v1/predict?fix_orientation=true", files=files(turned, example_images[4])).json()
    reference = cli_rows("predict", str(turned), str(example_images[4]), "--fix-orientation", tmp_path=tmp_path)
    assert_same_rows(body["rows"], reference)
    assert body["columns"][3:6] == ["orientation", "orientation_p", "orientation_fixed"]
    assert body["rows"][0]["orientation"] == "rot90" and body["rows"][0]["orientation_fixed"] == "yes"


def test_raw_scores_equal_cxr_predict_raw(client, files, example_images, tmp_path):
    body = client.post("/v1/predict?calibrate=false", files=files(example_images[5])).json()
    assert_same_rows(body["rows"], cli_rows("predict", str(example_images[5]), "--raw", tmp_path=tmp_path))


@pytest.mark.slow
def test_age_equals_cxr_age_with_header_and_typed_age(client, files, example_images, tmp_path):
    body = client.post("/v1/age", files=files(DICOM)).json()
    assert body["model"]["name"] == "densenet121.nih-age"
    assert body["columns"] == ["file", "status", "error", "cxr_age", "cxr_age_sd", "chronological_age", "age_gap"]
    assert_same_rows(body["rows"], cli_rows("age", str(DICOM), "--tta", tmp_path=tmp_path))
    row = body["rows"][0]
    assert row["chronological_age"] == 62.0  # the DICOM header's Patient's Age
    assert row["age_gap"] == pytest.approx(row["cxr_age"] - 62.0, abs=1e-9)
    assert row["cxr_age_sd"] > 0  # the spread of the 8 corner views

    typed = client.post("/v1/age", files=files(example_images[0]), data={"age": "71.5"}).json()["rows"][0]
    ages = tmp_path / "ages.csv"
    ages.write_text(f"file,age\n{example_images[0].name},71.5\n")
    reference = cli_rows("age", str(example_images[0]), "--tta", "--metadata", str(ages), tmp_path=tmp_path, name="a2.jsonl")
    assert typed["chronological_age"] == 71.5 and typed["age_gap"] == pytest.approx(reference[0]["age_gap"], abs=1e-6)
    assert typed["cxr_age"] == pytest.approx(reference[0]["cxr_age"], abs=1e-6)

    plain = client.post("/v1/age?tta=false", files=files(example_images[0])).json()["rows"][0]
    assert plain["cxr_age_sd"] is None and plain["chronological_age"] is None and plain["age_gap"] is None
    for bad in ("old", "200", "nan"):
        answer = client.post("/v1/age", files=files(example_images[0]), data={"age": bad})
        assert answer.status_code == 422 and "age" in answer.json()["detail"]
    two = client.post("/v1/age", files=files(example_images[0], example_images[1]), data={"age": "50"})
    assert two.status_code == 422


@pytest.mark.slow
def test_explain_formats_agree_with_the_library(client, files, service, example_images):
    path = example_images[0]
    score = client.post("/v1/predict", files=files(path)).json()["rows"][0]["Effusion"]
    png = client.post("/v1/explain?label=Effusion&height=256", files=files(path))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.headers["x-cxrkit-label"] == "Effusion" and png.headers["x-cxrkit-method"] == "gradcam"
    assert float(png.headers["x-cxrkit-score"]) == pytest.approx(score, abs=1e-5)
    overlay = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape[1] == 256 and overlay.shape[0] > 256  # the caption strip below the film

    raw = client.post("/v1/explain?label=Effusion&format=npy", files=files(path))
    as_json = client.post("/v1/explain?label=Effusion&format=json", files=files(path)).json()
    heat = np.load(io.BytesIO(raw.content), allow_pickle=False)
    expected = explain(service.models.classifier(None), path, "Effusion", "gradcam").array
    assert heat.shape == read_image(path).shape and np.allclose(heat, expected, atol=1e-6)
    assert np.allclose(np.asarray(as_json["map"], dtype=np.float32), heat, atol=1e-6)
    assert as_json["label"] == "Effusion" and as_json["meta"]["model"] == "densenet121.nih-demo"
    assert "source" not in as_json["meta"]  # the in-memory path is nobody's business

    top = client.post("/v1/explain?method=cam&caption=false&format=png", files=files(path))
    assert top.status_code == 200 and top.headers["x-cxrkit-label"] in PATHOLOGIES

    unknown = client.post("/v1/explain?label=Fracture", files=files(path))
    assert unknown.status_code == 422 and "does not predict 'Fracture'" in unknown.json()["detail"]
    assert client.post("/v1/explain?method=magic", files=files(path)).status_code == 422
    assert client.post("/v1/explain", files=files(path, example_images[1])).status_code == 422


def test_film_is_the_decoded_film_and_matches_overlay_geometry(client, files, dicom_dir):
    path = dicom_dir / "RG3_J2KI.dcm"  # MONOCHROME1: the film must come back inverted exactly once
    response = client.post("/v1/film?height=512", files=files(path))
    assert response.status_code == 200
    shown = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    image = read_image(path)
    expected = to_uint8(resize(image.pixels.astype(np.float32) / image.maxval, shown.shape))
    assert shown.shape[0] == 512 and np.abs(shown.astype(int) - expected).max() <= 1
    assert response.headers["x-cxrkit-original-height"] == str(image.shape[0])
    overlay = client.post("/v1/explain?label=Effusion&caption=false&height=512&alpha=0", files=files(path))
    blended = cv2.imdecode(np.frombuffer(overlay.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert blended.shape == shown.shape  # so the page can stack them pixel for pixel
    assert np.abs(blended.astype(int) - shown.astype(int)).mean() < 1.0  # alpha 0: the film itself


def test_single_file_endpoints_give_the_error_row_text(client, files, bad_files, tmp_path):
    reference = cli_rows("predict", *map(str, bad_files), tmp_path=tmp_path)
    for path, row in zip(bad_files, reference, strict=True):
        for endpoint in ("/v1/film", "/v1/explain"):
            answer = client.post(endpoint, files=files(path))
            assert answer.status_code == 422
            assert answer.json()["detail"] == row["error"]


def test_requests_without_files_or_multipart_are_refused(client):
    assert client.post("/v1/predict", data={"x": "1"}).status_code == 422
    answer = client.post("/v1/predict", content=b"{}", headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "multipart" in answer.json()["detail"]
    part = b"--xx\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\nabc"
    cut = client.post("/v1/predict", content=part, headers={"content-type": "multipart/form-data; boundary=xx"})
    assert cut.status_code == 422 and "cut off" in cut.json()["detail"]
    garbage = client.post("/v1/predict", content=b"garbage, not multipart\r\n",
                          headers={"content-type": "multipart/form-data; boundary=xx"})
    assert garbage.status_code == 422 and "malformed" in garbage.json()["detail"]
    assert client.post("/v1/predict?model=nope", files=[("files", ("a.png", b"x"))]).status_code == 404
    assert client.post("/v1/predict?format=xml", files=[("files", ("a.png", b"x"))]).status_code == 422


def test_models_and_healthz(client):
    models = client.get("/v1/models").json()
    assert models["default"] == "densenet121.nih-demo"
    by_role = {m["role"]: m for m in models["models"]}
    assert set(by_role) == {"classifier", "age", "orientation"}
    demo = by_role["classifier"]
    assert demo["version"] == demo["sha256"][:12] and demo["calibrated"] is True
    assert demo["labels"][:2] == ["Atelectasis", "Consolidation"]
    assert demo["evidence"]["beats_chance"] is False and "0.546" in demo["evidence"]["sentence"]
    assert by_role["orientation"]["evidence"]["beats_chance"] is True
    card = json.loads((Path(__file__).resolve().parents[2] / "src/cxrkit/models/weights/densenet121.nih-demo.json").read_text())
    assert math.isclose(demo["metrics"]["validation"]["auc_mean"], card["metrics"]["validation"]["auc_mean"], abs_tol=1e-9)
    assert set(demo["uncalibrated_labels"]) <= set(demo["labels"])
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queue"]["capacity"] == 16 and health["token_required"] is False


def test_openapi_and_page_are_served(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/age", "/v1/explain", "/v1/film", "/v1/models", "/v1/export/csv", "/healthz"):
        assert path in schema["paths"], path
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    page = client.get("/")
    assert page.status_code == 200 and "cxrkit" in page.text and "cdn" not in page.text.lower()
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200
    for line in page.text.splitlines():  # every script and stylesheet is served by cxrkit itself
        assert "http://" not in line and "https://" not in line, line
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_results_are_not_cached(client, files, example_images):
    answer = client.post("/v1/predict", files=files(example_images[0]))
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_csv_rows_parse_back(client, files, example_images):
    text = client.post("/v1/predict?format=csv", files=files(example_images[1])).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["file"] == example_images[1].name and rows[0]["Fracture"] == ""
