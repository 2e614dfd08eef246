"""`cxr models fetch` against a real HTTP server on loopback (never the internet)."""

import hashlib
import json
import socket

import pytest
import torch
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.errors import ChecksumMismatch, DownloadError
from cxrkit.models import create, list_models
from cxrkit.models.fetch import download_path, fetch

xrv = pytest.importorskip("torchxrayvision")
runner = CliRunner()


@pytest.fixture(scope="module")
def published_file(tmp_path_factory):
    """Bytes of a file shaped like TorchXRayVision's published 'nih' DenseNet (random weights)."""
    torch.manual_seed(3)
    model = xrv.models.DenseNet(num_classes=18).eval()
    path = tmp_path_factory.mktemp("pub") / "nih-densenet121.pt"
    torch.save(model, path)
    return path.read_bytes()


def test_fetch_downloads_converts_and_registers(srv, published_file, cxrkit_home):
    srv.state.payload = published_file
    card_path = fetch("densenet121-res224-nih", url=srv.file_url, sha256=hashlib.sha256(published_file).hexdigest())
    card = json.loads(card_path.read_text())
    assert card["name"] == "densenet121.res224-nih"
    assert card["labels"][14:] == [None] * 4 and len(card["thresholds"]) == 14  # from the published table
    assert card["provenance"]["url"] == srv.file_url
    assert card["provenance"]["original_sha256"] == hashlib.sha256(published_file).hexdigest()
    assert "densenet121.res224-nih" in [c.name for c in list_models()]
    # both namings now resolve, to the same weights
    model = create("densenet121-res224-nih")
    assert create("densenet121.res224-nih").card.sha256 == model.card.sha256
    assert download_path("densenet121-res224-nih", srv.file_url).read_bytes() == published_file


def test_fetch_resumes_an_interrupted_download(srv, published_file, cxrkit_home):
    srv.state.payload = published_file
    srv.state.cut_at = len(published_file) // 3  # the first connection dies a third of the way in
    fetch("densenet121-res224-nih", url=srv.file_url)
    ranges = [r["range"] for r in srv.state.requests]
    assert ranges[0] is None and ranges[1] == f"bytes={len(published_file) // 3}-"
    assert srv.state.bytes_sent == len(published_file)  # nothing downloaded twice


def test_fetch_checksum_mismatch_registers_nothing(srv, published_file, cxrkit_home):
    srv.state.payload = published_file
    with pytest.raises(ChecksumMismatch):
        fetch("densenet121-res224-nih", url=srv.file_url, sha256="0" * 64)
    assert list_models() == [] or "densenet121.res224-nih" not in [c.name for c in list_models()]
    assert not download_path("densenet121-res224-nih", srv.file_url).exists()


def test_offline_fetch_fails_fast_and_says_where_to_copy(cxrkit_home, monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/nih-densenet121.pt"
    result = runner.invoke(app, ["models", "fetch", "densenet121-res224-nih", "--url", url, "--timeout", "2"])
    assert result.exit_code == 1
    assert url in result.output and str(cxrkit_home / "downloads") in result.output.replace("\n", "")
    with pytest.raises(DownloadError):
        fetch("densenet121-res224-nih", url=url, timeout=2)


def test_manually_copied_file_is_used_without_network(published_file, cxrkit_home):
    target = download_path("densenet121-res224-nih")
    target.parent.mkdir(parents=True)
    target.write_bytes(published_file)
    card_path = fetch("densenet121-res224-nih", url=None)  # the real release URL is never contacted
    assert json.loads(card_path.read_text())["name"] == "densenet121.res224-nih"


def test_models_cli_list_and_info(srv, published_file, cxrkit_home):
    srv.state.payload = published_file
    result = runner.invoke(app, ["models", "fetch", "densenet121-res224-nih", "--url", srv.file_url])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["models", "list", "--format", "json"])
    data = json.loads(listed.output)
    assert "densenet121.res224-nih" in [m["name"] for m in data["models"]]
    assert "densenet121-res224-all" in data["fetchable"]
    info = runner.invoke(app, ["models", "info", "densenet121-res224-nih", "--format", "json"])
    assert json.loads(info.output)["thresholds"]["Effusion"] == pytest.approx(0.038744126)
