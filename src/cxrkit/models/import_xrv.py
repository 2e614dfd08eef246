"""Convert TorchXRayVision weight files into cxrkit's safetensors + card, reading tensors only.

TorchXRayVision publishes DenseNets as whole pickled modules (``torch.save(model)``) and
the ResNet as a state dict. Unpickling a whole module with plain ``torch.load`` would
execute whatever the file names, so this module reads both with a *restricted*
unpickler: only tensor-rebuilding functions and plain containers are resolved; any
other global (module classes, functions) becomes an inert :class:`_Opaque` record
that just stores its arguments and state. The parameter tree is then walked from
those records. No code from the file runs.
"""

from __future__ import annotations

import collections
import pickle
import types
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..labels import PATHOLOGIES
from . import published
from ._registry import get_architecture
from .card import ModelCard
from .factory import build
from .store import save_weights, sha256_file

__all__ = ["read_checkpoint", "import_torchxrayvision"]


class _Opaque:
    """Stand-in for any class a checkpoint names: records constructor args and state, runs nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state if isinstance(state, dict) else {"_state": state}

    def __setitem__(self, key: Any, value: Any) -> None:  # pickled dict subclasses
        self.state[key] = value


def _opaque_class(module: str, name: str) -> type:
    return type(name, (_Opaque,), {"qualname": f"{module}.{name}"})


def _rebuild_from_type_v2(func: Any, new_type: Any, args: tuple, state: Any) -> Any:
    """Safe variant of torch's: rebuild the plain tensor, ignore the (untrusted) subclass."""
    return func(*args)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, _Opaque):
        return cls()
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("copyreg", "_reconstructor"): _reconstructor,
}


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)  # protocol-2 pickles name Python 2 modules
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _opaque_class(module, name)


# torch.load accepts any object with an ``Unpickler`` attribute as its pickle module.
_restricted_pickle = types.SimpleNamespace(Unpickler=_RestrictedUnpickler, load=None, __name__="cxrkit_restricted_pickle")


def _collect(node: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = node.state if isinstance(node, _Opaque) else {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for key, value in (state.get("_parameters") or {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value.detach()
    for key, value in (state.get("_buffers") or {}).items():
        if isinstance(value, torch.Tensor) and key not in skip:
            out[prefix + key] = value.detach()
    for key, child in (state.get("_modules") or {}).items():
        if child is not None:
            _collect(child, f"{prefix}{key}.", out)


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors of a PyTorch checkpoint (state dict or whole pickled module), plus module attributes.

    Returns ``(state_dict, attributes)``; ``attributes`` holds plain values stored on a
    pickled module (TorchXRayVision keeps ``pathologies``/``targets``/``op_threshs`` there).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"{path}: not a PyTorch (zip) checkpoint; legacy tar/raw-pickle files are not supported")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except Exception as exc:  # a malformed archive can fail in many ways; report one clear error
        raise WeightsError(f"{path}: could not read checkpoint ({type(exc).__name__}: {exc})") from None
    attributes: dict[str, Any] = {}
    if isinstance(obj, _Opaque):
        state: dict[str, torch.Tensor] = {}
        _collect(obj, "", state)
        attributes = {k: v for k, v in obj.state.items() if not k.startswith("_")}
    elif isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    else:
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, neither a module nor a state dict")
    state = _strip_prefix(state, "module.")
    if isinstance(state.get("op_threshs"), torch.Tensor):  # xrv may keep thresholds as a buffer
        attributes.setdefault("op_threshs", state.pop("op_threshs"))
    if not state:
        raise WeightsError(f"{path}: no tensors found")
    return state, attributes


def _infer_architecture(state: dict[str, torch.Tensor], path: Path) -> str:
    if any(key.startswith("uplayer") for key in state):  # TorchXRayVision's ResNet autoencoder
        return "resnet101_ae"
    if any(key.startswith("features.denseblock") for key in state):
        return "densenet121"
    if any(".layer4." in key or key.startswith("layer4.") for key in state):
        return "resnet50"
    raise WeightsError(f"{path}: cannot tell the architecture from its {len(state)} tensor names (e.g. "
                       f"{next(iter(state))!r}); not a TorchXRayVision DenseNet, ResNet or autoencoder checkpoint")


def _as_labels(value: Any) -> list[str | None] | None:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v or None for v in value]
    return None


def import_torchxrayvision(
    path: str | Path,
    output: str | Path,
    *,
    name: str | None = None,
    published_name: str | None = None,
    architecture: str | None = None,
    labels: list[str | None] | None = None,
    thresholds: dict[str, float] | None = None,
    source_url: str | None = None,
) -> Path:
    """Convert a TorchXRayVision weight file to ``output`` (.safetensors + card). Returns the card path.

    Label order and operating thresholds come, by priority, from the arguments, the
    published-model table (``published_name``), the attributes stored in the file,
    and finally TorchXRayVision's default 18-label order (its head is always 18 wide).
    The converted model is built strictly, so a file that does not fit fails here.
    """
    path, output = Path(path), Path(output)
    state, attributes = read_checkpoint(path)
    entry = published.get(published_name) if published_name else None
    arch = architecture or (entry["architecture"] if entry else None) or _infer_architecture(state, Path(path))
    head = labels or (entry["labels"] if entry else None)
    head = head or _as_labels(attributes.get("targets")) or _as_labels(attributes.get("pathologies")) or list(PATHOLOGIES)
    task = get_architecture(arch).task or "multilabel"
    if task != "multilabel":  # an autoencoder: no head, so no labels and no thresholds
        head, thresholds = [], {}
    if thresholds is None:
        if entry is not None:
            thresholds = dict(entry["op_threshs"])
        elif isinstance(attributes.get("op_threshs"), torch.Tensor):
            values = attributes["op_threshs"].tolist()
            if len(values) != len(head):  # one threshold per output: a mismatch is the wrong label list
                raise WeightsError(f"{path}: the file holds {len(values)} thresholds for {len(head)} labels")
            thresholds = {lab: float(t) for lab, t in zip(head, values, strict=True) if lab and t == t}
        else:
            thresholds = {}
    card = ModelCard(
        name=name or (entry["cxrkit_name"] if entry else output.stem),
        architecture=arch,
        labels=list(head),
        task=task,
        input_size=int(entry["input_size"]) if entry else (512 if arch == "resnet50" else 224),
        thresholds=thresholds,
        threshold_method="torchxrayvision op_threshs (op_norm)" if thresholds else None,
        description=entry["description"] if entry else f"converted from TorchXRayVision file {path.name}",
        license="Apache-2.0 (TorchXRayVision weights)" if entry else None,
        provenance={
            "source": "torchxrayvision",
            "converted_from": path.name,
            "url": source_url or (entry["url"] if entry else None),
            "original_sha256": sha256_file(path),
        },
    ).validate()
    try:
        model = build(card, state)  # strict: raises if the tensors do not fit the architecture
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    return save_weights(model, card, output)

