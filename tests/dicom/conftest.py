"""A real Orthanc PACS on loopback for the DICOM tests, and a `cxr listen` node beside it.

Orthanc (Debian ``orthanc``) starts on free loopback ports with a temporary storage folder
and a configuration that registers the node as modality ``cxrkit``; tests drive it through
its REST API. Without Orthanc the tests that need it skip, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

requests = pytest.importorskip("requests")

REPO = Path(__file__).resolve().parents[2]
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str, step: float = 0.2):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class Orthanc:
    """One Orthanc process: ``start``/``stop`` keep the storage, so a restart is the same PACS."""

    def __init__(self, root: Path, node_port: int):
        self.root = root
        self.http_port, self.dicom_port, self.node_port = free_port(), free_port(), node_port
        self.url = f"http://127.0.0.1:{self.http_port}"
        (root / "db").mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "cxrkit-test", "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomScpTimeout": 10,
            "DicomModalities": {"cxrkit": ["CXRKIT", "127.0.0.1", node_port]},
            "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (root / "orthanc.json").write_text(json.dumps(config))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.root / "orthanc.log", "ab") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(["Orthanc", str(self.root / "orthanc.json")], stdout=log, stderr=log,
                                            cwd=self.root)
        wait_for(self._up, 30, "Orthanc to answer")

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/system", timeout=2).ok
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def get(self, path: str):
        response = requests.get(f"{self.url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def upload(self, path: Path) -> str:
        response = requests.post(f"{self.url}/instances", data=path.read_bytes(), timeout=60)
        response.raise_for_status()
        return response.json()["ID"]

    def send_to_node(self, instances: list[str]) -> dict:
        """Orthanc C-STOREs the instances to the `cxr listen` node (modality ``cxrkit``)."""
        response = requests.post(f"{self.url}/modalities/cxrkit/store",
                                 json={"Resources": instances, "Synchronous": True}, timeout=120)
        return {"status": response.status_code, "body": response.text}

    def reports(self) -> list[dict]:
        """Every SR instance Orthanc holds, with its tags (``simplify``)."""
        found = []
        for instance in self.get("/instances"):
            tags = self.get(f"/instances/{instance}/simplified-tags")
            if tags.get("Modality") == "SR":
                found.append({"id": instance, "tags": tags})
        return found

    def file(self, instance: str) -> bytes:
        response = requests.get(f"{self.url}/instances/{instance}/file", timeout=60)
        response.raise_for_status()
        return response.content


@pytest.fixture()
def orthanc(tmp_path) -> Iterator[Orthanc]:
    """A running Orthanc that knows a `cxr listen` node at ``orthanc.node_port`` as modality ``cxrkit``."""
    if shutil.which("Orthanc") is None:
        pytest.skip("Orthanc is not installed (apt install orthanc orthanc-dicomweb)")
    server = Orthanc(tmp_path / "orthanc", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Listener:
    """`cxr listen` as its own process, as a hospital runs it (so it can be killed like one)."""

    def __init__(self, spool: Path, port: int, destination: str, model: Path, log: Path):
        self.args = [sys.executable, "-m", "cxrkit.cli.main", "listen", "--spool", str(spool), "--port", str(port),
                     "--forward-to", destination, "--model", str(model), "--precision", "fp32", "--retry-max", "2"]
        self.port, self.log = port, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as handle:
            self.process = subprocess.Popen(self.args, stdout=handle, stderr=handle, env=env, cwd=REPO)
        wait_for(self._listening, 120, "cxr listen to accept associations")

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"cxr listen exited: {self.log.read_text()[-2000:]}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def interrupt(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=120)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture()
def listener(orthanc, tiny_model_file, tmp_path) -> Iterator[Listener]:
    """`cxr listen` (not started) on Orthanc's ``cxrkit`` port, forwarding to Orthanc, with the tiny model."""
    node = Listener(tmp_path / "spool", orthanc.node_port, f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
                    tiny_model_file, tmp_path / "listen.log")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def until():
    """:func:`wait_for`, for the test modules (conftest is not importable under importlib mode)."""
    return wait_for


class Scu:
    """A modality's side of DIMSE, for the tests: C-ECHO and C-STORE to a node, returning the status."""

    @staticmethod
    def store(port: int, ds: pydicom.Dataset, calling: str = "MODALITY", called: str = "CXRKIT") -> int | None:
        """The DIMSE status of one C-STORE to the node, or None when the association was rejected."""
        from pynetdicom import AE

        ae = AE(ae_title=calling)
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", port, ae_title=called)
        if not assoc.is_established:
            return None
        try:
            return assoc.send_c_store(ds).Status
        finally:
            assoc.release()

    @staticmethod
    def echo(port: int, calling: str = "MODALITY") -> int | None:
        from pynetdicom import AE

        ae = AE(ae_title=calling)
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", port, ae_title="CXRKIT")
        if not assoc.is_established:
            return None
        try:
            return assoc.send_c_echo().Status
        finally:
            assoc.release()


@pytest.fixture(scope="session")
def scu() -> Scu:
    pytest.importorskip("pynetdicom", reason="the dicom extra (pynetdicom) is not installed")
    return Scu()


@pytest.fixture()
def web_listener(orthanc, tiny_model_file, tmp_path) -> Iterator[Listener]:
    """`cxr listen` (not started) on Orthanc's ``cxrkit`` port, storing its reports by STOW-RS."""
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip("Orthanc's DICOMweb plugin is not installed (apt install orthanc-dicomweb)")
    node = Listener(tmp_path / "spool", orthanc.node_port, f"dicomweb+{orthanc.url}/dicom-web", tiny_model_file,
                    tmp_path / "listen.log")
    try:
        yield node
    finally:
        node.stop()
