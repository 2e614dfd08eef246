"""Fuzzing ``read_image``: thousands of mutated files, each judged against the reader's contract.

Why: a hospital export of 100,000 files always holds broken ones, and one exception of the
wrong type, one NaN pixel or one segfault in a C decoder ends (or silently poisons) a whole
``cxr predict`` run. The contract (see ``fuzzlib``): every input reads to a finite 2-D array
in ``[0, maxval]`` or raises a one-line ``UnreadableImage`` naming the file, without hanging,
crashing or exceeding the memory bound. Cases run in a worker process, so a crash or a hang
is reported as such instead of taking pytest down.

CI size: a fixed seed (Hypothesis ``derandomize``) and a few thousand cases, about a minute
on two busy cores. ``CXRKIT_FUZZ_SCALE=10`` multiplies every count for a longer local run;
``benchmarks/fuzz_readers.py`` is the leave-it-running version. A failure prints the
shrunk case (seed and mutations) and where its bytes were saved.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrkit.errors import UnreadableImage
from cxrkit.io import XrayImage, read_image


def _load_fuzzlib():
    name = "cxrkit_fuzzlib"
    if name not in sys.modules:  # tests import by path (--import-mode=importlib): load it the same way
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fuzzlib.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fz = _load_fuzzlib()
SCALE = float(os.environ.get("CXRKIT_FUZZ_SCALE", "1"))
COMMITTED = fz.load_seeds()
EXAMPLE_SEEDS = fz.load_seeds(committed=False, examples=True)
KINDS = {name: fz.seed_kind(data) for name, data in {**COMMITTED, **EXAMPLE_SEEDS}.items()}
DICOM_SEEDS = {n: d for n, d in COMMITTED.items() if KINDS[n] == "dicom"}
RASTER_SEEDS = {n: d for n, d in COMMITTED.items() if KINDS[n] != "dicom"}
TALLY: Counter[str] = fz.TALLY


def _examples(n: int) -> int:
    return max(1, int(n * SCALE))


FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=False,
            suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """One worker process for the module (restarted by the runner after a crash or hang)."""
    with fz.Runner() as r:
        r.saved = tmp_path_factory.mktemp("fuzz-failures")
        yield r
        TALLY["peak_rss_mib"] = r.peak_rss >> 20  # printed by tests/io/conftest.py


def _check(runner, case, seeds) -> None:
    data = fz.apply(case, seeds)
    outcome = runner.run(data, fz.SUFFIX.get(KINDS.get(case[0], ""), ".bin"))
    TALLY["cases"] += 1
    TALLY[outcome.kind] += 1
    if not outcome.passed:
        saved = runner.saved / f"{outcome.kind}-{TALLY['cases']}.bin"
        saved.write_bytes(data)
        pytest.fail(f"{outcome.kind}: {outcome.detail}\n  case: {fz.describe(case)}\n  bytes: {saved}")


# --- the fuzz runs -------------------------------------------------------------------------

@pytest.mark.subprocess
@settings(max_examples=_examples(1500), **FUZZ)
@given(case=fz.case_strategy(DICOM_SEEDS, KINDS))
def test_fuzz_dicom(runner, case):
    """Header edits (bit depths, sizes, windows, rescale, LUTs, transfer syntax, lengths) and byte
    mutations of one tiny DICOM per transfer syntax and grey-scale path."""
    _check(runner, case, DICOM_SEEDS)


@pytest.mark.subprocess
@settings(max_examples=_examples(1200), **FUZZ)
@given(case=fz.case_strategy(RASTER_SEEDS, KINDS))
def test_fuzz_png_jpeg_tiff_bmp(runner, case):
    """PNG chunks with valid CRCs, JPEG frame headers and scans, TIFF IFD entries, BMP headers,
    plus byte mutations: damage that gets past the container checks into libpng/libjpeg/libtiff."""
    _check(runner, case, RASTER_SEEDS)


@pytest.mark.subprocess
@settings(max_examples=_examples(250), **FUZZ)
@given(case=fz.case_strategy(EXAMPLE_SEEDS, KINDS))
def test_fuzz_examples(runner, case):
    """The committed real radiographs (512 px NIH PNGs, a JPEG-baseline chest DICOM)."""
    _check(runner, case, EXAMPLE_SEEDS)


@pytest.mark.subprocess
def test_fuzz_real_dicoms(shared_data, runner):
    """Real vendor DICOMs (JPEG 2000, JPEG-LS, lossless and 12-bit JPEG, MONOCHROME1): the files
    users have, with their private tags and odd encodings. Skips without ../shared/data."""
    seeds = fz.load_seeds(committed=False, shared=True, max_bytes=3_000_000)
    kinds = {name: fz.seed_kind(data) for name, data in seeds.items()}
    KINDS.update(kinds)

    @settings(max_examples=_examples(200), **FUZZ)
    @given(case=fz.case_strategy(seeds, kinds, max_ops=2))
    def run(case):
        _check(runner, case, seeds)

    run()


# --- valid inputs: properties of what must read, and read right -----------------------------

@st.composite
def valid_dicoms(draw):
    """Parameters of a valid single-frame greyscale DICOM (what a conforming modality writes)."""
    allocated = draw(st.sampled_from([8, 16]))
    stored = draw(st.integers(1 if allocated == 8 else 9, allocated))
    signed = draw(st.booleans())
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    lo, hi = (-(2 ** (stored - 1)), 2 ** (stored - 1) - 1) if signed else (0, 2**stored - 1)
    values = draw(st.lists(st.integers(lo, hi), min_size=rows * cols, max_size=rows * cols))
    dtype = f"{'i' if signed else 'u'}{allocated // 8}"
    extra = {}
    if draw(st.booleans()):
        extra["RescaleSlope"] = draw(st.sampled_from([0.5, 1, 2, 1e-3, 100]))
        extra["RescaleIntercept"] = draw(st.sampled_from([0, -1024, 1000, -0.5]))
    if draw(st.booleans()):
        extra["WindowCenter"] = draw(st.integers(lo, hi))
        extra["WindowWidth"] = draw(st.integers(1, 2 * (hi - lo) + 2))
        extra["VOILUTFunction"] = draw(st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]))
    return np.array(values, dtype=dtype).reshape(rows, cols), stored, extra


@pytest.mark.slow  # 250 generated DICOMs: ~9 s
@settings(max_examples=_examples(250), deadline=None, derandomize=True, database=None)
@given(spec=valid_dicoms(), inverse=st.booleans())
def test_valid_dicoms_always_read_in_range(tmp_path_factory, spec, inverse):
    """Any conforming DICOM reads, finite, with maxval = 2**BitsStored - 1, and MONOCHROME1 is
    exactly the inverse of the same pixels as MONOCHROME2 (inverted once, never twice)."""
    arr, stored, extra = spec
    folder = tmp_path_factory.mktemp("valid")
    images = []
    for photometric in ("MONOCHROME2", "MONOCHROME1"):
        path = folder / f"{photometric}.dcm"
        shape = "INVERSE" if inverse and photometric == "MONOCHROME1" else None
        path.write_bytes(fz._dicom("1.2.840.10008.1.2.1", arr, bits_stored=stored, photometric=photometric,
                                   **({"PresentationLUTShape": shape} if shape else {}), **extra))
        image = read_image(path)
        assert isinstance(image, XrayImage) and image.pixels.shape == arr.shape
        assert image.maxval == 2**stored - 1
        assert np.isfinite(image.pixels).all()
        assert image.pixels.min() >= 0 and image.pixels.max() <= image.maxval
        images.append(image)
    np.testing.assert_allclose(images[1].pixels, images[0].maxval - images[0].pixels, atol=1e-3 * images[0].maxval)


@settings(max_examples=_examples(150), deadline=None, derandomize=True, database=None)
@given(dtype=st.sampled_from([np.uint8, np.uint16]), ext=st.sampled_from([".png", ".tif"]),
       shape=st.tuples(st.integers(1, 12), st.integers(1, 12)), data=st.data())
def test_valid_rasters_read_back_exactly(tmp_path_factory, dtype, ext, shape, data):
    """Lossless 8/16-bit files written by OpenCV read back bit-exact with the file's white level."""
    top = np.iinfo(dtype).max
    values = data.draw(st.lists(st.integers(0, top), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]))
    arr = np.array(values, dtype=dtype).reshape(shape)
    path = tmp_path_factory.mktemp("raster") / f"x{ext}"
    assert cv2.imwrite(str(path), arr)
    image = read_image(path)
    assert image.maxval == float(top)
    np.testing.assert_array_equal(image.pixels, arr)


# --- the harness itself: it must see every kind of failure it claims to catch -----------------

def test_committed_seeds_all_read():
    """Every seed is a valid file, so mutations start from the reader's success path (a broken
    seed would only ever exercise the first error check)."""
    assert len(DICOM_SEEDS) >= 15 and len(RASTER_SEEDS) >= 15
    for name in COMMITTED:
        image = read_image(fz.SEED_DIR / name)
        assert image.pixels.size > 0, name


def test_seed_generator_covers_the_committed_seeds():
    """The committed seeds are what ``make_seeds`` writes (names), so they can be regenerated."""
    assert set(fz.make_seeds()) == set(COMMITTED)


@pytest.mark.parametrize("how, kind, detail", [
    ("hang", "hang", "no answer"),
    ("crash", "crash", "SIGABRT"),
    ("allocate", "violation", "MemoryError"),
    ("nan", "violation", "NaN"),
    ("keyerror", "violation", "KeyError"),
])
@pytest.mark.subprocess
def test_harness_reports_each_failure(how, kind, detail):
    """A reader that hangs, aborts, allocates without bound, returns NaN or raises a foreign
    exception is reported as such: the fuzz tests above could fail, and would say why."""
    with fz.Runner(timeout=3, env={"CXRKIT_FUZZ_SELFTEST": "1"}) as runner:
        outcome = runner.run(b"CXRKIT-FUZZ-SELFTEST " + how.encode())
        assert (outcome.kind, outcome.passed) == (kind, False), outcome
        assert detail in outcome.detail
        # and the worker is back for the next case
        assert runner.run(COMMITTED["png_gray8.png"], ".png").kind == "ok"


def test_contract_rejects_messages_without_the_file_or_with_identifiers(tmp_path, monkeypatch):
    """The message rules are checked too: a typed error must name the file, be one line and carry
    no identifier; a proper one passes."""
    import cxrkit.io

    class Nameless(UnreadableImage):
        def __str__(self) -> str:
            return self.reason

    path = tmp_path / "x.dcm"
    cases = [(UnreadableImage(path, "corrupt header"), "error", "corrupt header"),
             (Nameless(path, "corrupt header"), "violation", "does not name the file"),
             (UnreadableImage(path, "line one\nline two"), "violation", "one line"),
             (UnreadableImage(path, f"value {fz.PHI_MARKERS[0]}"), "violation", "identifier")]
    for error, kind, fragment in cases:
        def fake(p, error=error):
            raise error

        monkeypatch.setattr(cxrkit.io, "read_image", fake)
        assert fz.check_contract(path)[0] == kind and fragment in fz.check_contract(path)[1], (error, kind)
