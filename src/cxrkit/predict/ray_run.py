"""Batch prediction spread over a Ray cluster: the same rows, in the same order, as one process writes.

One machine decodes ~40 films/s and runs one model; an archive of a million films wants
many machines. :class:`RayEngine` takes the place of the in-process engine
(:func:`~cxrkit.predict.predict_files`) inside :func:`~cxrkit.predict.run_files`, so the
scan, the resume (files the output already lists are never sent), the writer and the
progress stay exactly those of a single-process run. Only the middle moves to Ray Data:

- read + decode + ``runner.prepare`` run as CPU tasks, as many at once as the cluster allows;
- ``runner.predict_batch`` runs in a pool of model actors (one copy of the model each,
  ``gpus`` GPUs each when the cluster has GPUs), through the same
  :func:`~cxrkit.predict.engine.score_group` as the in-process engine, so a batch that
  fails costs its films error rows, never the job;
- this process receives the rows, puts them back in input order and hands them to the
  writer: each file exactly once, whatever Ray retried.

A worker that dies (a killed process, a lost node) is retried by Ray: read tasks are
re-run, model actors restart and redo their batch (Ray Data's defaults for actor pools:
unlimited restarts and task retries). Rows cross the cluster as plain data
(``np.save`` bytes without pickles, JSON fields), never as pickles of our own making.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgument, RunFailed, Unavailable
from ..io import read_image
from .engine import RowSink, RunSummary, error_reason, score_group
from .runner import Runner

__all__ = ["RayEngine", "predict_files_ray", "ray_available"]

log = logging.getLogger(__name__)

#: batches per read task: small enough that a few dozen files already spread over the
#: cluster's CPUs, large enough that Ray's per-task overhead (~ms) stays small
BATCHES_PER_BLOCK = 4


def ray_available() -> bool:
    """Whether the optional Ray dependency is installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise Unavailable("running on a Ray cluster needs Ray Data: pip install 'cxrkit[ray]'") from None
    return ray


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays in a row's fields, as plain Python values for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a row field of type {type(value).__name__} cannot be sent between Ray workers")


def _pack(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(x), allow_pickle=False)
    return buffer.getvalue()


def _unpack(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _read_batch(batch: dict[str, np.ndarray], runner: Runner) -> dict[str, np.ndarray]:
    """Ray task: decode and prepare each file of a block; a file that fails carries its error instead."""
    inputs, fields, errors = [], [], []
    for name in batch["file"]:
        try:
            x, extra = runner.prepare(read_image(Path(name)))
            inputs.append(_pack(x))
            fields.append(json.dumps(extra, default=_jsonable))
            errors.append("")
        except Exception as exc:
            log.debug("cannot process %s", name, exc_info=True)
            inputs.append(b"")
            fields.append("{}")
            errors.append(error_reason(exc))
    return {"i": batch["i"], "file": batch["file"], "x": np.array(inputs, dtype=object),
            "fields": np.array(fields, dtype=object), "error": np.array(errors, dtype=object)}


class _ModelActor:
    """Ray actor: one copy of the model, scoring prepared batches with the in-process engine's rules."""

    def __init__(self, runner: Runner | None, build: Callable[[], Runner] | None):
        chosen = build() if build is not None else runner
        assert chosen is not None, "the engine hands every actor a runner or a way to build one"
        self.runner = chosen

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        group = [(str(name), None if error else (_unpack(x), json.loads(fields)), str(error) or None)
                 for name, x, fields, error in zip(batch["file"], batch["x"], batch["fields"], batch["error"], strict=True)]
        scored = score_group(self.runner, group)
        return {"i": batch["i"], "file": batch["file"],
                "fields": np.array([json.dumps(f, default=_jsonable) for _, f, _ in scored], dtype=object),
                "error": np.array([e or "" for _, _, e in scored], dtype=object)}


@contextmanager
def _connected(address: str | None) -> Iterator[Any]:
    """Ray, connected: to the session already open in this process, else to ``address``
    (``None``/``"local"`` starts a private one on this machine), shut down afterwards."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    local = address in (None, "", "local")
    try:
        if local:  # a private cluster on loopback, even where RAY_ADDRESS names another one
            ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                     configure_logging=False, log_to_driver=False)
        else:
            ray.init(address=address, configure_logging=False, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = "a local Ray" if local else f"the Ray cluster at {address!r}"
        raise RunFailed(f"cannot start or reach {where}: {exc}; check the address "
                          "(e.g. 'auto' on a cluster node, 'ray://HEAD:10001' from outside)") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def _in_order(ray: Any) -> Iterator[None]:
    """Ray Data set to keep input order and to stay quiet (the caller shows progress), then restored."""
    context = ray.data.DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars
    quiet = logging.getLogger("ray.data")
    level = quiet.level
    context.execution_options.preserve_order, context.enable_progress_bars = True, False
    quiet.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        quiet.setLevel(level)


def predict_files_ray(
    files: Iterable[str | Path],
    runner: Runner,
    *,
    batch_size: int = 8,
    on_rows: RowSink | None = None,
    skip: set[str] | None = None,
    summary: RunSummary | None = None,
    address: str | None = None,
    actors: int = 1,
    gpus: float | None = None,
    cpus_per_actor: float = 1.0,
    build: Callable[[], Runner] | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`~cxrkit.predict.predict_files` on a Ray cluster: one row per file not in ``skip``, in input order.

    ``address`` is the cluster (``None`` = a private local one, ``"auto"`` = the cluster this
    machine is a node of, ``"ray://HEAD:10001"`` = a remote one); an already initialised
    Ray session is used as it is. ``actors`` copies of the model run at once, each holding
    ``cpus_per_actor`` CPUs and ``gpus`` GPUs (``None``: 1 when ``build`` is given and the
    cluster has GPUs, else 0).
    ``runner`` prepares the films (in CPU tasks) and, unless ``build`` is given, is shipped
    to the model actors as well; ``build()`` makes the actors' runner instead, inside each
    actor, e.g. on the GPU the actor was given. The other arguments are as for
    :func:`~cxrkit.predict.predict_files`.
    """
    if batch_size < 1:
        raise InvalidArgument("batch size must be at least 1")
    if actors < 1:
        raise InvalidArgument("at least one model actor is needed")
    summary = summary if summary is not None else RunSummary()
    skip = skip or set()
    names = [str(f) for f in files]
    todo = [name for name in names if name not in skip]
    summary.skipped += len(names) - len(todo)
    if not todo:
        return
    started = time.perf_counter()
    empty = {column: float("nan") for column in runner.columns}
    with _connected(address) as ray, _in_order(ray):
        if gpus is None:  # a shipped runner keeps the device it was made on: a GPU is only worth it to build()
            gpus = 1.0 if build is not None and ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        items = [{"i": i, "file": name} for i, name in enumerate(todo)]
        blocks = -(-len(todo) // (batch_size * BATCHES_PER_BLOCK))
        # max_calls=0 is Ray's default (a worker runs any number of read tasks); stated, it also
        # keeps Ray Data from fusing the read tasks into the model actors, which would then
        # decode and score in turn in one process and leave a GPU waiting on one CPU.
        dataset = (ray.data.from_items(items, override_num_blocks=blocks)
                   .map_batches(_read_batch, fn_kwargs={"runner": runner}, batch_size=batch_size, num_cpus=1,
                                max_calls=0)
                   .map_batches(_ModelActor, fn_constructor_kwargs={"runner": None if build else runner, "build": build},
                                batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
                                num_cpus=cpus_per_actor, num_gpus=gpus))
        waiting: dict[int, tuple[str, str, str]] = {}
        following = 0
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None, prefetch_batches=2):
            for i, name, fields, error in zip(batch["i"], batch["file"], batch["fields"], batch["error"], strict=True):
                if int(i) >= following:  # a row Ray delivered twice (a retried block) is kept once
                    waiting[int(i)] = (str(name), str(fields), str(error))
            rows = []
            while following in waiting:
                name, fields, error = waiting.pop(following)
                rows.append(summary.add(name, json.loads(fields), error or None, empty))
                following += 1
            summary.seconds = time.perf_counter() - started
            if rows:
                if on_rows is not None:
                    on_rows(rows)
                yield from rows
    if following != len(todo):
        raise RunFailed(f"the Ray run returned {following} of {len(todo)} rows; resume the run to finish it")
    summary.seconds = time.perf_counter() - started


@dataclass(frozen=True)
class RayEngine:
    """:func:`predict_files_ray` with its cluster settings bound, for ``run_files(..., engine=...)``.

    ``workers`` (the in-process engine's read threads) is accepted and ignored: Ray runs as
    many read tasks as the cluster has CPUs.
    """

    address: str | None = None
    actors: int = 1
    gpus: float | None = None
    cpus_per_actor: float = 1.0
    build: Callable[[], Runner] | None = None

    def __call__(self, files: Iterable[str | Path], runner: Runner, *, batch_size: int = 8, workers: int = 1,
                 on_rows: RowSink | None = None, skip: set[str] | None = None,
                 summary: RunSummary | None = None) -> Iterator[dict[str, Any]]:
        return predict_files_ray(files, runner, batch_size=batch_size, on_rows=on_rows, skip=skip, summary=summary,
                                 address=self.address, actors=self.actors, gpus=self.gpus,
                                 cpus_per_actor=self.cpus_per_actor, build=self.build)
