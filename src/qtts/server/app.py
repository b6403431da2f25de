"""The HTTP app: ``create_app(settings, engine)``; no work at import time.

Routes translate HTTP to the core (``synthesis``, ``voices``, ``jobs``) and back.  Errors
become OpenAI-style JSON ``{"error": {"message", "type", "code"}}`` in one handler.
Synthesis never runs on the event loop: it runs in the thread pool, or in the embedded
worker thread for jobs.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qtts.engine.holder import Engines
from qtts.errors import QttsError
from qtts.jobs.queue import JobQueue
from qtts.jobs.worker import Worker
from qtts.server.gate import BodyTooLarge, Gate
from qtts.server.state import AppState, state_of
from qtts.settings import Settings
from qtts.voices import VoiceLibrary

if TYPE_CHECKING:
    from qtts.engine.core import Engine
    from qtts.resident.state import EngineState

log = logging.getLogger(__name__)

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
                409: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
                503: "service_unavailable"}


def create_app(settings: Settings, engine: "Engine | Engines | None" = None,
               queue: JobQueue | None = None, resident: "EngineState | None" = None) -> FastAPI:
    """Build the app.  ``engine`` may be a loaded engine (the default model's), the
    ``Engines``, or None (the default model loads in the background at start-up; /ready says
    when; the other served models load on first use).  The embedded worker starts with the
    app unless ``settings.embedded_worker`` is off.  ``resident``: this app is the resident
    engine (``qtts.resident``): the engine routes are added, and any model may be asked for."""
    holder = engine if isinstance(engine, Engines) else Engines(settings, engine, open_models=resident is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        state: AppState = app.state.qtts
        holder.start_loading()
        if settings.embedded_worker:
            worker = Worker(state.queue, holder)
            state.worker_thread = threading.Thread(target=worker.run, args=(state.stop,), name="embedded-worker",
                                                   daemon=True)
            state.worker_thread.start()
        yield
        state.stop.set()
        if state.worker_thread is not None:
            state.worker_thread.join(timeout=30)

    app = FastAPI(title="qtts", version="0.1.0", lifespan=lifespan)
    app.state.qtts = AppState(settings=settings, engines=holder, library=VoiceLibrary(settings.voices_dir),
                              queue=None if resident is not None else queue or JobQueue(settings))
    app.state.resident = resident
    _install_error_handlers(app)

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])

    # Outermost: the key and the body cap are checked before anything reads the body.
    app.add_middleware(Gate, api_key=settings.api_key, max_body_bytes=settings.max_upload_bytes, error_body=error_body)

    from qtts.server import routes_jobs, routes_openai, routes_voices

    app.include_router(routes_openai.router)
    app.include_router(routes_voices.router)
    if resident is None:
        app.include_router(routes_jobs.router)
    else:
        from qtts.server import routes_engine

        app.include_router(routes_engine.router)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    def ready(request: Request) -> JSONResponse:
        state = state_of(request)
        engines = state.engines
        if engines.ready:
            return JSONResponse({"status": "ready", "model": engines.get().model.model_id,
                                 "models": list(engines.model_ids),
                                 "loaded": [e.model.model_id for e in engines.loaded()]})
        error = engines.error
        body = {"status": "failed" if error else "loading"}
        if error:
            body["error"] = error.to_dict()
        return JSONResponse(body, status_code=503)

    @app.get("/v1/batch")
    def batch(request: Request) -> dict[str, Any]:
        """The continuous batch of each loaded model: chunks generating, waiting for a place,
        waiting for their prefill, frame groups being decoded; the cap."""
        models = state_of(request).engines.batch_stats()
        totals = {key: sum(m[key] for m in models.values()) for key in ("active", "waiting", "prefill_queue")}
        decoding = max((m["decode_queue"] for m in models.values()), default=0)  # counted per process
        return {"models": models, **totals, "decode_queue": decoding}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return resources.files("qtts.server").joinpath("static/index.html").read_text(encoding="utf-8")

    return app


def error_body(message: str, status: int, code: str, hint: str = "") -> dict[str, Any]:
    error = {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "code": code}
    if hint:
        error["hint"] = hint
    return {"error": error}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QttsError)
    async def qtts_error(_request: Request, exc: QttsError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.http_status, exc.category, exc.hint),
                            status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(_describe(e) for e in exc.errors())
        return JSONResponse(error_body(f"invalid request: {details}", 400, "invalid_request"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return await qtts_error(_request, exc.error)
        return JSONResponse(error_body(str(exc.detail), exc.status_code, f"http_{exc.status_code}"),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", 500, "internal"), status_code=500)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    return f"{where}: {message}" if where else message
