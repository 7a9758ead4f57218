"""API keys for the question routes, and a request rate limit per key.

A server on loopback needs none. One reachable beyond it sets ``CAREERQA_API_KEYS``: a comma-separated
list of ``[name:]sha256:<hex>`` entries, each the SHA-256 of a key, so the keys themselves are never
stored (``careerqa keys new`` makes a key and prints its entry). A request to ``/chat``, ``/search``,
``/feedback`` or ``/v1/...`` then needs ``Authorization: Bearer <key>`` (what OpenAI clients send) or
``X-API-Key: <key>``; without a known key it gets ``401`` JSON. Each key may make
``CAREERQA_API_RATE_PER_MINUTE`` requests a minute (a token bucket: bursts up to that many, refilled
evenly); past it, ``429`` with ``Retry-After``. The admin token (``/reindex``, ``/drain``) is separate:
an API key never admits an admin request, nor the admin token a question.

Not handled here: TLS (put a proxy in front) and who holds which key.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from careerqa.errors import BadInput, CareerQAError

KEY_PREFIX = "cqa_"  # makes a careerqa key recognisable in a config file or a leak scanner
_ENTRY = re.compile(r"^(?:(?P<name>[\w.@-]{1,64}):)?sha256:(?P<digest>[0-9a-f]{64})$")


class Unauthorized(CareerQAError):
    http_status = 401
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 (read only)


class Forbidden(CareerQAError):
    http_status = 403


class RateLimited(CareerQAError):
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(name: str = "") -> tuple[str, str]:
    """A fresh random key and its ``CAREERQA_API_KEYS`` entry (the only part the server keeps)."""
    if name and not re.fullmatch(r"[\w.@-]{1,64}", name):
        raise BadInput(f"a key name is 1 to 64 letters, digits or . @ - _, not {name!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, f"{name + ':' if name else ''}sha256:{digest(key)}"


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, by digest: the name says whose key it was in logs and rate limits."""

    names: dict[str, str]  # sha256 hex -> name (the digest's first 8 characters when unnamed)

    @classmethod
    def parse(cls, raw: str) -> KeyRing:
        names: dict[str, str] = {}
        for entry in (e.strip() for e in raw.replace("\n", ",").split(",")):
            if not entry:
                continue
            match = _ENTRY.match(entry)
            if match is None:
                shown = entry if entry.count(":") else entry[:4] + "…"  # never echo a whole plain key
                raise BadInput(
                    f"CAREERQA_API_KEYS entry {shown!r} is not [name:]sha256:<64 hex digits>; keys are "
                    "kept hashed: make one with `careerqa keys new` and add the entry it prints"
                )
            names[match["digest"]] = match["name"] or match["digest"][:8]
        return cls(names)

    def __bool__(self) -> bool:
        return bool(self.names)

    def identify(self, key: str) -> str | None:
        """The name of ``key`` when it is configured (every digest compared in constant time)."""
        given = digest(key)
        found = None
        for known, name in self.names.items():
            if hmac.compare_digest(given, known):
                found = name
        return found


class RateLimit:
    """A token bucket per key: ``per_minute`` requests in a burst, refilled at ``per_minute`` a minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key name -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        """Count one request of ``who``, or raise ``RateLimited`` saying when the next one is allowed."""
        if self.capacity <= 0:
            return  # no limit
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.refill)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.refill))
                raise RateLimited(
                    f"too many requests: this key may make {self.capacity:g} a minute; "
                    f"try again in {wait} s",
                    wait,
                )
            self._buckets[who] = (tokens - 1.0, now)


class ApiGuard:
    """What a question route checks: a configured key (when any are set), then that key's rate."""

    def __init__(self, keys: KeyRing, per_minute: int) -> None:
        self.keys = keys
        self.limit = RateLimit(per_minute)

    def check(self, authorization: str | None, api_key: str | None) -> str | None:
        """The caller's key name (None when no keys are configured), or ``Unauthorized`` /
        ``RateLimited``."""
        if not self.keys:
            return None
        scheme, _, bearer = (authorization or "").partition(" ")
        given = (api_key or "").strip() or (bearer.strip() if scheme.lower() == "bearer" else "")
        if not given:
            raise Unauthorized(
                "this server needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            )
        name = self.keys.identify(given)
        if name is None:
            raise Unauthorized("the API key is not known to this server")
        self.limit.take(name)
        return name


def check_admin(token: str | None, authorization: str | None, what: str = "reindexing") -> None:
    """Allow an admin request only with ``Authorization: Bearer <token>``, compared in constant time."""
    if not token:
        raise Forbidden(f"{what} over HTTP is disabled: start the server with CAREERQA_ADMIN_TOKEN set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("this needs the header `Authorization: Bearer <CAREERQA_ADMIN_TOKEN>`")
