"""The web service: the chat page and a small JSON API over one ``Engine``.

Routes are thin: pydantic validates the request, the engine runs in a worker thread, and a
``CareerQAError`` becomes ``{"error": message}`` with the error's HTTP status. The engine (index,
embedder, generator) is built in the lifespan, never at import, and held on ``app.state``; tests pass
their own engine to ``create_app`` or override ``get_engine``.

Not handled here: authentication, rate limiting, TLS, or answering several questions at once —
llama.cpp runs one context, so asks and searches are serialised by one lock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from .answering import MAX_QUESTION_CHARS
from .config import Settings
from .engine import Engine
from .errors import CareerQAError
from .types import answer_to_dict, hit_to_dict

logger = logging.getLogger("careerqa.api")

MAX_HISTORY_TURNS = 10
MAX_TOP_K = 50


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class HistoryTurn(BaseModel):
    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=10 * MAX_QUESTION_CHARS)


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)

    @field_validator("query")
    @classmethod
    def query_not_blank(cls, value: str) -> str:
        return _not_blank(value)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)

    @field_validator("question")
    @classmethod
    def question_not_blank(cls, value: str) -> str:
        return _not_blank(value)

    def turns(self) -> list[tuple[str, str]]:
        return [(t.question, t.answer) for t in self.history]


def get_engine(request: Request) -> Engine:
    """The app's engine; tests replace it with ``app.dependency_overrides[get_engine]``."""
    engine: Engine = request.app.state.engine
    return engine


def get_lock(request: Request) -> threading.Lock:
    lock: threading.Lock = request.app.state.engine_lock
    return lock


EngineDep = Annotated[Engine, Depends(get_engine)]
LockDep = Annotated[threading.Lock, Depends(get_lock)]


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The web app. Without ``engine``, one is built from ``settings`` (models loaded) at startup."""
    page, csp = _chat_page()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        if own:
            app.state.engine = Engine(settings, show_model_progress=False)
        # Load the index (and, for our own engine, the models) before the first request; a failure
        # is logged and left for each request to report, so the page still opens and says why.
        await asyncio.to_thread(_warm_up, app.state.engine, own)
        yield

    app = FastAPI(title="careerqa", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.engine_lock = threading.Lock()

    @app.exception_handler(CareerQAError)
    async def user_error(request: Request, exc: CareerQAError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        body = {"error": _describe(errors), "detail": jsonable_encoder(errors, custom_encoder=_ENCODERS)}
        return JSONResponse(body, status_code=422)

    @app.get("/", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": csp})

    @app.get("/api/health")
    def health(engine: EngineDep) -> dict[str, Any]:
        # No lock: after warm-up this only reads the loaded index, so it answers during a long ask.
        return {"status": "ok", "chunks": len(engine.retriever.store)}

    @app.post("/api/search")
    def search(body: SearchRequest, engine: EngineDep, lock: LockDep) -> dict[str, Any]:
        with lock:
            hits = engine.search(body.query, body.top_k)
        return {"results": [hit_to_dict(h) for h in hits]}

    @app.post("/api/ask")
    def ask(body: AskRequest, engine: EngineDep, lock: LockDep) -> dict[str, Any]:
        with lock:
            answer = engine.ask(body.question, history=body.turns(), top_k=body.top_k)
        return answer_to_dict(answer)

    @app.post("/api/ask/stream")
    async def ask_stream(body: AskRequest, engine: EngineDep, lock: LockDep) -> Response:
        items = _start_ask(engine, lock, body)
        first = await items.queue.get()
        if first[0] == "error":
            # Nothing streamed yet: answer with a proper status, as /api/ask does.
            if isinstance(first[1], CareerQAError):
                return _error_response(first[1])
            raise first[1]
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(_events(first, items), media_type="text/event-stream", headers=headers)

    return app


class _Cancelled(Exception):
    """Raised inside the worker when the client has gone: stops generating early."""


class _AskItems:
    """What the worker thread hands to the event loop: ("token", str), ("answer", dict), ("error", exc)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancelled = threading.Event()

    def put(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self.cancelled.set()


def _start_ask(engine: Engine, lock: threading.Lock, body: AskRequest) -> _AskItems:
    """Run the blocking ask in a worker thread; its pieces and result arrive on a queue."""
    items = _AskItems(asyncio.get_running_loop())

    def on_text(piece: str) -> None:
        if items.cancelled.is_set():
            raise _Cancelled
        items.put("token", piece)

    def work() -> None:
        try:
            with lock:
                if items.cancelled.is_set():
                    return
                answer = engine.ask(body.question, history=body.turns(), top_k=body.top_k, on_text=on_text)
            items.put("answer", answer_to_dict(answer))
        except _Cancelled:
            pass
        except CareerQAError as exc:
            items.put("error", exc)
        except Exception as exc:  # a bug: keep the traceback in the log, tell the client briefly
            logger.exception("ask failed")
            items.put("error", exc)

    threading.Thread(target=work, name="careerqa-ask", daemon=True).start()
    return items


async def _events(first: tuple[str, Any], items: _AskItems) -> AsyncIterator[str]:
    """Server-sent events: ``token`` for each piece, then one ``answer`` or ``error``."""
    item = first
    try:
        while True:
            kind, value = item
            if kind == "token":
                yield _sse("token", {"text": value})
            elif kind == "answer":
                yield _sse("answer", value)
                return
            else:
                message = str(value) if isinstance(value, CareerQAError) else "internal error; see the log"
                yield _sse("error", {"error": message})
                return
            item = await items.queue.get()
    finally:
        items.cancelled.set()  # the client went away or the answer is out: stop the worker early


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _error_response(exc: CareerQAError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status)


def _warm_up(engine: Engine, load_models: bool) -> None:
    try:
        if load_models:
            engine.answerer.warm_up()  # index, embedder, generator, and the system prompt read once
        else:
            engine.retriever  # noqa: B018
    except CareerQAError as exc:
        logger.warning("careerqa is not ready: %s", exc)


_ENCODERS: dict[Any, Any] = {Exception: str}


def _describe(errors: Sequence[Any]) -> str:
    """One readable line for a validation failure, e.g. ``question: String should have ...``."""
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


def _chat_page() -> tuple[str, str]:
    """The page, and a Content-Security-Policy that allows its one inline script and nothing remote."""
    page = resources.files("careerqa").joinpath("static/chat.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode('utf-8')).digest()).decode()}'" for s in scripts
    )
    csp = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page, csp
