"""Several replicas behind a load balancer: what ``/health`` tells the balancer (ready, draining), the
per-replica generation slots and queue, and two real ``careerqa serve`` processes over one index
folder and one remote generator that both serve one reindex."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from careerqa.engine.core import Engine
from careerqa.web.app import create_app

from .conftest import DOCS, FakeEmbedder, make_settings
from .fake_openai import FakeOpenAI
from .fakes import FakeGenerator, Pieces
from .helpers import ANSWER, LONG_ANSWER, QUESTION, TOKEN, live_server

NEW_DOC = """# Agritech careers

Agritech firms hire machine learning engineers to forecast crop yields from satellite images; remote
sensing with Google Earth Engine is the extra skill they ask for most.
"""


@contextmanager
def serve(settings, generator) -> Iterator[tuple[str, httpx.Client]]:
    app = create_app(settings, engine=Engine(settings, embedder=FakeEmbedder(), generator=generator))
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield url, client


@pytest.fixture
def replica(tmp_path) -> Iterator[tuple[str, httpx.Client]]:
    settings = make_settings(tmp_path).replace(admin_token=TOKEN)
    with serve(settings, FakeGenerator(lambda messages: ANSWER)) as running:
        yield running


def test_health_says_ready_until_drained_and_answers_go_on(replica):
    url, client = replica
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["ready"], body["draining"]) == ("ok", True, False)
    assert body["replica"] == {"pid": os.getpid(), "backend": "faiss"}
    assert body["queue"] == {"pending": 0, "max_waiting": 4, "slots": 1}

    assert client.post("/drain").status_code == 401  # the admin token is needed
    assert client.get("/health").status_code == 200
    drained = client.post("/drain", headers={"Authorization": f"Bearer {TOKEN}"})
    assert drained.status_code == 200 and drained.json()["status"] == "draining"
    health = client.get("/health")
    assert health.status_code == 503
    assert (health.json()["status"], health.json()["ready"]) == ("draining", False)
    # requests that still arrive are answered: the balancer stops sending, nothing is dropped
    assert client.post("/chat", json={"question": QUESTION}).status_code == 200


def test_drain_without_a_token_configured_is_403(tmp_path):
    with serve(make_settings(tmp_path), FakeGenerator([])) as (_, client):
        response = client.post("/drain", headers={"Authorization": "Bearer x"})
        assert response.status_code == 403 and "draining over HTTP is disabled" in response.json()["error"]


@pytest.mark.parametrize(("slots", "expect_overlap"), [(1, False), (2, True)])
def test_generation_slots_per_replica(tmp_path, slots, expect_overlap):
    settings = make_settings(tmp_path).replace(generation_slots=slots, queue_size=0, answer_cache_size=0)
    running, peak, lock = [0], [0], threading.Lock()

    class Counting(Pieces):
        def stream(self, messages, **kwargs):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                yield from super().stream(messages, **kwargs)
            finally:
                with lock:
                    running[0] -= 1

    with serve(settings, Counting(LONG_ANSWER, pause=0.05)) as (url, client):
        statuses: list[int] = []

        def ask(i: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as c:
                statuses.append(c.post("/chat", json={"question": f"{QUESTION} {i}"}).status_code)

        askers = [threading.Thread(target=ask, args=(i,)) for i in range(slots)]
        for t in askers:
            t.start()
        deadline = time.monotonic() + 10
        while client.get("/health").json()["queue"]["pending"] < slots:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # every slot busy and no queue: one more is refused at once
        refused = client.post("/chat", json={"question": "kubernetes?"})
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        for t in askers:
            t.join()
        assert statuses == [200] * slots
    assert (peak[0] > 1) == expect_overlap


# --- two real processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(root: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    log = root / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "careerqa", "serve", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}", log


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            response = httpx.get(f"{url}/health", timeout=5)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the replica did not start: " + log.read_text()
        time.sleep(0.5)


@pytest.mark.real  # each replica loads the packaged embedder
def test_two_serve_processes_over_one_index_serve_one_reindex(tmp_path):
    root = tmp_path
    (root / "corpus").mkdir()
    for name, text in DOCS.items():
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    reply = "Agritech firms forecast crop yields from satellite images [1]."
    with FakeOpenAI([("stream", [w + " " for w in reply.split()])]) as generator:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), *sys.path]),
            "HF_HUB_OFFLINE": "1",
            "CAREERQA_ADMIN_TOKEN": TOKEN,
            "CAREERQA_GENERATOR_URL": generator.url,
            "CAREERQA_GENERATOR_MODEL": "shared-llm",
        }
        built = subprocess.run(
            [sys.executable, "-m", "careerqa", "index", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            timeout=600,
        )
        assert built.returncode == 0, built.stderr
        procs = [_start(root, name, env) for name in ("a", "b")]
        try:
            health = [_wait_ready(*p) for p in procs]
            (a_url, b_url) = (procs[0][1], procs[1][1])
            assert health[0]["index"]["version"] == health[1]["index"]["version"]
            assert health[0]["replica"]["pid"] != health[1]["replica"]["pid"]
            assert health[0]["models"]["generator"].startswith("shared-llm @ http://127.0.0.1:")

            (root / "corpus" / "agritech.md").write_text(NEW_DOC, encoding="utf-8")
            reindex = httpx.post(
                f"{a_url}/reindex", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300
            )
            assert reindex.status_code == 200, reindex.text
            version = reindex.json()["index_version"]
            assert version != health[0]["index"]["version"]

            # replica b never saw the request: it serves the new version from the shared folder
            found = httpx.post(f"{b_url}/search", json={"query": "satellite crop yields"}, timeout=60).json()
            assert found["index_version"] == version
            assert found["results"][0]["source"] == "agritech.md"
            assert httpx.get(f"{b_url}/health", timeout=30).json()["index"]["version"] == version
            answer = httpx.post(f"{b_url}/chat", json={"question": "Who forecasts crop yields?"}, timeout=120)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["index_version"] == version and not body["abstained"], body
            assert body["citations"][0]["source"] == "agritech.md"
            assert len(generator.requests) == 1 and generator.requests[0]["json"]["model"] == "shared-llm"
        finally:
            for proc, _, _ in procs:
                proc.terminate()
            for proc, _, _ in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    shutil.rmtree(root / "index", ignore_errors=True)
