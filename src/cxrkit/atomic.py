"""Write a file so that readers only ever see the old version or the complete new one.

Weight files, model cards, training shards and their manifests are read back as a whole:
a half-written one (a ``kill -9``, a full disk, a power cut mid-write) would be taken for
a finished file and fail much later, or silently load wrong data. Each such file is
written under a hidden temporary name in the same folder (a rename across file systems
would be a copy), flushed to disk with ``fsync``, renamed over the target with
``os.replace`` (atomic on POSIX and Windows), and the folder is synced so the rename
itself survives a crash. A failed write removes its temporary file and leaves the
target untouched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "remove_temporaries", "replace_durably", "write_bytes_atomic", "write_text_atomic",
           "TEMP_SUFFIX"]

#: every temporary file ends in this, after a leading dot: ``.NAME.<random>.part``
TEMP_SUFFIX = ".part"


def _fsync_path(path: Path, directory: bool = False) -> None:
    if directory and os.name != "posix":  # Windows cannot open a folder for fsync; its rename is durable
        return
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, move it into place.

    For writers that want a file name rather than a handle (``safetensors.save_file``,
    ``tarfile.open``). The temporary file already exists (created exclusively, with the
    usual permissions under the umask), so two writers never share one.

    ``durable=False`` renames without the two fsyncs: still never a torn file under the
    final name, but a power cut may lose the newest ones. For per-film outputs of batch
    jobs (converted PNGs, overlays): their row is the record, a rerun redoes a missing
    file, and an fsync per film would cost more than the conversion on a slow disk.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temp
        if durable:
            replace_durably(temp, target)
        else:
            os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def replace_durably(temp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Sync a finished ``temp`` to disk, rename it over ``target``, then sync the folder.

    For writers that name their own temporary file (a resumable download's ``.part``, a
    checkpoint written by another library); :func:`atomic_path` uses it too.
    """
    _fsync_path(Path(temp))
    os.replace(temp, target)
    _fsync_path(Path(target).parent, directory=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path`` as a :class:`~pathlib.Path`."""
    with atomic_path(path, durable) as temp:
        temp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path`` as a :class:`~pathlib.Path`."""
    return write_bytes_atomic(path, text.encode(encoding))


def remove_temporaries(folder: str | os.PathLike[str], names: str = "*", recursive: bool = False) -> None:
    """Delete the temporary files a killed writer left in ``folder``: those :func:`atomic_path`
    made for targets whose names match the glob ``names`` (in sub-folders too when ``recursive``)."""
    pattern = f".{names}.*{TEMP_SUFFIX}"
    found = Path(folder).rglob(pattern) if recursive else Path(folder).glob(pattern)
    for temp in found:
        temp.unlink(missing_ok=True)
