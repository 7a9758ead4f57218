"""``careerqa serve`` as the README starts it, with the real packaged models, over real HTTP; and an
index rebuilt by ``careerqa index`` in another process showing up in its answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from careerqa.text.citations import cited_numbers

from .conftest import REPO
from .helpers import serve_process, sse_events

pytestmark = pytest.mark.real

NEW_DOC = """# Careers in AI for agriculture

Agritech companies hire machine learning engineers to forecast crop yields from satellite images.
The most requested extra skill in these roles is remote sensing, usually learned with Google Earth Engine.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("real-server")
    shutil.copytree(REPO / "corpus", root / "corpus")
    env = {**os.environ, "CAREERQA_ADMIN_TOKEN": "real-token", "HF_HUB_OFFLINE": "1"}
    with serve_process(root, env) as client:
        yield {"client": client, "root": root, "env": env}


def _no_dangling(answer: dict) -> None:
    assert max(cited_numbers(answer["answer"]), default=0) <= len(answer["citations"])


def test_health_and_search(server):
    client = server["client"]
    health = client.get("/health").json()
    assert health["models"] == {"embedder": "all-MiniLM-L6-v2", "generator": "qwen2.5-coder-1.5b"}
    assert health["index"]["files"] == 1 and health["index"]["chunks"] > 10
    results = client.post("/search", json={"query": "which cloud platforms should I learn?"}).json()[
        "results"
    ]
    assert any("AWS" in r["text"] for r in results[:3])


def test_chat_json_and_stream(server):
    client = server["client"]
    answer = client.post("/chat", json={"question": "is a PhD required to work in AI?"}).json()
    assert not answer["abstained"], answer
    assert any("PhD" in c["text"] for c in answer["citations"])
    _no_dangling(answer)
    events = sse_events(
        client.post("/chat", json={"question": "what is the capital of Peru?", "stream": True})
    )
    assert [k for k, _ in events][-2:] == ["citations", "end"]
    assert events[-1][1]["abstained"] is True and events[-2][1]["citations"] == []


def test_openai_endpoint(server):
    body = (
        server["client"]
        .post(
            "/v1/chat/completions",
            json={
                "model": "careerqa",
                "messages": [
                    {"role": "user", "content": "Which libraries should I learn for deep learning?"}
                ],
            },
        )
        .json()
    )
    content = body["choices"][0]["message"]["content"]
    assert not body["careerqa"]["abstained"], body
    assert "Sources:\n[1]" in content and body["citations"]


def test_reindex_needs_the_token(server):
    assert server["client"].post("/reindex").status_code == 401


def test_careerqa_index_in_another_shell_reaches_the_running_server(server):
    client = server["client"]
    version = client.get("/health").json()["index"]["version"]
    (server["root"] / "corpus" / "agritech.md").write_text(NEW_DOC, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "careerqa", "index", "--json"],
        cwd=server["root"],
        env=server["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["files_added"] == ["agritech.md"]
    answer = client.post(
        "/chat", json={"question": "What skill do agritech companies ask ML engineers for?"}
    ).json()
    assert answer["index_version"] != version
    assert answer["retrieved"][0]["source"] == "agritech.md"
    if not answer["abstained"]:
        assert any(c["source"] == "agritech.md" for c in answer["citations"]), answer
