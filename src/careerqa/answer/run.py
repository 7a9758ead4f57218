"""What the steps of answering one question share: the question's ``Run`` (what retrieval found, what
the user was shown, the clock, and the one place an ``Answer`` is made), the ``Question`` as the
checks read it, the model's ``Draft``, its ``Checked`` sentences, and ``Parts``, the answerer's parts
that the checks read.

What is shown and what is answered pass the relay rule (``answer/relay.py``): a streamed sentence that
relays something the question did not ask about is held back (``RelayGuard``), and such a sentence
is dropped from the answer made from checked sentences (``Run.answered``), with its reason when none
is left.

Not handled here: the steps themselves (``answer/answerer.py`` drives them, ``answer/pipeline.py``
checks a draft and answers again, ``answer/checking.py`` verifies and shapes it), nor the prompts' text
(``generate/prompts.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from careerqa.answer.focus import Focus, FocusIndex
from careerqa.answer.form import place_markers
from careerqa.answer.grounding import SentenceSupport, Verifier
from careerqa.answer.relay import Relay, RelayGuard, screen
from careerqa.answer.rules import Rules
from careerqa.config import Settings
from careerqa.embed.embedding import Embedder
from careerqa.generate.base import Generator
from careerqa.generate.prompts import ABSTAIN_TEXT, can_show, is_abstention
from careerqa.retrieve.hybrid import Retriever
from careerqa.text.citations import renumber
from careerqa.text.sentences import split_sentences
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

    @property
    def rules(self) -> Rules: ...


def is_refusal(draft: str) -> bool:
    """Does the model's draft say the passages do not answer (judged on its first sentence, within its
    start)? A refusal further on is a sentence ``checking.verify`` drops; the rest may stand."""
    first = split_sentences(draft[:REFUSAL_CHECK_CHARS])
    return is_abstention(first[0] if first else "")


def elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


@dataclass(frozen=True)
class Question:
    """The question as every check reads it, computed once: what the user asked (and its rewrite),
    the standalone form answered, its one corrected form as searched (``Retriever.prepare``), how well
    the prompt's passages cover its rare terms, and the standalone form's vector (when a stage needs it)."""

    asked: tuple[str, ...]
    text: str
    searched: str
    focus: Focus
    vector: np.ndarray | None = field(default=None, compare=False)  # derived from ``text``

    def searched_vector(self, embedder: Embedder) -> np.ndarray:
        """The searched form's vector: ``vector`` when the two forms are one."""
        if self.vector is not None and self.searched == self.text:
            return self.vector
        vector: np.ndarray = embedder.embed_batch([self.searched])[0]
        return vector


@dataclass(frozen=True)
class Draft:
    """A model answer on its way through the checks (``answer/pipeline.py``): its text (markers
    numbered by first mention) and the prompt passage behind each number (``order``), the end not yet
    shown (``tail``), whether it is a retry's, what checking kept (``checked``), whether a bare answer
    the retry did not better may stand (``bare_ok``), and the named rules applied to it."""

    question: Question
    passages: tuple[Hit, ...]
    text: str
    order: tuple[int, ...]
    tail: str = ""
    retry: bool = False
    checked: Checked | None = None
    bare_ok: bool = False
    fired: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checked:
    """Verified sentences: the passage behind each display number, every sentence's check, and the
    sentences kept (supported, and after shaping, on target)."""

    by_display: dict[int, Hit]
    checks: list[SentenceSupport]
    kept: list[str]
    relayed: tuple[Relay, ...] = ()  # sentences dropped because they relay what nobody asked for
    refusals: int = 0  # sentences dropped because they say the passages do not hold the answer


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
    opened: bool = False  # the start can no longer become a refusal: text is shown as it comes
    relayed: list[Relay] = field(default_factory=list)  # sentences dropped by the relay rule
    guard: RelayGuard | None = None  # holds back a streamed sentence that may relay (``_shown_now``)
    fired: list[str] = field(default_factory=list)  # named rules that changed the course (``rules.py``)

    def fire(self, rule: str) -> None:
        if rule not in self.fired:
            self.fired.append(rule)

    def fire_all(self, rules: Sequence[str]) -> None:
        for rule in rules:
            self.fire(rule)

    def timed(self, name: str, stage: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        result = stage(*args)
        self.timings[name] = elapsed_ms(started)
        return result

    @property
    def asked(self) -> tuple[str, ...]:
        """What the user asked: the question and its standalone rewrite (the relay rule's exemptions)."""
        return tuple(dict.fromkeys(q for q in (self.question, self.standalone) if q))

    def show(self, text: str) -> str:
        """What of ``text`` the user may see now: the start of an answer is held back until it can no
        longer become a refusal (``can_show``); after that, everything but a sentence that may relay
        something nobody asked for (``RelayGuard``)."""
        if not self.opened:
            self.held += text
            if not can_show(self.held):
                return ""
            self.opened, text, self.held = True, self.held, ""
        return self._shown_now(text)

    def release(self, tail: str) -> str:
        """The held text and ``tail``, shown when the whole draft is not a refusal."""
        rest, self.held = self.held + tail, ""
        self.opened = True
        return self._shown_now(rest, end=True)

    def _shown_now(self, text: str, end: bool = False) -> str:
        if self.guard is None:
            self.guard = RelayGuard(self.asked)
        out = self.guard.feed(text) + (self.guard.finish() if end else "")
        self.shown += out
        return out

    def screened(self, sentences: list[str]) -> list[str]:
        """``sentences`` without those that relay what the question did not ask about (noted)."""
        kept, dropped = screen(sentences, self.asked)
        self.relayed.extend(dropped)
        return kept

    def relay_reason(self) -> str | None:
        """Why the answer lost sentences to the relay rule (the first one's reason), if it did."""
        return self.relayed[0].reason if self.relayed else None

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
            rules=tuple(self.fired),
            **fields,
        )

    def abstained(self, reason: str, sentences_total: int = 0) -> Answer:
        return self.answer(
            ABSTAIN_TEXT, (), abstained=True, abstain_reason=reason, sentences_total=sentences_total
        )

    def answered(self, checked: Checked) -> Answer:
        """The checked sentences as the answer, citations renumbered 1.. by first mention; those that
        relay what nobody asked for dropped (an abstention with the reason when none is left)."""
        self.relayed.extend(r for r in checked.relayed if r not in self.relayed)
        kept = self.screened(checked.kept)
        if not kept:
            return self.abstained(self.relay_reason() or "relay: no sentence is left", len(checked.checks))
        checked = replace(checked, kept=kept)
        text, order = renumber(" ".join(checked.kept), checked.by_display)
        citations = tuple(Citation(n=i + 1, hit=checked.by_display[old]) for i, old in enumerate(order))
        return self.answer(
            place_markers(text),
            citations,
            sentences_total=len(checked.checks),
            sentences_supported=len(checked.kept),
        )
