"""Typed errors of the explanation stage (docs/design.md, contract 5: a CxrkitError *and* the nearest built-in)."""

from __future__ import annotations

from ..errors import CxrkitError
from ..errors import UnknownLabel as _UnknownLabel

__all__ = ["ExplainError", "UnknownMethod", "UnknownLabel"]


class ExplainError(CxrkitError, ValueError):
    """An explanation cannot be computed as asked; the message says what to change."""


class UnknownMethod(ExplainError):
    """The method name is not one of :data:`cxrkit.explain.METHODS`."""


class UnknownLabel(ExplainError, _UnknownLabel):
    """The label is not one the model was trained to predict (an explanation error and the
    library's :class:`cxrkit.errors.UnknownLabel`, so either ``except`` catches it)."""
