"""``careerqa mcp`` and ``/mcp`` of ``careerqa serve``, driven by the official ``mcp`` SDK's own client:
in-process (fast), over streamable HTTP against a real uvicorn server, and over stdio with the command
in a subprocess. The tools are listed, ``search`` and ``ask`` give text plus structured citations
(source, section, page, quote, span), the documents are resources, and bad input is a tool error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from careerqa.engine.core import Engine
from careerqa.types import document_id
from careerqa.web.app import create_app
from careerqa.web.mcp_server import build_server
from careerqa.web.service import GenerationQueue

from .conftest import DOCS, FakeEmbedder, make_settings
from .fake_openai import FakeOpenAI
from .fakes import FakeGenerator
from .helpers import live_server

ANSWER = "Linear algebra, calculus and statistics are the foundation of machine learning [1]."
QUESTION = "What maths matters for machine learning?"


@pytest.fixture
def engine(tmp_path) -> Engine:
    settings = make_settings(tmp_path)
    return Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: ANSWER))


def _server(engine: Engine):
    return build_server(lambda: engine, GenerationQueue(2, 1))


async def _tour(client: Client) -> dict:
    """What an assistant does first: list the tools, search, ask, list and read the documents."""
    tools = await client.list_tools()
    found = await client.call_tool("search", {"query": "calculus statistics", "top_k": 2})
    answered = await client.call_tool("ask", {"question": QUESTION})
    resources = await client.list_resources()
    return {"tools": tools, "search": found, "ask": answered, "resources": resources}


def _check_tour(seen: dict) -> None:
    names = {tool.name for tool in seen["tools"].tools}
    assert {"search", "ask"} <= names
    ask_tool = next(t for t in seen["tools"].tools if t.name == "ask")
    assert ask_tool.input_schema["required"] == ["question"]
    assert ask_tool.output_schema is not None and "citations" in ask_tool.output_schema["properties"]

    found = seen["search"]
    assert not found.is_error
    hits = found.structured_content["results"]
    assert 1 <= len(hits) <= 2 and hits[0]["source"] == "maths.md"
    assert "calculus" in found.content[0].text

    answered = seen["ask"]
    assert not answered.is_error
    body = answered.structured_content
    assert body["abstained"] is False
    assert body["answer"].startswith("Linear algebra, calculus and statistics")
    cited = body["citations"][0]
    assert cited["source"] == "maths.md" and cited["section"] == "Maths for AI"
    assert "page" in cited and len(cited["span"]) == 2
    start, end = cited["span"]
    assert DOCS["maths.md"][start:end].split()[:3] == cited["text"].split()[:3]  # the quote is the file's
    text = answered.content[0].text
    assert "[1]" in text and "Sources:" in text and "maths.md" in text

    uris = {str(r.uri) for r in seen["resources"].resources}
    assert uris == {f"careerqa://documents/{document_id(name)}" for name in DOCS}


def test_in_process_tools_and_resources(engine) -> None:
    async def main() -> tuple[dict, str]:
        async with Client(_server(engine)) as client:
            seen = await _tour(client)
            read = await client.read_resource(f"careerqa://documents/{document_id('maths.md')}")
            return seen, read.contents[0].text

    seen, text = anyio.run(main)
    _check_tour(seen)
    assert text.startswith("# Maths for AI") and "Khan Academy" in text


def test_bad_input_is_a_tool_error(engine) -> None:
    async def main() -> tuple:
        async with Client(_server(engine)) as client:
            empty = await client.call_tool("ask", {"question": ""})
            too_many = await client.call_tool("search", {"query": "maths", "top_k": 10_000})
            try:
                await client.read_resource("careerqa://documents/not-a-document")
            except MCPError as exc:
                missing = str(exc)
            else:
                missing = ""
            return empty, too_many, missing

    empty, too_many, missing = anyio.run(main)
    assert empty.is_error and too_many.is_error
    assert "not-a-document" in missing


def test_a_document_resource_is_plain_text_never_markup(tmp_path) -> None:
    settings = make_settings(tmp_path)
    page = "<html><body><h1>Pay</h1><p>Salaries rise.</p><script>alert(1)</script></body></html>"
    (settings.corpus_dir / "pay.html").write_text(page, encoding="utf-8")
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: ANSWER))

    async def main():
        async with Client(_server(engine)) as client:
            return await client.read_resource(f"careerqa://documents/{document_id('pay.html')}")

    content = anyio.run(main).contents[0]
    assert content.mime_type == "text/plain"
    assert "Salaries rise." in content.text and "<script>" not in content.text and "alert" not in content.text


@pytest.fixture
def served(tmp_path, monkeypatch) -> Iterator[str]:
    settings = make_settings(tmp_path)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: ANSWER))
    with live_server(create_app(settings, engine=engine)) as url:
        yield url


def test_streamable_http_beside_serve(served) -> None:
    async def main() -> dict:
        async with Client(served + "/mcp") as client:
            return await _tour(client)

    _check_tour(anyio.run(main))
    assert httpx.get(served + "/health").status_code == 200  # the other routes still answer


def test_mcp_route_needs_a_key_when_keys_are_set(tmp_path) -> None:
    from careerqa.web.auth import new_key

    key, entry = new_key()
    settings = make_settings(tmp_path).replace(api_keys=entry)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: ANSWER))
    with live_server(create_app(settings, engine=engine)) as url:
        hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        refused = httpx.post(url + "/mcp", json=hello)
        assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers

        async def main():
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(headers=headers, timeout=30) as http:
                from mcp.client.streamable_http import streamable_http_client

                async with streamable_http_client(url + "/mcp", http_client=http) as streams:
                    async with Client(_Streams(streams)) as client:
                        return await client.list_tools()

        assert {t.name for t in anyio.run(main).tools} >= {"search", "ask"}


class _Streams:
    """A ``Transport`` over streams a transport context already opened (to pass our own HTTP client)."""

    def __init__(self, streams) -> None:
        self.streams = streams

    async def __aenter__(self):
        return self.streams

    async def __aexit__(self, *exc) -> None:
        return None


def test_stdio_subprocess(tmp_path) -> None:
    """``careerqa mcp`` as an assistant starts it: a subprocess on stdio, the index built on first use
    (the real packaged embedder), answers from a scripted OpenAI-style model server."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    model = FakeOpenAI([("stream", [ANSWER], 0.0)]).__enter__()
    env = {
        **os.environ,
        "CAREERQA_GENERATOR_URL": model.url,
        "CAREERQA_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "careerqa", "mcp", "--corpus", str(corpus), "--index-dir", str(tmp_path / "index")],
        env=env,
        cwd=str(tmp_path),
    )

    async def main() -> dict:
        async with Client(params, read_timeout_seconds=240) as client:
            return await _tour(client)

    try:
        seen = anyio.run(main)
    finally:
        model.__exit__(None, None, None)
    _check_tour(seen)
    assert (tmp_path / "index" / "manifest.json").exists()


def test_mcp_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "careerqa", "mcp", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0 and "--http" in done.stdout and "Model Context Protocol" in done.stdout
