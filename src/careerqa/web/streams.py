"""An ask's events (``service.served_events``) as HTTP responses: the whole JSON reply, the ``/chat``
event stream, and OpenAI's chunk stream.

The events come from a blocking iterator (the model generates in it), so each item is pulled in a
worker thread; when the client goes, the iterator is closed, also in a worker thread, which closes
the model's stream and gives back the generation slot. Before the first text (waiting in line,
retrieving, the held-back start of an answer) ``first_shown`` watches the connection and sets the
ask's ``cancelled`` event when the client hangs up. The ``/chat`` wire format: ``delta`` events
with text, then ``citations`` and ``end`` (the whole answer, which the page shows in place of the
deltas), or ``error``. The OpenAI stream cannot be revised, so it sends the draft as reasoning and
the checked answer once, as its content (``openai_events``). Not handled here: routing and status
codes (``web/app.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse

from careerqa.errors import CareerQAError
from careerqa.events import Event, Retrieved, Revised, Text
from careerqa.web import openai_compat
from careerqa.web.service import Reply

logger = logging.getLogger("careerqa.web.app")
Served = Event | Reply  # what ``served_events`` yields
_HANGUP_POLL_S = 0.05  # how often a question that has not started looks whether its client is still there


async def _pull(events: Iterator[Served]) -> Served | None:
    """The next item of a blocking iterator, taken in a worker thread; None at its end. Cancelling
    (the client left) waits for the item being made, so the iterator can then be closed."""
    return await anyio.to_thread.run_sync(next, events, None)


async def _close(events: Generator[Served, None, None]) -> None:
    """Close the iterator in a worker thread, even while cancelled: this closes the model's stream
    and gives back the generation slot."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(events.close)


async def whole_reply(events: Iterator[Served]) -> dict[str, Any]:
    """Run the ask to its end in one worker thread; the reply body."""

    def run() -> dict[str, Any]:
        last = None
        for item in events:
            last = item
        assert isinstance(last, Reply)
        return last.body

    return await anyio.to_thread.run_sync(run)


async def first_shown(
    events: Iterator[Served], request: Request | None = None, cancelled: threading.Event | None = None
) -> Served | None:
    """The first item a stream sends (text, or the reply); an error before it is raised here. With
    ``request`` and ``cancelled`` (the event given to ``served_events``), a hang-up meanwhile sets it."""
    if request is None or cancelled is None:
        return await _first(events)
    error: Exception | None = None
    async with anyio.create_task_group() as watchers:
        watchers.start_soon(_watch_hangup, request, cancelled)
        try:
            item = await _first(events)
        except Exception as exc:  # raised as itself, not in the task group's ExceptionGroup
            error = exc
        finally:
            watchers.cancel_scope.cancel()
    if error is not None:
        raise error
    return item


async def _first(events: Iterator[Served]) -> Served | None:
    item = await _pull(events)
    while isinstance(item, Retrieved):
        item = await _pull(events)
    return item


async def _watch_hangup(request: Request, cancelled: threading.Event) -> None:
    while not await request.is_disconnected():
        await anyio.sleep(_HANGUP_POLL_S)
    cancelled.set()


async def chat_events(first: Served | None, events: Generator[Served, None, None]) -> AsyncIterator[str]:
    """``delta`` for each piece of text, ``revised`` (the checked text) when checking changed what was
    streamed, then ``citations``, then ``end`` with the whole answer (which the page shows)."""
    item = first
    try:
        while item is not None:
            if isinstance(item, Text):
                yield _sse("delta", {"text": item.text})
            elif isinstance(item, Revised):
                yield _sse("revised", {"text": item.text})
            elif isinstance(item, Reply):
                yield _sse("citations", {"citations": item.body["citations"], "answer": item.body["answer"]})
                yield _sse("end", item.body)
            item = await _pull(events)
    except Exception as exc:
        yield _sse("error", {"error": _streamed_error(exc)})
    finally:
        await _close(events)  # the client went away or the answer is out: stop the model early


async def openai_events(
    first: Served | None,
    events: Generator[Served, None, None],
    model: str,
    options: OpenAIOptions,
) -> AsyncIterator[str]:
    """OpenAI's stream, for clients that cannot take back what they were sent: a role chunk; the
    model's text as it is written, as ``reasoning_content`` deltas (a client that shows reasoning
    shows the draft live, the others ignore it); once checked, the answer and its sources as
    ``content``, once, shaped by the client's ``stop`` and ``max_tokens``; the final chunk (``usage``
    in a chunk of its own when ``include_usage`` asks); ``[DONE]``. The concatenated ``content``
    deltas are the checked answer and its sources, exactly."""
    completion_id, created = openai_compat.new_id()

    def piece(delta: dict[str, str], **extra: Any) -> str:
        return _data(openai_compat.chunk(completion_id, created, model, delta, **extra))

    yield piece({"role": "assistant", "content": ""})
    item = first
    try:
        while item is not None:
            if isinstance(item, Text):
                yield piece({"reasoning_content": item.text})
            elif isinstance(item, Reply):
                body = item.body
                usage = body.pop("usage")
                content, finish = options.shape.apply(openai_compat.content_text(body), options.count)
                yield piece({"content": content})
                at_end = {} if options.include_usage else {"usage": usage}
                yield piece({}, finish_reason=finish, citations=body["citations"], careerqa=body, **at_end)
                if options.include_usage:
                    yield _data(openai_compat.usage_chunk(completion_id, created, model, usage))
                yield "data: [DONE]\n\n"
            item = await _pull(events)
    except Exception as exc:
        yield _data(openai_compat.error_body(_streamed_error(exc), 500))
    finally:
        await _close(events)


async def openai_text_events(content: str, model: str, include_usage: bool) -> AsyncIterator[str]:
    """A stream of one ready reply (a client's background task, ``web/tasks.py``): no model ran."""
    completion_id, created = openai_compat.new_id()
    usage = openai_compat.NO_USAGE
    for delta in ({"role": "assistant", "content": ""}, {"content": content}):
        yield _data(openai_compat.chunk(completion_id, created, model, delta))
    at_end = {} if include_usage else {"usage": usage}
    yield _data(openai_compat.chunk(completion_id, created, model, {}, finish_reason="stop", **at_end))
    if include_usage:
        yield _data(openai_compat.usage_chunk(completion_id, created, model, usage))
    yield "data: [DONE]\n\n"


@dataclass(frozen=True)
class OpenAIOptions:
    """What an OpenAI client asked of its reply: ``shape`` (stop, max_tokens) with the model's token
    ``count``, and whether ``usage`` comes in a chunk of its own (``stream_options.include_usage``)."""

    shape: openai_compat.Shape
    count: Callable[[str], int]
    include_usage: bool = False


def _streamed_error(exc: Exception) -> str:
    """What a stream says about an error after it started: a bug's message stays in the log."""
    if isinstance(exc, CareerQAError):
        return str(exc)
    logger.error("ask failed", exc_info=exc)
    return "internal error; see the server log"


def _data(payload: object) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
