"""Decompression and decode-time bombs: files that are small on disk and pass a header's pixel
limit, but make a decoder allocate gigabytes or loop for a minute.

Used by ``tests/io/test_bombs.py`` (small sizes, exact expected errors) and, to measure
``cxr predict`` over a bomb corpus, as a script::

    python tests/io/bombs.py OUT_DIR        # writes the corpus of docs/reliability.md
    python tests/io/bombs.py OUT_DIR --bad  # the small ones committed to tests/fixtures/bad

Every DICOM descends from a ``fuzzlib`` seed (fake identifiers only); rasters are made from
zeros or from ``examples/``. Large streams are deflated in 1 MiB pieces, so making a file
that inflates to 300 MB costs ~0.5 s and little memory.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fuzzlib  # noqa: E402  (the seeds' helpers)

DEFLATED = "1.2.840.10008.1.2.1.99"


_deflate_stream = fuzzlib.deflate_zeros


def _pixels(shape: tuple[int, int] = (16, 24), top: int = 4095):
    return fuzzlib._pixels(shape, top, "uint16" if top > 255 else "uint8")


def deflated_dicom(extra_zeros: int = 0) -> bytes:
    """A valid 24x16 deflated DICOM; ``extra_zeros`` > 0 appends a private OB element of that many
    zero bytes (after the pixel data, so the image itself stays legitimate): a deflate bomb."""
    from cxrkit.io._dicom_deflate import _meta_end

    small = fuzzlib._dicom(DEFLATED, _pixels(), bits_stored=12)
    end = _meta_end(small, 132)
    body = zlib.decompress(small[end:], -zlib.MAX_WBITS)
    parts: list[bytes | int] = [body]
    if extra_zeros:
        creator = b"BOMB"
        parts.append(struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", len(creator)) + creator)
        parts.append(struct.pack("<HH2sHI", 0x7FE1, 0x1000, b"OB", 0, extra_zeros))
        parts.append(extra_zeros)
    return small[:end] + _deflate_stream(parts)


def _patch_jpeg_sof(frame: bytes, width: int, height: int, markers: tuple[int, ...]) -> bytes:
    """Rewrite the frame size in the first SOF (or JPEG-LS SOF55) segment of ``frame``."""
    pos = 2
    while frame[pos] == 0xFF and frame[pos + 1] not in markers:
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        pos += 2 + length
    return frame[: pos + 5] + struct.pack(">HH", height, width) + frame[pos + 9:]


def _patch_j2k_siz(frame: bytes, width: int, height: int) -> bytes:
    at = frame.find(b"\xff\x4f\xff\x51")
    return frame[: at + 8] + struct.pack(">II", width, height) + frame[at + 16:]


def oversize_codestream_dicom(kind: str, width: int = 60000, height: int = 60000) -> bytes:
    """A 24x16 DICOM whose compressed frame declares ``width`` x ``height`` pixels.

    ``kind``: 'jpegls', 'jpeg_lossless', 'jpeg_baseline', 'jpeg_extended', 'j2k'. The header
    passes every check; the decoders allocate the codestream's size (60000 x 60000 x 2 bytes =
    7.2 GB) before they notice the data is far too short.
    """
    import imagecodecs

    u12, u8 = _pixels(), _pixels(top=255)
    if kind == "jpegls":
        ts, arr, frame = "1.2.840.10008.1.2.4.80", u12, imagecodecs.jpegls_encode(u12)
        frame = _patch_jpeg_sof(frame, width, height, (0xF7,))
    elif kind == "jpeg_lossless":
        ts, arr, frame = "1.2.840.10008.1.2.4.70", u12, imagecodecs.ljpeg_encode(u12, bitspersample=12)
        frame = _patch_jpeg_sof(frame, width, height, (0xC3,))
    elif kind == "jpeg_baseline":
        ts, arr, frame = "1.2.840.10008.1.2.4.50", u8, imagecodecs.jpeg8_encode(u8, level=90)
        frame = _patch_jpeg_sof(frame, width, height, (0xC0,))
    elif kind == "jpeg_extended":
        ts, arr = "1.2.840.10008.1.2.4.51", u12
        frame = _patch_jpeg_sof(imagecodecs.jpeg8_encode(u12, level=90, bitspersample=12), width, height, (0xC1,))
    elif kind == "j2k":
        ts, arr = "1.2.840.10008.1.2.4.90", u12
        frame = _patch_j2k_siz(imagecodecs.jpeg2k_encode(u12, level=0, codecformat="J2K"), width, height)
    else:
        raise ValueError(kind)
    return fuzzlib._dicom(ts, arr, frame=frame, bits_stored=12 if arr.dtype.itemsize == 2 else None)


def consistent_junk_dicom(kind: str, side: int = 7000) -> bytes:
    """A ``side`` x ``side`` DICOM (49 MP at 7000: just under the default limit) whose codestream
    agrees with the header but holds the data of a 24x16 image: it passes every check, so the
    decoder's own time and memory on it are the worst an accepted file costs."""
    import pydicom
    from pydicom.encaps import encapsulate, get_frame

    ds = pydicom.dcmread(io.BytesIO(oversize_codestream_dicom(kind, side, side)))
    ds.Rows = ds.Columns = side
    if kind == "j2k":  # one tile over the whole image, as encoders write radiographs
        frame = bytearray(get_frame(ds.PixelData, 0, number_of_frames=1))
        at = frame.find(b"\xff\x4f\xff\x51")
        struct.pack_into(">II", frame, at + 24, side, side)
        ds.PixelData = encapsulate([bytes(frame)])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def j2k_tiles_dicom(side: int = 300, tile: int = 1) -> bytes:
    """A ``side`` x ``side`` JPEG 2000 DICOM whose SIZ declares ``tile`` x ``tile`` tiles (1x1:
    90,000 tiles here, 18.5 million over a 4300 x 4300 film; the standard allows 65535)."""
    import imagecodecs
    import numpy as np

    arr = np.zeros((side, side), np.uint16)  # flat: a codestream of a few hundred bytes
    frame = bytearray(imagecodecs.jpeg2k_encode(arr, level=0, codecformat="J2K"))
    at = frame.find(b"\xff\x4f\xff\x51")
    struct.pack_into(">II", frame, at + 24, tile, tile)
    return fuzzlib._dicom("1.2.840.10008.1.2.4.90", arr, frame=bytes(frame), bits_stored=12)


def rle_bomb_dicom(runs: int = 200_000, width: int = 24, height: int = 16) -> bytes:
    """An 8-bit RLE DICOM whose one segment is ``runs`` two-byte runs of 128 zeros: 128 * runs
    bytes for a ``width`` x ``height`` plane (25.6 MB from 400 KB at the default)."""
    segment = b"\x81\x00" * runs
    frame = struct.pack("<16I", 1, 64, *([0] * 14)) + segment
    return fuzzlib._dicom("1.2.840.10008.1.2.5", _pixels((height, width), 255), frame=frame)


def huge_png(width: int, height: int) -> bytes:
    """A valid 8-bit grey PNG of zeros, ``width`` x ``height`` (17000 x 17000 = 289 MP in ~290 KB)."""
    idat = _deflate_stream([height * (width + 1)], raw=False)  # filter byte 0 and zeros, every row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + fuzzlib._png_chunk(b"IHDR", ihdr) + fuzzlib._png_chunk(b"IDAT", idat)
            + fuzzlib._png_chunk(b"IEND", b""))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` but whose IDAT holds 100 zeros: refused from
    its header alone, so it need not be valid (a valid one of 8000 x 7000 zeros is 55 KB)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + fuzzlib._png_chunk(b"IHDR", ihdr)
            + fuzzlib._png_chunk(b"IDAT", zlib.compress(bytes(100))) + fuzzlib._png_chunk(b"IEND", b""))


def progressive_jpeg(width: int, height: int, scans: int) -> bytes:
    """A progressive grey JPEG of zeros whose last scan is repeated until it has ``scans`` scans.

    Each repeat is a few bytes of end-of-band runs, but libjpeg walks every block of the frame
    for it (and only warns about the bogus progression): 10,000 scans over 8000 x 6000 pixels
    is ~500 KB and a minute of CPU.
    """
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.zeros((height, width), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    data = buf.tobytes()
    last = data.rfind(b"\xff\xda")
    end = data.rfind(b"\xff\xd9")
    have = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * max(0, scans - have) + b"\xff\xd9"


def truncated_jpeg_with_eoi(source: Path | None = None, size: int | None = None, keep: float = 0.5) -> bytes:
    """An ``examples/`` radiograph as a JPEG cut to ``keep`` of its length, with the end-of-image
    marker put back (what a transfer that restarts, or a careless repair, leaves): libjpeg
    decodes it with the rest grey and only a warning on stderr."""
    import cv2

    source = source or sorted((fuzzlib.EXAMPLES).glob("*.png"))[0]
    img = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    if size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = buf.tobytes()
    return data[: int(len(data) * keep)] + b"\xff\xd9"


def truncated_png_stream(source: Path | None = None, size: int | None = None) -> bytes:
    """An ``examples/`` radiograph as a PNG whose (complete, CRC-correct) zlib stream holds half
    the rows: libpng says "Not enough image data", Pillow returned the half image."""
    import cv2

    source = source or sorted((fuzzlib.EXAMPLES).glob("*.png"))[0]
    img = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    if size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    raw = b"".join(b"\x00" + row.tobytes() for row in img[: img.shape[0] // 2])
    ihdr = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + fuzzlib._png_chunk(b"IHDR", ihdr)
            + fuzzlib._png_chunk(b"IDAT", zlib.compress(raw)) + fuzzlib._png_chunk(b"IEND", b""))


def corpus() -> dict[str, bytes]:
    """The measured corpus (docs/reliability.md): one of each bomb at the sizes found in the wild."""
    return {
        "deflate_bomb_1gb.dcm": deflated_dicom(extra_zeros=1_000_000_000),
        "jpegls_sof_60000.dcm": oversize_codestream_dicom("jpegls"),
        "jpeg_lossless_sof_60000.dcm": oversize_codestream_dicom("jpeg_lossless"),
        "jpeg_baseline_sof_60000.dcm": oversize_codestream_dicom("jpeg_baseline"),
        "j2k_siz_60000.dcm": oversize_codestream_dicom("j2k"),
        "rle_segment_25mb.dcm": rle_bomb_dicom(),
        "png_17000x17000.png": huge_png(17000, 17000),
        "jpeg_progressive_10000_scans.jpg": progressive_jpeg(8000, 6000, 10_000),
        "jpeg_truncated_eoi.jpg": truncated_jpeg_with_eoi(),
        "png_half_stream.png": truncated_png_stream(),
        "legit_deflated.dcm": deflated_dicom(),
    }


def bad_corpus() -> dict[str, bytes]:
    """The small bombs committed to ``tests/fixtures/bad`` (each under 20 KB)."""
    return {
        "dcm_jpegls_sof_60000.dcm": oversize_codestream_dicom("jpegls"),
        "dcm_jpeg_lossless_sof_60000.dcm": oversize_codestream_dicom("jpeg_lossless"),
        "dcm_jpeg_baseline_sof_60000.dcm": oversize_codestream_dicom("jpeg_baseline"),
        "dcm_jpeg_extended_sof_60000.dcm": oversize_codestream_dicom("jpeg_extended"),
        "dcm_j2k_siz_60000.dcm": oversize_codestream_dicom("j2k"),
        "dcm_j2k_tiles_1x1.dcm": j2k_tiles_dicom(),
        "dcm_rle_segment_12800.dcm": rle_bomb_dicom(runs=100),
        "png_ihdr_8000x7000.png": png_header_only(8000, 7000),
        "jpg_progressive_101_scans.jpg": progressive_jpeg(64, 64, 101),
        "jpg_truncated_eoi.jpg": truncated_jpeg_with_eoi(size=64),
        "png_half_stream.png": truncated_png_stream(size=64),
        "guard_deflated_private_1mib.dcm": deflated_dicom(extra_zeros=1 << 20),
    }


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (bad_corpus() if sys.argv[2:] == ["--bad"] else corpus()).items():
        (out / name).write_bytes(data)
        print(f"{name}\t{len(data)}")

