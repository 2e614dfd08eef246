"""Read a multipart upload into memory, enforcing the size limits while it streams in.

Starlette's own form parser spools every file over 1 MB to a temporary file on disk,
and radiographs are patient data: so the server parses the body itself, with
python-multipart's streaming parser, into ``bytes`` that never leave memory. Limits are
checked as the bytes arrive (and against ``Content-Length`` before the first one), so
a 5 GB upload is refused after at most one limit's worth of reading, not buffered first.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .config import MB
from .errors import BadRequest, PayloadTooLarge

__all__ = ["Upload", "Form", "Limits", "read_form", "read_json"]

_MAX_FIELDS = 32
_MAX_FIELD_BYTES = 4096


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the client gave it (its base name only) and its bytes.

    The name is echoed back in the answer's ``file`` field, as ``cxr predict`` echoes paths,
    and is never logged: hospital exports often name files after the patient.
    """

    name: str
    data: bytes = field(repr=False)

    def __repr__(self) -> str:  # keep names and bytes out of tracebacks and debug logs
        return f"Upload({len(self.data)} bytes)"


@dataclass
class Form:
    """The files and plain fields of one multipart request, in the order sent."""

    files: list[Upload]
    fields: dict[str, str]


@dataclass(frozen=True)
class Limits:
    """Per-file and per-request byte limits and the most files one request may carry."""

    max_file_bytes: int
    max_request_bytes: int
    max_files: int

    def file_too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"an uploaded file is larger than the limit of {_mb(self.max_file_bytes)} per file "
                               "(the server's `max_file_bytes`); send a smaller file or raise the limit")

    def request_too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request is larger than the limit of {_mb(self.max_request_bytes)} per request "
                               "(the server's `max_request_bytes`); send fewer files at a time")


def _mb(size: int) -> str:
    return f"{size / MB:g} MB"


def display_name(raw: str, index: int) -> str:
    """The base name of a client-side path, without control characters; ``file-N`` when empty."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:255] or f"file-{index}"


def _declared_length(request: Request, limits: Limits) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise limits.request_too_large()


class _Collector:
    """python-multipart callbacks that gather parts into memory and enforce the limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.files: list[Upload] = []
        self.fields: dict[str, str] = {}
        self.finished = False
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._data = bytearray()
        self._field: str | None = None
        self._filename: str | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._add_header_name(data[start:end]),
            "on_header_value": lambda data, start, end: self._add_header_value(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self._part_data(data[start:end]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers, self._data, self._field, self._filename = {}, bytearray(), None, None

    def _add_header_name(self, chunk: bytes) -> None:
        self._header_name += chunk

    def _add_header_value(self, chunk: bytes) -> None:
        self._header_value += chunk

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise BadRequest("a multipart part has no name in its Content-Disposition header")
        self._field = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.files) >= self.limits.max_files:
                raise PayloadTooLarge(f"more than {self.limits.max_files} files in one request; send them in smaller groups")
            self._filename = options[b"filename"].decode("utf-8", "replace")
        elif len(self.fields) >= _MAX_FIELDS:
            raise BadRequest(f"more than {_MAX_FIELDS} form fields in one request")

    def _part_data(self, chunk: bytes) -> None:
        self._data += chunk
        if self._filename is not None and len(self._data) > self.limits.max_file_bytes:
            raise self.limits.file_too_large()
        if self._filename is None and len(self._data) > _MAX_FIELD_BYTES:
            raise BadRequest(f"form field {self._field!r} is longer than {_MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._filename is not None:
            self.files.append(Upload(display_name(self._filename, len(self.files) + 1), bytes(self._data)))
        elif self._field is not None:
            self.fields[self._field] = self._data.decode("utf-8", "replace")
        self._data = bytearray()

    def _end(self) -> None:
        self.finished = True


async def read_form(request: Request, limits: Limits) -> Form:
    """The request's multipart body as in-memory :class:`Form`; 413 past a limit, 422 if malformed."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise BadRequest("send the files as multipart/form-data (e.g. curl -F files=@film.dcm ...)")
    _declared_length(request, limits)
    collector = _Collector(limits)
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.max_request_bytes:
                raise limits.request_too_large()
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise BadRequest(f"the multipart body is malformed: {exc}") from None
    if not collector.finished:
        raise BadRequest("the multipart body ended before its closing boundary (upload cut off?)")
    return Form(collector.files, collector.fields)


async def read_json(request: Request, limits: Limits) -> Any:
    """The request's JSON body, read with the per-request size limit; 422 when it is not JSON."""
    _declared_length(request, limits)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_request_bytes:
            raise limits.request_too_large()
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
