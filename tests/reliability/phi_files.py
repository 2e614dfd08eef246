"""Small DICOMs with a unique token planted in every identifying header field, intact and broken.

Why: "no patient identifier in any log, message or response" can only be tested with files
whose identifiers are known and findable wherever they end up. Each file here carries the
same token in every text attribute of the DICOM de-identification profile (PS3.15 E.1-1:
names, IDs, dates, institution, addresses, descriptions, comments, UIDs, a private block
and a nested sequence), and most files are broken the ways that make libraries quote
header values: a length that makes one element swallow the next ones, wrong or unknown
VRs, invalid values, an unknown character set, a value that runs past the end of the file,
a corrupt sequence, corrupt compressed pixels. The technical attributes cxrkit interprets
(Rows, BitsStored, Modality...) keep real values, so each file still reaches the code that
would print them.

The files are written byte by byte (explicit VR little endian unless said otherwise), so
a broken length or VR is exactly what the name says and the output never depends on a
pydicom version. ``write_all(folder)`` writes every file, ``FILES[name]()`` builds one,
``element()`` encodes any other broken element, and ``found(text)`` lists the planted
values a text or byte string contains (test modules here: ``from .phi_files import ...``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

#: Planted in every text element (upper and lower case, so no "looks like a code" rule lets it through).
TOKEN = "PHI_TOKEN_7f3a"
#: Planted in every date element (DA must be digits to be valid).
DATE = "19230417"
#: Planted in every UID (UI must be digits and dots); ``UID_MARK`` is its unique part.
UID_MARK = "73147301"
UID = f"1.2.826.0.1.3680043.8.498.{UID_MARK}"
#: Planted in file names: the rows echo a file's own name back, but no log may carry it.
FILE_TOKEN = "FILE_TOKEN_c41d"

DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"

ROWS = COLS = 32
_LONG_VR = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"}


def needles() -> tuple[str, ...]:
    """Strings no output may contain (compare case-insensitively: a reader may upper-case a value)."""
    return (TOKEN, "TOKEN_7f3a", "PHI_TOKEN", DATE, UID_MARK)


# ---------------------------------------------------------------------------------------------
# byte-level encoding
# ---------------------------------------------------------------------------------------------

def _pad(value: bytes, vr: str) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return value


def element(group: int, elem: int, vr: str, value: bytes | str, *, length: int | None = None,
            implicit: bool = False) -> bytes:
    """One data element; ``length`` overrides the encoded length (a corrupt header)."""
    raw = _pad(value.encode("latin-1") if isinstance(value, str) else value, vr)
    size = len(raw) if length is None else length
    tag = struct.pack("<HH", group, elem)
    if implicit:
        return tag + struct.pack("<I", size) + raw
    if vr in _LONG_VR:
        return tag + vr.encode() + b"\0\0" + struct.pack("<I", size) + raw
    return tag + vr.encode() + struct.pack("<H", size) + raw


def _meta(ts: str, sop_class: str) -> bytes:
    body = (element(0x0002, 0x0001, "OB", b"\0\1")
            + element(0x0002, 0x0002, "UI", sop_class)
            + element(0x0002, 0x0003, "UI", UID + ".1")
            + element(0x0002, 0x0010, "UI", ts)
            + element(0x0002, 0x0012, "UI", "1.2.826.0.1.3680043.8.498.1")
            + element(0x0002, 0x0013, "SH", "PHI_TOOL"))
    return b"\0" * 128 + b"DICM" + element(0x0002, 0x0000, "UL", struct.pack("<I", len(body))) + body


def _pixels() -> bytes:
    """A 12-bit gradient with texture, 32 x 32 (2 KB): a real range, not a constant."""
    out = bytearray()
    for y in range(ROWS):
        for x in range(COLS):
            out += struct.pack("<H", (x * 37 + y * 101 + (x * y) % 13 * 17) % 4096)
    return bytes(out)


def _name(given: str) -> str:
    return f"{TOKEN}^{given}"


#: (group, element, VR, value) of every identifying text attribute, in tag order.
def identifying(tag_range: tuple[int, int] = (0x0008_0000, 0x0040_FFFF)) -> list[tuple[int, int, str, str]]:
    rows = [
        (0x0008, 0x0012, "DA", DATE),  # InstanceCreationDate
        (0x0008, 0x0018, "UI", UID + ".1"),  # SOPInstanceUID
        (0x0008, 0x0020, "DA", DATE),  # StudyDate
        (0x0008, 0x0021, "DA", DATE),  # SeriesDate
        (0x0008, 0x0022, "DA", DATE),  # AcquisitionDate
        (0x0008, 0x0023, "DA", DATE),  # ContentDate
        (0x0008, 0x0050, "SH", TOKEN),  # AccessionNumber
        (0x0008, 0x0080, "LO", TOKEN + " Hospital"),  # InstitutionName
        (0x0008, 0x0081, "ST", TOKEN + " Street 1, Town"),  # InstitutionAddress
        (0x0008, 0x0090, "PN", _name("Referrer")),  # ReferringPhysicianName
        (0x0008, 0x0092, "ST", TOKEN + " Referrer Road"),  # ReferringPhysicianAddress
        (0x0008, 0x0094, "SH", TOKEN),  # ReferringPhysicianTelephoneNumbers
        (0x0008, 0x1010, "SH", TOKEN),  # StationName
        (0x0008, 0x1030, "LO", TOKEN + " chest"),  # StudyDescription
        (0x0008, 0x103E, "LO", TOKEN + " PA"),  # SeriesDescription
        (0x0008, 0x1040, "LO", TOKEN),  # InstitutionalDepartmentName
        (0x0008, 0x1048, "PN", _name("Record")),  # PhysiciansOfRecord
        (0x0008, 0x1050, "PN", _name("Performer")),  # PerformingPhysicianName
        (0x0008, 0x1060, "PN", _name("Reader")),  # NameOfPhysiciansReadingStudy
        (0x0008, 0x1070, "PN", _name("Operator")),  # OperatorsName
        (0x0008, 0x1080, "LO", TOKEN),  # AdmittingDiagnosesDescription
        (0x0010, 0x0010, "PN", _name("Patient")),  # PatientName
        (0x0010, 0x0020, "LO", TOKEN),  # PatientID
        (0x0010, 0x0021, "LO", TOKEN),  # IssuerOfPatientID
        (0x0010, 0x0030, "DA", DATE),  # PatientBirthDate
        (0x0010, 0x1000, "LO", TOKEN),  # OtherPatientIDs (retired, still written)
        (0x0010, 0x1001, "PN", _name("Other")),  # OtherPatientNames
        (0x0010, 0x1005, "PN", _name("Birth")),  # PatientBirthName
        (0x0010, 0x1040, "LO", TOKEN + " Lane 2"),  # PatientAddress
        (0x0010, 0x1060, "PN", _name("Mother")),  # PatientMotherBirthName
        (0x0010, 0x1080, "LO", TOKEN),  # MilitaryRank
        (0x0010, 0x1090, "LO", TOKEN),  # MedicalRecordLocator
        (0x0010, 0x2154, "SH", TOKEN),  # PatientTelephoneNumbers
        (0x0010, 0x2180, "SH", TOKEN),  # Occupation
        (0x0010, 0x21B0, "LT", TOKEN + " history"),  # AdditionalPatientHistory
        (0x0010, 0x4000, "LT", TOKEN + " comments"),  # PatientComments
        (0x0018, 0x1000, "LO", TOKEN),  # DeviceSerialNumber
        (0x0018, 0x1030, "LO", TOKEN),  # ProtocolName
        (0x0020, 0x000D, "UI", UID + ".2"),  # StudyInstanceUID
        (0x0020, 0x000E, "UI", UID + ".3"),  # SeriesInstanceUID
        (0x0020, 0x0010, "SH", TOKEN),  # StudyID
        (0x0020, 0x0052, "UI", UID + ".4"),  # FrameOfReferenceUID
        (0x0020, 0x4000, "LT", TOKEN + " image"),  # ImageComments
        (0x0032, 0x1032, "PN", _name("Requester")),  # RequestingPhysician
        (0x0032, 0x1060, "LO", TOKEN),  # RequestedProcedureDescription
        (0x0040, 0x0254, "LO", TOKEN),  # PerformedProcedureStepDescription
    ]
    lo, hi = tag_range
    return [r for r in rows if lo <= (r[0] << 16 | r[1]) <= hi]


def _identifying(lo: int, hi: int, implicit: bool = False) -> bytes:
    return b"".join(element(g, e, vr, v, implicit=implicit) for g, e, vr, v in identifying((lo, hi)))


def _private(implicit: bool = False) -> bytes:
    """A private block (creator + a text and an unknown-VR element) holding the token."""
    return (element(0x0009, 0x0010, "LO", "PHI CREATOR", implicit=implicit)
            + element(0x0009, 0x1001, "LO", TOKEN, implicit=implicit)
            + element(0x0009, 0x1002, "UN", (TOKEN + " private").encode(), implicit=implicit))


def _other_ids_sequence(item_length: int | None = None) -> bytes:
    """OtherPatientIDsSequence (0010,1002): one item with PatientID and IssuerOfPatientID."""
    item = element(0x0010, 0x0020, "LO", TOKEN) + element(0x0010, 0x0021, "LO", TOKEN)
    item_tag = struct.pack("<HHI", 0xFFFE, 0xE000, len(item) if item_length is None else item_length)
    body = item_tag + item
    return element(0x0010, 0x1002, "SQ", body)


def _image_attrs(photometric: str = "MONOCHROME2", implicit: bool = False) -> bytes:
    """Group 0028: one 32 x 32 12-bit MONOCHROME2 frame with a stored window."""
    return (element(0x0028, 0x0002, "US", struct.pack("<H", 1), implicit=implicit)
            + element(0x0028, 0x0004, "CS", photometric, implicit=implicit)
            + element(0x0028, 0x0010, "US", struct.pack("<H", ROWS), implicit=implicit)
            + element(0x0028, 0x0011, "US", struct.pack("<H", COLS), implicit=implicit)
            + element(0x0028, 0x0100, "US", struct.pack("<H", 16), implicit=implicit)
            + element(0x0028, 0x0101, "US", struct.pack("<H", 12), implicit=implicit)
            + element(0x0028, 0x0102, "US", struct.pack("<H", 11), implicit=implicit)
            + element(0x0028, 0x0103, "US", struct.pack("<H", 0), implicit=implicit)
            + element(0x0028, 0x1050, "DS", "2048", implicit=implicit)
            + element(0x0028, 0x1051, "DS", "3000", implicit=implicit))


def _dataset(*, sop_class: str = DX_SOP_CLASS, modality: str = "DX", charset: bytes = b"",
             sop_class_length: int | None = None, implicit: bool = False, patient: bytes | None = None,
             sequence: bytes | None = None, pixel: bytes | None = None) -> bytes:
    """The planted dataset in tag order; each keyword replaces one part with a broken one
    (``pixel=b""``: no Pixel Data element)."""
    if pixel is None:
        pixel = element(0x7FE0, 0x0010, "OW", _pixels(), implicit=implicit)
    if sequence is None:
        sequence = b"" if implicit else _other_ids_sequence()
    return (charset
            + element(0x0008, 0x0016, "UI", sop_class, length=sop_class_length, implicit=implicit)
            + _identifying(0x0008_0017, 0x0008_005F, implicit)
            + element(0x0008, 0x0060, "CS", modality, implicit=implicit)
            + _identifying(0x0008_0061, 0x0009_0000, implicit)
            + _private(implicit)
            + (_identifying(0x0010_0000, 0x0010_1001, implicit) if patient is None else patient)
            + sequence
            + element(0x0010, 0x1010, "AS", "061Y", implicit=implicit)
            + _identifying(0x0010_1003, 0x0018_FFFF, implicit)
            + element(0x0018, 0x5101, "CS", "PA", implicit=implicit)
            + _identifying(0x0019_0000, 0x0027_FFFF, implicit)
            + _image_attrs(implicit=implicit)
            + _identifying(0x0029_0000, 0x0040_FFFF, implicit)
            + pixel)


def _file(ts: str = EXPLICIT_LE, sop_class: str = DX_SOP_CLASS, **parts) -> bytes:
    return _meta(ts, sop_class) + _dataset(sop_class=sop_class, **parts)


# ---------------------------------------------------------------------------------------------
# the files
# ---------------------------------------------------------------------------------------------

def valid() -> bytes:
    """Every identifying field planted in an otherwise correct DX file: reads fine."""
    return _file()


def sop_class_swallows_patient() -> bytes:
    """SOP Class UID's length covers the next elements (dates, accession, institution,
    referring physician, the private block...) up to Modality: the UI value quotes them all,
    and the image still reads."""
    probe = _dataset()
    start = probe.index(struct.pack("<HH", 0x0008, 0x0016)) + 8
    stop = probe.index(struct.pack("<HH", 0x0008, 0x0060))  # Modality stays readable
    return _file(sop_class_length=stop - start)


def sop_class_swallows_all() -> bytes:
    """SOP Class UID's length covers the patient module and the pixel data: no pixel data left."""
    probe = _dataset()
    start = probe.index(struct.pack("<HH", 0x0008, 0x0016)) + 8
    return _file(sop_class_length=len(probe) - start)


def bad_sop_class() -> bytes:
    """No pixel data and a SOP Class UID that is a name, not a UID."""
    return _file(sop_class=f"1.2.{TOKEN}", pixel=b"")


def wrong_vrs() -> bytes:
    """Identifiers written with the wrong VR: PatientName as UI, PatientID as DS, BirthDate as
    IS, OtherPatientIDs as AS (values that cannot be converted)."""
    patient = (element(0x0010, 0x0010, "UI", _name("Patient"))
               + element(0x0010, 0x0020, "DS", TOKEN)
               + element(0x0010, 0x0021, "LO", TOKEN)
               + element(0x0010, 0x0030, "IS", TOKEN)
               + element(0x0010, 0x1000, "AS", TOKEN)
               + element(0x0010, 0x1001, "PN", _name("Other")))
    return _file(patient=patient)


def invalid_values() -> bytes:
    """Right VRs, invalid values: a name as birth date (DA), as age (AS), as sex (CS), as a UID,
    a 70-character ID (LO allows 64), a name with 6 components: readers warn and go on."""
    patient = (element(0x0010, 0x0010, "PN", "^".join([TOKEN] * 6))
               + element(0x0010, 0x0020, "LO", TOKEN * 5)
               + element(0x0010, 0x0021, "LO", TOKEN)
               + element(0x0010, 0x0030, "DA", TOKEN)
               + element(0x0010, 0x0040, "CS", TOKEN)
               + element(0x0010, 0x1000, "LO", TOKEN)
               + element(0x0010, 0x1001, "PN", _name("Other")))
    data = _file(patient=patient)
    at = data.index(struct.pack("<HH", 0x0010, 0x1010))  # PatientAge -> the token
    old = element(0x0010, 0x1010, "AS", "061Y")
    data = data[:at] + element(0x0010, 0x1010, "AS", TOKEN) + data[at + len(old):]
    uid = element(0x0020, 0x000D, "UI", UID + ".2")
    return data.replace(uid, element(0x0020, 0x000D, "UI", f"{UID}.{TOKEN}"))


def unknown_vr() -> bytes:
    """PatientName with a VR that does not exist ("ZZ")."""
    data = valid()
    name = element(0x0010, 0x0010, "PN", _name("Patient"))
    return data.replace(name, b"\x10\x00\x10\x00ZZ" + name[6:])


def unknown_charset() -> bytes:
    """Specific Character Set naming no encoding (with the token in it) and a name in bytes no
    encoding decodes: readers warn with the value, and the image reads."""
    charset = element(0x0008, 0x0005, "CS", f"ISO_IR {TOKEN}")
    data = _file(charset=charset)
    name = element(0x0010, 0x0010, "PN", _name("Patient"))
    return data.replace(name, element(0x0010, 0x0010, "PN", _name("Patient").encode() + b"\xff\xfe\x81"))


def value_past_end() -> bytes:
    """The file ends inside PatientComments, whose length claims far more bytes than are left."""
    data = valid()
    at = data.index(struct.pack("<HH", 0x0010, 0x4000))
    comment = element(0x0010, 0x4000, "LT", TOKEN + " comments")
    return data[:at] + element(0x0010, 0x4000, "LT", TOKEN + " comments", length=60000)[:len(comment)]


def corrupt_sequence() -> bytes:
    """OtherPatientIDsSequence whose item claims more bytes than the sequence holds."""
    return _file(sequence=_other_ids_sequence(item_length=500))


def implicit_no_preamble() -> bytes:
    """Implicit VR little endian, no preamble or file meta: every value read by dictionary VR."""
    return _dataset(implicit=True)


def not_a_radiograph() -> bytes:
    """A CT slice's modality with every identifier: refused as not a radiograph."""
    return _file(modality="CT")


def corrupt_jpeg() -> bytes:
    """JPEG Lossless transfer syntax whose one fragment is not a codestream."""
    junk = (TOKEN.encode() * 8)[:96]
    fragments = (struct.pack("<HHI", 0xFFFE, 0xE000, 0)  # empty basic offset table
                 + struct.pack("<HHI", 0xFFFE, 0xE000, len(junk)) + junk
                 + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    pixel = struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\0\0" + struct.pack("<I", 0xFFFFFFFF) + fragments
    return _meta(JPEG_LOSSLESS, DX_SOP_CLASS) + _dataset(pixel=pixel)


#: file name -> builder. Names start with ``phi_`` (the shared bad-input corpus uses the prefix).
FILES: dict[str, Callable[[], bytes]] = {
    "phi_valid.dcm": valid,
    "phi_sop_class_swallows_patient.dcm": sop_class_swallows_patient,
    "phi_sop_class_swallows_all.dcm": sop_class_swallows_all,
    "phi_bad_sop_class.dcm": bad_sop_class,
    "phi_wrong_vrs.dcm": wrong_vrs,
    "phi_invalid_values.dcm": invalid_values,
    "phi_unknown_vr.dcm": unknown_vr,
    "phi_unknown_charset.dcm": unknown_charset,
    "phi_value_past_end.dcm": value_past_end,
    "phi_corrupt_sequence.dcm": corrupt_sequence,
    "phi_implicit_no_preamble.dcm": implicit_no_preamble,
    "phi_not_a_radiograph.dcm": not_a_radiograph,
    "phi_corrupt_jpeg.dcm": corrupt_jpeg,
}


def write_all(folder: Path, *, file_token: bool = False) -> list[Path]:
    """Write every file into ``folder``; ``file_token`` puts ``FILE_TOKEN`` into each name too."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in FILES.items():
        path = folder / (name.replace("phi_", f"phi_{FILE_TOKEN}_") if file_token else name)
        path.write_bytes(build())
        out.append(path)
    return out


def found(text: str | bytes) -> list[str]:
    """The needles ``text`` contains (case-insensitive); empty means clean."""
    hay = text.decode("latin-1") if isinstance(text, bytes) else text
    hay = hay.lower()
    return [n for n in needles() if n.lower() in hay]
