"""API keys and the per-key rate limit (``web/auth.py``): unit tests of the key ring and the bucket,
then a real uvicorn server with keys configured, asked as clients would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from careerqa.engine.core import Engine
from careerqa.errors import BadInput
from careerqa.web.app import create_app
from careerqa.web.auth import KeyRing, RateLimit, RateLimited, digest, new_key

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import ANSWER, QUESTION, TOKEN, live_server

ALICE, ALICE_ENTRY = new_key("alice")
BOB, BOB_ENTRY = new_key("bob")


def test_a_new_key_is_kept_only_as_its_digest():
    key, entry = new_key("ci-bot")
    assert key.startswith("cqa_") and len(key) > 40
    assert entry == f"ci-bot:sha256:{digest(key)}" and key not in entry
    ring = KeyRing.parse(f"{entry}, sha256:{digest('other')}\n")
    assert ring.identify(key) == "ci-bot"
    assert ring.identify("other") == digest("other")[:8]  # unnamed: shown by its digest's start
    assert ring.identify("cqa_wrong") is None
    assert not KeyRing.parse(" , ")


def test_a_plain_key_in_the_setting_is_refused_without_echoing_it():
    with pytest.raises(BadInput) as caught:
        KeyRing.parse("cqa_supersecretvalue")
    assert "supersecretvalue" not in str(caught.value) and "careerqa keys new" in str(caught.value)
    with pytest.raises(BadInput):
        new_key("no spaces allowed")


def test_keys_new_prints_a_key_and_the_entry_that_admits_it():
    from typer.testing import CliRunner

    from careerqa.cli import app

    result = CliRunner().invoke(app, ["keys", "new", "--name", "ci", "--json"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    assert KeyRing.parse(made["entry"]).identify(made["key"]) == "ci"
    assert made["key"] not in made["entry"]
    bad = CliRunner().invoke(app, ["keys", "new", "--name", "two words"])
    assert bad.exit_code != 0 and "key name" in bad.output


def test_the_bucket_allows_a_burst_then_refills_evenly():
    now = [100.0]
    limit = RateLimit(2, clock=lambda: now[0])
    limit.take("a")
    limit.take("a")
    with pytest.raises(RateLimited) as caught:
        limit.take("a")
    assert caught.value.retry_after == 30  # one token comes back every 60/2 s
    limit.take("b")  # each key has its own bucket
    now[0] += 30
    limit.take("a")
    with pytest.raises(RateLimited):
        limit.take("a")
    RateLimit(0).take("a")  # 0: no limit


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("keys")
    settings = make_settings(root).replace(
        admin_token=TOKEN, api_keys=f"{ALICE_ENTRY},{BOB_ENTRY}", api_rate_per_minute=3
    )
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda messages: ANSWER))
    with live_server(create_app(settings, engine=engine)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


def _message(response: httpx.Response) -> str:
    error = response.json()["error"]  # {"error": "..."}, or OpenAI's {"error": {"message": ...}} on /v1
    return str(error["message"] if isinstance(error, dict) else error)


def _chat(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.post("/chat", json={"question": QUESTION}, headers=headers)


def test_question_routes_need_a_known_key(keyed):
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/chat", {"question": QUESTION}),
        ("POST", "/search", {"query": "maths"}),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}),
        ("GET", "/v1/models", None),
        ("POST", "/feedback", {"id": "x", "vote": "up"}),
    ]
    for method, path, body in requests:
        for headers in ({}, {"Authorization": "Bearer cqa_wrong"}, {"X-API-Key": "cqa_wrong"}):
            response = keyed.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "API key" in _message(response)


def test_a_known_key_is_answered_by_either_header_and_pages_stay_open(keyed):
    response = _chat(keyed, {"Authorization": f"Bearer {BOB}"})
    assert response.status_code == 200 and response.json()["answer"]
    search = keyed.post("/search", json={"query": "maths"}, headers={"X-API-Key": BOB})
    assert search.status_code == 200 and search.json()["results"]
    for open_path in ("/", "/health", "/docs"):
        assert keyed.get(open_path).status_code == 200, open_path


def test_the_admin_token_and_api_keys_do_not_stand_in_for_each_other(keyed):
    assert _chat(keyed, {"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert keyed.post("/reindex", headers={"Authorization": f"Bearer {ALICE}"}).status_code == 401
    assert keyed.post("/reindex", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_each_key_has_its_own_rate_limit(keyed):
    alice = {"Authorization": f"Bearer {ALICE}"}
    codes = [keyed.get("/v1/models", headers=alice).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = keyed.get("/v1/models", headers=alice)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 20  # 3 a minute: one back every 20 s
    assert "too many requests" in _message(limited)
    # bob's bucket is his own (he used at most 2 in the test before this one)
    assert keyed.get("/v1/models", headers={"X-API-Key": BOB}).status_code == 200
