"""Responses in the shape of OpenAI's chat completions API, so existing clients can talk to careerqa.

The answer text is followed by a "Sources:" list (plain text, so any chat UI shows it), and the
structured citations ride along in an extra ``citations`` field (and the whole careerqa answer in
``careerqa``), which OpenAI clients ignore. Token counts in ``usage`` are the model's own counts of
the question and the answer text.

Not handled here: routing and streaming transport (``web/app.py``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

MODEL_ID = "careerqa"
SOURCE_QUOTE_CHARS = 160


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


def revision_text(text: str) -> str:
    """What to append when checking changed the streamed answer (``events.Revised``): a client
    cannot take back streamed text, so the checked version ``text`` follows it, labelled."""
    return f"\n\n(Checked against the sources, the answer is: {text})"


def completion(answer: dict[str, Any], model: str, usage: dict[str, int]) -> dict[str, Any]:
    completion_id, created = new_id()
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer["answer"] + sources_text(answer)},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
        "citations": answer["citations"],
        "careerqa": answer,
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
