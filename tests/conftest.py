"""Shared test fixtures: where the real data lives, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrkit.io import read_image
from cxrkit.labels import PATHOLOGIES
from cxrkit.models import ModelCard, create, save_weights
from cxrkit.preprocess import ORIENTATIONS, model_input

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("CXRKIT_SHARED_DATA", REPO.parent / "shared" / "data"))

#: How far a score written by one run may sit from the same film's score written by another
#: run that batched the films differently (a resumed run, Ray's row blocks, another batch
#: size). Those runs are promised the same rows, in the same order, with the same status and
#: error; their scores agree to this tolerance, not to the last printed digit: the batch a
#: film lands in moves an fp32 score by ~1e-7 (measured <= 1.2e-7 on Intel AMX and AMD EPYC
#: CPUs, fp32 and bf16), and the CSV writer prints 6 significant digits, so a score near a
#: rounding edge prints one unit (1e-6) away. 1e-5 is ten such units; any real fault (a
#: wrong film, a skipped or repeated row, another model) moves scores by orders of magnitude more.
SCORE_TOL = 1e-5

# One thread per test process: the CI machine has two cores and oversubscription is slow.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data (real NIH images, DICOMs, label files); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED


@pytest.fixture(scope="session")
def example_images() -> list[Path]:
    """The PNG radiographs committed under examples/ (always present)."""
    return sorted(EXAMPLES.glob("*.png"))


_CACHE_BEFORE = os.environ.get("CXRKIT_HOME")
_CACHE = tempfile.mkdtemp(prefix="cxrkit-test-cache-")


def pytest_configure(config) -> None:
    """The whole run caches (fetched models, ONNX graphs) in a temporary folder, never in the
    user's ~/.cache/cxrkit; set before any test module is imported, so the environments that
    tests copy for their subprocesses carry it too. A per-test ``cxrkit_home`` overrides it."""
    os.environ["CXRKIT_HOME"] = _CACHE


#: fixture -> the markers of every test that uses it, directly or through another fixture
#: (pytest's ``fixturenames`` is the closure): the fast loop deselects by marker, and a test
#: that gains one of these fixtures is marked without anyone remembering to.
FIXTURE_MARKERS = {
    "shared_data": ("real_data",),  # ../shared/data; dicom_dir, nih_subset, metadata... build on it
    "shared_data_or_none": ("real_data",),
    "orthanc": ("pacs",),  # tests/dicom: an Orthanc server process
    "listener": ("pacs", "subprocess"),  # `cxr listen` in a child process
    "web_listener": ("pacs", "subprocess"),
    "browser": ("browser",),  # tests/serve/test_page_browser.py: chromium under Playwright
}


def pytest_collection_modifyitems(config, items) -> None:
    """Add the markers that follow from a test's fixtures (:data:`FIXTURE_MARKERS`), and
    ``real_data`` to a test skipped by a condition on ../shared (``skipif(..., reason="../shared ...")``)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        wanted = {marker for fixture, markers in FIXTURE_MARKERS.items() if fixture in names for marker in markers}
        if any("shared" in str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif")):
            wanted.add("real_data")
        for marker in sorted(wanted - {mark.name for mark in item.iter_markers()}):
            item.add_marker(marker)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
    if _CACHE_BEFORE is None:
        os.environ.pop("CXRKIT_HOME", None)
    else:
        os.environ["CXRKIT_HOME"] = _CACHE_BEFORE


@pytest.fixture()
def cxrkit_home(tmp_path, monkeypatch) -> Path:
    """An empty per-test model cache, so tests never touch ~/.cache/cxrkit."""
    home = tmp_path / "cxrkit_home"
    monkeypatch.setenv("CXRKIT_HOME", str(home))
    return home


def _fit_batchnorm(model, files, size):
    """Set BatchNorm statistics from real images, so the random network's scores are not all saturated."""
    batch = []
    for f in files:
        image = read_image(f)
        batch.append(model_input(image.pixels, image.maxval, size))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.stack(batch)))
    model.eval()


@pytest.fixture(scope="session")
def fit_batchnorm():
    """Set a random network's BatchNorm statistics from real images (scores then spread, not saturate)."""
    return _fit_batchnorm


# --- A real HTTP server on loopback (127.0.0.1:0) for download and fetch tests -------------
# Serves an in-memory payload with Range support, and misbehaves on request the way real
# networks do: cut the connection mid-body, stall, ignore Range, fail once with an error.

PAYLOAD = random.Random(1234).randbytes(3 * 1024 * 1024 + 123)  # odd size: chunks don't align


@dataclass
class ServerState:
    """What the handler does, and what it saw. Shared by all handler threads."""

    payload: bytes = field(default_factory=lambda: PAYLOAD)
    requests: list[dict] = field(default_factory=list)
    bytes_sent: int = 0
    cut_at: int | None = None  # send only this many body bytes, then close...
    cut_every_time: bool = False  # ...on every request instead of only the first
    stall_at: int | None = None  # first request: send this many bytes, then go silent
    ignore_range: bool = False  # answer 200 with the whole file even when asked for a range
    fail_first_with: int | None = None  # first request gets this HTTP status
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _write(self, data: bytes) -> None:
        st = self.server.state
        for i in range(0, len(data), 64 * 1024):
            block = data[i : i + 64 * 1024]
            try:
                self.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                return
            with st.lock:
                st.bytes_sent += len(block)

    def do_GET(self) -> None:
        st = self.server.state
        with st.lock:
            st.requests.append(
                {"path": self.path, "range": self.headers.get("Range"), "ua": self.headers.get("User-Agent")}
            )
            n = len(st.requests)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/file":
            self.send_error(404, "Not Found")
            return
        if st.fail_first_with is not None and n == 1:
            self.send_error(st.fail_first_with)
            return

        total = len(st.payload)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not st.ignore_range:
            assert rng.startswith("bytes=") and rng.endswith("-"), rng
            start = int(rng[len("bytes=") : -1])
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = st.payload[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.end_headers()

        if st.cut_at is not None and (n == 1 or st.cut_every_time):
            self._write(body[: st.cut_at])
            self.wfile.flush()
            return  # HTTP/1.0: the connection closes here, mid-body
        if st.stall_at is not None and n == 1:
            self._write(body[: st.stall_at])
            self.wfile.flush()
            st.release.wait(5)  # the client gives up first; teardown sets it
            return
        self._write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


@dataclass
class Srv:
    base: str
    state: ServerState

    @property
    def file_url(self) -> str:
        return self.base + "/file"


@pytest.fixture
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables; make sure loopback requests stay on loopback."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def srv(_no_proxy) -> Iterator[Srv]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.state = ServerState()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield Srv(f"http://127.0.0.1:{server.server_address[1]}", server.state)
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        t.join(5)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, example_images, fit_batchnorm):
    """A random DenseNet with a 64 px input and a 14-label (NIH-like) head, saved as a weight file.

    The small input keeps CPU tests fast; the untrained 4 labels test empty output cells.
    """
    labels = list(PATHOLOGIES[:14]) + [None] * 4
    torch.manual_seed(0)
    model = create("densenet121")
    fit_batchnorm(model, example_images, size=64)
    card = ModelCard(
        name="densenet121.test-tiny",
        architecture="densenet121",
        labels=labels,
        input_size=64,
        thresholds={**{label: 0.3 + 0.02 * i for i, label in enumerate(PATHOLOGIES[:14])}, "Effusion": 0.4},
        description="random weights for tests",
        provenance={"source": "random initialisation (test fixture)"},
    )
    folder = tmp_path_factory.mktemp("tiny_model")
    save_weights(model, card, folder / "tiny.safetensors")
    return folder / "tiny.safetensors"


@pytest.fixture(scope="session")
def always_rot90(tmp_path_factory):
    """A real weight file whose model says "rot90" for every film (zero weights, biased head)."""
    model = create("resnet18", num_classes=8)
    with torch.no_grad():
        model.model.fc.weight.zero_()
        model.model.fc.bias.copy_(torch.tensor([0, 8.0, 0, 0, 0, 0, 0, 0]))
    card = ModelCard(name="resnet18.test-rot90", architecture="resnet18", labels=list(ORIENTATIONS), input_size=32,
                     task="multiclass", provenance={"source": "test fixture"})
    path = tmp_path_factory.mktemp("rot90") / "rot90.safetensors"
    save_weights(model, card, path)
    return path
