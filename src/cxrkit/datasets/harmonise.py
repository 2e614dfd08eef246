"""Turn a dataset's own labels into the standard vocabulary: one function, explicit tables.

Every adapter declares a table ``original label -> standard label(s)``; originals are
matched *exactly* (after the adapter's own normalisation, e.g. stripping whitespace),
never as substrings, so "pseudonodule" cannot become a Nodule. Label values follow the
CheXpert convention: 1 positive, 0 negative, -1 uncertain, NaN unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..errors import InvalidArgument, UnknownLabel
from ..labels import PATHOLOGIES

__all__ = ["UNCERTAIN_POLICIES", "harmonise", "label_order", "label_table", "token_columns"]

UNCERTAIN_POLICIES = ("nan", "ones", "zeros", "keep")

Table = Mapping[str, "str | tuple[str, ...]"]


def _targets(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def label_order(table: Table) -> tuple[str, ...]:
    """The label list a table produces: standard labels in standard order, then extras in table order."""
    targets: list[str] = []
    for value in table.values():
        for t in _targets(value):
            if t not in targets:
                targets.append(t)
    standard = [p for p in PATHOLOGIES if p in targets]
    return tuple(standard + [t for t in targets if t not in PATHOLOGIES])


def token_columns(tokens: Sequence[Iterable[str] | None], vocabulary: Iterable[str]) -> dict[str, np.ndarray]:
    """One 0/1 column per original label from per-row token sets (NaN where a row is unlabelled).

    ``tokens[i]`` is the collection of original labels of row ``i``, or ``None`` when the
    row carries no label information at all; a token absent from a labelled row is a 0.
    """
    vocabulary = list(vocabulary)
    where = {name: j for j, name in enumerate(vocabulary)}
    out = np.zeros((len(tokens), len(vocabulary)), dtype=np.float32)
    for i, row in enumerate(tokens):
        if row is None:
            out[i] = np.nan
            continue
        for tok in row:
            j = where.get(tok)
            if j is not None:
                out[i, j] = 1.0
    return {name: out[:, j] for name, j in where.items()}


def harmonise(
    columns: Mapping[str, np.ndarray],
    table: Table,
    labels: Sequence[str] | None = None,
    *,
    uncertain: str = "nan",
    no_finding: np.ndarray | None = None,
    no_finding_exempt: Iterable[str] = (),
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map original label columns to a ``(rows, len(labels))`` float32 matrix of standard labels.

    ``columns`` holds one array per original label (1/0/-1/NaN). Several originals mapping
    to one standard label combine as: any positive -> 1, else any uncertain -> -1, else any
    negative -> 0, else unknown. ``no_finding`` (a boolean row mask, e.g. CheXpert's "No
    Finding" = 1) turns *unknown* into 0 for every label except ``no_finding_exempt`` (a
    normal study says nothing about support devices); it never overrides a stated value.
    ``uncertain`` then decides what -1 becomes: ``"nan"`` (unknown, the default: the
    labeler was unsure), ``"ones"``, ``"zeros"`` or ``"keep"`` (-1 stays).
    Standard labels in ``labels`` that the table does not produce are NaN throughout.
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise InvalidArgument(f"uncertain must be one of {UNCERTAIN_POLICIES}, got {uncertain!r}")
    missing = [orig for orig in table if orig not in columns]
    if missing:
        raise UnknownLabel(f"label columns missing for table entries: {missing}")
    labels = tuple(labels) if labels is not None else label_order(table)
    n = len(next(iter(columns.values()))) if columns else 0
    sources: dict[str, list[str]] = {}
    for orig, value in table.items():
        for target in _targets(value):
            sources.setdefault(target, []).append(orig)
    out = np.full((n, len(labels)), np.nan, dtype=np.float32)
    exempt = set(no_finding_exempt)
    for j, label in enumerate(labels):
        origs = sources.get(label)
        if not origs:
            continue
        stack = np.stack([np.asarray(columns[o], dtype=np.float32) for o in origs])
        col = np.full(n, np.nan, dtype=np.float32)
        col[(stack == 0).any(axis=0)] = 0.0
        col[(stack == -1).any(axis=0)] = -1.0
        col[(stack == 1).any(axis=0)] = 1.0
        if no_finding is not None and label not in exempt:
            col[np.asarray(no_finding, dtype=bool) & np.isnan(col)] = 0.0
        out[:, j] = col
    if uncertain != "keep":
        out[out == -1] = {"nan": np.nan, "ones": 1.0, "zeros": 0.0}[uncertain]
    return out, labels


def label_table(*pairs: tuple[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Build an ``original term -> standard labels`` table from ``(label, terms)`` pairs.

    Written label-first because that is how the tables are reviewed; one term may feed
    several labels (its tuple grows), which the harmonisation then combines.
    """
    table: dict[str, tuple[str, ...]] = {}
    for label, terms in pairs:
        for term in terms:
            table[term] = table.get(term, ()) + (label,)
    return table
