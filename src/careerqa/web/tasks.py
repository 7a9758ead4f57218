"""A chat client's own background tasks, told apart from questions about the corpus and answered
briefly without the model.

Chat clients send the model prompts of their own around a conversation: a title for the chat, tags,
suggested follow-ups, search queries. Open WebUI's, for example, open with a ``### Task:`` heading,
quote the conversation in a ``<chat_history>`` block and ask for JSON ("JSON format:
{ "title": … }"). careerqa answers only from its corpus, so such a prompt is recognised by that
structure (a task heading or a chat-history block, not one client's wording) and answered at once,
without the model or the generation queue: a title from the first question, ``["careers"]`` for
tags, an empty list for anything else asked as a list (follow-ups, queries), "" for other strings.

Not handled here: the request's validation (``web/schemas.py``), the response shapes
(``web/openai_compat.py``).
"""

from __future__ import annotations

import json
import re

MAX_TASK_CHARS = 48 * 1024  # a task prompt quotes the conversation: longer than a question may be
TITLE_WORDS = 6
TAGS = ["careers"]
DEFAULT_TITLE = "Careers question"

_TASK_HEADING = re.compile(r"^\s*#{1,6}\s*task\s*:", re.IGNORECASE | re.MULTILINE)
_HISTORY = re.compile(r"<chat_history>(.*?)(?:</chat_history>|\Z)", re.IGNORECASE | re.DOTALL)
_OUTPUT_HEADING = re.compile(r"^\s*#{1,6}\s*output\b", re.IGNORECASE | re.MULTILINE)
_JSON_FIELD = re.compile(r'\{\s*"([A-Za-z_][\w-]*)"\s*:\s*([\["])')
_USER_LINE = re.compile(r"^\s*(?:user|human)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def is_task(prompt: str) -> bool:
    """Whether ``prompt`` is a client's background task: a ``### Task:`` heading or a quoted
    ``<chat_history>``."""
    return bool(_TASK_HEADING.search(prompt) or _HISTORY.search(prompt))


def task_reply(prompt: str) -> str:
    """The reply to a task prompt: the JSON it asks for (its first ``{"key": …}`` example, after an
    ``### Output`` heading when there is one), or the chat's title when it asks for no JSON."""
    title = _title(prompt)
    output = _OUTPUT_HEADING.search(prompt)
    field = _JSON_FIELD.search(prompt, output.start() if output else 0) or _JSON_FIELD.search(prompt)
    if field is None:
        return title
    key, opener = field.group(1), field.group(2)
    value: object
    if opener == "[":
        value = TAGS if "tag" in key.lower() else []
    else:
        value = title if "title" in key.lower() else ""
    return json.dumps({key: value}, ensure_ascii=False)


def _title(prompt: str) -> str:
    """The first question of the quoted conversation, cut to a few words."""
    history = _HISTORY.search(prompt)
    quoted = history.group(1) if history else ""
    first = _USER_LINE.search(quoted)
    line = first.group(1) if first else next((ln for ln in quoted.splitlines() if ln.strip()), "")
    words = line.split()[:TITLE_WORDS]
    return " ".join(words).rstrip("?!.,;:") or DEFAULT_TITLE
