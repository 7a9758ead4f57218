"""The web service: the chat page, a JSON API and an OpenAI-compatible endpoint over one ``Engine``.

Routes are thin: pydantic validates the request (``web/schemas.py``), the engine runs in worker
threads, an answer's events (``service.served_events``) become JSON or a stream (``web/streams.py``),
and a ``CareerQAError`` becomes JSON with the error's HTTP status (``web/errors.py``). The engine
(index, embedder, generator) is built and warmed up in the lifespan, never at import; tests pass their
own engine to ``create_app`` or override ``get_engine``. ``/mcp`` is the MCP server
(``web/mcp_server.py``) over the same engine and queue.

Each request takes the engine's current ``IndexView`` once and answers from it alone, so a reindex
(``POST /reindex`` here, or ``careerqa index`` in another process) swaps the index between requests,
never inside one. Answers go one at a time through a bounded ``GenerationQueue``; searches do not.

Not handled here: error bodies and the body limit (``web/errors.py``), API keys and their rate limit
(``web/auth.py``), TLS, CORS (none: the page is same-origin).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.errors import CareerQAError
from careerqa.evals.gaps import log_feedback
from careerqa.index.sync import SyncReport
from careerqa.types import hit_to_dict
from careerqa.web import openai_compat
from careerqa.web.auth import ApiGuard, KeyRing, check_admin
from careerqa.web.docs import docs_page
from careerqa.web.documents import MAX_CLAIM_CHARS, MAX_CLAIMS, document_view
from careerqa.web.errors import BodyLimit, SecurityHeaders, add_error_handlers
from careerqa.web.schemas import (
    MAX_BODY_BYTES,
    ChatRequest,
    FeedbackRequest,
    OpenAIChatRequest,
    SearchRequest,
)
from careerqa.web.service import GenerationQueue, served_events
from careerqa.web.streams import (
    OpenAIOptions,
    chat_events,
    event_stream,
    first_shown,
    openai_events,
    openai_text_events,
    whole_reply,
)
from careerqa.web.tasks import task_reply

logger = logging.getLogger("careerqa.web.app")


def get_engine(request: Request) -> Engine:
    """The app's engine; tests replace it with ``app.dependency_overrides[get_engine]``."""
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def _key_check(guard: ApiGuard) -> Any:
    """The dependency of the question routes: a known API key when keys are configured (``web/auth.py``)."""

    def require_key(
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> None:
        guard.check(authorization, x_api_key)

    return Depends(require_key)


def create_app(settings: Settings, engine: Engine | None = None, watch: bool = False) -> FastAPI:
    """The web app. Without ``engine``, one is built from ``settings`` (models loaded) at startup.
    With ``watch``, a thread syncs the index after every change to the corpus (``index/watch.py``)."""
    reindex_lock = threading.Lock()
    app = FastAPI(
        title="careerqa",
        summary="Answers questions about AI careers from a local corpus, citing its passages.",
        lifespan=_lifespan(settings, engine, watch, reindex_lock),
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    queue = GenerationQueue(settings.queue_size, slots=settings.generation_slots)
    app.state.draining = False  # set by POST /drain: /health says 503 so load balancers stop sending
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(SecurityHeaders)  # outermost: error bodies get the headers too
    keyed = [_key_check(ApiGuard(KeyRing.parse(settings.api_keys), settings.api_rate_per_minute))]
    add_error_handlers(app)
    _add_pages(app)
    _add_status_routes(app, settings, queue, keyed)
    _add_answer_routes(app, queue, keyed)
    _add_document_route(app, keyed)
    _add_admin_routes(app, settings, reindex_lock, keyed)
    _add_mcp(app, settings, queue)
    return app


def _add_document_route(app: FastAPI, keyed: list[Any]) -> None:
    @app.get(
        "/documents/{doc_id}",
        summary="A corpus document as the index read it, a cited passage and its supporting sentences",
        responses={404: {"description": "no such document or passage"}, 409: {"description": "changed"}},
        dependencies=keyed,
    )
    async def document(
        doc_id: Annotated[str, PathParam(pattern="^[0-9a-f]{16}$", description="A hit's document_id.")],
        engine: EngineDep,
        chunk: Annotated[str | None, Query(max_length=64, description="A passage's chunk_id.")] = None,
        claim: Annotated[
            list[str] | None, Query(max_length=MAX_CLAIMS, description="Answer sentences citing it.")
        ] = None,
    ) -> dict[str, Any]:
        """The document's cleaned text, its PDF pages, the passage ``chunk`` and, for each ``claim``,
        the passage sentence to highlight, all as character spans of the text (``web/documents.py``)."""
        claims = [c[:MAX_CLAIM_CHARS] for c in claim or []]
        return await anyio.to_thread.run_sync(document_view, engine, doc_id, chunk, claims)


def _add_mcp(app: FastAPI, settings: Settings, queue: GenerationQueue) -> None:
    """``careerqa mcp``'s server at ``/mcp``, over this app's engine and queue (``web/mcp_server.py``)."""
    from careerqa.web.mcp_server import mount_mcp  # the MCP SDK loads with an app, not with this module

    mount_mcp(app, settings, queue)


def _lifespan(
    settings: Settings, engine: Engine | None, watch: bool, reindex_lock: threading.Lock
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        if own:
            app.state.engine = Engine(settings, show_model_progress=False)
        # Load the index (and, for our own engine, the models) before the first request; a failure
        # is logged and left for each request to report, so the page still opens and says why.
        await anyio.to_thread.run_sync(_warm_up, app.state.engine, own)
        if own:  # the passage caches catch up with the index between answers (engine/caches.py)
            app.state.engine.caches.start()
        stop = threading.Event()
        watcher = _start_watcher(app.state.engine, reindex_lock, stop) if watch else None
        yield
        stop.set()
        if watcher is not None:
            await anyio.to_thread.run_sync(watcher.join, 5)
        await anyio.to_thread.run_sync(app.state.engine.caches.stop)

    return lifespan


def _add_pages(app: FastAPI) -> None:
    page, csp = _chat_page()

    @app.get("/", include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": csp})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()), headers={"Content-Security-Policy": _DOCS_CSP})


def _add_status_routes(app: FastAPI, settings: Settings, queue: GenerationQueue, keyed: list[Any]) -> None:
    @app.get(
        "/health",
        summary="Status, index facts and model names; 503 while draining (for load balancers)",
        responses={503: {"description": "draining, or the index or a model is unavailable"}},
    )
    def health(engine: EngineDep) -> JSONResponse:
        draining = bool(app.state.draining)
        body = {
            "status": "draining" if draining else "ok",
            "ready": not draining,
            "draining": draining,
            "replica": {"pid": os.getpid(), "backend": engine.backend.name},
            # a missing or broken index raises: its error status tells the balancer
            "index": _index_facts(engine),
            "models": {"embedder": engine.embedder_name, "generator": _generator_name(engine)},
            "queue": {"pending": queue.pending, "max_waiting": queue.max_waiting, "slots": queue.slots},
            "passage_caches": engine.caches.status(),
        }
        return JSONResponse(body, status_code=503 if draining else 200)

    @app.post("/drain", summary="Stop taking traffic: /health answers 503 (needs the admin token)")
    def drain(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        check_admin(settings.admin_token, authorization, what="draining")
        app.state.draining = True  # requests still get answers; the balancer stops sending them
        return {"status": "draining", "pending": queue.pending}

    @app.post(
        "/search", summary="Passages ranked for a query, as `careerqa search` ranks them", dependencies=keyed
    )
    def search(body: SearchRequest, engine: EngineDep) -> dict[str, Any]:
        view = engine.view()
        hits = engine.search(body.query, body.top_k, view=view)
        return {"index_version": view.version, "results": [hit_to_dict(h) for h in hits]}


def _add_answer_routes(app: FastAPI, queue: GenerationQueue, keyed: list[Any]) -> None:
    @app.post(
        "/chat",
        summary="Answer a question with citations (JSON, or server-sent events when streaming)",
        responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "queue full"}},
        dependencies=keyed,
    )
    async def chat(body: ChatRequest, request: Request, engine: EngineDep) -> Response:
        gone = threading.Event()  # set when the client hangs up before the answer starts (Stop)
        events = served_events(engine, queue, body.question, body.turns(), body.top_k, cancelled=gone)
        if not (body.stream or "text/event-stream" in request.headers.get("accept", "")):
            return JSONResponse(await whole_reply(events))
        first = await first_shown(events, request, gone)  # an error before any text is a proper status
        return event_stream(chat_events(first, events))

    @app.post(
        "/v1/chat/completions",
        summary="OpenAI-compatible chat completions (streaming or not)",
        dependencies=keyed,
    )
    async def completions(body: OpenAIChatRequest, request: Request, engine: EngineDep) -> Response:
        body.check_supported()
        model = body.model or openai_compat.MODEL_ID
        if body.task():  # a client's title, tag or follow-up prompt: answered at once, no model
            content = task_reply(body.question())
            if not body.stream:
                return JSONResponse(openai_compat.task_completion(content, model))
            return event_stream(openai_text_events(content, model, body.include_usage()))
        gone = threading.Event()
        events = served_events(
            engine, queue, body.question(), body.turns(), None, count_tokens=True, cancelled=gone
        )
        options = OpenAIOptions(body.shape(), engine.generator.count_tokens, body.include_usage())
        if not body.stream:
            reply = await whole_reply(events)
            usage = reply.pop("usage")
            content, finish = options.shape.apply(openai_compat.content_text(reply), options.count)
            return JSONResponse(openai_compat.completion(reply, model, usage, content, finish))
        first = await first_shown(events, request, gone)
        return event_stream(openai_events(first, events, model, options))

    @app.get(
        "/v1/models", summary="The one model this server offers (for OpenAI clients)", dependencies=keyed
    )
    def models() -> dict[str, Any]:
        return openai_compat.models_list()


def _add_admin_routes(
    app: FastAPI, settings: Settings, reindex_lock: threading.Lock, keyed: list[Any]
) -> None:
    @app.post("/reindex", summary="Update the index from the corpus (needs the admin token)")
    def reindex(engine: EngineDep, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        check_admin(settings.admin_token, authorization)
        with reindex_lock:
            report = engine.sync()
            view = engine.view()  # swapped in now; requests that started earlier keep their view
        return {"status": "ok", "index_version": view.version, "report": report.to_dict()}

    @app.post(
        "/feedback", summary="Thumbs up or down for an answer (kept in the question log)", dependencies=keyed
    )
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        if not settings.log_questions:
            raise FeedbackOff("the question log is off on this server (CAREERQA_LOG_QUESTIONS=1 turns it on)")
        log_feedback(settings.index_dir, body.id, body.vote, settings.question_log_max_bytes)
        return {"status": "ok"}


def _index_facts(engine: Engine) -> dict[str, Any]:
    view = engine.view()
    manifest = view.store.manifest
    assert manifest is not None  # a served version is a committed one
    return {
        "version": view.version,
        "format_version": manifest.format_version,
        "built_at": manifest.built_at,
        "files": len(manifest.files),
        "chunks": len(view.store),
    }


class FeedbackOff(CareerQAError):
    http_status = 409


def _start_watcher(engine: Engine, lock: threading.Lock, stop: threading.Event) -> threading.Thread:
    """``serve --watch``: sync in a thread after every change; requests swap to each new version."""
    from careerqa.index.watch import sync_line, watch_corpus

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


def _generator_name(engine: Engine) -> str:
    """The configured model, or the remote server's model and URL when generation is remote."""
    if engine.settings.generator_url:
        from careerqa.generate.remote import chat_completions_url

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


_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"


def _chat_page() -> tuple[str, str]:
    """The page, and a Content-Security-Policy that allows its one inline script and nothing remote."""
    page = resources.files("careerqa.web").joinpath("static/chat.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode('utf-8')).digest()).decode()}'" for s in scripts
    )
    csp = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page, csp
