"""What the steps of answering one question share: the question's ``Run`` (what retrieval found, what
the user was shown, the clock, and the one place an ``Answer`` is made), the model's ``Draft``, its
``Checked`` sentences, and ``Parts``, the answerer's parts that checking and the retry read.

Not handled here: the steps themselves (``answer/answerer.py`` drives them, ``answer/checking.py``
verifies and shapes a draft, ``answer/retry.py`` answers again), nor the prompts' text
(``generate/prompts.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from careerqa.answer.focus import FocusIndex
from careerqa.answer.form import place_markers
from careerqa.answer.grounding import SentenceSupport, Verifier
from careerqa.config import Settings
from careerqa.generate.base import Generator
from careerqa.generate.prompts import ABSTAIN_TEXT, can_show, is_abstention
from careerqa.retrieve.hybrid import Retriever
from careerqa.text.citations import renumber
from careerqa.types import Answer, Citation, Hit

REFUSAL_CHECK_CHARS = 120  # a draft is a refusal when its start says so (``is_abstention``)

T = TypeVar("T")


class Parts(Protocol):
    """The answerer's parts, read at each use (a caller may swap its ``settings``)."""

    settings: Settings
    retriever: Retriever
    generator: Generator
    verifier: Verifier

    @property
    def focus_index(self) -> FocusIndex: ...


def is_refusal(draft: str) -> bool:
    """Does the model's draft say the passages do not answer (judged on its start)?"""
    return is_abstention(draft[:REFUSAL_CHECK_CHARS])


def elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


@dataclass(frozen=True)
class Draft:
    """The model's answer as streamed: its text (markers numbered by first mention), the prompt
    passage of each number, and the end that was not shown yet."""

    text: str
    order: list[int]
    tail: str


@dataclass(frozen=True)
class Checked:
    """Verified sentences: the passage behind each display number, every sentence's check, and the
    sentences kept (supported, and after shaping, on target)."""

    by_display: dict[int, Hit]
    checks: list[SentenceSupport]
    kept: list[str]


@dataclass
class Run:
    """One question on its way through the stages: what they found, what the user was shown, the clock."""

    question: str
    standalone: str = ""
    hits: tuple[Hit, ...] = ()
    draft: str | None = None  # the model's text before verification
    tokens: dict[str, int] = field(default_factory=dict)  # the model's prompt and completion counts
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    shown: str = ""  # the text yielded so far
    held: str = ""  # text held back while it could still become a refusal

    def timed(self, name: str, stage: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        result = stage(*args)
        self.timings[name] = elapsed_ms(started)
        return result

    def show(self, text: str) -> str:
        """What of ``text`` the user may see now: the start of an answer is held back until it can no
        longer become a refusal (``can_show``); after that, everything."""
        if self.shown:
            self.shown += text
            return text
        self.held += text
        if not can_show(self.held):
            return ""
        self.shown, self.held = self.held, ""
        return self.shown

    def release(self, tail: str) -> str:
        """The held text and ``tail``, shown when the whole draft is not a refusal."""
        rest, self.held = self.held + tail, ""
        self.shown += rest
        return rest

    def answer(self, text: str, citations: tuple[Citation, ...], **fields: Any) -> Answer:
        """The one place an ``Answer`` is made: what the run found, and the total time."""
        self.timings["total"] = elapsed_ms(self.started)
        return Answer(
            question=self.question,
            text=text,
            abstained=fields.pop("abstained", False),
            citations=citations,
            retrieved=self.hits,
            timings_ms=self.timings,
            standalone_question=self.standalone if self.standalone != self.question else None,
            draft=self.draft,
            tokens=self.tokens,
            **fields,
        )

    def abstained(self, reason: str, sentences_total: int = 0) -> Answer:
        return self.answer(
            ABSTAIN_TEXT, (), abstained=True, abstain_reason=reason, sentences_total=sentences_total
        )

    def answered(self, checked: Checked) -> Answer:
        """The checked sentences as the answer, citations renumbered 1.. by first mention."""
        text, order = renumber(" ".join(checked.kept), checked.by_display)
        citations = tuple(Citation(n=i + 1, hit=checked.by_display[old]) for i, old in enumerate(order))
        return self.answer(
            place_markers(text),
            citations,
            sentences_total=len(checked.checks),
            sentences_supported=len(checked.kept),
        )
