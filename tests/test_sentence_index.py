"""Sentence ids and spans live in the index: written with each chunk, read back, never split again."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import careerqa.text.sentences
import careerqa.types
from careerqa.answer.shortcuts import select_sentences
from careerqa.errors import IndexCorrupt, IndexStale
from careerqa.index.faiss_store import IndexStore, sentence_ids
from careerqa.index.manifest import FORMAT_VERSION
from careerqa.index.sync import sync_index
from careerqa.types import Hit


def _sync(settings, embedder, full=False):
    return sync_index(settings, lambda: embedder, embedder_name=embedder.name, dim=embedder.dim, full=full)


def _rewrite_table(index_dir, change):
    """Apply ``change`` to every row of the chunk table; store it under its new checksum name."""
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    old = index_dir / manifest["chunks_file"]
    rows = [change(json.loads(line)) for line in old.read_text(encoding="utf-8").splitlines()]
    table = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    name = manifest["chunks_file"].rsplit("-", 1)[0] + f"-{hashlib.sha256(table).hexdigest()[:16]}.jsonl"
    (index_dir / name).write_bytes(table)
    old.unlink()
    manifest["chunks_file"] = name
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def test_the_chunk_table_stores_each_chunks_sentence_spans(settings, fake_embedder):
    _sync(settings, fake_embedder)
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    rows = [json.loads(x) for x in (settings.index_dir / manifest["chunks_file"]).read_text().splitlines()]
    assert rows and all(r["sentence_spans"] for r in rows)
    for row in rows:
        texts = [row["text"][a:b] for a, b in row["sentence_spans"]]
        assert texts == careerqa.text.sentences.passage_sentences(row["text"])  # written by today's splitter


def test_a_loaded_index_reads_its_sentences_from_the_stored_spans(settings, fake_embedder, monkeypatch):
    _sync(settings, fake_embedder)
    built = IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)
    before = {cid: (c.sentences(), built.sentence_vectors(c)) for cid, c in built.chunks.items()}
    assert any(len(s) > 1 for s, _ in before.values())

    def no_splitting(*args, **kwargs):
        raise AssertionError("the loaded index split a chunk's text again")

    # A careerqa with another splitter (here: none at all) reads the same sentences and ids.
    monkeypatch.setattr(careerqa.types, "passage_spans", no_splitting)
    monkeypatch.setattr(careerqa.text.sentences, "sentence_spans", no_splitting)
    loaded = IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)
    assert loaded.chunks.keys() == before.keys()
    for cid, chunk in loaded.chunks.items():
        sentences, vectors = before[cid]
        assert chunk.sentences() == sentences
        assert np.array_equal(loaded.sentence_vectors(chunk), vectors)
        assert len(sentence_ids(chunk)) == len(sentences)
    # and the stored sentences are what the sentence search and the prompt's selection use
    question = fake_embedder.embed_batch(["Kubernetes schedules containers"])[0]
    best = loaded.search_sentences(question[None, :], 1)[0][0][0]
    assert "Kubernetes" in loaded.chunks[best].text
    hit = Hit(chunk=loaded.chunks[best], score=1.0)
    shown = select_sentences(question, [hit], loaded, lambda t: len(t.split()), budget=50, per_passage=1)
    assert shown[best] in before[best][0]


def test_an_index_of_the_previous_format_is_stale_not_corrupt(settings, fake_embedder):
    _sync(settings, fake_embedder)
    # What format 3 wrote: no spans in the chunk table; each reader split the text again.
    manifest = _rewrite_table(
        settings.index_dir, lambda row: {k: v for k, v in row.items() if k != "sentence_spans"}
    )
    manifest["format_version"] = 3
    (settings.index_dir / "manifest.json").write_text(json.dumps(manifest))
    assert FORMAT_VERSION == 4
    for attempt in (
        lambda: IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim),
        lambda: _sync(settings, fake_embedder),  # `careerqa index` without --full
    ):
        with pytest.raises(IndexStale) as caught:
            attempt()
        assert type(caught.value) is IndexStale  # not IndexCorrupt: nothing is damaged, it is old
        assert "format version 3" in str(caught.value) and "run `careerqa index --full`" in str(caught.value)
    assert _sync(settings, fake_embedder, full=True).written
    IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)


def test_a_current_table_without_spans_is_corrupt(settings, fake_embedder):
    _sync(settings, fake_embedder)
    _rewrite_table(settings.index_dir, lambda row: {k: v for k, v in row.items() if k != "sentence_spans"})
    with pytest.raises(IndexCorrupt, match="no sentence spans"):
        IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)


def test_spans_outside_the_text_are_corrupt(settings, fake_embedder):
    _sync(settings, fake_embedder)
    _rewrite_table(settings.index_dir, lambda row: {**row, "sentence_spans": [[0, len(row["text"]) + 5]]})
    with pytest.raises(IndexCorrupt, match="outside its text"):
        IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)


def test_a_moved_chunk_keeps_the_spans_its_vectors_were_embedded_from(
    settings, corpus_dir, fake_embedder, monkeypatch
):
    _sync(settings, fake_embedder)
    stored = IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim).chunks
    # A later careerqa whose splitter cuts differently (here: never), then a file whose chunks move.
    monkeypatch.setattr(careerqa.types, "passage_spans", lambda text: [(0, len(text))])
    path = corpus_dir / "cloud.md"
    path.write_text("\n\n\n" + path.read_text())
    report = _sync(settings, fake_embedder)
    assert report.files_changed == ["cloud.md"] and report.chunks_embedded == 0
    loaded = IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)  # not corrupt
    moved = [c for c in loaded.chunks.values() if c.source == "cloud.md"]
    assert moved and all(c.start != stored[c.chunk_id].start for c in moved)
    assert all(c.sentence_spans == stored[c.chunk_id].sentence_spans for c in moved)
    assert any(len(c.sentence_spans) > 1 for c in moved)
