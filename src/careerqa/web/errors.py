"""HTTP errors and request limits: every error as JSON (``{"error": message}``, and OpenAI's
``{"error": {"message", "type", "code"}}`` on ``/v1/`` routes), a readable line for a validation
failure, ``Retry-After`` and ``WWW-Authenticate`` where an error carries them, ``BodyLimit``
(413 for a body over the limit, by header or while it streams in), and ``SecurityHeaders``: every
response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and, unless it
sets its own (the pages do), the strictest Content-Security-Policy (``default-src 'none'``), so no
response, JSON holding corpus text included, can run a script or be framed.

Not handled here: the routes (``web/app.py``), what raises (``web/auth.py``, ``web/service.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from careerqa.errors import CareerQAError
from careerqa.web import openai_compat

logger = logging.getLogger("careerqa.web.app")


def add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON: ``{"error": message}``, OpenAI's shape on ``/v1/``; a bug's message
    stays in the log."""

    @app.exception_handler(CareerQAError)
    async def user_error(request: Request, exc: CareerQAError) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})  # WWW-Authenticate on a 401
        if (retry_after := getattr(exc, "retry_after", None)) is not None:  # 503 busy, 429 rate limit
            headers["Retry-After"] = str(retry_after)
        return _error(request, str(exc), exc.http_status, headers or None)

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


DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """Add the security headers to every HTTP response (a pure ASGI middleware: streams pass as they are)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", DEFAULT_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _decode_leniently(data: bytes) -> str:
    return data.decode("utf-8", "replace")


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


def _describe(errors: Sequence[Any]) -> str:
    """One readable line for a validation failure, e.g. ``question: String should have ...``."""
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"
