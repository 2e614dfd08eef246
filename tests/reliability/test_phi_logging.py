"""The logging policy of ``cxrkit.log_policy`` in one process: what survives a later import, a
reload, a handler added afterwards and a logger created afterwards, and what a record with
an exception keeps.

Why: the policy is only worth something if nothing a library does after cxrkit installed
it can undo it; each test here does one such thing, then logs a planted value.
"""

from __future__ import annotations

import importlib
import io
import logging
import subprocess
import sys

import pytest

from cxrkit import log_policy
from cxrkit.errors import UnreadableImage
from cxrkit.io import read_image

from .phi_files import TOKEN, found, write_all


@pytest.fixture
def guarded():
    """The readers' and server's loggers guarded; their previous state restored afterwards."""
    names = log_policy.READERS + log_policy.SERVERS
    saved = {n: (logging.getLogger(n).propagate, list(logging.getLogger(n).handlers)) for n in names}
    log_policy.guard(names)
    yield
    for name, (propagate, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.propagate, logger.handlers[:] = propagate, handlers


def _messages(caplog) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def test_reader_records_never_carry_their_text(guarded, caplog):
    """At WARNING nothing of pydicom's reaches the handlers; at DEBUG only the fixed sentence,
    after a reload of pydicom's config (which resets its logger) as well."""
    import pydicom.config

    stream = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        caplog.set_level(logging.WARNING)
        logging.getLogger("pydicom").warning("Invalid value for VR UI: '%s'", TOKEN)
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == ""  # dropped before the root's handlers
    # (pytest's capture also sits on the guarded logger itself, and sees the reduced record)
    assert all(r.getMessage().startswith(log_policy.WITHHELD) for r in caplog.records)
    caplog.clear()
    importlib.reload(pydicom.config)  # sets the level and adds a handler again
    caplog.set_level(logging.DEBUG)
    logging.getLogger("pydicom").warning("Invalid value for VR UI: '%s'", TOKEN)
    logging.getLogger("pydicom.pixels.decoders.base").error("decoder failed on %s", TOKEN)
    # (each record twice: pytest captures on the root and on the non-propagating logger too)
    assert {r.name for r in caplog.records} == {"pydicom", "pydicom.pixels.decoders.base"}
    assert all(r.getMessage().startswith(log_policy.WITHHELD) for r in caplog.records)
    assert not found(_messages(caplog))


def test_a_handler_or_logger_added_later_sees_only_the_reduced_record(guarded, caplog):
    """``pydicom.config.debug()`` adds its own stderr handler; a Pillow plugin's logger is
    created when the plugin loads: neither gets the text."""
    import pydicom.config

    stream = io.StringIO()
    pydicom.config.debug(True, default_handler=False)
    handler = logging.StreamHandler(stream)
    logging.getLogger("pydicom").addHandler(handler)
    try:
        logging.getLogger("pydicom").warning("PatientName %s", TOKEN)
        logging.getLogger("PIL.SomePluginLoadedLater").warning("tag value %s", TOKEN)
    finally:
        logging.getLogger("pydicom").removeHandler(handler)
        pydicom.config.debug(False, default_handler=False)
    assert log_policy.WITHHELD in stream.getvalue() and not found(stream.getvalue())
    assert not found(_messages(caplog))


def test_exceptions_keep_their_trace_but_not_their_message(guarded, caplog):
    """A server error logged with its exception (uvicorn's "Exception in ASGI application"):
    types, files and lines stay, messages go, except cxrkit's own typed errors."""
    caplog.set_level(logging.DEBUG)
    try:
        try:
            raise ValueError(f"invalid literal for int(): '{TOKEN}'")
        except ValueError as exc:
            raise UnreadableImage("scan.dcm", "not a readable DICOM file") from exc
    except UnreadableImage:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    (record,) = {id(r): r for r in caplog.records}.values()  # one record, captured twice (see above)
    assert record.getMessage() == "Exception in ASGI application" and record.exc_info is None
    trace = record.exc_text
    assert "ValueError: (message withheld" in trace and "test_phi_logging.py" in trace
    assert "direct cause of the following exception" in trace
    assert "UnreadableImage: scan.dcm: not a readable DICOM file" in trace
    assert not found(trace)


def test_uvicorn_access_lines_are_dropped(guarded, caplog):
    """Dropped before the root's handlers, reduced for any handler on the logger itself."""
    stream = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        caplog.set_level(logging.DEBUG)
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET",
                                                 f"/v1/predict?patient={TOKEN}", "1.1", 200)
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == ""
    assert not found(_messages(caplog)) and "/v1/predict" not in _messages(caplog)


def test_reading_the_planted_files_logs_nothing_identifying(tmp_path, caplog):
    """The reader installs the policy itself (right after importing pydicom): a program that
    only uses the library, logging at DEBUG, gets no planted value from any file."""
    caplog.set_level(logging.DEBUG)
    for path in write_all(tmp_path):
        try:
            read_image(path)
        except (UnreadableImage, ValueError):
            pass
    assert logging.getLogger("pydicom").propagate is False
    assert caplog.records, "pydicom spoke about these files, reduced"
    assert not found(_messages(caplog))


def test_the_command_installs_the_filter_on_its_own_handler(monkeypatch):
    """``cxr``'s stderr handler carries the filter, whatever configures the loggers later."""
    from cxrkit.cli import main as cli_main

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    root.handlers[:] = []
    monkeypatch.setattr(cli_main, "app", lambda: None)
    monkeypatch.setattr(sys, "argv", ["cxr"])
    names = log_policy.READERS + log_policy.SERVERS
    kept = {n: (logging.getLogger(n).propagate, list(logging.getLogger(n).handlers)) for n in names}
    try:
        cli_main.main()
        (handler,) = root.handlers
        assert any(isinstance(f, log_policy.PatientDataFilter) for f in handler.filters)
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, f"GET /?q={TOKEN}", (), None)
        assert handler.filter(record) is False
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, (propagate, handlers) in kept.items():
            logging.getLogger(name).propagate, logging.getLogger(name).handlers[:] = propagate, handlers


_THREADED_READS = """
import sys, threading
from pathlib import Path
from cxrkit.errors import CxrkitError
from cxrkit.io import read_image

files = sorted(Path(sys.argv[1]).iterdir())

def read_all():
    for _ in range(int(sys.argv[2])):
        for path in files:
            try:
                read_image(path)
            except CxrkitError:
                pass

threads = [threading.Thread(target=read_all) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("read", len(files), "files")
"""


@pytest.mark.subprocess
def test_reader_threads_let_no_warning_text_through(tmp_path):
    """Four threads reading the planted files at once, with every warning shown (``-W always``):
    end to end, as ``cxr predict`` and ``cxr convert`` read ahead in threads. (The interleaving
    that once let pydicom's "Invalid value for VR UI: '<name>'" out is forced, deterministically,
    in ``test_withheld_warnings.py``; timing alone shows it rarely.)"""
    write_all(tmp_path / "in")
    proc = subprocess.run([sys.executable, "-W", "always", "-c", _THREADED_READS, str(tmp_path / "in"), "10"],
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode("latin-1")[-2000:]
    assert b"read" in proc.stdout
    assert not found(proc.stderr), found(proc.stderr)
    assert b"Warning" not in proc.stderr, proc.stderr.decode("latin-1")[-2000:]
