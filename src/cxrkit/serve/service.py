"""What the server does with uploaded films, without any HTTP: predict, age, show, explain.

Each operation is the library call a command makes (``predict_files`` for ``cxr predict``
and ``cxr age``, ``explain`` for ``cxr explain``) on the uploads' in-memory paths, so the
numbers and error messages are the commands' own. Operations take the service's lock:
they share networks, and an explanation briefly changes its model's gradient flags.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..age import AgeEstimate
from ..errors import CxrkitError
from ..explain import explain, render_overlay
from ..io import XrayImage, read_image
from ..predict import Runner, error_reason, output_columns, predict_files
from ..preprocess import resize, to_uint8
from .config import ServeConfig
from .errors import BadRequest
from .loaded import LoadedModels
from .memory import MemoryFiles
from .rows import rows_to_json
from .uploads import Upload

__all__ = ["Service", "Rows", "Picture", "UnreadableUpload"]


class UnreadableUpload(BadRequest):
    """The one film of an explain/film request cannot be read; the message is ``cxr predict``'s error cell."""


@dataclass
class Rows:
    """Result rows (one per upload, in order) with their columns and the model that made them."""

    rows: list[dict[str, Any]]
    columns: list[str]
    model: dict[str, Any]
    labels: list[str]  # the score columns (for a classifier: the 18 standard labels, then any extra)

    def records(self) -> list[dict[str, Any]]:
        return rows_to_json(self.rows, self.columns)


@dataclass
class Picture:
    """An encoded result (PNG, NPY or JSON bytes) with the facts a client needs to read it."""

    body: bytes
    media_type: str
    facts: dict[str, Any]


def _identity(card: Any) -> dict[str, Any]:
    return {"name": card.name, "version": (card.sha256 or "")[:12] or None}


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise CxrkitError("could not encode the PNG answer")
    return data.tobytes()


def _fit_height(shape: tuple[int, int], height: int | None) -> tuple[int, int]:
    """``(height, width)`` for showing an image at most ``height`` tall (never enlarged), as overlays size it."""
    h, w = int(shape[0]), int(shape[1])
    target = h if height is None else max(1, min(int(height), h))
    return target, max(1, round(w * target / h))


class Service:
    """The server's operations over the models loaded at start-up."""

    def __init__(self, config: ServeConfig, models: LoadedModels | None = None):
        self.config = config
        self.models = models or LoadedModels(config)
        self.files = MemoryFiles()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.files.close()

    # --- rows -----------------------------------------------------------------------------

    def predict(self, uploads: Sequence[Upload], *, model: str | None = None, calibrate: bool = True,
                fix_orientation: bool = False) -> Rows:
        """``cxr predict`` on the uploads: one row per file, bad files as error rows."""
        predictor = self.models.predictor(model, calibrate=calibrate, fix_orientation=fix_orientation)
        rows = self._rows(uploads, predictor)
        return Rows(rows, output_columns(predictor), _identity(predictor.card), predictor.columns)

    def age(self, uploads: Sequence[Upload], *, chronological_age: float | None = None, tta: bool = True,
            fix_orientation: bool = False) -> Rows:
        """``cxr age`` on the uploads; a typed ``chronological_age`` overrides the DICOM header's, as
        ``--metadata`` does, and gives ``age_gap`` (CXR-Age minus the real age)."""
        if chronological_age is not None and not 0.0 <= chronological_age < 150.0:
            raise BadRequest(f"age must be a number of years between 0 and 150, got {chronological_age:g}")
        estimator = self.models.estimator(tta=tta, fix_orientation=fix_orientation)
        rows = self._rows(uploads, estimator)
        for row in rows:
            if chronological_age is not None:
                row["chronological_age"] = chronological_age
            known = row.get("chronological_age")
            row["age_gap"] = (AgeEstimate(row["cxr_age"], row["cxr_age_sd"], known).age_gap
                              if row["status"] == "ok" and known is not None else None)
        columns = output_columns(estimator) + ["chronological_age", "age_gap"]
        return Rows(rows, columns, _identity(estimator.card), estimator.columns)

    def _rows(self, uploads: Sequence[Upload], predictor: Runner) -> list[dict[str, Any]]:
        with self.files.paths(uploads) as paths, self._lock:
            rows = list(predict_files(paths, predictor, batch_size=self.config.batch_size))
        for row, upload in zip(rows, uploads, strict=True):
            row["file"] = upload.name  # the client's name, not the in-memory path
        return rows

    # --- pictures -------------------------------------------------------------------------

    def _film(self, upload: Upload, fix_orientation: bool) -> tuple[np.ndarray, float, dict[str, Any]]:
        """The decoded film as the model sees it (after the orientation fix when asked)."""
        steps = self.models.film_steps(fix_orientation)
        with self.files.paths([upload]) as (path,):
            try:
                image = read_image(path)
                pixels, maxval, info = steps.prepare(image)
            except CxrkitError as exc:
                raise UnreadableUpload(error_reason(exc)) from None
        return pixels, maxval, info

    def film(self, upload: Upload, *, height: int | None = 1024, fix_orientation: bool = False) -> Picture:
        """The radiograph as read (DICOM window applied, MONOCHROME1 inverted) as an 8-bit PNG.

        Browsers cannot show DICOM; this is what the page draws. At most ``height`` pixels
        tall, and sized exactly as :meth:`explain` sizes an overlay of the same height, so
        the two stack pixel for pixel.
        """
        with self._lock:
            pixels, maxval, info = self._film(upload, fix_orientation)
            size = _fit_height(pixels.shape, height)
            grey = to_uint8(np.clip(resize(np.asarray(pixels, np.float32) / np.float32(maxval), size), 0.0, 1.0))
            body = _png(grey)
        facts = {"height": size[0], "width": size[1], "original_height": int(pixels.shape[0]),
                 "original_width": int(pixels.shape[1]), **info}
        return Picture(body, "image/png", facts)

    def explain(self, upload: Upload, *, model: str | None = None, label: str = "top", method: str = "gradcam",
                calibrate: bool = True, fix_orientation: bool = False, fmt: str = "png", alpha: float = 0.5,
                height: int | None = None, caption: bool = True) -> Picture:
        """``cxr explain`` on one upload: a PNG overlay, or the raw map as NPY or JSON."""
        if fmt not in ("png", "npy", "json"):
            raise BadRequest(f"format must be png, npy or json, got {fmt!r}")
        network = self.models.classifier(model)
        with self._lock:
            pixels, maxval, _ = self._film(upload, fix_orientation)
            film = XrayImage(pixels=pixels, maxval=maxval, meta={})
            heat = explain(network, film, label, method, calibrate=calibrate, device=self.config.device)
            facts = {
                "model": network.card.name, "label": heat.label, "method": heat.method, "score": heat.score,
                "has_evidence": heat.has_evidence, "peak": list(heat.peak()) if heat.has_evidence else None,
                "shape": list(heat.array.shape),
            }
            if fmt == "png":
                size = _fit_height(pixels.shape, height)
                image = render_overlay(pixels, maxval, heat, alpha=alpha, height=size[0], with_caption=caption)
                return Picture(_png(image), "image/png", facts)
            if fmt == "npy":
                buffer = io.BytesIO()
                np.save(buffer, heat.array.astype(np.float32), allow_pickle=False)
                return Picture(buffer.getvalue(), "application/x-npy", facts)
        meta = {k: v for k, v in heat.meta.items() if k not in ("source", "seconds")}
        body = json.dumps({**facts, "meta": meta, "map": heat.array.tolist()}, default=_plain).encode()
        return Picture(body, "application/json", facts)


def _plain(value: Any) -> Any:
    """JSON for the numpy scalars and tuples an explanation's meta may hold."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
