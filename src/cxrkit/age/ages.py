"""Known (chronological) ages for the films of a run, from a CSV the user gives.

A row of ``cxr age`` gets its chronological age from the ``--metadata`` CSV when the file
is listed there, else from the DICOM header (Patient's Age, 0010,1010), else none. The
CSV's id column may hold full paths, paths as given on the command line, or bare file
names; a bare name that occurs twice in the CSV is refused rather than guessed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InvalidInput
from ..io.dicom import parse_age

__all__ = ["AgeTable"]


def _years(text: str) -> float | None:
    """``63``, ``63.5`` or a DICOM age string (``061Y``, ``006M``) -> years; None if not an age."""
    try:
        value = float(text)
    except ValueError:
        return parse_age(text)
    return value if 0.0 <= value < 150.0 else None


class AgeTable:
    """Chronological age by file, read from a CSV (``id_column``, ``age_column``)."""

    def __init__(self, path: str | Path, id_column: str = "file", age_column: str = "age"):
        path = Path(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read the metadata CSV {path}: {exc}") from None
        missing = [c for c in (id_column, age_column) if c not in frame.columns]
        if missing:
            raise InvalidInput(f"{path}: no column {missing} (columns: {list(frame.columns)}); "
                              "name them with `id_column` / `age_column`")
        self._by_path: dict[str, float] = {}
        by_name: dict[str, float | None] = {}
        for line, (key, raw) in enumerate(zip(frame[id_column], frame[age_column], strict=True), start=2):
            if not raw.strip():
                continue
            age = _years(raw.strip())
            if age is None:
                raise InvalidInput(f"{path}:{line}: age {raw!r} is not a number of years (or a DICOM age like 061Y)")
            self._by_path[str(Path(key))] = age
            name = Path(key).name
            by_name[name] = None if name in by_name else age  # ambiguous bare names resolve to nothing
        self._by_name = by_name

    def __len__(self) -> int:
        return len(self._by_path)

    def get(self, file: str | Path) -> float | None:
        """The age recorded for ``file`` (exact path first, then its file name if unambiguous)."""
        file = Path(file)
        for key in (str(file), str(file.resolve())):
            if key in self._by_path:
                return self._by_path[key]
        return self._by_name.get(file.name)
