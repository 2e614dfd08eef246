"""Typed errors for cxrkit.

Every error is a ``CxrkitError`` *and* the closest built-in exception, so callers
can catch either. Messages name the file (or model) and say how to fix the problem,
because the person reading them is usually a researcher halfway through a batch job.
"""

from __future__ import annotations

__all__ = [
    "CxrkitError",
    "InvalidArgument",
    "MissingFile",
    "Unavailable",
    "RunFailed",
    "InvalidInput",
    "OutputExists",
    "UnreadableImage",
    "UnsupportedImage",
    "UnsupportedDicom",
    "UnusableFilm",
    "MissingDependency",
    "ModelNotFound",
    "WeightsError",
    "ChecksumMismatch",
    "DownloadError",
    "OutputError",
    "ExportMismatch",
]


class CxrkitError(Exception):
    """Base class of every error cxrkit raises on purpose."""


class InvalidArgument(CxrkitError, ValueError):
    """A value given to cxrkit is out of range, malformed or inconsistent with another one.

    The message names the parameter in backticks (`age_bands`), which the CLI rewrites as
    the flag the user typed, so library code checks its inputs once and the CLI does not."""


class InvalidInput(CxrkitError, ValueError):
    """An input file exists but holds something cxrkit cannot use (wrong columns, a value that is
    not a number, rows of another run); the message names the file and what was expected."""


class MissingFile(CxrkitError, FileNotFoundError):
    """A file or folder cxrkit was asked to read does not exist (or holds nothing to read)."""


class OutputExists(CxrkitError, FileExistsError):
    """The output file already holds rows and the run was asked neither to resume nor to replace it."""

    def __init__(self, path: object, message: str | None = None):
        self.path = path
        super().__init__(message or f"{path} already exists; resume it to continue it, or overwrite it to replace it")


class Unavailable(CxrkitError, RuntimeError):
    """What was asked for is not available: a backend, device or feature this machine (or this
    model) lacks."""


class RunFailed(CxrkitError, RuntimeError):
    """A run stopped short for a reason outside its inputs (a cluster unreachable, rows lost by a
    worker, an encoder failing); finished rows are kept."""


class UnreadableImage(CxrkitError, ValueError):
    """The file is not an image we can decode: empty, truncated, corrupt or not an image."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedImage(UnreadableImage):
    """The file decodes, but holds something cxrkit will not silently turn into a radiograph."""


class UnusableFilm(CxrkitError, ValueError):
    """The pixels decoded, but the clean-up cannot make a film of them (blank, not greyscale)."""


class UnsupportedDicom(UnsupportedImage):
    """A valid DICOM that is not a single-frame greyscale radiograph (multi-frame, colour, CT...)."""


class MissingDependency(CxrkitError, ImportError):
    """An optional library is needed for this input; the message gives the pip command."""

    def __init__(self, package: str, purpose: str):
        self.package = package
        super().__init__(f"{purpose} needs the '{package}' package: pip install {package}")


class UnknownLabel(CxrkitError, KeyError):
    """A label name outside the vocabulary, a label column a table lacks, or a label a model was not trained to predict."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "unknown label"


class ModelNotFound(CxrkitError, KeyError):
    """No architecture, registered weights or weight file matches the given name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "model not found"


class WeightsError(CxrkitError, ValueError):
    """A weight file or model card is malformed or does not match its architecture."""


class ChecksumMismatch(WeightsError):
    """A file's sha256 differs from the one recorded for it: it is corrupt or not the file expected."""


class DownloadError(CxrkitError, OSError):
    """A download failed (offline, timeout, HTTP error); the message says where to put a manual copy."""


class OutputError(CxrkitError, OSError):
    """An output could not be written (disk full, read-only, file-size limit); rows already
    written are kept, so the run can continue with ``--resume`` once the cause is fixed."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write {self.path}: {reason}")


class ExportMismatch(CxrkitError, RuntimeError):
    """An exported graph's outputs differ from PyTorch's by more than the tolerance; nothing was written.

    Here rather than beside the exporter because the backend chooser catches it too, to fall back
    to PyTorch: the numbers are never traded for speed."""
