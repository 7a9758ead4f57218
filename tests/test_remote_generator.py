"""The remote generator against a scripted OpenAI-compatible server: streaming, retries with backoff on
429/5xx, timeouts, a server that is down, refused keys, and a whole answer through the engine."""

from __future__ import annotations

import json
import socket
import time

import pytest

from careerqa.engine.core import Engine
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.generate.llama import load_generator
from careerqa.generate.remote import RemoteGenerator, chat_completions_url

from .fake_openai import FakeOpenAI

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]


def remote(url: str, **kwargs) -> tuple[RemoteGenerator, list[float]]:
    slept: list[float] = []
    kwargs.setdefault("retries", 3)
    gen = RemoteGenerator(url, "qwen-test", sleep=slept.append, **kwargs)
    return gen, slept


def test_streams_the_reply_and_sends_the_same_messages_greedily():
    with FakeOpenAI([("stream", ["Hel", "lo", " [1]."])]) as server:
        gen, slept = remote(server.url, api_key="k3y")
        pieces = list(gen.stream(MESSAGES, max_tokens=12, stop=["\n"]))
    assert pieces == ["Hel", "lo", " [1]."]
    assert slept == []
    sent = server.requests[0]
    assert sent["json"] == {
        "model": "qwen-test",
        "messages": MESSAGES,
        "stream": True,
        "max_tokens": 12,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 1234,
        "stop": ["\n"],
    }
    assert sent["headers"]["Authorization"] == "Bearer k3y"


def test_retries_429_and_5xx_with_backoff_then_answers():
    script = [
        ("status", 503, {}, {"error": {"message": "loading model"}}),
        ("status", 429, {"Retry-After": "2"}, {"error": "slow down"}),
        ("status", 502, {}, {}),
        ("stream", ["ok"]),
    ]
    with FakeOpenAI(script) as server:
        gen, slept = remote(server.url)
        assert gen.generate(MESSAGES, max_tokens=4) == "ok"
    assert len(server.requests) == 4
    # first and third waits: exponential backoff (0.5 s, then 2 s, each with +-50 % jitter);
    # the second is the server's Retry-After
    assert 0.25 <= slept[0] <= 0.75 and slept[1] == 2.0 and 1.0 <= slept[2] <= 3.0


def test_a_server_that_stays_down_is_model_unavailable_after_the_retries():
    with FakeOpenAI([("status", 503, {}, {"error": {"message": "overloaded"}})]) as server:
        gen, slept = remote(server.url, retries=2)
        with pytest.raises(ModelUnavailable, match=r"unavailable after 3 tries \(HTTP 503 \(overloaded\)\)"):
            gen.generate(MESSAGES, max_tokens=4)
    assert len(server.requests) == 3 and len(slept) == 2


def test_nothing_listening_is_a_clear_error_naming_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    gen, slept = remote(f"http://127.0.0.1:{port}/v1", retries=1)
    with pytest.raises(ModelUnavailable) as err:
        gen.generate(MESSAGES, max_tokens=4)
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "ConnectError" in message and "CAREERQA_GENERATOR_URL" in message
    assert len(slept) == 1


def test_a_stalled_server_times_out_instead_of_hanging():
    with FakeOpenAI([("hang", 3.0)]) as server:
        gen, _ = remote(server.url, retries=0, timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="no reply within the timeout"):
            gen.generate(MESSAGES, max_tokens=4)
        assert time.monotonic() - started < 2.0


def test_a_refused_key_and_other_4xx_are_not_retried():
    with FakeOpenAI([("status", 401, {}, {"error": {"message": "invalid api key"}})]) as server:
        gen, slept = remote(server.url)
        with pytest.raises(ModelUnavailable, match="refused the API key.*CAREERQA_GENERATOR_API_KEY"):
            gen.generate(MESSAGES, max_tokens=4)
    assert len(server.requests) == 1 and slept == []
    too_long = {"error": {"message": "Requested tokens (5000) exceed context window of 4096"}}
    with FakeOpenAI([("status", 400, {}, too_long)]) as server:
        gen, _ = remote(server.url)
        with pytest.raises(BadInput, match="too long for the remote model's context"):
            gen.generate(MESSAGES, max_tokens=4)


def test_a_stream_cut_midway_is_an_error_and_is_not_retried():
    with FakeOpenAI([("cut", ["Partial ", "answer"]), ("stream", ["never"])]) as server:
        gen, slept = remote(server.url)
        seen: list[str] = []
        with pytest.raises(ModelUnavailable, match="broke off mid-answer"):
            for piece in gen.stream(MESSAGES, max_tokens=8):
                seen.append(piece)
    assert seen == ["Partial ", "answer"] and len(server.requests) == 1 and slept == []


def test_tokens_are_counted_by_the_server_where_it_can():
    with FakeOpenAI([("stream", ["x"])]) as server:
        server.tokenize = lambda text: len(text.split()) * 7
        gen, _ = remote(server.url)
        assert gen.count_tokens("three little words") == 21
        assert gen.count_tokens("three little words") == 21  # cached: asked once
        paths = [r["path"] for r in server.tokenize_requests]
        assert paths == ["/extras/tokenize/count"] * 2  # the probe, then the text
        assert server.tokenize_requests[1]["json"]["input"] == "three little words"


def test_without_a_tokenize_endpoint_tokens_are_estimated_after_one_probe():
    with FakeOpenAI([("stream", ["x"])]) as server:
        gen, _ = remote(server.url + "/v1")
        text = "x" * 45
        assert gen.count_tokens(text) == 10  # 4.5 characters per token
        assert gen.count_tokens(text + "y") == 11
        assert [r["path"] for r in server.tokenize_requests] == ["/extras/tokenize/count", "/tokenize"]


def test_urls_and_settings():
    assert chat_completions_url("http://h:8080") == "http://h:8080/v1/chat/completions"
    assert chat_completions_url("http://h:8080/v1/") == "http://h:8080/v1/chat/completions"
    assert chat_completions_url("https://h/x/v1/chat/completions") == "https://h/x/v1/chat/completions"
    with pytest.raises(BadInput, match="http:// or https://"):
        RemoteGenerator("localhost:8080", "m")


def test_the_engine_answers_through_a_remote_server(settings, fake_embedder, monkeypatch):
    reply = "Linear algebra, calculus and statistics are the foundation of machine learning [1]."

    # Every piece but the first carries its space, as a tokenizer's pieces do.
    pieces = [w if i == 0 else " " + w for i, w in enumerate(reply.split(" "))]
    with FakeOpenAI([("stream", pieces)]) as server:
        remote_settings = settings.replace(
            generator_url=server.url, generator_model="served-model", faq_min_score=2.0
        )
        generator = load_generator(remote_settings)  # no model file is assembled for a remote server
        assert isinstance(generator, RemoteGenerator)
        assert not (settings.cache_dir).exists()
        engine = Engine(remote_settings, embedder=fake_embedder, generator=generator)
        answer = engine.ask("What maths do I need for machine learning?")
    assert not answer.abstained, answer
    assert answer.citations and answer.citations[0].hit.chunk.source == "maths.md"
    sent = server.requests[0]["json"]
    assert sent["model"] == "served-model"
    assert '<passage n="1"' in sent["messages"][1]["content"]


def test_doctor_reports_the_remote_generator_and_hides_the_key(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from careerqa import cli

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("# A\n\nSome text about careers in AI.\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAREERQA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CAREERQA_GENERATOR_API_KEY", "very-secret-key")
    with FakeOpenAI([("stream", ["x"])]) as server:
        monkeypatch.setenv("CAREERQA_GENERATOR_URL", server.url)
        result = CliRunner().invoke(cli.app, ["doctor", "--json", "--no-check"])
    report = json.loads(result.stdout)
    assert "very-secret-key" not in result.stdout
    assert report["settings"]["generator_api_key"] == "(set)"
    assert report["generator"]["kind"] == "remote" and report["generator"]["models_status"] == 200
    assert "only to the local llama.cpp generator" in report["generator"]["passage_kv_caches"]
    # the local model file is missing, but it is not used: no problem, and nothing was joined
    assert report["problems"] == [] and result.exit_code == 0, report["problems"]
    assert not (tmp_path / "cache").exists()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CAREERQA_GENERATOR_URL", f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(cli.app, ["doctor", "--no-check"])
    assert result.exit_code == 1
    assert (
        "PROBLEM (generator): the generator server at" in result.output and "does not answer" in result.output
    )
