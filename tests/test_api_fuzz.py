"""Fuzz the web API from its own OpenAPI schema (schemathesis): valid and invalid requests for every
operation against a real uvicorn server with the fake models. No request may get a 5xx, and every
error must be JSON with a message: ``{"error": str}``, or ``{"error": {"message": str}}`` on ``/v1/``.

Not covered here: load (``test_load_smoke.py``), the security limits (``test_api_security.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.web.app import create_app

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import ANSWER, TOKEN, live_server

# Examples per operation and mode; CAREERQA_FUZZ_EXAMPLES=500 for a longer run by hand.
EXAMPLES = int(os.environ.get("CAREERQA_FUZZ_EXAMPLES", "40"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A long queue: the fuzzer sends one request at a time, so a 503 here would be a bug.
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz")).replace(admin_token=TOKEN, queue_size=64)
    engine = Engine(settings_, embedder=FakeEmbedder(), generator=FakeGenerator(lambda messages: ANSWER))
    with live_server(create_app(settings_, engine=engine)) as url:
        yield url


def error_is_json_with_a_message(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is a JSON object with a non-empty message, in the route family's shape."""
    if response.status_code < 400:
        return None
    assert content_type(response).startswith("application/json"), f"error as {content_type(response)!r}"
    body = json.loads(response.content)
    assert error_message(case.path, body), f"no error message in {body!r}"
    return True


def content_type(response: Any) -> str:
    return ";".join(response.headers.get("content-type", []))  # schemathesis keeps a list per header


def error_message(path: str, body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if path.startswith("/v1/"):
        error = error.get("message") if isinstance(error, dict) else None
    return error if isinstance(error, str) and error.strip() else ""


# The app's schema, made without a server (``create_app`` loads nothing); the test below checks that
# the live server serves the same one. (schemathesis' lazy ``from_fixture`` fails on pytest 9.)
SCHEMA = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(SCHEMA)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# Invalid input may also be refused as too large (413, documented): a rejection all the same.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


def test_the_live_server_serves_the_fuzzed_schema(fuzz_url: str) -> None:
    assert httpx.get(f"{fuzz_url}/openapi.json").json() == json.loads(json.dumps(SCHEMA))


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_fuzz(case: Any, fuzz_url: str) -> None:
    response = case.call(base_url=fuzz_url, timeout=30)
    checks = [not_a_server_error, error_is_json_with_a_message, negative_data_rejection]
    if not content_type(response).startswith("text/event-stream"):
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)


# --- bytes the schema does not describe --------------------------------------------------------------

BODY_ROUTES = ["/chat", "/search", "/v1/chat/completions", "/reindex"]
CONTENT_TYPES = [
    None,
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
]
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def raw_client(fuzz_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_url, timeout=30) as client:
        yield client


def assert_no_server_error(path: str, response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert error_message(path, response.json()), response.text


@FUZZ_SETTINGS
@given(
    path=st.sampled_from(BODY_ROUTES),
    body=st.binary(max_size=300) | JSONISH.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_any_bytes_get_a_json_answer(
    raw_client: httpx.Client, path: str, body: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert_no_server_error(path, raw_client.post(path, content=body, headers=headers))


@FUZZ_SETTINGS
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "question": JSONISH,
            "history": JSONISH,
            "top_k": JSONISH,
            "stream": JSONISH,
            "messages": JSONISH,
            "query": JSONISH,
            "model": JSONISH,
        },
    ),
    path=st.sampled_from(["/chat", "/search", "/v1/chat/completions"]),
)
def test_any_json_fields_get_a_json_answer(raw_client: httpx.Client, path: str, fields: dict) -> None:
    assert_no_server_error(path, raw_client.post(path, json=fields))


@FUZZ_SETTINGS
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.text(alphabet=st.characters(codec="ascii", exclude_characters="#?"), max_size=40).map(
        lambda p: "/" + p.lstrip("/")
    ),
)
def test_any_path_and_method_gets_a_json_answer(raw_client: httpx.Client, method: str, path: str) -> None:
    try:
        response = raw_client.request(method, path, headers={"Authorization": "Bearer nope"})
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return  # the client refused to send it
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and method != "HEAD":
        assert error_message(path, response.json()), response.text


# --- what the fuzzer found, kept as plain tests --------------------------------------------------------


@pytest.mark.parametrize("path", ["/chat", "/search", "/v1/chat/completions"])
@pytest.mark.parametrize("body", [b"\x80", b'{"question": "\xff\xfe"}', b"\xc3("])
@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_a_body_that_is_not_utf8_is_a_4xx_not_500(
    raw_client: httpx.Client, path: str, body: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = raw_client.post(path, content=body, headers=headers)
    assert response.status_code in (400, 422), response.text
    assert error_message(path, response.json())


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/chat", {"question": "maths?", "stream": 0}),
        ("/chat", {"question": "maths?", "stream": "false"}),
        ("/chat", {"question": "maths?", "top_k": "5"}),
        ("/chat", {"question": "maths?", "top_k": 2.0}),
        ("/search", {"query": "maths", "top_k": "5"}),
        ("/search", {"query": 5}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "maths?"}], "stream": 1}),
    ],
)
def test_a_field_of_the_wrong_json_type_is_422(raw_client: httpx.Client, path: str, payload: dict) -> None:
    """The schema's types are the accepted types: no quiet conversion of `0` to `false`."""
    response = raw_client.post(path, json=payload)
    assert response.status_code == 422, response.text
    assert error_message(path, response.json())
