"""A generator behind any OpenAI-compatible ``/v1/chat/completions`` server.

llama.cpp's server (and llama-cpp-python's ``python -m llama_cpp.server``), vLLM and Ollama all speak
this protocol. ``RemoteGenerator`` sends the same messages the local model would get, asks for a
streamed, greedy reply (temperature 0, fixed seed) and yields its text as it arrives.

Failures before the first piece of text are retried with exponential backoff and jitter: a refused or
dropped connection, a timeout, ``429`` and ``5xx`` (a ``Retry-After`` header is honoured, up to
``MAX_RETRY_AFTER_S``). After text has been yielded nothing is retried (the reader has seen it): the
stream ends with ``ModelUnavailable``. A server that stays down, a wrong URL, a refused API key and
any other ``4xx`` are ``ModelUnavailable`` too, naming the URL and what to check; a reply saying the
prompt is over the model's context is ``BadInput``, as the local model's is.

Tokens are counted by the server's own tokenizer where it has an endpoint for it (llama-cpp-python's
``/extras/tokenize/count``, llama.cpp's and vLLM's ``/tokenize``; there is no standard one), so the
passages that fit the prompt budget are the ones the local model would get; elsewhere (Ollama)
``count_tokens`` estimates from the text's length (``CHARS_PER_TOKEN``).

Not handled here: the passage KV caches of the local generator (a remote server keeps its own prompt
cache, if any), and choosing among several servers (put a load balancer in front and give its URL).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

from careerqa.config import Settings
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.generate.base import SEED, Generator

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE_S = 0.5  # first wait; doubled on every retry, with +-50 % jitter
BACKOFF_MAX_S = 8.0
MAX_RETRY_AFTER_S = 30.0  # a server asking for longer than this is treated as down
# Characters per token for the local budget of passages in the prompt. Measured with the packaged GGUF's
# own tokenizer (llama.cpp, vocab only) on the 32 passages of corpus/ as the prompt quotes them: 4.97
# characters per token overall (2.9 for the densest passage, a table; 5.8 for the lightest). 4.5
# counts 1.11x the real tokens over the corpus: a little under the local model's passage budget,
# never far over it, for tokenizers that split English a bit finer than Qwen's.
CHARS_PER_TOKEN = 4.5
# Where servers count tokens: llama-cpp-python, then llama.cpp's server and vLLM.
TOKENIZE_PATHS = ("/extras/tokenize/count", "/tokenize")
TOKEN_CACHE_SIZE = 4096  # texts whose count is kept


def chat_completions_url(base: str) -> str:
    """``http://host:8080``, ``…/v1`` or the full ``…/v1/chat/completions``: the endpoint to POST to."""
    url = base.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


class RemoteGenerator(Generator):
    """Streams replies from an OpenAI-compatible chat completions endpoint (see the module docstring)."""

    kind = "remote"

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str = "",
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        retries: int = 3,
        sleep: Any = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInput(f"CAREERQA_GENERATOR_URL must start with http:// or https://, not {url!r}")
        try:
            import httpx
        except ImportError as exc:
            raise ModelUnavailable(
                "a remote generator needs httpx; run: pip install 'careerqa[remote]'"
            ) from exc
        self.url = chat_completions_url(url)
        self.model = model
        self.name = f"{model} @ {self.url}"
        self.retries = retries
        self._sleep = sleep
        self._rng = random.Random(SEED)
        self._rng_lock = threading.Lock()
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # ``read`` bounds the wait for each piece of the stream (a stalled server), not the whole reply.
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self._tokenize_url: str | None = None  # found on the first count; "" when the server has none
        self._counts: dict[str, int] = {}  # passages recur from question to question

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteGenerator:
        return cls(
            settings.generator_url,
            settings.generator_model or settings.generator,
            api_key=settings.generator_api_key,
            timeout_s=settings.generator_timeout,
            connect_timeout_s=settings.generator_connect_timeout,
            retries=settings.generator_retries,
        )

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        import httpx

        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "seed": SEED,
        }
        if stop:
            payload["stop"] = stop
        attempt = 0
        while True:
            problem: str
            retry_after: float | None = None
            yielded = False
            try:
                with self._client.stream("POST", self.url, json=payload) as response:
                    if response.status_code == 200:
                        for piece in _sse_pieces(response.iter_lines(), self.url):
                            yielded = True
                            yield piece
                        return
                    response.read()
                    if response.status_code not in RETRY_STATUSES:
                        raise _refused(response, self.url)
                    problem = f"HTTP {response.status_code} ({_message(response)})"
                    retry_after = _retry_after(response)
            except httpx.TimeoutException as exc:
                problem = f"no reply within the timeout ({type(exc).__name__})"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if yielded:
                raise ModelUnavailable(f"the generator server at {self.url} broke off mid-answer: {problem}")
            if attempt >= self.retries or (retry_after is not None and retry_after > MAX_RETRY_AFTER_S):
                raise ModelUnavailable(
                    f"the generator server at {self.url} is unavailable after {attempt + 1} tries "
                    f"({problem}); start it, or check CAREERQA_GENERATOR_URL"
                )
            self._sleep(retry_after if retry_after is not None else self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        with self._rng_lock:
            jitter = self._rng.uniform(0.5, 1.5)
        return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt) * jitter

    def count_tokens(self, text: str) -> int:
        if self._tokenize_url is None:
            self._tokenize_url = self._find_tokenizer()
        if not self._tokenize_url:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        count = self._counts.get(text)
        if count is None:
            count = self._server_count(self._tokenize_url, text)
            if count is None:  # a passing failure: estimate this one, ask again next time
                return math.ceil(len(text) / CHARS_PER_TOKEN)
            if len(self._counts) >= TOKEN_CACHE_SIZE:
                self._counts.clear()
            self._counts[text] = count
        return count

    def _find_tokenizer(self) -> str:
        root = self.url[: -len("/v1/chat/completions")] if self.url.endswith("/v1/chat/completions") else ""
        for path in TOKENIZE_PATHS:
            if root and self._server_count(root + path, "careerqa") is not None:
                return root + path
        return ""

    def _server_count(self, url: str, text: str) -> int | None:
        import httpx

        # One body for the three servers' field names (each ignores the others').
        body = {"model": self.model, "input": text, "content": text, "prompt": text, "add_special": False}
        try:
            response = self._client.post(url, json=body, timeout=10.0)
            if response.status_code != 200:
                return None
            data = response.json()
            count = data.get("count")
            return int(count) if isinstance(count, int) else len(data["tokens"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def describe(self) -> dict[str, Any]:
        """What ``/health`` and a diagnosis show: where answers come from, and what does not apply."""
        return {
            "kind": self.kind,
            "url": self.url,
            "model": self.model,
            "passage_kv_caches": "not used: they apply only to the local llama.cpp generator",
        }

    def close(self) -> None:
        self._client.close()


def _sse_pieces(lines: Iterator[str], url: str) -> Iterator[str]:
    """The text of each ``data:`` chunk of an OpenAI stream, until ``[DONE]``. A stream that ends
    before ``[DONE]`` and before any chunk has a ``finish_reason`` was cut off: ``httpx.ReadError``."""
    import httpx

    finished = False
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments (": ping"), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ModelUnavailable(
                f"the generator server at {url} sent a malformed stream: {data[:200]!r}"
            ) from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise ModelUnavailable(f"the generator server at {url} failed mid-answer: {_error_text(chunk)}")
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not choices:
            continue  # a usage-only chunk
        delta = choices[0].get("delta") or {}
        piece = delta.get("content")
        if piece:
            yield piece
        finished = finished or bool(choices[0].get("finish_reason"))
    if not finished:
        raise httpx.ReadError("the stream ended before [DONE]")


def _message(response: Any) -> str:
    try:
        return _error_text(response.json())[:300]
    except ValueError:
        return response.text[:300] or response.reason_phrase


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(body)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use the backoff instead


def _refused(response: Any, url: str) -> Exception:
    status, message = response.status_code, _message(response)
    if status in (401, 403):
        return ModelUnavailable(
            f"the generator server at {url} refused the API key (HTTP {status}: {message}); "
            "set CAREERQA_GENERATOR_API_KEY"
        )
    if status == 404:
        return ModelUnavailable(
            f"the generator server at {url} has no such endpoint or model (HTTP 404: {message}); "
            "check CAREERQA_GENERATOR_URL and CAREERQA_GENERATOR_MODEL"
        )
    if status == 400 and "context" in message.lower():
        return BadInput(f"the prompt is too long for the remote model's context: {message}")
    return ModelUnavailable(f"the generator server at {url} refused the request (HTTP {status}: {message})")
