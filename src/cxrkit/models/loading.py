"""Ready a model for inference: one place that every runner (predictor, age, orientation,
embedder, export) uses to turn "a name or a module" into a checked module on a device.

Written once because the three things it does are easy to get subtly wrong in each
caller: a module without a card cannot be calibrated or laid out on the label
vocabulary; a CUDA device that is not there must fail before any work starts, not on
the first batch; and the module must be in eval mode (BatchNorm statistics frozen).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import InvalidArgument, Unavailable
from .card import ModelCard
from .factory import create

__all__ = ["parse_device", "check_device", "load_model", "card_of"]


def card_of(model: nn.Module) -> ModelCard:
    """The :class:`ModelCard` a module carries as ``.card``.

    Read through here rather than as ``model.card``: a module built elsewhere may carry no
    card, and ``nn.Module``'s attribute lookup is declared to give a tensor or a submodule,
    so only the check here says the value is a card.
    """
    card = getattr(model, "card", None)
    if not isinstance(card, ModelCard):
        raise InvalidArgument("the model has no .card; build it with cxrkit.models.create()")
    return card


def parse_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`; a typo is one clear error, not torch's list of two dozen backends."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidArgument(f"unknown device {str(device)!r}; use cpu, cuda or cuda:N") from None


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, refused at once when it names a GPU that is not visible."""
    device = parse_device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Unavailable(f"device {str(device)!r} was requested but no CUDA GPU is visible to PyTorch")
    return device


def load_model(model: nn.Module | str | None, *, default: str, device: str | torch.device = "cpu",
               check: Callable[[ModelCard], str | None] | None = None, channels_last: bool = False,
               keep_mode: bool = False) -> nn.Module:
    """A model (``create(name)`` for a name, ``default`` for None) on ``device`` in eval mode.

    ``check(card)`` returns why the model does not fit the caller (e.g. "not an age model:
    ...") or None; its text becomes the error. The module must carry a ``.card``.
    ``keep_mode``: a module passed in keeps its train/eval mode (the explainers: explaining a
    model that is being trained must not change how the caller's next step runs; they switch
    to eval themselves, and back, for the duration).
    """
    training = keep_mode and isinstance(model, nn.Module) and model.training
    where = check_device(device)
    module = create(model or default) if model is None or isinstance(model, str) else model
    card = card_of(module)
    problem = check(card) if check is not None else None
    if problem:
        raise InvalidArgument(problem)
    if channels_last:
        # two calls: torch declares Module.to(memory_format=...) alone, not with a device
        return module.to(where).to(memory_format=torch.channels_last).train(training)
    return module.to(where).train(training)
