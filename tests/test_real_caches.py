"""Passage KV caches built by themselves, with the real packaged models: a server started on a fresh
index computes them in the background and after ``POST /reindex``; a first-use ``careerqa ask``
leaves a background build behind that ``careerqa doctor`` then sees complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import serve_process

pytestmark = pytest.mark.real

DOCS = {
    "maths.md": """# Maths for machine learning

Linear algebra, calculus and probability are the maths most machine learning roles expect. Khan Academy
and MIT OpenCourseWare teach all three for free, and most learners start with linear algebra.
""",
    "mlops.md": """# MLOps

MLOps engineers deploy and monitor models in production. Docker packages a model with its
dependencies, and Kubernetes runs the containers across machines.
""",
}
NEW = "# Agritech\n\nAgritech companies hire machine learning engineers to forecast crop yields.\n"


def corpus_at(root: Path) -> dict[str, str]:
    (root / "corpus").mkdir(parents=True)
    for name, text in DOCS.items():
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CAREERQA_KV_CACHE": "stitch",
        "CAREERQA_KV_CACHE_DIR": str(root / "kv"),
        "CAREERQA_ADMIN_TOKEN": "real-token",
    }


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("real-caches")
    with serve_process(root, corpus_at(root)) as client:
        yield {"client": client, "root": root}


def all_cached(client: httpx.Client) -> dict | None:
    health = client.get("/health").json()
    caches = health["passage_caches"]
    ready = caches["state"] == "ready" and caches["cached_chunks"] == health["index"]["chunks"]
    return caches if ready else None


def test_a_server_on_a_fresh_index_caches_every_passage_by_itself(server):
    client = server["client"]
    caches = wait_for(lambda: all_cached(client), 300, "the passages were not cached")
    assert caches["kv_type"] == "f16" and 0 < caches["bytes"] <= caches["budget_bytes"]
    answer = client.post("/chat", json={"question": "Where can I learn linear algebra for free?"}).json()
    assert not answer["abstained"] and ("Khan" in answer["answer"] or "MIT" in answer["answer"])

    (server["root"] / "corpus" / "agritech.md").write_text(NEW, encoding="utf-8")
    reindex = client.post("/reindex", headers={"Authorization": "Bearer real-token"})
    assert reindex.status_code == 200, reindex.text
    chunks = client.get("/health").json()["index"]["chunks"]
    caches = wait_for(lambda: all_cached(client), 120, "the new passage was not cached")
    assert caches["cached_chunks"] == chunks == 3


def test_a_first_use_ask_leaves_a_background_build_that_completes(tmp_path):
    env = corpus_at(tmp_path)
    ask = subprocess.run(
        [sys.executable, "-m", "careerqa", "ask", "--no-stream", "What does Docker do for MLOps?"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ask.returncode == 0, ask.stderr
    assert "computing passage caches for faster answers in the background" in ask.stderr
    assert "Docker" in ask.stdout
    log = tmp_path / "kv" / "build.log"
    try:
        wait_for(lambda: (tmp_path / "kv" / "synced.json").exists(), 300, "the background build did not end")
    except AssertionError as exc:  # say why: the build's own stderr
        raise AssertionError(f"{exc}\n{log.read_text() if log.exists() else 'no build.log'}") from None
    doctor = subprocess.run(
        [sys.executable, "-m", "careerqa", "doctor", "--json", "--no-check"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    kv = json.loads(doctor.stdout)["passage_kv"]
    assert kv["state"] == "complete" and kv["cached_chunks"] == kv["chunks"] == 2, kv
    again = subprocess.run(
        [sys.executable, "-m", "careerqa", "ask", "--no-stream", "What does Kubernetes run?"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0 and "in the background" not in again.stderr  # in step: nothing started
