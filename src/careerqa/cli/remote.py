"""Ask a running ``careerqa serve`` instead of loading the index and the models in this process.

``careerqa ask`` and ``careerqa search`` use it when given ``--server URL`` (or
``CAREERQA_SERVER_URL``): the question goes to the server's ``/chat`` (streamed as server-sent events)
or ``/search``, and the reply comes back as the same ``Answer`` and ``Hit`` objects a local run makes,
so the output is the same. The standard library's HTTP client only: nothing heavy is imported.

Not handled here: printing (``cli/ask_cmd.py``); authentication (the server's question routes have none);
``chat`` (its follow-ups would need the history sent along: it stays local).
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from careerqa.errors import BadInput, CareerQAError, ServerUnavailable
from careerqa.types import Answer, Chunk, Citation, Hit

TIMEOUT_S = 600.0  # per socket operation: an answer may wait behind others in the server's queue


def check_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise BadInput(f"the server address must start with http:// or https://, not {url!r}")
    return url


class RemoteClient:
    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:
        self.url = check_url(url)
        self.timeout = timeout

    def search(self, query: str, top_k: int | None) -> list[Hit]:
        body: dict[str, Any] = {"query": query, **({"top_k": top_k} if top_k is not None else {})}
        with self._post("/search", body) as response:
            payload = _json(response.read(), self.url)
        return [hit_from_dict(h) for h in payload.get("results", [])]

    def ask(
        self,
        question: str,
        top_k: int | None,
        on_text: Callable[[str], None] | None = None,
        on_revised: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The answer object of ``/chat`` (the ``ask --json`` shape plus ``index_version``); with
        ``on_text``, the answer is streamed and each piece of text is passed to it as it comes, and
        ``on_revised`` gets the checked text when checking changed what was streamed."""
        body = {"question": question, "top_k": top_k, "stream": on_text is not None}
        with self._post("/chat", body) as response:
            if on_text is None:
                answer: dict[str, Any] = _json(response.read(), self.url)
                return answer
            for event, data in _events(response):
                if event == "delta":
                    on_text(data.get("text", ""))
                elif event == "revised" and on_revised is not None:
                    on_revised(data.get("text", ""))
                elif event == "end":
                    return data
                elif event == "error":
                    raise CareerQAError(f"the server at {self.url} failed: {data.get('error')}")
        raise ServerUnavailable(f"the server at {self.url} closed the answer before its end")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, self.url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout | TimeoutError):
                reason = f"no reply within {self.timeout:.0f} s"
            raise ServerUnavailable(
                f"no careerqa server answers at {self.url} ({reason}); start one with `careerqa serve`, "
                "or leave out --server and CAREERQA_SERVER_URL to answer in this process"
            ) from None


def _http_error(exc: urllib.error.HTTPError, url: str) -> CareerQAError:
    try:
        message = json.loads(exc.read().decode("utf-8", "replace")).get("error")
    except (ValueError, AttributeError, OSError):
        message = None
    text = f"the server at {url} said {exc.code}: {message or exc.reason}"
    if exc.code in (400, 413, 422):
        return BadInput(text)
    if exc.code == 404:
        return ServerUnavailable(f"{text} (is it a careerqa server?)")
    return CareerQAError(text)


def _json(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ServerUnavailable(
            f"the server at {url} did not answer with JSON (is it a careerqa server?)"
        ) from None


def _events(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as (event, data) pairs."""
    event, data = "message", ""
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


def hit_from_dict(d: dict[str, Any]) -> Hit:
    """The inverse of ``types.hit_to_dict``."""
    start, end = (d.get("span") or [0, 0])[:2]
    chunk = Chunk(
        chunk_id=str(d["chunk_id"]),
        source=str(d["source"]),
        section=str(d.get("section") or ""),
        text=str(d["text"]),
        start=int(start),
        end=int(end),
    )
    return Hit(
        chunk=chunk, score=float(d["score"]), dense_score=d.get("dense_score"), rank=int(d.get("n") or 0)
    )


def answer_from_dict(d: dict[str, Any]) -> Answer:
    """The inverse of ``types.answer_to_dict``."""
    sentences = d.get("sentences") or {}
    return Answer(
        question=str(d.get("question", "")),
        text=str(d.get("answer", "")),
        abstained=bool(d.get("abstained")),
        citations=tuple(Citation(n=int(c["n"]), hit=hit_from_dict(c)) for c in d.get("citations", [])),
        retrieved=tuple(hit_from_dict(h) for h in d.get("retrieved", [])),
        timings_ms=dict(d.get("timings_ms") or {}),
        standalone_question=d.get("standalone_question"),
        abstain_reason=d.get("abstain_reason"),
        sentences_total=int(sentences.get("total", 0)),
        sentences_supported=int(sentences.get("supported", 0)),
        draft=d.get("draft"),
        route=str(d.get("route", "generated")),
    )
