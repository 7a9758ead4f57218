"""Test doubles of the ``Generator`` contract, shared by the tests and the bench scripts.

``FakeGenerator`` replies from a script (fixed replies in turn, or a function of the messages) and
records every call; ``Pieces`` streams one text slowly, word by word, and can fail at the end.
Fake embedders live in ``tests/conftest.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from careerqa.generate.base import Generator


class FakeGenerator(Generator):
    """A scripted generator for tests: fixed replies in turn, or a function of the messages.

    Every call's messages are recorded in ``calls``; replies are streamed word by word (spaces kept)
    so that streaming consumers are exercised. ``max_tokens`` truncates the reply to that many words.
    """

    name = "fake"

    def __init__(self, replies: Sequence[str] | Callable[[list[dict[str, str]]], str]) -> None:
        self._replies: list[str] | None = None if callable(replies) else list(replies)
        self._reply_fn = replies if callable(replies) else None
        self.calls: list[list[dict[str, str]]] = []

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        self.calls.append([dict(m) for m in messages])
        if self._reply_fn is not None:
            reply = self._reply_fn(messages)
        elif self._replies:
            reply = self._replies.pop(0)
        else:
            raise AssertionError("FakeGenerator ran out of scripted replies")
        for s in stop or []:
            if s and s in reply:
                reply = reply[: reply.index(s)]
        pieces = _word_pieces(reply)
        yield from pieces[:max_tokens]


def _word_pieces(text: str) -> list[str]:
    """Split ``text`` into words, each carrying the whitespace before it: ``"".join`` gives ``text`` back."""
    pieces: list[str] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j].isspace():
            j += 1
        while j < len(text) and not text[j].isspace():
            j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


class Pieces(Generator):
    """Streams ``text`` a word at a time with a pause between words, then raises ``error`` if given."""

    def __init__(self, text: str, error: Exception | None = None, pause: float = 0.02) -> None:
        self.text, self.error, self.pause = text, error, pause

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        for word in self.text.split():
            time.sleep(self.pause)
            yield word + " "
        if self.error is not None:
            raise self.error
