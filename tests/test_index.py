"""The index on disk and its incremental sync, with the fake embedder and real FAISS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from careerqa.engine.core import Engine
from careerqa.errors import IndexMissing, IndexStale
from careerqa.index.faiss_store import IndexStore
from careerqa.index.sync import sync_index

from .conftest import FakeEmbedder


def _sync(settings, embedder, full=False):
    return sync_index(settings, lambda: embedder, embedder_name=embedder.name, dim=embedder.dim, full=full)


def test_first_build_then_noop(settings, fake_embedder):
    report = _sync(settings, fake_embedder)
    assert sorted(report.files_added) == ["cloud.md", "maths.md", "soft.txt"]
    assert report.chunks_embedded == report.chunk_count > 0
    calls, embedded = fake_embedder.calls, len(fake_embedder.texts)

    again = _sync(settings, fake_embedder)
    assert not again.written and again.chunks_embedded == 0
    assert sorted(again.files_unchanged) == ["cloud.md", "maths.md", "soft.txt"]
    assert (fake_embedder.calls, len(fake_embedder.texts)) == (calls, embedded)


def test_manifest_contents(settings, fake_embedder):
    _sync(settings, fake_embedder)
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 4  # 4: chunks carry the spans of their sentences
    assert (settings.index_dir / manifest["sentences_file"]).exists()
    assert manifest["embedder"] == {"name": "fake-bow", "dim": 256}
    assert manifest["chunking"]["max_words"] == settings.chunk_max_words
    assert set(manifest["files"]) == {"cloud.md", "maths.md", "soft.txt"}
    for entry in manifest["files"].values():
        assert len(entry["sha256"]) == 64 and entry["chunk_ids"]
    assert sorted(manifest["chunk_ids"]) == manifest["chunk_ids"]
    assert manifest["chunk_count"] == len(manifest["chunk_ids"])
    assert "built_at" in manifest
    store = IndexStore.load(settings.index_dir, "fake-bow", 256)
    assert sorted(store.chunks) == manifest["chunk_ids"]


def test_edit_embeds_only_changed_chunks(settings, corpus_dir, fake_embedder):
    _sync(settings, fake_embedder)
    path = corpus_dir / "maths.md"
    path.write_text(path.read_text() + "\n## Statistics\n\nBayes' theorem updates beliefs with evidence.\n")
    fake_embedder.texts.clear()
    report = _sync(settings, fake_embedder)
    assert report.files_changed == ["maths.md"]
    assert sorted(report.files_unchanged) == ["cloud.md", "soft.txt"]
    assert report.chunks_embedded == report.chunks_added == 1
    # the new chunk, whole and sentence by sentence, and nothing else was embedded again
    assert fake_embedder.texts and all("Bayes" in t for t in fake_embedder.texts)


def test_deleted_file_is_gone_from_search(settings, corpus_dir, fake_embedder):
    engine = Engine(settings, embedder=fake_embedder)
    assert engine.search("Kubernetes containers cluster")[0].chunk.source == "cloud.md"
    (corpus_dir / "cloud.md").unlink()
    report = engine.sync()
    assert report.files_removed == ["cloud.md"] and report.chunks_removed >= 1
    hits = engine.search("Kubernetes containers cluster", top_k=10)
    assert all(h.chunk.source != "cloud.md" for h in hits)
    assert all("Kubernetes" not in h.chunk.text for h in hits)


def test_full_rebuild_embeds_everything(settings, fake_embedder):
    first = _sync(settings, fake_embedder)
    report = _sync(settings, fake_embedder, full=True)
    assert report.written and report.chunks_embedded == first.chunk_count


def test_embedder_mismatch_is_stale(settings, fake_embedder):
    _sync(settings, fake_embedder)
    with pytest.raises(IndexStale, match="index --full"):
        IndexStore.load(settings.index_dir, "all-MiniLM-L6-v2", 384)
    other = FakeEmbedder()
    other.name = "other"
    with pytest.raises(IndexStale, match="index --full"):
        _sync(settings, other)
    assert _sync(settings, other, full=True).written


def test_format_mismatch_is_stale(settings, fake_embedder):
    _sync(settings, fake_embedder)
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStale, match="index --full"):
        IndexStore.load(settings.index_dir, "fake-bow", 256)


def test_missing_index(settings):
    with pytest.raises(IndexMissing, match="careerqa index"):
        IndexStore.load(settings.index_dir, "fake-bow", 256)


class ExplodingEmbedder(FakeEmbedder):
    def embed_batch(self, texts):
        raise RuntimeError("killed mid-build")


def test_failed_build_leaves_old_index_intact(settings, corpus_dir, fake_embedder):
    _sync(settings, fake_embedder)
    before = {p.name: p.read_bytes() for p in settings.index_dir.iterdir() if not p.name.startswith(".")}
    (corpus_dir / "new.md").write_text("# New\n\nA brand new document about prompt engineering.\n")
    with pytest.raises(RuntimeError):
        _sync(settings, ExplodingEmbedder())
    after = {p.name: p.read_bytes() for p in settings.index_dir.iterdir() if not p.name.startswith(".")}
    assert after == before
    store = IndexStore.load(settings.index_dir, "fake-bow", 256)
    assert all(c.source != "new.md" for c in store.chunks.values())


def test_interrupted_save_keeps_old_manifest(settings, corpus_dir, fake_embedder, monkeypatch):
    _sync(settings, fake_embedder)
    old_manifest = (settings.index_dir / "manifest.json").read_text()
    (corpus_dir / "soft.txt").write_text("Soft Skills\n\nListening is a skill too.\n")
    import careerqa.index.faiss_store as index_store

    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if Path(dst).name == "manifest.json":
            raise KeyboardInterrupt  # the process is killed just before the commit point
        return real_replace(src, dst)

    monkeypatch.setattr(index_store.os, "replace", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        _sync(settings, fake_embedder)
    monkeypatch.undo()
    assert (settings.index_dir / "manifest.json").read_text() == old_manifest
    store = IndexStore.load(settings.index_dir, "fake-bow", 256)  # still loads, still consistent
    assert any("Teamwork" in c.text for c in store.chunks.values())
    report = _sync(settings, fake_embedder)  # and the next sync finishes the job
    assert report.files_changed == ["soft.txt"]
    assert not [p for p in settings.index_dir.iterdir() if p.name.endswith(".tmp")]


def test_moved_chunk_gets_new_span(settings, corpus_dir, fake_embedder):
    _sync(settings, fake_embedder)
    path = corpus_dir / "cloud.md"
    path.write_text("\n\n\n" + path.read_text())
    report = _sync(settings, fake_embedder)
    assert report.chunks_embedded == 0
    store = IndexStore.load(settings.index_dir, "fake-bow", 256)
    raw = path.read_text()
    for chunk in store.chunks.values():
        if chunk.source == "cloud.md":
            assert raw[chunk.start : chunk.end].split()[:3] == chunk.text.split()[:3]


def test_engine_updates_a_stale_index_when_it_loads(settings, corpus_dir, fake_embedder):
    Engine(settings, embedder=fake_embedder).sync()
    (corpus_dir / "cloud.md").write_text("# Cloud\n\nTerraform provisions infrastructure as code.\n")
    events = []
    engine = Engine(settings, embedder=fake_embedder, progress=lambda e, n: events.append(e))
    hits = engine.search("Terraform infrastructure as code")
    assert hits[0].chunk.source == "cloud.md" and "Terraform" in hits[0].chunk.text
    assert "corpus_changed" in events and engine.last_sync.files_changed == ["cloud.md"]

    events.clear()
    Engine(settings, embedder=fake_embedder, progress=lambda e, n: events.append(e)).search("Terraform")
    assert events == []  # in step now: nothing to do

    frozen = Engine(settings, embedder=fake_embedder, auto_sync=False)
    (corpus_dir / "cloud.md").unlink()
    assert frozen.search("Terraform")[0].chunk.source == "cloud.md"  # auto_sync off: index as built
