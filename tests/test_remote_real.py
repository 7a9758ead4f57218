"""The remote generator against a real OpenAI-compatible server: llama-cpp-python's own
``python -m llama_cpp.server`` with the packaged GGUF, started by the test on a loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.errors import ModelUnavailable
from careerqa.generate.llama import LlamaGenerator
from careerqa.generate.model_files import ensure_model
from careerqa.generate.remote import RemoteGenerator

from .conftest import REPO

pytestmark = pytest.mark.real

API_KEY = "remote-test-key"
ALIAS = "qwen2.5-coder-1.5b-remote"
THREADS = 2  # the same on both sides: llama.cpp's sums can differ in the last bits with the thread count


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    pytest.importorskip("sse_starlette", reason="llama_cpp.server needs careerqa[remote]")
    pytest.importorskip("starlette_context", reason="llama_cpp.server needs careerqa[remote]")
    settings = Settings.from_env()
    model = ensure_model(settings.generator, settings.cache_dir, progress=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(settings.n_ctx),
            "--n_threads",
            str(THREADS),
            "--n_threads_batch",
            str(THREADS),
            "--api_key",
            API_KEY,
            "--verbose",
            "False",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                headers = {"Authorization": f"Bearer {API_KEY}"}
                if httpx.get(f"{url}/models", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start: " + log_path.read_text()
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_remote_greedy_reply_equals_the_local_model(llama_server):
    settings = Settings.from_env(threads=THREADS)
    messages = [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "Which programming language is used most in machine learning?"},
    ]
    remote = RemoteGenerator(llama_server, ALIAS, api_key=API_KEY)
    pieces = list(remote.stream(messages, max_tokens=24))
    assert len(pieces) > 3  # streamed, not sent whole
    local = LlamaGenerator(ensure_model(settings.generator, settings.cache_dir, progress=False), settings)
    try:
        assert "".join(pieces) == local.generate(messages, max_tokens=24)
        # the prompt budget is counted by the same tokenizer as the local model's
        passage = '<passage n="1" source="a.txt" section="Maths">\nLinear algebra and statistics.\n</passage>'
        assert remote.count_tokens(passage) == local.count_tokens(passage)
    finally:
        local.close()


def test_a_wrong_key_is_a_clear_error(llama_server):
    remote = RemoteGenerator(llama_server, ALIAS, api_key="wrong")
    with pytest.raises(ModelUnavailable, match="refused the API key"):
        remote.generate([{"role": "user", "content": "hi"}], max_tokens=2)


def test_careerqa_answers_with_citations_through_the_remote_server(llama_server, tmp_path, monkeypatch):
    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    monkeypatch.setenv("CAREERQA_GENERATOR_URL", llama_server)
    monkeypatch.setenv("CAREERQA_GENERATOR_MODEL", ALIAS)
    monkeypatch.setenv("CAREERQA_GENERATOR_API_KEY", API_KEY)
    # The fast profile's shorter prompt: this test is about the transport, test_real_answering about
    # the answers; on 2 shared cores whole passages took 160 s here.
    monkeypatch.setenv("CAREERQA_CONTEXT_MODE", "sentences")
    settings = Settings.from_env(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    engine = Engine(settings, show_model_progress=False)
    assert isinstance(engine.generator, RemoteGenerator)
    answer = engine.ask("where can I brush up on my maths?")  # the question test_real_answering asks
    assert not answer.abstained, answer
    assert "Khan Academy" in answer.text
    assert any("Khan Academy" in c.hit.chunk.text for c in answer.citations)
    assert answer.sentences_supported >= 1
