"""The web service: the chat page, a JSON API and an OpenAI-compatible endpoint over one ``Engine``.

Routes are thin: pydantic validates the request (``api_schemas.py``), the engine runs in a worker
thread, and a ``CareerQAError`` becomes ``{"error": message}`` with the error's HTTP status (on
``/v1/`` routes, OpenAI's ``{"error": {"message", "type", "code"}}``). The engine (index, embedder,
generator) is built and warmed up in the lifespan, never at import; tests pass their own engine to
``create_app`` or override ``get_engine``.

Each request takes the engine's current ``IndexView`` once and answers from it alone, so a reindex
(``POST /reindex`` here, or ``careerqa index`` in another process) swaps the index between requests,
never inside one. Answers go one at a time through a bounded ``GenerationQueue``; searches do not.

Not handled here: TLS, users, rate limiting per client, CORS (none: the page is same-origin).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import openai_compat
from .answering import Turn
from .api_docs import docs_page
from .api_schemas import MAX_BODY_BYTES, ChatRequest, FeedbackRequest, OpenAIChatRequest, SearchRequest
from .config import Settings
from .engine import Engine
from .errors import CareerQAError
from .gaps import log_answer, log_feedback
from .indexing import SyncReport
from .service import Busy, GenerationQueue, check_admin
from .types import Answer, answer_to_dict, hit_to_dict

logger = logging.getLogger("careerqa.api")


def get_engine(request: Request) -> Engine:
    """The app's engine; tests replace it with ``app.dependency_overrides[get_engine]``."""
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def create_app(settings: Settings, engine: Engine | None = None, watch: bool = False) -> FastAPI:
    """The web app. Without ``engine``, one is built from ``settings`` (models loaded) at startup.
    With ``watch``, a thread syncs the index after every change to the corpus (``watch.py``)."""
    page, csp = _chat_page()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        if own:
            app.state.engine = Engine(settings, show_model_progress=False)
        # Load the index (and, for our own engine, the models) before the first request; a failure
        # is logged and left for each request to report, so the page still opens and says why.
        await asyncio.to_thread(_warm_up, app.state.engine, own)
        stop = threading.Event()
        watcher = _start_watcher(app.state.engine, reindex_lock, stop) if watch else None
        yield
        stop.set()
        if watcher is not None:
            await asyncio.to_thread(watcher.join, 5)

    app = FastAPI(
        title="careerqa",
        summary="Answers questions about AI careers from a local corpus, citing its passages.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    queue = GenerationQueue(settings.queue_size, slots=settings.generation_slots)
    app.state.draining = False  # set by POST /drain: /health says 503 so load balancers stop sending
    reindex_lock = threading.Lock()
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(CareerQAError)
    async def user_error(request: Request, exc: CareerQAError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
        return _error(request, str(exc), exc.http_status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # A body that is not UTF-8 comes back in the errors as bytes: show it, never fail on it (500).
        lenient: dict[Any, Callable[[Any], Any]] = {Exception: str, bytes: _decode_leniently}
        detail = jsonable_encoder(errors, custom_encoder=lenient)
        return _error(request, _describe(errors), 422, detail=detail)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(request, str(exc.detail), exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        logger.error("request failed", exc_info=exc)
        return _error(request, "internal error; see the server log", 500)

    @app.get("/", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": csp})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()), headers={"Content-Security-Policy": _DOCS_CSP})

    @app.get(
        "/health",
        summary="Status, index facts and model names; 503 while draining (for load balancers)",
        responses={503: {"description": "draining, or the index or a model is unavailable"}},
    )
    def health(engine: EngineDep) -> JSONResponse:
        view = engine.view()  # a missing or broken index raises: its error status tells the balancer
        manifest = view.store.manifest
        draining = bool(app.state.draining)
        body = {
            "status": "draining" if draining else "ok",
            "ready": not draining,
            "draining": draining,
            "replica": {"pid": os.getpid(), "backend": engine.backend.name},
            "index": {
                "version": view.version,
                "format_version": manifest.format_version,
                "built_at": manifest.built_at,
                "files": len(manifest.files),
                "chunks": len(view.store),
            },
            "models": {"embedder": engine.embedder_name, "generator": _generator_name(engine)},
            "queue": {"pending": queue.pending, "max_waiting": queue.max_waiting, "slots": queue.slots},
        }
        return JSONResponse(body, status_code=503 if draining else 200)

    @app.post("/drain", summary="Stop taking traffic: /health answers 503 (needs the admin token)")
    def drain(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        check_admin(settings.admin_token, authorization, what="draining")
        app.state.draining = True  # requests still get answers; the balancer stops sending them
        return {"status": "draining", "pending": queue.pending}

    @app.post("/search", summary="Passages ranked for a query, as `careerqa search` ranks them")
    def search(body: SearchRequest, engine: EngineDep) -> dict[str, Any]:
        view = engine.view()
        hits = engine.search(body.query, body.top_k, view=view)
        return {"index_version": view.version, "results": [hit_to_dict(h) for h in hits]}

    @app.post(
        "/chat",
        summary="Answer a question with citations (JSON, or server-sent events when streaming)",
        responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "queue full"}},
    )
    async def chat(body: ChatRequest, request: Request, engine: EngineDep) -> Response:
        run = await _AskRun.start(engine, queue, body.question, body.turns(), body.top_k)
        wants_events = body.stream or "text/event-stream" in request.headers.get("accept", "")
        first = await run.next()
        if first[0] == "error":
            raise first[1]  # nothing streamed yet: a proper status, by the handlers above
        if not wants_events:
            while first[0] != "answer":
                first = await run.next()
                if first[0] == "error":
                    raise first[1]
            return JSONResponse(first[1])
        return _event_stream(_chat_events(first, run))

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat completions (streaming or not)")
    async def completions(body: OpenAIChatRequest, engine: EngineDep) -> Response:
        model = body.model or openai_compat.MODEL_ID
        run = await _AskRun.start(engine, queue, body.question(), body.turns(), None, count_tokens=True)
        first = await run.next()
        if first[0] == "error":
            raise first[1]
        if not body.stream:
            while first[0] != "answer":
                first = await run.next()
                if first[0] == "error":
                    raise first[1]
            answer = first[1]
            return JSONResponse(openai_compat.completion(answer, model, answer.pop("usage")))
        return _event_stream(_openai_events(first, run, model))

    @app.get("/v1/models", summary="The one model this server offers (for OpenAI clients)")
    def models() -> dict[str, Any]:
        return openai_compat.models_list()

    @app.post("/reindex", summary="Update the index from the corpus (needs the admin token)")
    def reindex(engine: EngineDep, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        check_admin(settings.admin_token, authorization)
        with reindex_lock:
            report = engine.sync()
            view = engine.view()  # swapped in now; requests that started earlier keep their view
        return {"status": "ok", "index_version": view.version, "report": report.to_dict()}

    @app.post("/feedback", summary="Thumbs up or down for an answer (kept in the question log)")
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        if not settings.log_questions:
            raise FeedbackOff("the question log is off on this server (CAREERQA_LOG_QUESTIONS=1 turns it on)")
        log_feedback(settings.index_dir, body.id, body.vote, settings.question_log_max_bytes)
        return {"status": "ok"}

    return app


class FeedbackOff(CareerQAError):
    http_status = 409


def _start_watcher(engine: Engine, lock: threading.Lock, stop: threading.Event) -> threading.Thread:
    """``serve --watch``: sync in a thread after every change; requests swap to each new version."""
    from .watch import sync_line, watch_corpus

    def sync() -> SyncReport:
        with lock:  # never at the same time as POST /reindex
            return engine.sync()

    def on_sync(result: SyncReport | CareerQAError) -> None:
        if isinstance(result, CareerQAError):
            logger.warning("watch: %s", result)
        elif result.written:
            logger.info("watch: %s", sync_line(result))

    def run() -> None:
        try:
            watch_corpus(engine.settings.corpus_dir, sync, on_sync, stop, engine.settings.watch_quiet_ms)
        except CareerQAError as exc:
            logger.warning("watch: not watching the corpus: %s", exc)
        except Exception:
            logger.exception("watch: the corpus watcher stopped")

    thread = threading.Thread(target=run, name="careerqa-watch", daemon=True)
    thread.start()
    return thread


def _log(engine: Engine, answer: Answer, version: str) -> str | None:
    """Record the answer in the question log when it is on; its id, for feedback."""
    s = engine.settings
    if not s.log_questions:
        return None
    try:
        return log_answer(s.index_dir, answer, version, s.question_log_max_bytes)
    except OSError:
        logger.exception("could not write the question log")
        return None


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, by header or while the body streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            message = f"the request body is over the {self.limit} byte limit"
            await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, f"the request body is over the {self.limit} byte limit")
            return message

        await self.app(scope, limited, send)


class _Cancelled(Exception):
    """Raised inside the worker when the client has gone: stops generating early."""


class _AskRun:
    """One ask in a worker thread. Items on the queue: ("token", str), ("answer", dict), ("error", exc)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancelled = threading.Event()

    @classmethod
    async def start(
        cls,
        engine: Engine,
        queue: GenerationQueue,
        question: str,
        turns: Sequence[Turn],
        top_k: int | None,
        count_tokens: bool = False,
    ) -> _AskRun:
        run = cls()
        view = await asyncio.to_thread(engine.view)  # this request's index version, to the end
        cached = None if turns else engine.cached(question, top_k, view)
        if cached is not None:  # answered before on this index version: no need to queue
            result = {**answer_to_dict(cached), "index_version": view.version}
            result["log_id"] = _log(engine, cached, view.version)
            if count_tokens:
                result["usage"] = _usage(engine.generator.count_tokens, question, cached.text)
            run.put("token", cached.text)
            run.put("answer", result)
            return run
        queue.admit()  # Busy (503) now, before anything is streamed

        def on_text(piece: str) -> None:
            if run.cancelled.is_set():
                raise _Cancelled
            run.put("token", piece)

        def work() -> None:
            try:
                with queue.turn():
                    if run.cancelled.is_set():
                        return
                    answer = engine.ask(question, turns, top_k, on_text=on_text, view=view)
                    result = {**answer_to_dict(answer), "index_version": view.version}
                    result["log_id"] = _log(engine, answer, view.version)
                    if count_tokens:
                        result["usage"] = _usage(engine.generator.count_tokens, question, answer.text)
                        if answer.tokens.get("prompt_tokens"):  # the model's own counts of what it read
                            result["usage"] = _model_usage(answer.tokens)
                run.put("answer", result)
            except _Cancelled:
                pass
            except CareerQAError as exc:
                run.put("error", exc)
            except Exception as exc:  # a bug: keep the traceback in the log, tell the client briefly
                logger.exception("ask failed")
                run.put("error", exc)

        threading.Thread(target=work, name="careerqa-ask", daemon=True).start()
        return run

    def put(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.items.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self.cancelled.set()

    async def next(self) -> tuple[str, Any]:
        return await self.items.get()


def _usage(count: Callable[[str], int], question: str, text: str) -> dict[str, int]:
    prompt, completion = count(question), count(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _model_usage(tokens: dict[str, int]) -> dict[str, int]:
    prompt, completion = tokens.get("prompt_tokens", 0), tokens.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _decode_leniently(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _error_message(exc: Any) -> str:
    return str(exc) if isinstance(exc, CareerQAError) else "internal error; see the server log"


async def _chat_events(first: tuple[str, Any], run: _AskRun) -> AsyncIterator[str]:
    """``delta`` for each piece of text, then ``citations``, then ``end`` with the whole answer."""
    item = first
    try:
        while True:
            kind, value = item
            if kind == "token":
                yield _sse("delta", {"text": value})
            elif kind == "answer":
                yield _sse("citations", {"citations": value["citations"], "answer": value["answer"]})
                yield _sse("end", value)
                return
            else:
                yield _sse("error", {"error": _error_message(value)})
                return
            item = await run.next()
    finally:
        run.cancelled.set()  # the client went away or the answer is out: stop the worker early


async def _openai_events(first: tuple[str, Any], run: _AskRun, model: str) -> AsyncIterator[str]:
    """OpenAI's stream: a role chunk, content chunks, the sources, a final chunk, ``[DONE]``."""
    completion_id, created = openai_compat.new_id()

    def data(payload: object) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def piece(delta: dict[str, str], **extra: Any) -> str:
        return data(openai_compat.chunk(completion_id, created, model, delta, **extra))

    yield piece({"role": "assistant", "content": ""})
    streamed, item = "", first
    try:
        while True:
            kind, value = item
            if kind == "token":
                streamed += value
                yield piece({"content": value})
            elif kind == "answer":
                usage = value.pop("usage")
                tail = openai_compat.revision_text(streamed, value) + openai_compat.sources_text(value)
                if tail:
                    yield piece({"content": tail})
                yield piece(
                    {}, finish_reason="stop", usage=usage, citations=value["citations"], careerqa=value
                )
                yield "data: [DONE]\n\n"
                return
            else:
                yield data(openai_compat.error_body(_error_message(value), 500))
                return
            item = await run.next()
    finally:
        run.cancelled.set()


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _error(
    request: Request,
    message: str,
    status: int,
    headers: dict[str, str] | None = None,
    detail: object = None,
) -> JSONResponse:
    if request.url.path.startswith("/v1/"):
        return JSONResponse(openai_compat.error_body(message, status), status_code=status, headers=headers)
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _generator_name(engine: Engine) -> str:
    """The configured model, or the remote server's model and URL when generation is remote."""
    if engine.settings.generator_url:
        from .remote_generator import chat_completions_url

        return f"{engine.settings.generator_model or engine.settings.generator} @ " + chat_completions_url(
            engine.settings.generator_url
        )
    return engine.settings.generator


def _warm_up(engine: Engine, load_models: bool) -> None:
    try:
        if load_models:
            engine.view().answerer.warm_up()  # index, embedder, generator, and the system prompt read once
        else:
            engine.view()
    except CareerQAError as exc:
        logger.warning("careerqa is not ready: %s", exc)


def _describe(errors: Sequence[Any]) -> str:
    """One readable line for a validation failure, e.g. ``question: String should have ...``."""
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"


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
