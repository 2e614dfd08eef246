"""What other libraries may log through cxrkit: nothing that can quote a file's contents.

Why: the libraries that parse files put header values into their log messages (pydicom:
"Invalid value for VR UI: '...'"), and a corrupt length makes such a value hold the next
elements, the patient's name, ID and birth date included. Codec plugins log every failed
attempt with a traceback even when the next decoder reads the file. cxrkit already turns
every reader failure into one typed error whose message never carries a header value, so
those records add nothing a user needs, and they must never reach a terminal, a server
log or a log collector.

The policy (:class:`PatientDataFilter`), for every record it sees:

* the file and upload parsers (``READERS``: pydicom, Pillow, the pylibjpeg/openjpeg/rle
  plugins, imagecodecs, python-multipart): dropped; when cxrkit's own logger is at DEBUG
  (``CXRKIT_DEBUG=1``) they are kept as one fixed sentence, with the library's logger
  name, level and source line, so a developer still sees *that* and *where* one spoke;
* uvicorn's access log: dropped (its request lines carry paths and query strings;
  ``cxrkit.serve.access`` logs one line per request with the route template only);
* every other record keeps its message, but an attached exception is shown as its
  traceback with each exception's message withheld (types, files and lines stay), except
  cxrkit's typed errors, whose messages are worded never to carry a header value.

It is installed two ways that no later import undoes. :func:`guard` stops the readers'
loggers from propagating and gives each one relay handler that applies the policy and
hands what is left to the root logger's handlers: a library's import only sets its
logger's level and adds handlers (pydicom's config does both, also on
``importlib.reload``), and a child logger created later (``PIL.TiffImagePlugin`` when
the plugin loads) still propagates into the relay. :func:`attach` puts the same filter on
a handler cxrkit owns (the ``cxr`` command's stderr), which sees every record that
reaches it, whoever configured the loggers.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path

__all__ = ["DROPPED", "READERS", "SERVERS", "WITHHELD", "PatientDataFilter", "attach", "guard"]

#: Loggers of libraries that parse file or upload contents (each name covers its children).
READERS: tuple[str, ...] = ("pydicom", "PIL", "pylibjpeg", "openjpeg", "libjpeg", "rle", "imagecodecs",
                            "python_multipart", "multipart")
#: The web server's loggers: guarded by the server (their records may carry exceptions).
SERVERS: tuple[str, ...] = ("uvicorn",)
#: Loggers whose every record is dropped.
DROPPED: tuple[str, ...] = ("uvicorn.access",)
#: What is left of a reader's record at DEBUG.
WITHHELD = "message withheld: this library's messages can quote file contents or requests (patient data)"
_MESSAGE_WITHHELD = "(message withheld: it can quote file contents)"
_GUARD_LOCK = threading.Lock()


def _in(name: str, families: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in families)


def _verbose() -> bool:
    return logging.getLogger("cxrkit").isEnabledFor(logging.DEBUG)


def _trace(exc: BaseException) -> str:
    """The exception's traceback (chained ones too) with every exception message withheld."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n"
                         if chain[len(chain) - 1 - index].__cause__ is not None else
                         "\nDuring handling of the above exception, another exception occurred:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        kind = type(item)
        module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
        # cxrkit's own errors are worded never to carry a header value; any other can
        message = str(item) if kind.__module__.startswith("cxrkit.") else _MESSAGE_WITHHELD
        parts.append(f"{module}{kind.__qualname__}: {message}\n")
    return "".join(parts).rstrip("\n")


def _strip_exception(record: logging.LogRecord) -> None:
    if getattr(record, "cxrkit_trace", False):  # already done (by a relay, then a handler)
        return
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = _trace(record.exc_info[1])
    elif record.exc_text:
        record.exc_text = f"(traceback withheld) {_MESSAGE_WITHHELD}"
    record.exc_info = None
    record.cxrkit_trace = True


class PatientDataFilter(logging.Filter):
    """The policy of this module as a :class:`logging.Filter`; it rewrites records in place
    (so every later handler sees the reduced record) and returns False for dropped ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.exc_text:
            _strip_exception(record)
        dropped = _in(record.name, DROPPED)
        if dropped or _in(record.name, READERS):
            # reduced even when dropped: a handler someone else added to the same logger
            # (``pydicom.config.debug()``, pytest's capture) is called after this one with it
            if not getattr(record, "cxrkit_withheld", False):
                record.msg, record.args = f"{WITHHELD} ({Path(record.pathname).name}:{record.lineno})", ()
                record.cxrkit_withheld = True
                record.stack_info = None
            return not dropped and _verbose()
        return True


class _Relay(logging.Handler):
    """The one handler of a guarded library logger: the policy, then the root logger's handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(PatientDataFilter())

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        for handler in root.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def guard(families: tuple[str, ...] = READERS) -> None:
    """Route the named libraries' loggers (and all their children) through the policy.

    Idempotent and cheap, so a reader calls it right after importing its library and on
    every read: whatever reset the logger since (a reload, ``propagate = True``) is undone.
    """
    for name in families:
        logger = logging.getLogger(name)
        if logger.propagate or not any(isinstance(h, _Relay) for h in logger.handlers):
            with _GUARD_LOCK:  # readers run in threads: one relay per logger, never two
                if not any(isinstance(h, _Relay) for h in logger.handlers):
                    logger.handlers.insert(0, _Relay())  # first: a handler added later sees the reduced record
                logger.propagate = False


def attach(handler: logging.Handler) -> logging.Handler:
    """Put the policy on a handler cxrkit owns (once); returns the handler."""
    if not any(isinstance(f, PatientDataFilter) for f in handler.filters):
        handler.addFilter(PatientDataFilter())
    return handler
