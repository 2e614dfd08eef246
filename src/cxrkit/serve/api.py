"""The HTTP layer: routes, token check, limits, error answers, headers. No model code here.

Every ``/v1`` upload route is admitted against the request slots and the in-flight byte
budget (:mod:`.admission`) before its body is read, reads the upload into memory
(:mod:`.uploads`), has the films decoded in worker processes (:mod:`.decode`), hands one
job to the bounded model queue (:mod:`.jobs`) and encodes what :class:`~.service.Service`
returns. A client that disconnects meanwhile has its decodes killed and its queued job dropped.
Errors are cxrkit's typed errors, answered as ``{"detail": "<one sentence>"}`` with the
status they carry, so a person reading the page and a script reading the status code
both learn what to change.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import CxrkitError
from ..explain import METHODS
from .admission import Admission
from .answers import closing_if_undrained, error_response, unless_gone
from .config import MB, ServeConfig
from .errors import BadRequest, Unauthorized
from .jobs import JobQueue
from .rows import FORMATS, MEDIA_TYPES, columns_of, render_rows
from .service import Picture, Rows, RowsJob, Service, check_age
from .uploads import Form, Limits, declared_length, read_form, read_json

__all__ = ["create_app"]

log = logging.getLogger("cxrkit.serve")
access_log = logging.getLogger("cxrkit.serve.access")

STATIC = resources.files("cxrkit.serve") / "static"
_NO_CSP = ("/docs", "/redoc")  # FastAPI's API docs pages load Swagger UI / ReDoc from their CDN
_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                             "description": "One or more radiographs: PNG, JPEG, TIFF, BMP or DICOM (recognised by content)."}},
    "required": ["files"],
}


def _upload_body(single: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {**_UPLOAD_SCHEMA, "properties": dict(_UPLOAD_SCHEMA["properties"])}
    if single:
        schema["properties"]["files"] = {"type": "string", "format": "binary", "description": "One radiograph."}
    schema["properties"].update(extra or {})
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def _token_check(token: str) -> Callable[..., Awaitable[None]]:
    bearer = HTTPBearer(auto_error=False, description="The token the server was started with.")
    expected = token.encode()
    from_header = Depends(bearer)  # FastAPI reads the dependency from the parameter's default

    async def check(credentials: HTTPAuthorizationCredentials | None = from_header) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("this server needs its access token: send the header 'Authorization: Bearer <token>' "
                               "(the token the server was started with; `cxr serve` reads it from its token file)")

    return check


def _headers(facts: dict[str, Any], prefix: str = "X-Cxrkit-") -> dict[str, str]:
    """Plain facts about a picture as response headers (label names and numbers only, never file names)."""
    out = {}
    for key, value in facts.items():
        if value is None:
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        out[prefix + key.replace("_", "-").title()] = text
    return out


def _rows_response(result: Rows, fmt: str) -> Response:
    headers = {"X-Cxrkit-Model": result.model["name"], "X-Cxrkit-Model-Version": result.model["version"] or ""}
    if fmt == "json":
        return JSONResponse({"model": result.model, "columns": ["file", "status", "error", *result.columns],
                             "labels": result.labels, "rows": result.records()}, headers=headers)
    return Response(render_rows(result.rows, result.columns, fmt), media_type=MEDIA_TYPES[fmt], headers=headers)


def _picture_response(picture: Picture) -> Response:
    return Response(picture.body, media_type=picture.media_type, headers=_headers(picture.facts))


def create_app(config: ServeConfig, service: Service | None = None) -> FastAPI:
    """The FastAPI application of ``cxr serve``; pass ``service`` to share models loaded elsewhere (tests)."""
    owned = service is None
    service = service or Service(config)
    jobs = JobQueue(config.queue_size, window=config.batch_window_ms / 1000, max_films=config.batch_size)
    admission = Admission(config.queue_size, config.max_inflight_bytes, jobs.retry_after)
    limits = Limits(config.max_file_bytes, config.max_request_bytes, config.max_files,
                    body_idle_seconds=config.body_idle_seconds, body_seconds=config.body_seconds,
                    max_json_bytes=config.max_json_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.decoder.start()
        yield
        jobs.close()  # in-flight requests have finished by now; queued jobs run to the end
        if owned:
            service.close()

    app = FastAPI(
        title="cxrkit",
        version=__version__,
        description="Chest X-ray models of cxrkit over HTTP: the same rows as `cxr predict`, CXR-Age, "
                    "explanations. Research use only: not a medical device.",
        lifespan=lifespan,
    )
    app.state.service, app.state.jobs, app.state.config = service, jobs, config
    app.state.admission = admission

    @app.exception_handler(CxrkitError)
    async def cxrkit_error(request: Request, exc: CxrkitError) -> Response:
        return await closing_if_undrained(request, error_response(exc), limits)

    @app.exception_handler(RequestValidationError)
    async def bad_option(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
        response = JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)
        return await closing_if_undrained(request, response, limits)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        route = getattr(request.scope.get("route"), "path", "-")
        log.error("unexpected %s in %s (traceback follows from the server)", type(exc).__name__, route)
        return JSONResponse({"detail": "internal error; the server's log has the details"}, status_code=500)

    @app.middleware("http")
    async def log_and_protect(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """One access-log line per request with the route *template* (never a file name or query),
        and the headers that keep results out of caches and the page out of frames."""
        started = time.perf_counter()
        response = await call_next(request)
        path = request.url.path
        if not path.startswith(_NO_CSP):
            response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if path.startswith("/v1/"):
            response.headers["Cache-Control"] = "no-store"
        route = getattr(request.scope.get("route"), "path", "-")
        access_log.info("%s %s %d %.0f ms", request.method, route, response.status_code,
                        (time.perf_counter() - started) * 1000)
        return response

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Retry-After", "X-Cxrkit-Model", "X-Cxrkit-Label", "X-Cxrkit-Score"])

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz", tags=["server"])
    async def healthz() -> dict[str, Any]:
        """Liveness and load, answered by the event loop without touching a model (never blocked by one)."""
        return {
            "status": "ok",
            "version": __version__,
            "busy": jobs.running_since is not None,
            "queue": {"pending": jobs.pending, "capacity": jobs.capacity},
            "token_required": config.token is not None,
            "uploads": {"requests": admission.requests, "held_mb": round(admission.held_bytes / MB, 3)},
            "limits": {"max_file_mb": config.max_file_bytes / MB, "max_request_mb": config.max_request_bytes / MB,
                       "max_files": config.max_files, "max_inflight_mb": config.max_inflight_bytes / MB,
                       "decode_seconds": config.decode_seconds, "max_render_side": config.max_render_side},
        }

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(_token_check(config.token))] if config.token else [])

    @asynccontextmanager
    async def upload(request: Request, single: bool = False) -> AsyncIterator[Form]:
        """Admit the request (503 before a byte is read when full) and read it; its bytes stay
        counted against the in-flight budget until the answer is built."""
        with admission.enter(declared_length(request), jobs.pending) as ticket:
            form = await read_form(request, limits, ticket)
            if not form.files:
                raise BadRequest("no file in the request: send one or more radiographs as multipart field 'files'")
            if single and len(form.files) != 1:
                raise BadRequest(f"this endpoint takes exactly one file, got {len(form.files)}")
            yield form

    async def run_job(request: Request, fn: Callable[[threading.Event], Any]) -> Any:
        """``fn(cancelled)`` in the model queue; ``cancelled`` is set if the client disconnects."""
        cancelled = threading.Event()
        return await unless_gone(request, jobs.run(fn, cancelled), on_gone=cancelled.set)

    async def run_rows(request: Request, key: tuple[Any, ...], form: Form, run_many: Callable[[Any], Any],
                       age: float | None = None) -> Rows:
        """Rows of ``form``'s films from the model queue, scored with other requests of the same
        ``key`` in shared batches (``run_many`` answers each one); dropped if the client leaves."""
        cancelled = threading.Event()
        job = RowsJob(form.files, cancelled, check_age(age))
        work = jobs.run_batch(key, job, run_many, films=len(form.files))
        return await unless_gone(request, work, on_gone=cancelled.set)

    def fmt_query(default: str = "json") -> Any:
        return Query(default, alias="format", pattern="^(" + "|".join(FORMATS) + ")$",
                     description="json (rows in an object), jsonl (as `cxr predict --format jsonl`) or csv.")

    @v1.get("/models", tags=["models"])
    async def models() -> dict[str, Any]:
        """The loaded models: name, version (sha256 prefix), labels, thresholds, validation metrics from the card."""
        return service.models.summaries()

    @v1.post("/predict", tags=["predict"], openapi_extra=_upload_body(),
             responses={200: {"description": "One row per file, in upload order: file, status, error, then "
                                             "the 18 standard labels (null = not predicted)."}})
    async def predict(
        request: Request,
        model: str | None = Query(None, description="A loaded classifier (default: the first one loaded)."),
        fmt: str = fmt_query(),
        calibrate: bool = Query(True, description="Operating-point calibration (0.5 = the label's threshold); "
                                                  "false = the raw sigmoid."),
        fix_orientation: bool = Query(False, description="Turn films rotated by 90/180/270 degrees upright first."),
    ) -> Response:
        """`cxr predict` on the uploaded films: a bad file costs its own error row, never the request."""
        async with upload(request) as form:
            result = await run_rows(request, ("predict", model, calibrate, fix_orientation), form, lambda many: (
                service.predict_many(many, model=model, calibrate=calibrate, fix_orientation=fix_orientation)))
        return _rows_response(result, fmt)

    @v1.post("/age", tags=["age"], openapi_extra=_upload_body(extra={"age": {
        "type": "number", "description": "Known age in years (one file only); else the DICOM header's, if any."}}))
    async def age(
        request: Request,
        fmt: str = fmt_query(),
        tta: bool = Query(True, description="Average 8 fixed corner views with the plain film and report their spread."),
        fix_orientation: bool = Query(False, description="Turn films rotated by 90/180/270 degrees upright first."),
    ) -> Response:
        """`cxr age` on the uploaded films: CXR-Age, its TTA spread, and the gap to the known age."""
        async with upload(request) as form:
            known = _age_field(form)
            result = await run_rows(request, ("age", tta, fix_orientation), form, lambda many: (
                service.age_many(many, tta=tta, fix_orientation=fix_orientation)), age=known)
        return _rows_response(result, fmt)

    @v1.post("/explain", tags=["explain"], openapi_extra=_upload_body(single=True),
             responses={200: {"content": {"image/png": {}, "application/x-npy": {}, "application/json": {}},
                              "description": "The overlay (PNG) or the map itself in the film's geometry (NPY/JSON)."}})
    async def explain(
        request: Request,
        label: str = Query("top", description="A label the model predicts, or 'top' (its highest score)."),
        method: str = Query("gradcam", pattern="^(" + "|".join(METHODS).replace("+", r"\+") + ")$",
                            description=", ".join(METHODS)),
        fmt: str = Query("png", alias="format", pattern="^(png|npy|json)$", description="png, npy or json."),
        model: str | None = Query(None, description="A loaded classifier (default: the first one loaded)."),
        alpha: float = Query(0.5, ge=0.0, le=1.0, description="Opacity of the colour map at full strength (png)."),
        height: int | None = Query(None, ge=32, le=8192, description="Height of the PNG (default: the film's; never enlarged)."),
        caption: bool = Query(True, description="Caption strip under the PNG (label, score, method)."),
        calibrate: bool = Query(True, description="Report the calibrated score, as cxr predict does."),
        fix_orientation: bool = Query(False, description="Explain the film after the orientation fix."),
    ) -> Response:
        """`cxr explain` on one film; headers X-Cxrkit-Label / -Score / -Has-Evidence describe the map."""
        async with upload(request, single=True) as form:
            picture = await run_job(request, lambda cancelled: service.explain(
                form.files[0], model=model, label=label, method=method, calibrate=calibrate,
                fix_orientation=fix_orientation, fmt=fmt, alpha=alpha, height=height, caption=caption,
                cancelled=cancelled))
        return _picture_response(picture)

    @v1.post("/film", tags=["explain"], openapi_extra=_upload_body(single=True),
             responses={200: {"content": {"image/png": {}}, "description": "The film as read, 8-bit grey."}})
    async def film(
        request: Request,
        height: int | None = Query(1024, ge=32, le=8192, description="At most this tall (never enlarged)."),
        fix_orientation: bool = Query(False, description="Show the film after the orientation fix."),
    ) -> Response:
        """The film as cxrkit reads it (DICOM window, MONOCHROME1 inverted), for viewers that cannot show DICOM."""
        async with upload(request, single=True) as form:
            picture = await run_job(request, lambda cancelled: service.film(
                form.files[0], height=height, fix_orientation=fix_orientation, cancelled=cancelled))
        return _picture_response(picture)

    @v1.post("/export/csv", tags=["predict"],
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"rows": {"type": "array", "items": {"type": "object"}}}}}}}},
             responses={200: {"content": {"text/csv": {}}}})
    async def export_csv(request: Request) -> Response:
        """Rows returned by /v1/predict or /v1/age as the CSV `cxr predict` writes (no model runs)."""
        with admission.enter(declared_length(request), slot=False) as ticket:  # its bytes count too
            body = await read_json(request, limits, ticket)
            rows: list[dict[str, Any]] = body.get("rows", []) if isinstance(body, dict) else []  # columns_of checks them
            text = await asyncio.to_thread(lambda: render_rows(rows, columns_of(rows), "csv"))
        return Response(text, media_type=MEDIA_TYPES["csv"])

    app.include_router(v1)
    return app


def _age_field(form: Form) -> float | None:
    raw = form.fields.get("age", "").strip()
    if not raw:
        return None
    if len(form.files) != 1:
        raise BadRequest("a typed age belongs to one film: send one file with 'age', or none")
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"age must be a number of years, got {raw!r}") from None
