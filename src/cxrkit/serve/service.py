"""What the server does with uploaded films, without any HTTP: predict, age, show, explain.

Each operation is the library call a command makes (``predict_files`` for ``cxr predict``
and ``cxr age``, ``explain`` for ``cxr explain``) on the uploads' in-memory paths, so the
numbers and error messages are the commands' own. Operations take the service's lock:
they share networks, and an explanation briefly changes its model's gradient flags.

Films are decoded by :class:`~.decode.DecodePool` in worker processes under a time
limit, a window of films ahead of the model (so a request of 64 large DICOMs never holds
64 decoded films at once). ``cancelled`` (set when the client disconnects) kills the
running decodes and ends the operation with :class:`~.errors.ClientGone`. Explanations and films are drawn at
most ``max_render_side`` pixels on their longest side: a map at a huge film's full
resolution cost gigabytes and told nobody more.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..age import AgeEstimate
from ..errors import CxrkitError, RunFailed
from ..explain import explain, render_overlay
from ..io import XrayImage
from ..models import card_of
from ..predict import Runner, RunSummary, error_reason, output_columns
from ..predict.engine import Prepared, score_group
from ..preprocess import resize, to_uint8
from .config import ServeConfig
from .decode import DecodePool
from .errors import BadRequest, ClientGone
from .loaded import LoadedModels
from .rows import rows_to_json
from .uploads import Upload

__all__ = ["Service", "Rows", "RowsJob", "Picture", "UnreadableUpload", "check_age"]


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
class RowsJob:
    """One request's share of a batched row job: its uploads, its client-left flag, its typed age."""

    uploads: Sequence[Upload]
    cancelled: threading.Event | None = None
    chronological_age: float | None = None


def check_age(years: float | None) -> float | None:
    """A typed chronological age, checked before any work is queued for it."""
    if years is not None and not 0.0 <= years < 150.0:
        raise BadRequest(f"age must be a number of years between 0 and 150, got {years:g}")
    return years


def _one(answers: Sequence[Rows | ClientGone]) -> Rows:
    (answer,) = answers
    if isinstance(answer, ClientGone):
        raise answer
    return answer


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
        raise RunFailed("could not encode the PNG answer")
    return data.tobytes()


def _bounded(pixels: np.ndarray, side: int) -> np.ndarray:
    """The film shrunk (area interpolation) so its longest side is at most ``side`` pixels."""
    h, w = int(pixels.shape[0]), int(pixels.shape[1])
    if max(h, w) <= side:
        return pixels
    scale = side / max(h, w)
    return resize(np.asarray(pixels, np.float32), (max(1, round(h * scale)), max(1, round(w * scale))))


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
        self.decoder = DecodePool(config.decode_workers, config.decode_seconds)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.decoder.close()

    @staticmethod
    def _check(cancelled: threading.Event | None) -> None:
        if cancelled is not None and cancelled.is_set():
            raise ClientGone("the client closed the connection before its answer was ready")

    # --- rows -----------------------------------------------------------------------------

    def predict(self, uploads: Sequence[Upload], *, model: str | None = None, calibrate: bool = True,
                fix_orientation: bool = False, cancelled: threading.Event | None = None) -> Rows:
        """``cxr predict`` on the uploads: one row per file, bad files as error rows."""
        return _one(self.predict_many([RowsJob(uploads, cancelled)], model=model, calibrate=calibrate,
                                      fix_orientation=fix_orientation))

    def predict_many(self, jobs: Sequence[RowsJob], *, model: str | None = None, calibrate: bool = True,
                     fix_orientation: bool = False) -> list[Rows | ClientGone]:
        """:meth:`predict` for several requests at once, their films scored in shared batches:
        each request gets its own rows, or :class:`ClientGone` if its client left meanwhile."""
        predictor = self.models.predictor(model, calibrate=calibrate, fix_orientation=fix_orientation)
        columns, identity = output_columns(predictor), _identity(predictor.card)
        return [rows if isinstance(rows, ClientGone) else Rows(rows, columns, identity, predictor.columns)
                for rows in self._rows(jobs, predictor)]

    def age(self, uploads: Sequence[Upload], *, chronological_age: float | None = None, tta: bool = True,
            fix_orientation: bool = False, cancelled: threading.Event | None = None) -> Rows:
        """``cxr age`` on the uploads; a typed ``chronological_age`` overrides the DICOM header's, as
        ``--metadata`` does, and gives ``age_gap`` (CXR-Age minus the real age)."""
        job = RowsJob(uploads, cancelled, check_age(chronological_age))
        return _one(self.age_many([job], tta=tta, fix_orientation=fix_orientation))

    def age_many(self, jobs: Sequence[RowsJob], *, tta: bool = True, fix_orientation: bool = False
                 ) -> list[Rows | ClientGone]:
        """:meth:`age` for several requests at once (each with its own typed age), as :meth:`predict_many`."""
        estimator = self.models.estimator(tta=tta, fix_orientation=fix_orientation)
        columns = output_columns(estimator) + ["chronological_age", "age_gap"]
        answers: list[Rows | ClientGone] = []
        for job, rows in zip(jobs, self._rows(jobs, estimator), strict=True):
            if isinstance(rows, ClientGone):
                answers.append(rows)
                continue
            for row in rows:
                if job.chronological_age is not None:
                    row["chronological_age"] = job.chronological_age
                known = row.get("chronological_age")
                row["age_gap"] = (AgeEstimate(row["cxr_age"], row["cxr_age_sd"], known).age_gap
                                  if row["status"] == "ok" and known is not None else None)
            answers.append(Rows(rows, columns, _identity(estimator.card), estimator.columns))
        return answers

    def _rows(self, jobs: Sequence[RowsJob], runner: Runner) -> list[list[dict[str, Any]] | ClientGone]:
        """One row per upload of each job, batched as ``predict_files`` batches (so the numbers are
        ``cxr predict``'s) across the jobs' films; a job whose client left gets :class:`ClientGone`
        and its films are neither decoded further nor scored."""
        summary = RunSummary()
        empty = {column: float("nan") for column in runner.columns}
        rows: list[list[dict[str, Any]]] = [[] for _ in jobs]
        group: list[tuple[int, tuple[str, Prepared | None, str | None]]] = []

        def gone(j: int) -> bool:
            cancelled = jobs[j].cancelled
            return cancelled is not None and cancelled.is_set()

        def flush() -> None:
            live = [(j, entry) for j, entry in group if not gone(j)]
            for (j, _), (name, fields, error) in zip(live, score_group(runner, [e for _, e in live]), strict=True):
                rows[j].append(summary.add(name, fields, error, empty))
            group.clear()

        work = [(j, upload) for j, job in enumerate(jobs) for upload in job.uploads]
        window = 2 * self.config.batch_size + self.decoder.workers  # as predict_files reads ahead
        decoding = self.decoder.decode_each([(upload, jobs[j].cancelled) for j, upload in work], window)
        with self._lock, closing(decoding) as images:
            for (j, upload), image in zip(work, images, strict=True):
                if all(gone(k) for k in range(len(jobs))):
                    break
                if gone(j):
                    continue
                if isinstance(image, str):
                    group.append((j, (upload.name, None, image)))
                    continue
                try:
                    group.append((j, (upload.name, runner.prepare(image), None)))
                except Exception as exc:
                    group.append((j, (upload.name, None, error_reason(exc))))
                if sum(prepared is not None for _, (_, prepared, _) in group) >= self.config.batch_size:
                    flush()
            if group:
                flush()
        return [ClientGone("the client closed the connection before its answer was ready") if gone(j) else rows[j]
                for j in range(len(jobs))]

    # --- pictures -------------------------------------------------------------------------

    def _film(self, upload: Upload, fix_orientation: bool, cancelled: threading.Event | None
              ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """The decoded film as the model sees it (after the orientation fix when asked)."""
        steps = self.models.film_steps(fix_orientation)
        (image,) = self.decoder.decode_now([upload], cancelled)
        self._check(cancelled)
        if isinstance(image, str):
            raise UnreadableUpload(image)
        try:
            return steps.prepare(image)
        except CxrkitError as exc:
            raise UnreadableUpload(error_reason(exc)) from None

    def film(self, upload: Upload, *, height: int | None = 1024, fix_orientation: bool = False,
             cancelled: threading.Event | None = None) -> Picture:
        """The radiograph as read (DICOM window applied, MONOCHROME1 inverted) as an 8-bit PNG.

        Browsers cannot show DICOM; this is what the page draws. At most ``height`` pixels
        tall, and sized exactly as :meth:`explain` sizes an overlay of the same height, so
        the two stack pixel for pixel.
        """
        with self._lock:
            pixels, maxval, info = self._film(upload, fix_orientation, cancelled)
            size = _fit_height(pixels.shape, height)
            side = self.config.max_render_side
            if max(size) > side:  # a very wide film: its longest side is bounded too
                scale = side / max(size)
                size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            grey = to_uint8(np.clip(resize(np.asarray(pixels, np.float32) / np.float32(maxval), size), 0.0, 1.0))
            body = _png(grey)
        facts = {"height": size[0], "width": size[1], "original_height": int(pixels.shape[0]),
                 "original_width": int(pixels.shape[1]), **info}
        return Picture(body, "image/png", facts)

    def explain(self, upload: Upload, *, model: str | None = None, label: str = "top", method: str = "gradcam",
                calibrate: bool = True, fix_orientation: bool = False, fmt: str = "png", alpha: float = 0.5,
                height: int | None = None, caption: bool = True, cancelled: threading.Event | None = None
                ) -> Picture:
        """``cxr explain`` on one upload: a PNG overlay, or the raw map as NPY or JSON.

        A film over ``max_render_side`` pixels is shrunk to it first, so the map, the overlay
        and the JSON stay bounded (the response's ``shape`` and ``original_*`` facts say so);
        the score then comes from the shrunk film and may differ from ``/v1/predict``'s by
        the resampling (of the order of 1e-3).
        """
        if fmt not in ("png", "npy", "json"):
            raise BadRequest(f"format must be png, npy or json, got {fmt!r}")
        network = self.models.classifier(model)
        with self._lock:
            full, maxval, _ = self._film(upload, fix_orientation, cancelled)
            pixels = _bounded(full, self.config.max_render_side)
            film = XrayImage(pixels=pixels, maxval=maxval, meta={})
            heat = explain(network, film, label, method, calibrate=calibrate, device=self.config.device)
            facts = {
                "model": card_of(network).name, "label": heat.label, "method": heat.method, "score": heat.score,
                "has_evidence": heat.has_evidence, "peak": list(heat.peak()) if heat.has_evidence else None,
                "shape": list(heat.array.shape), "original_height": int(full.shape[0]),
                "original_width": int(full.shape[1]),
            }
            del full
            if fmt == "png":
                size = _fit_height(pixels.shape, height)
                image = render_overlay(pixels, maxval, heat, alpha=alpha, height=size[0], with_caption=caption)
                return Picture(_png(image), "image/png", facts)
            if fmt == "npy":
                buffer = io.BytesIO()
                np.save(buffer, heat.array.astype(np.float32), allow_pickle=False)
                return Picture(buffer.getvalue(), "application/x-npy", facts)
        meta = {k: v for k, v in heat.meta.items() if k not in ("source", "seconds")}
        values = np.round(heat.array.astype(np.float64), 6).tolist()  # float32's precision, half the text
        body = json.dumps({**facts, "meta": meta, "map": values}, default=_plain).encode()
        return Picture(body, "application/json", facts)


def _plain(value: Any) -> Any:
    """JSON for the numpy scalars and tuples an explanation's meta may hold."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
