"""An ask's events (``service.served_events``) as HTTP responses: the whole JSON reply, the ``/chat``
event stream, and OpenAI's chunk stream.

The events come from a blocking iterator (the model generates in it), so each item is pulled in a
worker thread; when the client goes, the iterator is closed, also in a worker thread, which closes
the model's stream and gives back the generation slot. The ``/chat`` wire format: ``delta`` events
with text, then ``citations`` and ``end`` (the whole answer, which the page shows in place of the
deltas), or ``error``. Not handled here: routing and status codes (``web/app.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse

from careerqa.errors import CareerQAError
from careerqa.events import Event, Retrieved, Revised, Text
from careerqa.web import openai_compat
from careerqa.web.service import Reply

logger = logging.getLogger("careerqa.web.app")
Served = Event | Reply  # what ``served_events`` yields


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


async def first_shown(events: Iterator[Served]) -> Served | None:
    """The first item a stream sends (text, or the reply); an error before it is raised here."""
    item = await _pull(events)
    while isinstance(item, Retrieved):
        item = await _pull(events)
    return item


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
    first: Served | None, events: Generator[Served, None, None], model: str
) -> AsyncIterator[str]:
    """OpenAI's stream: a role chunk, content chunks, the checked answer when it differs from the
    streamed text, the sources, a final chunk, ``[DONE]``."""
    completion_id, created = openai_compat.new_id()

    def piece(delta: dict[str, str], **extra: Any) -> str:
        return _data(openai_compat.chunk(completion_id, created, model, delta, **extra))

    yield piece({"role": "assistant", "content": ""})
    revision, item = "", first
    try:
        while item is not None:
            if isinstance(item, Text):
                yield piece({"content": item.text})
            elif isinstance(item, Revised):
                revision = openai_compat.revision_text(item.text)  # sent with the sources
            elif isinstance(item, Reply):
                body = item.body
                usage = body.pop("usage")
                if tail := revision + openai_compat.sources_text(body):
                    yield piece({"content": tail})
                yield piece({}, finish_reason="stop", usage=usage, citations=body["citations"], careerqa=body)
                yield "data: [DONE]\n\n"
            item = await _pull(events)
    except Exception as exc:
        yield _data(openai_compat.error_body(_streamed_error(exc), 500))
    finally:
        await _close(events)


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
