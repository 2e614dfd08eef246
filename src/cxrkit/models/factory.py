"""One factory for every model: ``create(name, weights=...)``, timm-style.

``name`` may be an architecture (``densenet121``: random weights unless ``weights``
is given), a registered model id (``densenet121.nih-demo``), a TorchXRayVision name
(``densenet121-res224-all``, once fetched), or a path to a ``.safetensors``/``.json``.
The returned module carries its :class:`ModelCard` as ``model.card``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, ModelNotFound, WeightsError
from ..labels import PATHOLOGIES
from . import published
from ._registry import get_architecture, list_architectures
from .card import ModelCard
from .store import find_card, list_cards, read_state_dict

if TYPE_CHECKING:  # finding cards needs no PyTorch (`cxr models list` starts fast); building a model imports it
    import torch

    from .base import CxrModel

__all__ = ["create", "build", "list_models", "resolve_card", "DEFAULT_MODEL"]

#: The model ``cxr predict`` uses when none is named (bundled with the package).
DEFAULT_MODEL = "densenet121.nih-demo"


def build(card: ModelCard, state_dict: dict[str, torch.Tensor] | None = None, *, drop_rate: float = 0.0) -> CxrModel:
    """Instantiate ``card.architecture`` with a head of ``len(card.labels)`` and load ``state_dict``.

    Loading is strict: a missing or unexpected tensor means the file does not match
    the architecture, which would otherwise give silently wrong predictions.
    ``drop_rate`` is the architecture's dropout while training (timm's option of that
    name); it has no weights, so any file loads with any rate, and it does nothing in eval mode.
    """
    from .base import CxrModel

    arch = get_architecture(card.architecture)
    if not 0.0 <= drop_rate < 1.0:
        raise InvalidArgument(f"drop_rate must be in [0, 1), got {drop_rate}")
    options = {"drop_rate": float(drop_rate)} if drop_rate else {}  # only asked of builders when used
    model = arch.builder(num_classes=len(card.labels), in_chans=1, **options)
    if not isinstance(model, CxrModel):
        raise WeightsError(f"architecture {card.architecture!r} builds a {type(model).__name__}, not a "
                           "cxrkit.models.CxrModel (forward_features, forward_head, get_classifier)")
    if state_dict is not None:
        state_dict = arch.filter_fn(state_dict, model)
        shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        wrong = [key for key, value in state_dict.items() if key in shapes and tuple(value.shape) != shapes[key]]
        if wrong:  # torch would raise a bare RuntimeError; say which side is wrong instead
            raise WeightsError(
                f"weights for {card.name!r} do not fit its card: {wrong[0]} is {tuple(state_dict[wrong[0]].shape)} "
                f"in the file but {shapes[wrong[0]]} for a {card.architecture} with {len(card.labels)} labels; "
                "the card's labels must list exactly the outputs the weights were trained with")
        result = model.load_state_dict(state_dict, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise WeightsError(
                f"weights for {card.name!r} do not fit {card.architecture}: "
                f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[:3]}), "
                f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
            )
    model.card = card
    return model.eval()


def resolve_card(name: str) -> tuple[ModelCard, Path]:
    """Find the card for a model id, TorchXRayVision alias or file path."""
    try:
        return find_card(name)
    except ModelNotFound:
        pass
    alias = published.cxrkit_name(name)
    if alias is not None:
        try:
            return find_card(alias)
        except ModelNotFound:
            raise ModelNotFound(
                f"{name!r} is a published TorchXRayVision model that is not downloaded yet; "
                f"run: cxr models fetch {name}"
            ) from None
    raise ModelNotFound(
        f"no model named {name!r}. Registered: {', '.join(c.name for c, _ in list_cards()) or 'none'}; "
        f"architectures: {', '.join(list_architectures())}; or pass a path to a .safetensors file"
    )


def create(
    name: str | Path,
    weights: str | Path | None = None,
    *,
    num_classes: int | None = None,
    labels: list[str] | None = None,
    drop_rate: float = 0.0,
) -> CxrModel:
    """Build a model by name, with registered, file or random weights.

    ``create("densenet121")`` gives a randomly initialised 18-label DenseNet (a starting
    point for training); ``labels``/``num_classes`` change its head. ``weights`` may be a
    model id, a tag of that architecture (``"nih-demo"``) or a file path. ``drop_rate``
    sets the architecture's training dropout (see :func:`build`); training passes its
    config's rate here, so fine-tuning from weights keeps it as training from scratch does.
    """
    name = str(name)
    if weights is None and name in list_architectures():
        head: list[str | None] = (list(labels) if labels is not None
                                  else list(PATHOLOGIES[: num_classes or len(PATHOLOGIES)]))
        if num_classes is not None and labels is None and num_classes > len(PATHOLOGIES):
            head = [f"output_{i}" for i in range(num_classes)]
        task = get_architecture(name).task  # an autoencoder: no head, no labels
        card = ModelCard(
            name=f"{name}.random",
            architecture=name,
            labels=[] if task else head,
            task=task or "multilabel",
            input_size=get_architecture(name).input_size,
            description="randomly initialised, untrained",
            provenance={"source": "random initialisation"},
        ).validate()
        return build(card, drop_rate=drop_rate)
    if labels is not None or num_classes is not None:
        raise WeightsError("labels/num_classes apply to a new head; create the model, then call reset_classifier()")
    if weights is not None:
        target = str(weights)
        if name in list_architectures() and not Path(target).suffix and "." not in target:
            target = f"{name}.{target}"
        card, card_path = resolve_card(target)
        if name in list_architectures() and card.architecture != name:
            raise WeightsError(f"weights {card.name!r} are for {card.architecture}, not {name}")
    else:
        card, card_path = resolve_card(name)
    return build(card, read_state_dict(card, card_path), drop_rate=drop_rate)


def list_models(pattern: str | None = None) -> list[ModelCard]:
    """Cards of every registered (bundled or downloaded) model, optionally filtered by pattern."""
    import fnmatch

    cards = [card for card, _ in list_cards()]
    return [c for c in cards if not pattern or fnmatch.fnmatch(c.name, pattern)]
