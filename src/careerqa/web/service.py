"""What the web service needs around an ``Engine``: one generation at a time behind a bounded queue,
and an ask's events as the service runs it (``served_events``).

llama.cpp runs one context on all cores, so two answers at once would each run at half speed at best
(and corrupt the shared KV cache at worst). ``GenerationQueue`` lets one ask run (``slots``, set by
``CAREERQA_GENERATION_SLOTS``, for a remote generator that batches) and at most
``max_waiting`` wait; one more is refused with ``Busy`` (HTTP 503 with ``Retry-After``) rather than
left to time out. Searches do not pass through it: they only read the index and embed a query.
A client that hangs up before its answer starts (the page's Stop button, a closed tab) sets the ask's
``cancelled`` event: the ask leaves the waiting line at once (``Cancelled``) and never runs the model.

Not handled here: routing, HTTP shapes (``web/app.py``), keys and tokens (``web/auth.py``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from careerqa.errors import CareerQAError
from careerqa.evals.gaps import log_answer
from careerqa.events import Done, Event, replayed
from careerqa.types import Answer, answer_to_dict

if TYPE_CHECKING:
    from careerqa.answer.turns import Turn
    from careerqa.engine.core import Engine

logger = logging.getLogger("careerqa.web.app")
_CANCEL_POLL_S = 0.05  # how often a waiting ask looks whether its client hung up


class Busy(CareerQAError):
    """Every generation slot and queue place is taken; try again after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(CareerQAError):
    """The client hung up before its answer started; nobody reads the reply (nginx's 499)."""

    http_status = 499


class GenerationQueue:
    """A lock with a bounded waiting line: ``admit()`` takes a place in line or raises ``Busy`` at
    once; ``turn()`` then waits for the lock and gives the place back when done."""

    def __init__(self, max_waiting: int, typical_s: float = 15.0, slots: int = 1) -> None:
        self.max_waiting = max_waiting
        self.typical_s = typical_s  # seconds one answer takes, for Retry-After until one is measured
        # Answers generated at once: 1 for the local model; more for a remote server that batches.
        self.slots = max(1, slots)
        self._lock = threading.BoundedSemaphore(self.slots)
        self._state = threading.Lock()
        self._pending = 0  # running + waiting

    @property
    def pending(self) -> int:
        return self._pending

    def admit(self) -> None:
        with self._state:
            if self._pending >= self.slots + self.max_waiting:
                wait = max(1, math.ceil(self.typical_s * self._pending / self.slots))
                raise Busy(
                    f"careerqa is busy with {self._pending} questions; try again in about {wait} s",
                    retry_after=wait,
                )
            self._pending += 1

    @contextmanager
    def turn(self, cancelled: threading.Event | None = None) -> Iterator[None]:
        """Run after ``admit()``: one at a time; always gives the place in line back, at once when
        ``cancelled`` is set while waiting (``Cancelled``)."""
        try:
            while not self._lock.acquire(timeout=_CANCEL_POLL_S):
                if cancelled is not None and cancelled.is_set():
                    raise Cancelled("the client hung up while its question waited")
            try:
                started = time.monotonic()
                yield
                # Keep Retry-After honest: a running average of how long answers take here.
                self.typical_s = 0.8 * self.typical_s + 0.2 * (time.monotonic() - started)
            finally:
                self._lock.release()
        finally:
            with self._state:
                self._pending -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.admit()
        with self.turn():
            yield


@dataclass(frozen=True)
class Reply:
    """The last item of ``served_events``: the answer as the API sends it (``answer_to_dict`` plus
    ``index_version``, ``log_id`` and, for OpenAI clients, ``usage``)."""

    body: dict[str, Any]


def served_events(
    engine: Engine,
    queue: GenerationQueue,
    question: str,
    turns: Sequence[Turn],
    top_k: int | None,
    count_tokens: bool = False,
    cancelled: threading.Event | None = None,
) -> Generator[Event | Reply, None, None]:
    """One ask as the service runs it (blocking: iterate it in a worker thread). A cached answer
    skips the queue; any other takes a place in it (``Busy`` at once when it is full) and holds a
    generation slot until its events end or the iterator is closed. The answer's events, without
    ``Done``, then its ``Reply``; the whole ask reads one index version. ``cancelled`` (set when the
    client hangs up) ends the ask with ``Cancelled`` while it waits in line or between its events."""
    view = engine.view()  # this request's index version, to the end
    cached = None if turns else engine.cached(question, top_k, view)
    if cached is not None:  # answered before on this index version: no need to queue
        answer = yield from _relayed(replayed(cached))
    else:
        queue.admit()  # Busy (503) now, before anything is streamed
        with queue.turn(cancelled):
            answer = yield from _relayed(engine.events(question, turns, top_k, view=view), cancelled)
    body: dict[str, Any] = {**answer_to_dict(answer), "index_version": view.version}
    body["log_id"] = _log(engine, answer, view.version)
    if count_tokens:
        body["usage"] = _usage(engine.generator.count_tokens, question, answer)
    yield Reply(body)


def _relayed(
    events: Iterable[Event], cancelled: threading.Event | None = None
) -> Generator[Event, None, Answer]:
    """Every event but ``Done``; returns the ``Done`` answer. ``Cancelled`` once ``cancelled`` is set."""
    answer = None
    for event in events:
        if cancelled is not None and cancelled.is_set():
            _close(events)  # the model's stream, now
            raise Cancelled("the client hung up before its answer started")
        if isinstance(event, Done):
            answer = event.answer
        else:
            yield event
    if answer is None:
        raise RuntimeError("the answer's events ended without Done")
    return answer


def _close(events: Iterable[Event]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


def _usage(count: Callable[[str], int], question: str, answer: Answer) -> dict[str, int]:
    """The model's own counts of what it read and wrote; else the question's and the text's tokens
    (an answer from the cache or the corpus's FAQ)."""
    if answer.tokens.get("prompt_tokens"):
        prompt, completion = answer.tokens["prompt_tokens"], answer.tokens.get("completion_tokens", 0)
    else:
        prompt, completion = count(question), count(answer.text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _log(engine: Engine, answer: Answer, version: str) -> str | None:
    """Record the answer in the question log when it is on; its id, for feedback."""
    s = engine.settings
    if not s.log_questions:
        return None
    try:
        return log_answer(s.index_dir, answer, version, s.question_log_max_bytes)
    except OSError:
        logger.exception("could not write the question log")
        return None

