"""Result rows as the API returns them: JSON, JSON Lines or CSV, all written by ``cxr predict``'s writer.

Formatting goes through :class:`cxrkit.predict.RowWriter` into a string, so a CSV
from the server is byte for byte the CSV ``cxr predict`` writes for the same files (six
significant digits, empty cell = not predicted) and a JSON row is the parsed JSON Lines row.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import Any

from ..predict import RowWriter
from ..predict.writer import BASE_COLUMNS
from .errors import BadRequest

__all__ = ["FORMATS", "render_rows", "rows_to_json", "columns_of"]

FORMATS = ("json", "jsonl", "csv")
MEDIA_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """``rows`` as the text ``cxr predict --format csv|jsonl`` writes for them."""
    out = io.StringIO()
    writer = RowWriter(out, columns, fmt)
    try:
        writer.write(rows)
    except ValueError as exc:  # csv.DictWriter refuses keys outside the columns
        raise BadRequest(f"a row does not fit the columns {list(columns)}: {exc}") from None
    return out.getvalue()


def rows_to_json(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows as parsed JSON Lines records: NaN becomes null exactly as in ``--format jsonl``."""
    return [json.loads(line) for line in render_rows(rows, columns, "jsonl").splitlines()]


def columns_of(rows: Any) -> list[str]:
    """Columns of rows sent back by a client (``POST /v1/export/csv``), checked to be flat records.

    The columns are the keys after ``file, status, error``, in first-seen order, so rows
    returned by ``/v1/predict`` come back in ``cxr predict``'s column order.
    """
    if not isinstance(rows, list) or not rows:
        raise BadRequest('send {"rows": [...]} with the rows /v1/predict returned')
    columns: dict[str, None] = {}
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("file"), str) or row.get("status") not in ("ok", "error"):
            raise BadRequest(f"row {number} is not a prediction row (it needs file, status and error)")
        for key, value in row.items():
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise BadRequest(f"row {number}: {key!r} holds a {type(value).__name__}; rows are flat records")
            if isinstance(value, float) and not math.isfinite(value):
                raise BadRequest(f"row {number}: {key!r} is not a finite number")
            if key not in BASE_COLUMNS:
                columns.setdefault(key, None)
    return list(columns)
