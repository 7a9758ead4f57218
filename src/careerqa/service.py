"""What the web service needs around an ``Engine``: one generation at a time behind a bounded queue,
and the admin token check.

llama.cpp runs one context on all cores, so two answers at once would each run at half speed at best
(and corrupt the shared KV cache at worst). ``GenerationQueue`` lets one ask run (``slots``, set by
``CAREERQA_GENERATION_SLOTS``, for a remote generator that batches) and at most
``max_waiting`` wait; one more is refused with ``Busy`` (HTTP 503 with ``Retry-After``) rather than
left to time out. Searches do not pass through it: they only read the index and embed a query.

Not handled here: routing, HTTP shapes (``api.py``).
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import CareerQAError


class Busy(CareerQAError):
    """Every generation slot and queue place is taken; try again after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(CareerQAError):
    http_status = 401


class Forbidden(CareerQAError):
    http_status = 403


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
    def turn(self) -> Iterator[None]:
        """Run after ``admit()``: one at a time; always gives the place in line back."""
        try:
            with self._lock:
                started = time.monotonic()
                yield
                # Keep Retry-After honest: a running average of how long answers take here.
                self.typical_s = 0.8 * self.typical_s + 0.2 * (time.monotonic() - started)
        finally:
            with self._state:
                self._pending -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.admit()
        with self.turn():
            yield


def check_admin(token: str | None, authorization: str | None, what: str = "reindexing") -> None:
    """Allow an admin request only with ``Authorization: Bearer <token>``, compared in constant time."""
    if not token:
        raise Forbidden(f"{what} over HTTP is disabled: start the server with CAREERQA_ADMIN_TOKEN set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("this needs the header `Authorization: Bearer <CAREERQA_ADMIN_TOKEN>`")
