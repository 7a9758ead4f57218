"""Stopping an answer (the chat page's Stop button, a closed tab): the server frees the model at once.

A client that hangs up mid-stream closes the model's stream (``web/streams.py``); one that hangs up
while its question waits in line, or before its first text, leaves the line at once and never runs the
model (``GenerationQueue.turn``'s ``cancelled``). A real uvicorn server with a slow fake generator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from careerqa.engine.core import Engine
from careerqa.generate.base import Generator
from careerqa.web.app import create_app, get_engine
from careerqa.web.service import Cancelled, GenerationQueue

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import ANSWER, LONG_ANSWER, QUESTION, live_server


class Clocked(Generator):
    """Streams ``text`` a word every ``pause`` seconds and notes when each word was made."""

    def __init__(self, text: str, pause: float) -> None:
        self.text, self.pause = text, pause
        self.made: list[float] = []
        self.calls = 0

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        self.calls += 1
        for word in self.text.split():
            time.sleep(self.pause)
            self.made.append(time.monotonic())
            yield word + " "


@pytest.fixture
def server(tmp_path) -> Iterator[dict]:
    settings = make_settings(tmp_path).replace(answer_cache_size=0, queue_size=2)
    app = create_app(settings, engine=Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([])))
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"url": url, "app": app, "settings": settings, "client": client}


def _slow(server: dict, pause: float = 0.1) -> Clocked:
    slow = Clocked(" ".join([LONG_ANSWER] * 10), pause)  # 130 words: 13 s at 0.1 s a word
    engine = Engine(server["settings"], embedder=FakeEmbedder(), generator=slow)
    server["app"].dependency_overrides[get_engine] = lambda: engine
    return slow


def _pending(server: dict) -> int:
    return int(server["client"].get("/health").json()["queue"]["pending"])


def _wait_for(condition, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_stop_mid_stream_stops_the_model_and_frees_the_slot(server):
    slow = _slow(server)
    with httpx.Client(base_url=server["url"], timeout=30) as leaver:
        with leaver.stream("POST", "/chat", json={"question": QUESTION, "stream": True}) as response:
            next(response.iter_text())  # the first text, then hang up (the page's Stop aborts its fetch)
        gone = time.monotonic()
    _wait_for(lambda: _pending(server) == 0, timeout=2)
    freed_after = time.monotonic() - gone
    server["app"].dependency_overrides[get_engine] = lambda: Engine(
        server["settings"], embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: ANSWER)
    )
    started = time.monotonic()
    assert server["client"].post("/chat", json={"question": QUESTION}).json()["answer"] == ANSWER
    assert time.monotonic() - started < 2  # not behind the 13 s the stopped answer would have taken
    assert freed_after < 1
    time.sleep(0.3)
    assert len([t for t in slow.made if t > gone]) <= 2  # the word being made when it hung up, at most


def test_stop_while_waiting_in_line_leaves_the_line_and_never_runs(server):
    slow = _slow(server, pause=0.05)  # the first answer: about 6.5 s
    first: dict = {}

    def ask_first() -> None:
        with httpx.Client(base_url=server["url"], timeout=30) as c:
            first["status"] = c.post("/chat", json={"question": QUESTION}).status_code

    asker = threading.Thread(target=ask_first)
    asker.start()
    _wait_for(lambda: slow.calls == 1)
    with httpx.Client(base_url=server["url"], timeout=30) as waiter:
        with pytest.raises(httpx.ReadTimeout):  # waits in line behind the first answer, then hangs up
            waiter.post("/chat", json={"question": QUESTION, "stream": True}, timeout=0.5)
    _wait_for(lambda: _pending(server) == 1, timeout=1)  # only the first answer is left
    asker.join()
    assert first["status"] == 200
    time.sleep(0.3)
    assert slow.calls == 1  # the stopped question never reached the model
    assert _pending(server) == 0


def test_a_cancelled_turn_gives_its_place_back():
    queue = GenerationQueue(max_waiting=1)
    cancelled = threading.Event()
    queue.admit()
    with queue.turn():  # the running answer
        queue.admit()
        assert queue.pending == 2
        cancelled.set()
        with pytest.raises(Cancelled), queue.turn(cancelled):
            pass
        assert queue.pending == 1
    assert queue.pending == 0
    assert Cancelled.http_status == 499
