"""PDF, DOCX and Markdown front matter, from files the tests write, through the corpus, the CLI and
``/reindex`` on a real server: text quality, page numbers in citations, skipped files, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.engine.core import Engine
from careerqa.errors import IndexStale
from careerqa.index.faiss_store import IndexStore
from careerqa.index.manifest import FORMAT_VERSION
from careerqa.ingest.chunking import chunk_document
from careerqa.ingest.corpus import load_corpus, load_document
from careerqa.web.app import create_app

from . import docfixtures as fx
from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import TOKEN, live_server
from .test_cli import fake_cli  # noqa: F401 - a fixture

runner = CliRunner()

FRONT = """---
title: Switching into AI from Finance
tags: [career-change, finance]
date: 2025-03-14
secret_note: this line is front matter and must not be indexed
---
Quantitative analysts already know statistics, so the move into machine learning is mostly about
software engineering habits: version control, testing and code review.

# First Steps

Rewrite one of your spreadsheet models as a Python package with tests.
"""


def words(text: str) -> list[str]:
    return text.replace("#", " ").split()


# --------------------------------------------------------------------------- PDF text


def test_pdf_text_drops_running_headers_and_joins_hyphenated_words(tmp_path):
    doc = load_document("guide.pdf", fx.guide_pdf(tmp_path / "guide.pdf").read_bytes())
    assert fx.HEADER not in doc.text
    assert "Page 1 of 4" not in doc.text and "of 4" not in doc.text
    # Every word of every paragraph, in order, with the words broken at line ends whole again.
    expected = [w for heading, body in fx.GUIDE for w in [*heading.split(), *" ".join(body).split()]]
    assert words(doc.text) == expected
    assert "bias-variance" in doc.text and "write-up" in doc.text  # real hyphens stay
    assert doc.pages and len(doc.pages) == 4


def test_pdf_hyphen_kept_when_the_document_spells_the_word_with_it():
    from careerqa.ingest.readers import _dehyphenate

    assert _dehyphenate("a recom-\nmendation", set()) == "a recommendation"
    assert _dehyphenate("a well-\nknown fact", {"well-known"}) == "a well-known fact"
    assert _dehyphenate("Python-\nBased", set()) == "Python-\nBased"  # a capital: not a broken word


def test_pdf_headings_from_font_size_become_sections_with_page_numbers(tmp_path):
    doc = load_document("guide.pdf", fx.guide_pdf(tmp_path / "guide.pdf").read_bytes())
    chunks = chunk_document(doc, 60, 180)
    by_section = {c.section: c for c in chunks}
    assert list(by_section) == [heading for heading, _ in fx.GUIDE]
    for page, (heading, _) in enumerate(fx.GUIDE, start=1):
        chunk = by_section[heading]
        assert (chunk.page, chunk.page_end) == (page, page)
        assert chunk.label() == f"guide.pdf › p. {page} › {heading}"
        assert doc.text[chunk.start : chunk.end] == chunk.text  # spans count characters of the text


@pytest.mark.parametrize("outline", [True, False])
def test_headings_in_body_size_are_found_through_the_outline(tmp_path, outline):
    data = fx.guide_pdf(tmp_path / "g.pdf", outline=outline, heading_size=11).read_bytes()
    sections = {c.section for c in chunk_document(load_document("g.pdf", data), 60, 180)}
    headings = {heading for heading, _ in fx.GUIDE}
    assert (sections == headings) if outline else not (sections & headings)


def test_a_chunk_over_two_pages_names_both():
    from careerqa.types import Document

    text = "# Title\n\nfirst page words here.\nsecond page words here."
    doc = Document("a.pdf", "0" * 64, "markdown", text, tuple(range(len(text) + 1)), pages=(0, 31))
    (chunk,) = chunk_document(doc, 1, 100)
    assert (chunk.page, chunk.page_end) == (1, 2)
    assert chunk.label() == "a.pdf › pp. 1–2 › Title"


def test_two_columns_written_row_by_row_are_read_column_by_column(tmp_path):
    for order in ("rows", "columns"):
        doc = load_document("cols.pdf", fx.two_column_pdf(tmp_path / f"{order}.pdf", order).read_bytes())
        assert words(doc.text) == " ".join(fx.TWO_COLUMNS).split(), order


def test_encrypted_image_only_and_damaged_pdfs_are_skipped_with_a_reason(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    fx.guide_pdf(corpus / "guide.pdf")
    fx.encrypted_pdf(corpus / "locked.pdf")
    fx.image_only_pdf(corpus / "scan.pdf")
    (corpus / "half.pdf").write_bytes((corpus / "guide.pdf").read_bytes()[:900])
    (corpus / "fake.docx").write_bytes(b"this is not a zip file")
    docs, warnings = load_corpus(corpus)
    assert [d.path for d in docs] == ["guide.pdf"]
    text = "\n".join(warnings)
    assert "skipped locked.pdf: the PDF is encrypted with a password" in text
    assert "skipped scan.pdf: the PDF has no text layer" in text and "no OCR" in text
    assert "skipped half.pdf:" in text
    assert "skipped fake.docx: cannot read this DOCX file" in text


# --------------------------------------------------------------------------- DOCX and front matter


def test_docx_keeps_headings_lists_and_tables(tmp_path):
    doc = load_document("handbook.docx", fx.handbook_docx(tmp_path / "h.docx").read_bytes())
    chunks = chunk_document(doc, 60, 180)
    sections = [c.section for c in chunks]
    for heading, paragraph, items in fx.HANDBOOK_DOCX["sections"]:
        assert heading in sections
        chunk = next(c for c in chunks if c.section == heading)
        assert paragraph in chunk.text
        for item in items:
            assert f"- {item}" in chunk.text
    assert "| Research | Research Engineer |" in doc.text
    assert doc.title == fx.HANDBOOK_DOCX["title"]  # Word's Title paragraph names the document
    assert all(c.page is None and c.title == doc.title for c in chunks)


def test_front_matter_names_the_document_and_is_not_indexed():
    doc = load_document("switch.md", FRONT.encode())
    assert doc.title == "Switching into AI from Finance"
    assert doc.tags == ("career-change", "finance")
    assert doc.date == "2025-03-14"
    assert "secret_note" not in doc.text and "---" not in doc.text
    chunks = chunk_document(doc, 1, 180)
    assert chunks[0].section == "Switching into AI from Finance"  # the untitled opening
    assert chunks[1].section == "First Steps"
    raw = FRONT
    for chunk in chunks:  # spans still point into the file, front matter included
        assert raw[chunk.start : chunk.end] == chunk.text
        assert chunk.tags == ("career-change", "finance") and chunk.title == doc.title
        assert chunk.embedding_text().startswith("Switching into AI from Finance\n")


@pytest.mark.parametrize(
    "text",
    [
        "---\n\nA horizontal rule above, not front matter: there is no closing line.\n",
        "---\n- a list\n- not a mapping\n---\nBody text.\n",
        "---\nkey: [unclosed\n---\nBody text.\n",
    ],
)
def test_text_that_only_looks_like_front_matter_is_read_as_it_is(text):
    doc = load_document("x.md", text.encode())
    assert doc.title is None and doc.tags == ()
    assert "Body text." in doc.text or "horizontal rule" in doc.text


# --------------------------------------------------------------------------- index format


def test_an_index_of_the_previous_format_is_stale(tmp_path):
    settings = make_settings(tmp_path)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]))
    engine.sync()
    manifest_path = settings.index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = FORMAT_VERSION - 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStale, match="index --full"):
        IndexStore.load(settings.index_dir, FakeEmbedder.name, FakeEmbedder.dim)


# --------------------------------------------------------------------------- through the CLI


@pytest.fixture
def doc_corpus(fake_cli, settings):  # noqa: F811 - the fixture imported above
    corpus = settings.corpus_dir
    fx.guide_pdf(corpus / "guide.pdf")
    fx.handbook_docx(corpus / "handbook.docx")
    (corpus / "switch.md").write_text(FRONT, encoding="utf-8")
    fx.encrypted_pdf(corpus / "locked.pdf")
    return fake_cli


def test_cli_index_search_and_ask_show_pages_and_metadata(doc_corpus):
    result = runner.invoke(cli.app, ["index", "--json"], obj=doc_corpus["obj"])
    assert result.exit_code == 0, result.output
    assert "warning: skipped locked.pdf: the PDF is encrypted" in result.stderr
    report = json.loads(result.stdout)
    assert {"guide.pdf", "handbook.docx", "switch.md"} <= set(report["files_added"])

    out = runner.invoke(
        cli.app, ["search", "--json", "counter the first offer negotiation salary"], obj=doc_corpus["obj"]
    )
    top = json.loads(out.stdout)["results"][0]
    assert (top["source"], top["page"], top["section"]) == ("guide.pdf", 4, "Salary Negotiation")
    assert top["label"] == "guide.pdf › p. 4 › Salary Negotiation"

    out = runner.invoke(
        cli.app, ["search", "--json", "quantitative analysts spreadsheet finance"], obj=doc_corpus["obj"]
    )
    hit = next(r for r in json.loads(out.stdout)["results"] if r["source"] == "switch.md")
    assert hit["tags"] == ["career-change", "finance"] and hit["date"] == "2025-03-14"
    assert hit["title"] == "Switching into AI from Finance"

    doc_corpus["replies"][:] = ["Counter with a figure about fifteen percent higher [1]."]
    question = "how much higher should I counter the first salary offer?"
    out = runner.invoke(cli.app, ["ask", "--json", question], obj=doc_corpus["obj"])
    answer = json.loads(out.stdout)
    assert not answer["abstained"], answer
    assert answer["citations"][0]["page"] == 4
    assert answer["citations"][0]["label"] == "guide.pdf › p. 4 › Salary Negotiation"

    doc_corpus["replies"][:] = ["Counter with a figure about fifteen percent higher [1]."]
    out = runner.invoke(
        cli.app,
        ["ask", "--no-stream", "how much higher should I counter the first offer?"],
        obj=doc_corpus["obj"],
    )
    assert "[1] guide.pdf › p. 4 › Salary Negotiation" in out.stdout


def test_a_skipped_pdf_does_not_count_as_a_change_at_every_start(doc_corpus, settings):
    assert runner.invoke(cli.app, ["index"], obj=doc_corpus["obj"]).exit_code == 0
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert list(manifest["skipped_files"]) == ["locked.pdf"]
    assert runner.invoke(cli.app, ["search", "salary negotiation"], obj=doc_corpus["obj"]).exit_code == 0
    assert doc_corpus["engine"].last_sync is None  # each command's engine: no sync was needed
    fx.image_only_pdf(settings.corpus_dir / "scan.pdf")  # a new skipped file is a change, once
    assert runner.invoke(cli.app, ["search", "salary negotiation"], obj=doc_corpus["obj"]).exit_code == 0
    assert doc_corpus["engine"].last_sync is not None
    assert runner.invoke(cli.app, ["search", "salary negotiation"], obj=doc_corpus["obj"]).exit_code == 0
    assert doc_corpus["engine"].last_sync is None


# --------------------------------------------------------------------------- through /reindex


def test_reindex_over_http_picks_up_a_pdf_and_a_docx(tmp_path):
    settings = make_settings(tmp_path).replace(admin_token=TOKEN)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]))
    with live_server(create_app(settings, engine=engine)) as url, httpx.Client(base_url=url) as client:
        fx.guide_pdf(settings.corpus_dir / "guide.pdf")
        fx.handbook_docx(settings.corpus_dir / "handbook.docx")
        fx.image_only_pdf(settings.corpus_dir / "scan.pdf")
        reply = client.post("/reindex", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reply.status_code == 200, reply.text
        report = reply.json()["report"]
        assert sorted(report["files_added"]) == ["guide.pdf", "handbook.docx"]
        assert any(w.startswith("skipped scan.pdf: the PDF has no text layer") for w in report["warnings"])
        hits = client.post("/search", json={"query": "bias variance tradeoff whiteboard interview"}).json()
        top = hits["results"][0]
        assert (top["source"], top["page"], top["label"]) == (
            "guide.pdf",
            3,
            "guide.pdf › p. 3 › Preparing for Interviews",
        )
        hits = client.post("/search", json={"query": "twelve week learning plan theory project"}).json()
        assert hits["results"][0]["source"] == "handbook.docx"
        assert hits["results"][0]["section"] == "Learning Plan"

        (settings.corpus_dir / "guide.pdf").unlink()
        reply = client.post("/reindex", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert reply["report"]["files_removed"] == ["guide.pdf"]
        hits = client.post("/search", json={"query": "bias variance tradeoff whiteboard"}).json()
        assert all(r["source"] != "guide.pdf" for r in hits["results"])


def test_unchanged_pdfs_are_read_once_per_process(tmp_path, monkeypatch):
    import careerqa.ingest.corpus as corpus_module

    calls: list[str] = []
    real = corpus_module.extract

    def counting(suffix: str, raw: bytes):
        calls.append(suffix)
        return real(suffix, raw)

    monkeypatch.setattr(corpus_module, "extract", counting)
    monkeypatch.setattr(corpus_module, "_BINARY_CACHE", type(corpus_module._BINARY_CACHE)())
    corpus = tmp_path / "c"
    corpus.mkdir()
    fx.guide_pdf(corpus / "guide.pdf")
    load_corpus(corpus)
    load_corpus(corpus)
    assert calls == [".pdf"]
    fx.guide_pdf(corpus / "guide.pdf", hyphenate=False)  # new content: read again
    load_corpus(corpus)
    assert calls == [".pdf", ".pdf"]


def test_a_sync_reads_again_only_the_pdfs_that_changed(tmp_path, monkeypatch):
    import careerqa.ingest.corpus as corpus_module

    calls: list[str] = []
    real = corpus_module.extract

    def counting(suffix: str, raw: bytes):
        calls.append(suffix)
        return real(suffix, raw)

    def fresh_process() -> None:  # what a new `careerqa index` starts with
        monkeypatch.setattr(corpus_module, "_BINARY_CACHE", type(corpus_module._BINARY_CACHE)())

    monkeypatch.setattr(corpus_module, "extract", counting)
    settings = make_settings(tmp_path)
    fx.guide_pdf(settings.corpus_dir / "guide.pdf")
    fx.handbook_docx(settings.corpus_dir / "handbook.docx")
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]))
    fresh_process()
    assert set(engine.sync().files_added) >= {"guide.pdf", "handbook.docx"}
    assert sorted(calls) == [".docx", ".pdf"]
    (settings.corpus_dir / "maths.md").write_text("# Maths\n\nProbability matters most.\n")
    fresh_process()
    report = engine.sync()
    assert report.files_changed == ["maths.md"] and "guide.pdf" in report.files_unchanged
    assert sorted(calls) == [".docx", ".pdf"]  # neither read again
    fx.handbook_docx(settings.corpus_dir / "handbook.docx", extra="Mentors answer one question a week.")
    fresh_process()
    assert engine.sync().files_changed == ["handbook.docx"]
    assert sorted(calls) == [".docx", ".docx", ".pdf"]
    # New chunking parameters: every file is chunked again, so the PDF is read after all.
    rechunked = settings.replace(chunk_max_words=100)
    engine = Engine(rechunked, embedder=FakeEmbedder(), generator=FakeGenerator([]))
    fresh_process()
    report = engine.sync()
    assert "guide.pdf" in report.files_changed and calls.count(".pdf") == 2
    pages = {c.page for c in engine.view().store.chunks.values() if c.source == "guide.pdf"}
    assert pages == {1, 2, 3, 4}


def test_readme_lists_the_new_formats():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "careerqa gaps" in readme and "index --watch" in readme and ".pdf" in readme
