"""Property tests: the corpus loader and the chunker on generated text never crash, and the chunks
always cover the cleaned document (hypothesis; a few hundred examples each, so CI stays quick)."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from careerqa.errors import CorpusEmpty
from careerqa.ingest.chunking import chunk_document, chunk_spans
from careerqa.ingest.clean import clean_text
from careerqa.ingest.corpus import load_corpus, load_document
from careerqa.types import Document

# No example database: tests write nothing into the repository.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
ALNUM = re.compile(r"[^\W_]+")

word = st.one_of(
    st.sampled_from(
        "the AI data model Python PyTorch andPyTorch orKeras e. G. , i. E. df. Head() import print( "
        "= == self. return FAQ FAQs Q: A: ? . ! : ; - * | ` ``` # ## & &amp; &#65; &lt; < > / "
        "Skills Machine Learning Engineer".split(" ")
    ),
    st.text(min_size=1, max_size=12),  # any unicode, control characters included
)
sentence = st.lists(word, min_size=1, max_size=30).map(" ".join)
line = st.one_of(
    sentence,
    sentence.map(lambda s: s + "?"),  # FAQ-like questions
    sentence.map(lambda s: "Q: " + s + "?"),
    sentence.map(lambda s: "# " + s),
    sentence.map(lambda s: "## " + s.title()),
    sentence.map(str.title),  # a plain-text heading
    sentence.map(lambda s: "- " + s),
    sentence.map(lambda s: "1. " + s),
    sentence.map(lambda s: "| " + s.replace(" ", " | ") + " |"),
    st.just("```"),
    st.just("-"),
    sentence.map(lambda s: ": " + s),
    st.lists(sentence, min_size=20, max_size=60).map(". ".join),  # a very long line
    st.sampled_from(["", " ", "\t", "\u00a0", "\f", "\v", "\u2028", "\x00", "\x1c", "\ufeff"]),
    st.sampled_from(["<h2>", "</h2>", "<li>", "<p>", "</p>", "<br>", "<pre>", "</pre>", "<!--", "-->"]),
)
document = st.tuples(
    st.lists(line, max_size=40), st.lists(st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\n\n\n"]), min_size=1)
).map(lambda parts: "".join(ln + parts[1][i % len(parts[1])] for i, ln in enumerate(parts[0])))
kind = st.sampled_from(["text", "markdown", "html"])


def _document(raw: str, doc_kind: str) -> Document:
    text, offsets = clean_text(raw, doc_kind)
    return Document("fuzz/doc.txt", "0" * 64, doc_kind, text, tuple(offsets))


@FUZZ
@given(raw=document, doc_kind=kind)
@example(raw="", doc_kind="text")
@example(raw="\r\n\r\n", doc_kind="markdown")
@example(raw="What?\nQ: Why?\n", doc_kind="text")
@example(raw="x" * 20_000, doc_kind="text")
def test_cleaning_keeps_offsets_and_words(raw, doc_kind):
    text, offsets = clean_text(raw, doc_kind)
    assert len(offsets) == len(text) + 1
    assert all(0 <= a <= b <= len(raw) for a, b in zip(offsets, offsets[1:], strict=False))
    if doc_kind != "html":  # HTML loses its tags and gains "#" and "-" markers
        assert "".join(ALNUM.findall(text)).lower() == "".join(ALNUM.findall(raw)).lower()
        for i, ch in enumerate(text):
            if not ch.isspace():
                assert raw[offsets[i]].lower() == ch.lower(), (i, ch)


@FUZZ
@given(raw=document, doc_kind=kind, sizes=st.sampled_from([(1, 1), (5, 20), (60, 180), (60, 250)]))
@example(raw="Q: why?\n\nQ: how?\n", doc_kind="text", sizes=(60, 180))
@example(raw="# A\n# B\n# C\n", doc_kind="markdown", sizes=(1, 1))
@example(raw="word " * 5000, doc_kind="text", sizes=(60, 180))
def test_chunks_cover_the_document(raw, doc_kind, sizes):
    doc = _document(raw, doc_kind)
    spans = chunk_spans(doc, *sizes)
    covered = [False] * len(doc.text)
    for span in spans:
        assert 0 <= span.start < span.end <= len(doc.text), span
        assert doc.text[span.start : span.end].strip(), span
        for i in range(span.start, span.end):
            covered[i] = True
    assert [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]] == []
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))

    chunks = chunk_document(doc, *sizes)
    assert chunks == chunk_document(doc, *sizes)  # deterministic, ids included
    for chunk, span in zip(chunks, spans, strict=True):
        assert chunk.text == doc.text[span.start : span.end]
        assert 0 <= chunk.start <= chunk.end <= len(raw)
        assert len(chunk.chunk_id) == 16


@settings(FUZZ, max_examples=100)
@given(
    raw=st.one_of(st.binary(max_size=3000), document.map(lambda s: s.encode("utf-8"))),
    name=st.sampled_from(["a.txt", "b.md", "c.html"]),
)
def test_loading_any_bytes_never_crashes(raw, name):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(raw)
        try:
            docs, warnings = load_corpus(Path(tmp))
        except CorpusEmpty as exc:
            assert name in str(exc)
            return
    assert [d.path for d in docs] == [name] and warnings == []
    assert docs[0].sha256 == hashlib.sha256(raw).hexdigest()
    assert docs[0] == load_document(name, raw)
    chunks = chunk_document(docs[0], 60, 180)
    assert chunks and all(c.source == name for c in chunks)
