"""``cxr predict``, ``cxr convert`` and ``cxr age`` as real processes over files with a token
planted in every identifying header field, intact and broken: no planted value on stdout,
stderr or in any output file, and a file that reads fine prints nothing on stderr.

Why real processes: the ``cxr`` command sets up logging before any reader library is
imported, and that ordering is what leaked (pydicom's import reset the level the command
had set, so its warnings quoted swallowed names, IDs and birth dates on stderr, and decoder
fallbacks printed tracebacks for films that were read). Only a process started the way a
user starts it exercises that order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ENV, cli, csv_rows, stderr_lines
from .phi_files import FILES, found, write_all

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
SHARED = Path(os.environ.get("CXRKIT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))

#: file -> status of its row (the exact reasons are pinned in tests/io/test_bad_corpus.py)
OUTCOMES = {
    "phi_valid.dcm": "ok",
    "phi_sop_class_swallows_patient.dcm": "ok",
    "phi_sop_class_swallows_all.dcm": "error",
    "phi_bad_sop_class.dcm": "error",
    "phi_wrong_vrs.dcm": "ok",
    "phi_invalid_values.dcm": "ok",
    "phi_unknown_vr.dcm": "error",
    "phi_unknown_charset.dcm": "ok",
    "phi_value_past_end.dcm": "error",
    "phi_corrupt_sequence.dcm": "ok",
    "phi_implicit_no_preamble.dcm": "ok",
    "phi_not_a_radiograph.dcm": "error",
    "phi_corrupt_jpeg.dcm": "error",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return write_all(tmp_path_factory.mktemp("phi") / "in")[0].parent


def _run(*args: str, debug: bool = False) -> subprocess.CompletedProcess:
    env = {**ENV, **({"CXRKIT_DEBUG": "1"} if debug else {})}
    return subprocess.run(cli(*args), env=env, capture_output=True, timeout=600, check=False)


def _assert_clean(proc: subprocess.CompletedProcess, out: Path) -> None:
    for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        assert not found(text), (stream, found(text), text.decode("latin-1")[-3000:])
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert not found(path.read_bytes()), (path, found(path.read_bytes()))


def _statuses(rows_file: Path) -> dict[str, str]:
    header, rows = csv_rows(rows_file)
    return {Path(r[0]).name: r[header.index("status")] for r in rows}


def test_committed_corpus_files_are_the_generators_output():
    """The ``phi_`` files in tests/fixtures/bad are exactly what ``phi_files`` writes (the recipe)."""
    assert set(FILES) == set(OUTCOMES)
    for name, build in FILES.items():
        assert (BAD / name).read_bytes() == build(), name


@pytest.mark.parametrize("command", ["predict", "age", "convert"])
@pytest.mark.subprocess
def test_no_planted_value_on_any_output(command, planted, tmp_path):
    """Default logging for every command; ``predict`` also at DEBUG, where tracebacks are shown."""
    out = tmp_path / "out"
    target = ["-o", str(out / "rows.csv")] if command != "convert" else ["-o", str(out)]
    runs = [(_run(command, str(planted), *target), out)]
    if command == "predict":
        debug_out = tmp_path / "debug"
        runs.append((_run(command, str(planted), "-o", str(debug_out / "rows.csv"), debug=True), debug_out))
    for proc, folder in runs:
        assert proc.returncode == 3, proc.stderr.decode("latin-1")[-2000:]  # some rows failed
        rows = folder / ("convert.csv" if command == "convert" else "rows.csv")
        assert _statuses(rows) == OUTCOMES
        _assert_clean(proc, folder)


@pytest.mark.subprocess
def test_files_read_fine_print_nothing_on_stderr(planted, tmp_path):
    """Readable files, planted ones whose headers make pydicom warn included, and (where the
    shared data is present) a real 12-bit JPEG whose first decoders fail before one reads it:
    stderr holds the summary line only."""
    folder = tmp_path / "ok"
    folder.mkdir()
    for name, status in OUTCOMES.items():
        if status == "ok":
            shutil.copy(planted / name, folder / name)
    jply = SHARED / "dicom" / "RG2_JPLY.dcm"  # pydicom logged two tracebacks reading it
    if jply.is_file():
        shutil.copy(jply, folder / jply.name)
    proc = _run("convert", str(folder), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr.decode("latin-1")[-2000:]
    lines = stderr_lines(proc.stderr.decode("latin-1"))
    n = len(list(folder.iterdir()))
    assert len(lines) == 1 and lines[0].startswith(f"{n} ok, 0 failed"), lines
    assert proc.stdout == b""
