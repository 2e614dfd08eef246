"""Typed errors of the explanation stage (docs/design.md, contract 5: a CxrkitError *and* the nearest built-in)."""

from __future__ import annotations

from ..errors import CxrkitError

__all__ = ["ExplainError", "UnknownMethod", "UnknownLabel"]


class ExplainError(CxrkitError, ValueError):
    """An explanation cannot be computed as asked; the message says what to change."""


class UnknownMethod(ExplainError):
    """The method name is not one of :data:`cxrkit.explain.METHODS`."""


class UnknownLabel(ExplainError, KeyError):
    """The label is not one the model was trained to predict."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "unknown label"
