"""``GET /documents/{id}``: a cited passage in its whole document, over a real uvicorn server (fake
models): the passage and its supporting sentence as spans of the text, PDF pages, a file changed
since indexing refused, unknown ids 404, the API keys, and security headers on every response."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from careerqa.engine.core import Engine
from careerqa.types import document_id
from careerqa.web.app import create_app

from .conftest import DOCS, FakeEmbedder, make_settings
from .docfixtures import guide_pdf
from .fakes import FakeGenerator
from .helpers import live_server


@pytest.fixture
def served(tmp_path) -> Iterator[dict]:
    settings = make_settings(tmp_path)
    guide_pdf(settings.corpus_dir / "guide.pdf")
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: "unused"))
    with live_server(create_app(settings, engine=engine)) as url:
        yield {"url": url, "settings": settings}


def _hit(url: str, query: str, source: str) -> dict:
    results = httpx.post(url + "/search", json={"query": query, "top_k": 10}).json()["results"]
    return next(r for r in results if r["source"] == source)


def test_passage_and_supporting_sentence_in_the_whole_document(served) -> None:
    url = served["url"]
    hit = _hit(url, "free maths courses Khan Academy", "maths.md")
    claim = "Khan Academy has free maths courses."
    got = httpx.get(
        f"{url}/documents/{hit['document_id']}", params={"chunk": hit["chunk_id"], "claim": claim}
    )
    assert got.status_code == 200
    body = got.json()
    assert body["source"] == "maths.md" and body["text"].startswith("# Maths for AI")
    assert "Khan Academy" in body["text"] and "Linear algebra" in body["text"]  # the whole document
    passage = body["passage"]
    shown = body["text"][passage["start"] : passage["end"]]
    assert " ".join(shown.split()) in " ".join(hit["text"].split())  # the span is the cited passage
    assert passage["section"] == hit["section"] and body["pages"] == []
    [mark] = body["highlights"]
    sentence = body["text"][mark["start"] : mark["end"]]
    assert passage["start"] <= mark["start"] < mark["end"] <= passage["end"]
    assert "Khan Academy" in sentence and "Linear algebra" not in sentence


def test_without_a_claim_nothing_is_highlighted_and_without_a_chunk_no_passage(served) -> None:
    url = served["url"]
    hit = _hit(url, "free maths courses", "maths.md")
    plain = httpx.get(f"{url}/documents/{hit['document_id']}").json()
    assert plain["passage"] is None and plain["highlights"] == []
    unrelated = httpx.get(
        f"{url}/documents/{hit['document_id']}", params={"chunk": hit["chunk_id"], "claim": "zebra quasar"}
    ).json()
    assert unrelated["passage"] is not None and unrelated["highlights"] == []


def test_a_pdf_citation_names_its_page(served) -> None:
    url = served["url"]
    hit = _hit(url, "countering the first offer fifteen percent salary surveys", "guide.pdf")
    body = httpx.get(f"{url}/documents/{hit['document_id']}", params={"chunk": hit["chunk_id"]}).json()
    assert [p["page"] for p in body["pages"]] == [1, 2, 3, 4]
    assert body["passage"]["page"] == hit["page"] == 4
    page4 = body["pages"][3]
    assert page4["start"] <= body["passage"]["start"] < body["passage"]["end"] <= page4["end"]
    assert "fifteen percent" in body["text"][page4["start"] : page4["end"]]


def test_unknown_document_or_passage_is_404(served) -> None:
    url = served["url"]
    assert httpx.get(f"{url}/documents/0123456789abcdef").status_code == 404
    hit = _hit(url, "free maths courses", "maths.md")
    other = document_id("cloud.md")
    wrong = httpx.get(f"{url}/documents/{other}", params={"chunk": hit["chunk_id"]})
    assert wrong.status_code == 404 and hit["chunk_id"] in wrong.json()["error"]
    assert httpx.get(f"{url}/documents/../../etc/passwd").status_code == 404


def test_a_file_changed_or_gone_since_indexing_is_409(served) -> None:
    url = served["url"]
    hit = _hit(url, "free maths courses", "maths.md")
    path = served["settings"].corpus_dir / "maths.md"
    path.write_text(DOCS["maths.md"].replace("Khan Academy", "Some Academy"), encoding="utf-8")
    changed = httpx.get(f"{url}/documents/{hit['document_id']}", params={"chunk": hit["chunk_id"]})
    assert changed.status_code == 409 and "reindex" in changed.json()["error"]
    path.unlink()
    assert httpx.get(f"{url}/documents/{hit['document_id']}").status_code == 409


def test_too_many_claims_is_422(served) -> None:
    url = served["url"]
    hit = _hit(url, "free maths courses", "maths.md")
    params = [("chunk", hit["chunk_id"])] + [("claim", "maths")] * 9
    assert httpx.get(f"{url}/documents/{hit['document_id']}", params=params).status_code == 422


def test_security_headers_on_every_response(served) -> None:
    url = served["url"]
    hit = _hit(url, "free maths courses", "maths.md")
    for response in (
        httpx.get(f"{url}/documents/{hit['document_id']}"),
        httpx.get(f"{url}/documents/0123456789abcdef"),
        httpx.get(url + "/health"),
    ):
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["x-content-type-options"] == "nosniff"
    page = httpx.get(url + "/")
    csp = page.headers["content-security-policy"]
    assert (
        "script-src 'sha256-" in csp
        and "connect-src 'self'" in csp
        and "unsafe-inline" not in csp.split("style-src")[0]
    )
    assert page.headers.get_list("content-security-policy") == [csp]  # the page's own, not a second one


def test_documents_need_a_key_when_keys_are_set(tmp_path) -> None:
    from careerqa.web.auth import new_key

    key, entry = new_key()
    settings = make_settings(tmp_path).replace(api_keys=entry)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: "unused"))
    with live_server(create_app(settings, engine=engine)) as url:
        doc = document_id("maths.md")
        assert httpx.get(f"{url}/documents/{doc}").status_code == 401
        ok = httpx.get(f"{url}/documents/{doc}", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and ok.json()["source"] == "maths.md"
