"""Helpers shared by the HTTP tests: a live uvicorn server, the SSE parser, scripted replies for
``FakeGenerator``, and the constants the tests ask and expect. The fake generators are in ``fakes.py``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.generate.base import Generator
from careerqa.web.app import get_engine

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator

__all__ = [
    "ANSWER",
    "LONG_ANSWER",
    "QUESTION",
    "TOKEN",
    "Scripted",
    "broken_engine",
    "live_server",
    "make_settings",
    "serve_process",
    "sse_events",
    "use_generator",
]

ANSWER = "Khan Academy has free maths courses [1]."
# Over 60 characters: the answerer holds back shorter text until the end, in case it is an abstention.
LONG_ANSWER = "Khan Academy and MIT OpenCourseWare have free courses on all three topics [1]."
QUESTION = "where are free maths courses?"
TOKEN = "test-admin-token"


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port in a background thread; yield its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def broken_engine(settings: Settings, root: Path) -> Engine:
    """An engine whose index was written by another careerqa format."""
    index_dir = root / "old-index"
    index_dir.mkdir(parents=True)
    (index_dir / "manifest.json").write_text(json.dumps({"format_version": 0}), encoding="utf-8")
    return Engine(settings.replace(index_dir=index_dir), embedder=FakeEmbedder(), generator=FakeGenerator([]))


class Scripted:
    """Replies for the fake generator, set per test; ``ANSWER`` once the script runs out."""

    def __init__(self) -> None:
        self.replies: list[str] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        return self.replies.pop(0) if self.replies else ANSWER


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def use_generator(stack: dict, generator: Generator) -> None:
    engine = Engine(stack["settings"], embedder=FakeEmbedder(), generator=generator)
    stack["app"].dependency_overrides[get_engine] = lambda: engine


@contextmanager
def serve_process(root: Path, env: dict[str, str], timeout: float = 600) -> Iterator[httpx.Client]:
    """``careerqa serve`` started in ``root`` as a user starts it (a process of its own, its log in
    ``root/server.log``), a client once ``/health`` answers; the server is stopped afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(root / "server.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "careerqa", "serve", "--port", str(port)],
            cwd=root,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout  # a first run builds the index and assembles the model
        try:
            while True:
                assert proc.poll() is None, (root / "server.log").read_text()
                try:
                    if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(1)
            with httpx.Client(base_url=url, timeout=300) as client:
                yield client
        finally:
            proc.terminate()
            proc.wait(30)
