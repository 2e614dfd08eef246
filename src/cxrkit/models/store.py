"""Where weight files live, and how they are written and read back safely.

Weights are looked up in two places, in order: the package's own ``weights/`` folder
(models bundled with cxrkit) and the user cache ``$CXRKIT_HOME/models`` (default
``~/.cache/cxrkit/models``; models fetched or imported by the user). Each entry is a
``NAME.json`` card with its ``NAME.safetensors`` beside it.

Loading never unpickles: safetensors holds tensors only, and the file's sha256 must
equal the one in its card before a single tensor is read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_path
from ..errors import ChecksumMismatch, ModelNotFound, WeightsError
from .card import ModelCard
from .download import sha256_file

if TYPE_CHECKING:  # finding and listing cards needs no PyTorch; reading and writing tensors imports it
    import torch
    from torch import nn

__all__ = [
    "BUNDLED_DIR",
    "cache_dir",
    "model_dirs",
    "sha256_file",
    "save_weights",
    "read_state_dict",
    "find_card",
    "list_cards",
]

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).with_name("weights")


def cache_dir() -> Path:
    """cxrkit's per-user cache: ``$CXRKIT_HOME``, else ``$XDG_CACHE_HOME/cxrkit``, else ``~/.cache/cxrkit``."""
    if os.environ.get("CXRKIT_HOME"):
        return Path(os.environ["CXRKIT_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cxrkit"


def model_dirs() -> list[Path]:
    """Folders searched for registered weights, bundled first."""
    return [BUNDLED_DIR, cache_dir() / "models"]


def save_weights(model: nn.Module, card: ModelCard, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``model``'s state dict to ``path`` (.safetensors) and its card beside it.

    The card's ``weights_file`` and ``sha256`` are filled in here, so a card can never
    describe a file other than the one written with it. ``dtype`` (e.g. ``torch.bfloat16``)
    stores floating-point tensors in that type, halving the file; loading casts them back
    into the model's float32 parameters. bfloat16 keeps float32's range; float16 overflows
    on the BatchNorm statistics of xrv-scaled inputs and is refused when it would. Returns
    the card's path. Both files are written atomically (weights first, then the card), so
    a crash in between leaves a card whose sha256 refuses the new weights, never a torn file.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weight files must end in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    if dtype is not None:
        state = {key: value.to(dtype) if value.is_floating_point() else value for key, value in state.items()}
        overflow = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
        if overflow:  # e.g. the first BatchNorm's running variance of [-1024, 1024] inputs exceeds float16's range
            raise WeightsError(f"{dtype} cannot hold {overflow[0]} (values out of range); use torch.bfloat16")
    card.validate()  # a card that cannot be saved must not leave new weights behind either
    with atomic_path(path) as temp:  # a killed save leaves the old file or none, never half a one
        save_file(state, str(temp), metadata={"format": "pt", "cxrkit_model": card.name,
                                               "architecture": card.architecture})
        digest = sha256_file(temp)
    card.weights_file = path.name
    card.sha256 = digest
    return card.save(path.with_suffix(".json"))


def read_state_dict(card: ModelCard, card_path: Path) -> dict[str, torch.Tensor]:
    """Tensors of the weight file a card describes, after checking its sha256."""
    if not card.weights_file:
        raise WeightsError(f"{card_path}: the card names no weights_file")
    weights = card_path.parent / card.weights_file
    if not weights.is_file():
        raise WeightsError(f"{card_path}: weight file {weights} is missing")
    if card.sha256 is None:
        raise WeightsError(f"{card_path}: the card carries no sha256; refusing to load unverified weights")
    actual = sha256_file(weights)
    if actual != card.sha256:
        raise ChecksumMismatch(
            f"{weights}: sha256 {actual} does not match its card ({card.sha256}); the file is corrupt or was replaced"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{weights}: not a readable safetensors file ({exc})") from None


def list_cards() -> list[tuple[ModelCard, Path]]:
    """Every valid registered card with its path; unreadable cards are logged and skipped."""
    found: dict[str, tuple[ModelCard, Path]] = {}
    for folder in model_dirs():
        if not folder.is_dir():
            continue
        for card_path in sorted(folder.glob("*.json")):
            try:
                card = ModelCard.load(card_path)
            except WeightsError as exc:
                log.warning("skipping %s: %s", card_path, exc)
                continue
            found.setdefault(card.name, (card, card_path))
    return list(found.values())


def find_card(name: str) -> tuple[ModelCard, Path]:
    """The card registered as ``name``, or of the file ``name`` points to (.json or .safetensors)."""
    path = Path(name).expanduser()
    if path.suffix in (".json", ".safetensors") and path.exists():
        card_path = path.with_suffix(".json")
        if not card_path.is_file():
            raise WeightsError(f"{path}: no model card {card_path.name} beside it; every weight file needs its card")
        return ModelCard.load(card_path), card_path
    for card, card_path in list_cards():
        if card.name == name:
            return card, card_path
    raise ModelNotFound(name)
