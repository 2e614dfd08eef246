"""Expand the paths a user gives into the image files to predict on.

A folder is walked recursively in sorted order (so reruns and resumes see the same
sequence); inside folders only files that look like images are taken — by suffix, or
by content for DICOM, which often has no extension. A file named explicitly is always
taken, even if it is not an image: the user asked for it, so it gets a row (an error
row if it cannot be read), never silence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import MissingFile
from ..io import is_image_file

__all__ = ["iter_image_files", "scan_inputs"]


def _walk(folder: Path) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif entry.is_file() and is_image_file(path):
            yield path


def iter_image_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Image files under ``paths`` (files as given, folders recursively), each once."""
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        found = _walk(path) if path.is_dir() else iter([path])
        for file in found:
            key = str(file)
            if key not in seen:
                seen.add(key)
                yield file


def scan_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files under ``paths``; a path that does not exist is an error, not an empty run."""
    paths = list(paths)
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise MissingFile(f"no such file or folder: {', '.join(missing)}")
    files = list(iter_image_files(paths))
    if not files:  # an empty folder is almost always a wrong path; a run that does nothing would hide it
        raise MissingFile(f"no image files under {', '.join(str(p) for p in paths)} (image suffixes, or DICOM by content)")
    return files
