"""The web service beyond one question: the OpenAI-compatible endpoint, reindexing and live index
reload, the generation queue, request limits and the docs. A real uvicorn server with fake models."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from careerqa.engine.core import Engine
from careerqa.web.app import create_app

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator, Pieces
from .helpers import ANSWER, LONG_ANSWER, QUESTION, TOKEN, live_server, sse_events, use_generator

NEW_DOC = """# Quantum careers

Quantum machine learning researchers need a physics degree and experience with Qiskit circuits.
"""


@pytest.fixture
def server(tmp_path) -> Iterator[dict]:
    """A fresh server per test, over its own corpus (these tests change it)."""
    settings = make_settings(tmp_path).replace(admin_token=TOKEN, queue_size=1)
    generator = FakeGenerator(lambda messages: ANSWER)
    app = create_app(settings, engine=Engine(settings, embedder=FakeEmbedder(), generator=generator))
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"url": url, "app": app, "settings": settings, "client": client}


def openai_body(question: str, **extra: object) -> dict:
    return {"model": "careerqa", "messages": [{"role": "user", "content": question}], **extra}


# --- OpenAI-compatible chat completions --------------------------------------------------------------


def test_completion_shape_with_sources(server):
    response = server["client"].post("/v1/chat/completions", json=openai_body(QUESTION))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "careerqa" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith(ANSWER) and "\n\nSources:\n[1] maths.md › Maths for AI: “" in content
    assert body["citations"][0]["n"] == 1 and body["citations"][0]["source"] == "maths.md"
    assert body["careerqa"]["answer"] == ANSWER
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def stream_chunks(response: httpx.Response) -> list[dict]:
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


def deltas(chunks: list[dict], key: str) -> str:
    return "".join(c["choices"][0]["delta"].get(key, "") for c in chunks if c["choices"])


def test_completion_stream_follows_the_openai_wire_format(server):
    use_generator(server, Pieces(LONG_ANSWER))
    response = server["client"].post("/v1/chat/completions", json=openai_body(QUESTION, stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = stream_chunks(response)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    # The draft streams as reasoning; the checked answer and its sources come once, as the content.
    assert deltas(chunks, "reasoning_content").strip() == LONG_ANSWER
    text = deltas(chunks, "content")
    assert text.startswith(LONG_ANSWER) and "Sources:\n[1] maths.md" in text
    assert [c for c in chunks if c["choices"][0]["delta"].get("content")] == [chunks[-2]]
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["citations"][0]["source"] == "maths.md"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)


def test_completion_stream_shows_the_checked_answer_once(server):
    uncited = "Khan Academy and MIT OpenCourseWare have free courses on all three topics."
    for reply in (uncited, LONG_ANSWER):
        use_generator(server, FakeGenerator(lambda messages, reply=reply: reply))
        response = server["client"].post("/v1/chat/completions", json=openai_body(QUESTION, stream=True))
        chunks = stream_chunks(response)
        checked = chunks[-1]["careerqa"]["answer"]
        assert checked == (uncited.removesuffix(".") + " [1]." if reply == uncited else reply)
        text = deltas(chunks, "content")
        assert text.startswith(checked) and text.count(checked) == 1 and "Checked against" not in text
        assert deltas(chunks, "reasoning_content") == reply  # what the model wrote, as it wrote it
        assert server["client"].get("/health").json()["queue"]["pending"] == 0  # the slot is back


def test_completion_uses_earlier_turns_and_content_parts(server):
    script = ["What free courses help with maths?", ANSWER]
    use_generator(server, FakeGenerator(script))
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "what does kubernetes schedule?"},
        {"role": "assistant", "content": "Containers [1]."},
        {"role": "user", "content": [{"type": "text", "text": "and what about the maths?"}]},
    ]
    body = server["client"].post("/v1/chat/completions", json={"messages": messages}).json()
    assert body["careerqa"]["standalone_question"] == "What free courses help with maths?"
    assert body["choices"][0]["message"]["content"].startswith(ANSWER)


@pytest.mark.parametrize(
    "payload",
    [
        {"messages": []},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "   "}]},
        {"messages": [{"role": "user", "content": "x" * 1001}]},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"model": "careerqa"},
    ],
)
def test_bad_completion_requests_get_openai_errors(server, payload):
    response = server["client"].post("/v1/chat/completions", json=payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error" and error["code"] == 422


def test_models_lists_careerqa(server):
    assert server["client"].get("/v1/models").json()["data"][0]["id"] == "careerqa"


# --- reindexing and live reload ----------------------------------------------------------------------


def test_reindex_is_refused_without_a_configured_token(tmp_path):
    settings = make_settings(tmp_path)  # no admin token
    app = create_app(settings, engine=Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([])))
    with live_server(app) as url:
        response = httpx.post(f"{url}/reindex", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "CAREERQA_ADMIN_TOKEN" in response.json()["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"])
def test_reindex_needs_the_token(server, header):
    headers = {"Authorization": header} if header else {}
    response = server["client"].post("/reindex", headers=headers)
    assert response.status_code == 401 and "Bearer" in response.json()["error"]


def test_reindex_picks_up_a_new_file(server):
    client = server["client"]
    before = client.get("/health").json()["index"]
    (server["settings"].corpus_dir / "quantum.md").write_text(NEW_DOC, encoding="utf-8")
    response = client.post("/reindex", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["report"]["files_added"] == ["quantum.md"] and body["index_version"] != before["version"]
    after = client.get("/health").json()["index"]
    assert after["version"] == body["index_version"] and after["files"] == before["files"] + 1
    top = client.post("/search", json={"query": "Qiskit circuits physics degree"}).json()
    assert top["results"][0]["source"] == "quantum.md" and top["index_version"] == after["version"]


def _index_in_another_process(settings) -> None:
    Engine(settings, embedder=FakeEmbedder()).sync()


def test_an_index_built_by_another_process_is_picked_up(server):
    client = server["client"]
    version = client.get("/health").json()["index"]["version"]
    (server["settings"].corpus_dir / "quantum.md").write_text(NEW_DOC, encoding="utf-8")
    child = multiprocessing.get_context("spawn").Process(
        target=_index_in_another_process, args=(server["settings"],)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    top = client.post("/search", json={"query": "Qiskit circuits physics degree"}).json()
    assert top["results"][0]["source"] == "quantum.md" and top["index_version"] != version


def test_an_answer_comes_from_one_index_version(server):
    """A reindex while an answer is being written: the answer keeps the version it started with, and
    every passage it shows belongs to that version; the next request sees the new one."""
    client = server["client"]
    old = client.get("/health").json()["index"]["version"]
    use_generator(server, Pieces(LONG_ANSWER, pause=0.1))  # about 1.5 s
    result: dict = {}

    def ask() -> None:
        with httpx.Client(base_url=server["url"], timeout=30) as c:
            result["events"] = sse_events(c.post("/chat", json={"question": QUESTION, "stream": True}))

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.4)  # the answer is streaming
    (server["settings"].corpus_dir / "maths.md").unlink()
    (server["settings"].corpus_dir / "quantum.md").write_text(NEW_DOC, encoding="utf-8")
    server["app"].dependency_overrides.clear()
    reindexed = client.post("/reindex", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    asker.join()
    answer = result["events"][-1][1]
    assert answer["index_version"] == old != reindexed["index_version"]
    assert answer["citations"][0]["source"] == "maths.md"  # deleted since, but this answer's version had it
    assert {h["source"] for h in answer["retrieved"]} <= {"maths.md", "cloud.md", "soft.txt"}
    fresh = client.post("/search", json={"query": "Khan Academy maths", "top_k": 10}).json()
    assert fresh["index_version"] == reindexed["index_version"]
    assert "maths.md" not in {r["source"] for r in fresh["results"]}


# --- load and limits ---------------------------------------------------------------------------------


def test_a_full_queue_is_503_with_retry_after_and_search_stays_open(server):
    use_generator(server, Pieces(LONG_ANSWER, pause=0.15))  # about 2 s each; queue: 1 running + 1 waiting
    statuses: list[int] = []

    def ask() -> None:
        with httpx.Client(base_url=server["url"], timeout=30) as c:
            statuses.append(c.post("/chat", json={"question": QUESTION}).status_code)

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for t in askers:
        t.start()
    client = server["client"]
    deadline = time.monotonic() + 10
    while client.get("/health").json()["queue"]["pending"] < 2:  # one answering, one waiting
        assert time.monotonic() < deadline
        time.sleep(0.02)
    refused = client.post("/chat", json={"question": QUESTION})
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert "busy" in refused.json()["error"]
    openai = client.post("/v1/chat/completions", json=openai_body(QUESTION))
    assert openai.status_code == 503 and openai.json()["error"]["type"] == "overloaded_error"
    started = time.monotonic()
    assert client.post("/search", json={"query": "maths"}).status_code == 200
    assert time.monotonic() - started < 1.0  # not queued behind the answers
    for t in askers:
        t.join()
    assert statuses == [200, 200]
    assert client.get("/health").json()["queue"]["pending"] == 0


def test_a_body_over_the_limit_is_413(server):
    response = server["client"].post("/chat", json={"question": "x" * 70_000})
    assert response.status_code == 413 and "byte limit" in response.json()["error"]


def test_a_chunked_body_over_the_limit_is_413(server):
    def body() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = server["client"].post("/chat", content=body(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "byte limit" in response.json()["error"]


def test_docs_work_offline(server):
    client = server["client"]
    page = client.get("/docs")
    assert (
        page.status_code == 200 and "<script" not in page.text and "http" not in page.text.split("<body>")[0]
    )
    for route in ["/chat", "/search", "/health", "/reindex", "/v1/chat/completions"]:
        assert f"<code>{route}</code>" in page.text
    schema = client.get("/openapi.json").json()
    assert {"/chat", "/search", "/health", "/reindex", "/v1/chat/completions"} <= set(schema["paths"])


def test_a_cached_answer_skips_the_queue(server):
    client = server["client"]
    use_generator(server, Pieces(LONG_ANSWER, pause=0.15))
    first = client.post("/chat", json={"question": QUESTION}).json()
    assert first["route"] == "generated"

    def ask_other() -> None:
        with httpx.Client(base_url=server["url"], timeout=30) as c:
            c.post("/chat", json={"question": "kubernetes and docker?"})

    busy = [threading.Thread(target=ask_other) for _ in range(2)]
    for t in busy:
        t.start()
    deadline = time.monotonic() + 10
    while client.get("/health").json()["queue"]["pending"] < 2:  # one answering, one waiting
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.post("/chat", json={"question": "kubernetes?"}).status_code == 503  # the queue is full
    again = client.post("/chat", json={"question": QUESTION.upper()})
    assert again.status_code == 200 and again.json()["route"] == "cache"
    assert again.json()["answer"] == first["answer"]
    for t in busy:
        t.join()
