"""Fixtures of the server tests: the bundled models loaded once, real uvicorn servers on loopback.

Loading the three bundled networks takes seconds, so one :class:`Service` is shared by the
whole session; each test module starts its own server (a real uvicorn on 127.0.0.1, port
0) around it with the configuration it needs, so HTTP, limits and the queue are tested
exactly as ``cxr serve`` runs them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

import uvicorn

from cxrkit.serve import ServeConfig, create_app
from cxrkit.serve.server import bind, uvicorn_config
from cxrkit.serve.service import Service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def serve_config() -> ServeConfig:
    return ServeConfig(port=0, precision="fp32")  # the CLI reference rows are pinned to fp32 too


@pytest.fixture(scope="session")
def service(serve_config) -> Iterator[Service]:
    """The bundled default, age and orientation models, loaded once for every server test."""
    svc = Service(serve_config)
    yield svc
    svc.close()


@dataclass
class Live:
    """A running test server: its base URL and the app (whose job queue tests may fill)."""

    url: str
    app: Any


@contextlib.contextmanager
def running_server(config: ServeConfig, service: Service) -> Iterator[Live]:
    """A real uvicorn server on 127.0.0.1 (a free port) in a thread."""
    sock = bind("127.0.0.1", 0)
    app = create_app(config, service)
    server = uvicorn.Server(uvicorn_config(app, replace(config, graceful_seconds=30)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()[:2]
    try:
        yield Live(f"http://{host}:{port}", app)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def live(serve_config, service) -> Iterator[Live]:
    """The module's server with the default settings (no token, default limits)."""
    with running_server(serve_config, service) as server:
        yield server


@pytest.fixture(scope="module")
def base_url(live) -> str:
    return live.url


@pytest.fixture(scope="module")
def client(base_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=120, trust_env=False) as http:
        yield http


@pytest.fixture(scope="module")
def make_server(service):
    """Start extra servers with changed settings (token, limits, queue size) for one module."""
    stack = contextlib.ExitStack()

    def make(**changes) -> Live:
        return stack.enter_context(running_server(replace(ServeConfig(port=0, precision="fp32"), **changes), service))

    with stack:
        yield make


def _files(*items: Path | tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    out = []
    for item in items:
        name, data = (item.name, item.read_bytes()) if isinstance(item, Path) else item
        out.append(("files", (name, data)))
    return out


@pytest.fixture(scope="session")
def files():
    """``files(path, (name, bytes), ...)``: multipart ``files`` entries for real files or raw bytes."""
    return _files


@pytest.fixture(scope="session")
def dicom_dir(shared_data) -> Path:
    """../shared/data/dicom (real DICOMs of many transfer syntaxes); skips when absent."""
    folder = shared_data / "dicom"
    if not folder.is_dir():
        pytest.skip("../shared/data/dicom not present")
    return folder


PATIENT_NAME = "Doe^Jane^Testpatient"
PATIENT_ID = "PHI-TEST-ID-99412"


@dataclass(frozen=True)
class PhiDicom:
    path: Path
    patient_name: str = PATIENT_NAME
    patient_id: str = PATIENT_ID


@pytest.fixture(scope="session")
def phi_dicom(tmp_path_factory) -> PhiDicom:
    """The example DICOM with a known patient name and id written into its header."""
    import pydicom

    ds = pydicom.dcmread(EXAMPLES / "siim_chest_pa.dcm")
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.OtherPatientIDs = PATIENT_ID
    path = tmp_path_factory.mktemp("phi") / "study.dcm"
    ds.save_as(path)
    return PhiDicom(path)
