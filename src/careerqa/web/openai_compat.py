"""Responses in the shape of OpenAI's chat completions API, so existing clients can talk to careerqa.

The answer text is followed by a "Sources:" list (plain text, so any chat UI shows it), and the
structured citations ride along in an extra ``citations`` field (and the whole careerqa answer in
``careerqa``), which OpenAI clients ignore. Token counts in ``usage`` are the model's own counts of
the question and the answer text. The client's ``stop`` and ``max_tokens`` shape what it is sent
(``Shape``); ``plain_answer`` turns such a message, sent back as history, into the answer's text.

Not handled here: routing and streaming transport (``web/app.py``, ``web/streams.py``), a client's
background task prompts (``web/tasks.py``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from careerqa.text.citations import MARKER

MODEL_ID = "careerqa"
SOURCE_QUOTE_CHARS = 160
NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
REVISION_LEAD = "(Checked against the sources, the answer is: "
# What ``plain_answer`` takes off a message careerqa sent: the sources trailer (``sources_text``),
# a reasoning block a client kept in the message (``<think>``, Open WebUI's ``<details>``).
_SOURCES_TRAILER = re.compile(r"\n\s*Sources:\s*\n\s*\[\d+\].*\Z", re.DOTALL)
_REASONING = re.compile(r"<(think|details)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


def new_id() -> tuple[str, int]:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())


def sources_text(answer: dict[str, Any]) -> str:
    """The trailer after the answer text: one line per cited passage."""
    parts: list[str] = []
    citations = answer.get("citations") or []
    if citations:
        lines = ["Sources:"]
        for c in citations:
            where = c.get("label") or (f"{c['source']} › {c['section']}" if c.get("section") else c["source"])
            lines.append(f"[{c['n']}] {where}: “{_clip(c['text'])}”")
        parts.append("\n".join(lines))
    return "\n\n" + "\n\n".join(parts) if parts else ""


def plain_answer(content: str) -> str:
    """An assistant message of the history as the answer's plain text: a careerqa answer comes back
    as the client was sent it, so the ``Sources:`` trailer, ``[n]`` markers, a kept reasoning block
    and an older careerqa's "(Checked against the sources, the answer is: …)" note (whose text is
    the answer) are taken off; any other assistant text only loses its markers."""
    text = _REASONING.sub("", content)
    text = _SOURCES_TRAILER.sub("", text)
    if (at := text.rfind(REVISION_LEAD)) >= 0:
        text = text[at + len(REVISION_LEAD) :].strip().removesuffix(")")
    text = MARKER.sub("", text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", " ".join(text.split()))


@dataclass(frozen=True)
class Shape:
    """What the client asked of the text it is sent: ``stop`` sequences (the content ends before the
    first), ``max_tokens`` (the content is cut to that many tokens, at a word)."""

    stop: tuple[str, ...] = ()
    max_tokens: int | None = None

    def apply(self, content: str, count: Callable[[str], int]) -> tuple[str, str]:
        """``content`` as the client asked for it, and the ``finish_reason``."""
        cuts = [content.index(s) for s in self.stop if s and s in content]
        if cuts:
            content = content[: min(cuts)]
        if self.max_tokens is None or count(content) <= self.max_tokens:
            return content, "stop"
        words = re.findall(r"\s*\S+", content)
        low, high = 0, len(words)  # the most words whose text fits: count() grows with the words
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if count("".join(words[:mid])) <= self.max_tokens else (low, mid - 1)
        return "".join(words[:low]), "length"


def content_text(answer: dict[str, Any]) -> str:
    """What the client shows: the answer text, then its sources."""
    return str(answer["answer"]) + sources_text(answer)


def completion(
    answer: dict[str, Any],
    model: str,
    usage: dict[str, int],
    content: str | None = None,
    finish: str = "stop",
) -> dict[str, Any]:
    """The whole reply; ``content`` (default ``content_text``) is what the message says."""
    said = content_text(answer) if content is None else content
    return {**_completion(said, model, usage, finish), "citations": answer["citations"], "careerqa": answer}


def task_completion(content: str, model: str) -> dict[str, Any]:
    """The reply to a client's background task (``web/tasks.py``): no model ran, nothing is cited."""
    return {**_completion(content, model, NO_USAGE, "stop"), "citations": []}


def _completion(content: str, model: str, usage: dict[str, int], finish: str) -> dict[str, Any]:
    completion_id, created = new_id()
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
        "usage": usage,
    }


def chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


def usage_chunk(completion_id: str, created: int, model: str, usage: dict[str, int]) -> dict[str, Any]:
    """The last chunk of a stream whose client asked ``stream_options.include_usage``: no choices."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    }


def error_body(message: str, status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 503:
        kind = "overloaded_error"
    return {"error": {"message": message, "type": kind, "code": status}}


def models_list() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "careerqa"}],
    }


def _clip(text: str, limit: int = SOURCE_QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0] + " …"
