"""Give in-memory uploads file paths, so the same readers as ``cxr predict`` decode them.

``cxrkit.io.read_image`` and :func:`cxrkit.predict.predict_files` take paths, and a
second, bytes-based reading path would be a second place for the two to drift apart.
On Linux each upload becomes an anonymous in-memory file (``memfd_create``): its path
``/proc/self/fd/N`` opens like any file, the bytes live only in RAM and vanish with the
descriptor, even if the process is killed. ``read_image`` trusts content, not names,
except that its "not an image" message quotes the file's extension; so each upload is
reached through a symlink named ``<n><extension>`` in a private (0700) folder: the link
holds only the text ``/proc/self/fd/N``, never image bytes nor the uploaded name.

Where ``memfd_create`` is missing (not Linux), the bytes go to files in that private
folder instead, deleted when the request ends (what issue #10 allows as a fallback).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from .uploads import Upload

__all__ = ["MemoryFiles"]

_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}$")


class MemoryFiles:
    """Turns uploads into readable paths for the duration of a ``with`` block."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder: Path | None = folder
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self.in_memory = hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir()

    def folder(self) -> Path:
        """The private folder (created on first use); decoder processes make their links in it too."""
        return self._private_folder()

    def _private_folder(self) -> Path:
        with self._lock:
            if self._folder is None or not self._folder.is_dir():
                self._folder = Path(tempfile.mkdtemp(prefix="cxrkit-serve-"))  # mode 0700
            return self._folder

    @contextlib.contextmanager
    def paths(self, uploads: Sequence[Upload]) -> Iterator[list[Path]]:
        """Yield one path per upload; on exit every descriptor, link and fallback file is gone."""
        folder = self._private_folder()
        fds: list[int] = []
        made: list[Path] = []
        try:
            for upload in uploads:
                match = _SUFFIX.search(upload.name)
                path = folder / f"{os.getpid()}-{next(self._counter)}{match.group(0) if match else ''}"
                if self.in_memory:
                    fd = os.memfd_create("cxrkit-upload", os.MFD_CLOEXEC)
                    fds.append(fd)
                    _write_all(fd, upload.data)
                    os.symlink(f"/proc/self/fd/{fd}", path)
                else:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    try:
                        _write_all(fd, upload.data)
                    finally:
                        os.close(fd)
                made.append(path)
            yield made
        finally:
            for path in made:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        """Remove the private folder (at server shutdown)."""
        with self._lock:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
