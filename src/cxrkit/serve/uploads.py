"""Read a multipart upload into memory, enforcing the size limits while it streams in.

Starlette's own form parser spools every file over 1 MB to a temporary file on disk,
and radiographs are patient data: so the server parses the body itself, with
python-multipart's streaming parser, into ``bytes`` that never leave memory. Limits are
checked as the bytes arrive (and against ``Content-Length`` before the first one), so
a 5 GB upload is refused after at most one limit's worth of reading, not buffered first.

Bodies are read against the clock too: a pause longer than ``body_idle_seconds`` or a
body slower than ``body_seconds`` in all ends the request with 408 (a chunked body that
never ends is no longer kept forever). A request refused before its body was read is
*drained* (:func:`drain`, up to two requests' worth) before the answer goes out: a client
still sending would otherwise see its connection reset instead of the 413 or 503.
"""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:  # python-multipart declares its callback table for type checkers only
    from python_multipart.multipart import MultipartCallbacks
from starlette.requests import Request

from .admission import Ticket
from .config import MB
from .errors import BadRequest, ClientGone, PayloadTooLarge, RequestTimeout, ServeError

__all__ = ["Upload", "Form", "Limits", "read_form", "read_json", "drain", "declared_length"]

_MAX_FIELDS = 32
_MAX_FIELD_BYTES = 4096
_MAX_BOUNDARY = 70  # RFC 2046, section 5.1.1


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the client gave it (its base name only) and its bytes.

    The name is echoed back in the answer's ``file`` field, as ``cxr predict`` echoes paths,
    and is never logged: hospital exports often name files after the patient.
    """

    name: str
    data: bytes | bytearray = field(repr=False)

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
    body_idle_seconds: float = 15.0
    body_seconds: float = 300.0
    max_json_bytes: int = 16 * MB

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


def declared_length(request: Request) -> int | None:
    """The body's ``Content-Length``, or None (chunked, or not a number)."""
    declared = request.headers.get("content-length", "").strip()
    return int(declared) if declared.isdigit() else None


def _check_declared(request: Request, limit: int, too_large: PayloadTooLarge) -> None:
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large


async def _chunks(request: Request, limits: Limits) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, within the pause and total time limits (else 408)."""
    receive = request.receive
    deadline = time.monotonic() + limits.body_seconds
    while True:
        wait = min(limits.body_idle_seconds, deadline - time.monotonic())
        try:
            if wait <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(receive(), wait)
        except TimeoutError:
            request.state.body_timed_out = True
            raise RequestTimeout(f"the request body arrived too slowly (the server waits at most "
                                 f"{limits.body_idle_seconds:g} s between bytes and {limits.body_seconds:g} s "
                                 "in all); send it again") from None
        if message["type"] == "http.disconnect":
            request.state.client_gone = True
            raise ClientGone("the client closed the connection while sending its request")
        body = message.get("body", b"")
        if not message.get("more_body", False):
            request.state.body_read = True
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def drain(request: Request, limits: Limits) -> bool:
    """Read and drop what is left of a refused request's body, so its client reads the answer.

    At most twice ``max_request_bytes``, within the body time limits. True when the body
    was read to its end (the connection may be kept); False when it was too large, too
    slow or cut off (answer with ``Connection: close``).
    """
    state = request.state
    if getattr(state, "body_read", False):
        return True
    if getattr(state, "body_timed_out", False) or getattr(state, "client_gone", False):
        return False
    declared = declared_length(request)
    bound = 2 * limits.max_request_bytes
    if declared is not None and declared > bound:
        return False
    dropped = 0
    try:
        async for chunk in _chunks(request, limits):
            dropped += len(chunk)
            if dropped > bound:
                return False
    except (RequestTimeout, ClientGone):
        return False
    return True


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

    def callbacks(self) -> MultipartCallbacks:
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
            # the buffer itself, not a copy: a 188 MB file would otherwise briefly cost twice that
            self.files.append(Upload(display_name(self._filename, len(self.files) + 1), self._data))
        elif self._field is not None:
            self.fields[self._field] = self._data.decode("utf-8", "replace")
        self._data = bytearray()

    def _end(self) -> None:
        self.finished = True


async def read_form(request: Request, limits: Limits, ticket: Ticket | None = None) -> Form:
    """The request's multipart body as in-memory :class:`Form`; 413 past a limit, 422 if malformed,
    408 when too slow; ``ticket`` reserves the bytes in the server's in-flight budget as they arrive."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise BadRequest("send the files as multipart/form-data (e.g. curl -F files=@film.dcm ...)")
    boundary = options[b"boundary"]
    if not 1 <= len(boundary) <= _MAX_BOUNDARY:
        raise BadRequest(f"the multipart boundary must be 1 to {_MAX_BOUNDARY} characters long (RFC 2046), "
                         f"got {len(boundary)}")
    _check_declared(request, limits.max_request_bytes, limits.request_too_large())
    collector = _Collector(limits)
    total = 0
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        async for chunk in _chunks(request, limits):
            total += len(chunk)
            if total > limits.max_request_bytes:
                raise limits.request_too_large()
            if ticket is not None:
                ticket.cover(total)
            parser.write(chunk)
        parser.finalize()
    except ServeError:
        raise
    except (FormParserError, ValueError) as exc:
        raise BadRequest(f"the multipart body is malformed: {exc}") from None
    if not collector.finished:
        raise BadRequest("the multipart body ended before its closing boundary (upload cut off?)")
    return Form(collector.files, collector.fields)


def _json_too_large(limits: Limits) -> PayloadTooLarge:
    return PayloadTooLarge(f"the JSON body is larger than the limit of {_mb(limits.max_json_bytes)} "
                           "(the server's `max_json_bytes`); send fewer rows at a time")


async def read_json(request: Request, limits: Limits, ticket: Ticket | None = None) -> Any:
    """The request's JSON body within ``max_json_bytes`` and the body time limits, parsed in a
    thread (a large body must not stall the event loop); 422 when it is not JSON or nested too deep."""
    _check_declared(request, limits.max_json_bytes, _json_too_large(limits))
    body = bytearray()
    async for chunk in _chunks(request, limits):
        body += chunk
        if len(body) > limits.max_json_bytes:
            raise _json_too_large(limits)
        if ticket is not None:
            ticket.cover(len(body))
    return await asyncio.to_thread(_parse_json, bytes(body))


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply; send flat rows as /v1/predict returns them") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
