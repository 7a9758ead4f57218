"""The web service's security promises, each tested from outside: the admin token (compared in
constant time), request size and question length limits, the default listening address, no CORS, and
no request that can name a file outside the corpus and index folders. A real uvicorn server with the
fake models (``live_server``).

Not covered here: bad input in general (``test_api_fuzz.py``), load (``test_load_smoke.py``).
"""

from __future__ import annotations

import hmac
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.engine.core import Engine
from careerqa.web.app import create_app
from careerqa.web.auth import Forbidden, Unauthorized, check_admin
from careerqa.web.schemas import MAX_BODY_BYTES, MAX_MESSAGE_CHARS, MAX_QUESTION_CHARS

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import ANSWER, QUESTION, TOKEN, live_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("security")
    settings = make_settings(root).replace(admin_token=TOKEN)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda messages: ANSWER))
    app = create_app(settings, engine=engine)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"url": url, "client": client, "settings": settings, "root": root, "app": app}


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    error = response.json()["error"]
    return error["message"] if isinstance(error, dict) else error


# --- the admin token ---------------------------------------------------------------------------------


def test_the_admin_token_is_compared_in_constant_time(secure, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert secure["client"].post("/reindex", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert compared == [(b"guess", TOKEN.encode())]
    assert secure["client"].post("/reindex", headers=AUTH).status_code == 200
    assert compared[-1] == (TOKEN.encode(), TOKEN.encode())


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "bearer wrong", TOKEN, f"Token {TOKEN}", f"Bearer {TOKEN[:-1]}"],
)
def test_a_missing_or_wrong_token_is_401(secure, header):
    headers = {"Authorization": header} if header is not None else {}
    response = secure["client"].post("/reindex", headers=headers)
    assert response.status_code == 401 and "Bearer" in error_of(response)


def test_a_token_that_is_not_ascii_is_401_not_500(secure):
    response = secure["client"].post("/reindex", headers={"Authorization": b"Bearer \xff\xfe"})
    assert response.status_code == 401


def test_no_configured_token_means_no_reindex_over_http(tmp_path):
    for token in (None, ""):
        with pytest.raises(Forbidden):
            check_admin(token, f"Bearer {token}")
    with pytest.raises(Unauthorized):
        check_admin(TOKEN, "Bearer nope")
    check_admin(TOKEN, f"bearer {TOKEN}")  # the scheme is case-insensitive (RFC 7235)
    settings = make_settings(tmp_path)  # no CAREERQA_ADMIN_TOKEN
    app = create_app(settings, engine=Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([])))
    with live_server(app) as url:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer None"}):
            response = httpx.post(f"{url}/reindex", headers=headers)
            assert response.status_code == 403 and "CAREERQA_ADMIN_TOKEN" in error_of(response)


# --- request size and question length ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/chat", {"question": "x" * (MAX_QUESTION_CHARS + 1)}),
        ("/search", {"query": "x" * (MAX_QUESTION_CHARS + 1)}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * (MAX_QUESTION_CHARS + 1)}]}),
        (
            "/chat",
            {"question": QUESTION, "history": [{"role": "user", "content": "x" * (MAX_MESSAGE_CHARS + 1)}]},
        ),
        ("/chat", {"question": QUESTION, "history": [{"role": "user", "content": "q"}] * 21}),
    ],
)
def test_a_question_over_the_limit_is_422(secure, path, payload):
    response = secure["client"].post(path, json=payload)
    assert response.status_code == 422 and error_of(response)


def test_a_question_at_the_limit_is_answered(secure):
    response = secure["client"].post("/chat", json={"question": "maths " + "x" * (MAX_QUESTION_CHARS - 6)})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/chat", "/search", "/v1/chat/completions", "/reindex", "/health"])
def test_a_body_over_the_limit_is_413_on_every_route(secure, path):
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = secure["client"].request(
        "POST", path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and "byte limit" in error_of(response)


# --- where the server listens, and CORS ----------------------------------------------------------------


def test_serve_listens_on_localhost_unless_told(monkeypatch):
    calls: list[dict[str, Any]] = []
    import uvicorn

    from careerqa.generate import llama

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(llama, "check_generator", lambda settings: None)  # no model needed here
    runner = CliRunner()
    help_text = runner.invoke(cli.app, ["serve", "--help"]).output
    assert "127.0.0.1" in help_text
    assert runner.invoke(cli.app, ["serve"]).exit_code == 0
    assert runner.invoke(cli.app, ["serve", "--host", "0.0.0.0", "--port", "9123"]).exit_code == 0
    assert [(c["host"], c["port"]) for c in calls] == [("127.0.0.1", 8000), ("0.0.0.0", 9123)]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/health", None),
        ("POST", "/search", {"query": "maths"}),
        ("POST", "/chat", {"question": QUESTION}),
    ],
)
def test_no_cors_headers_for_another_origin(secure, method, path, payload):
    response = secure["client"].request(method, path, json=payload, headers={"Origin": EVIL})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("path", ["/chat", "/search", "/reindex", "/v1/chat/completions"])
def test_a_cors_preflight_is_refused(secure, path):
    headers = {
        "Origin": EVIL,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    response = secure["client"].options(path, headers=headers)
    assert response.status_code == 405 and error_of(response)
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_a_simple_cross_site_post_is_not_answered(secure):
    """A page elsewhere can POST text/plain without a preflight; the API only reads JSON bodies."""
    response = secure["client"].post(
        "/chat",
        content=f'{{"question": "{QUESTION}"}}',
        headers={"Content-Type": "text/plain", "Origin": EVIL},
    )
    assert response.status_code == 422


# --- no parameter names a file ---------------------------------------------------------------------------

PATHLIKE = re.compile(r"path|dir|file|folder|index|corpus|url|uri|location", re.IGNORECASE)


def test_no_request_parameter_is_a_path(secure):
    """No parameter names a path: the one path parameter, a document's id, is 16 hex digits."""
    schema = secure["client"].get("/openapi.json").json()
    for route, operations in schema["paths"].items():
        for operation in operations.values():
            parameters = operation.get("parameters", [])
            for p in parameters:
                if p["in"] == "path":
                    assert p["schema"].get("pattern") == "^[0-9a-f]{16}$", f"{route}: {p}"
            names = [p["name"] for p in parameters if p["in"] != "path"]
            assert names in ([], ["authorization"], ["chunk", "claim"]), f"{route}: {names}"
            assert not [n for n in names if PATHLIKE.search(n)], f"{route}: {names}"
    assert [r for r in schema["paths"] if "{" in r] == ["/documents/{doc_id}"]
    properties = {
        f"{model}.{name}"
        for model, body in schema["components"]["schemas"].items()
        for name in body.get("properties", {})
    }
    assert not [p for p in properties if PATHLIKE.search(p.split(".", 1)[1])], properties


def test_reindex_reads_and_writes_only_the_configured_folders(secure, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.md").write_text("# Secret\n\nThe launch code is 0000.\n", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    response = secure["client"].post(
        "/reindex",
        headers=AUTH,
        params={"corpus_dir": str(elsewhere), "index_dir": str(tmp_path), "path": "../../etc"},
        json={"corpus_dir": str(elsewhere), "index_dir": str(tmp_path)},
    )
    assert response.status_code == 200, response.text
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written there
    search = secure["client"].post("/search", json={"query": "launch code secret", "top_k": 50}).json()
    corpus = {p.name for p in secure["settings"].corpus_dir.iterdir()}
    assert {r["source"] for r in search["results"]} <= corpus
    index_dir: Path = secure["settings"].index_dir
    assert (index_dir / "manifest.json").is_file()
    assert all(p.resolve().is_relative_to(index_dir.resolve()) for p in index_dir.rglob("*"))


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Send ``GET target`` exactly as written (an HTTP client would normalise the dots away)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/../../etc/passwd",
        "/static/../api.py",
        "/static/chat.html",
        "/static/../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/static/..%5capi.py",
        "/docs/../../pyproject.toml",
        "//etc/passwd",
        "/index/manifest.json",
        "/corpus/maths.md",
    ],
)
def test_a_path_outside_the_routes_is_a_json_404(secure, target):
    status, body = raw_get(secure["url"], target)
    assert status in (400, 404), body
    assert b"root:" not in body and b"def create_app" not in body and b"Linear algebra" not in body
    if status == 404:
        assert body.startswith(b"{") and b'"error"' in body
