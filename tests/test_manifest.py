"""The typed manifest: one reader, one writer, the JSON shape of every index built so far."""

from __future__ import annotations

import copy
import json

import pytest

from careerqa.errors import IndexCorrupt, IndexStale
from careerqa.index.faiss_files import read_manifest
from careerqa.index.manifest import (
    FORMAT_VERSION,
    ChunkingParams,
    EmbedderInfo,
    FileEntry,
    Manifest,
    QdrantInfo,
)
from careerqa.index.sync import chunking_params

# manifest.json as careerqa has written it since format 3 (FAISS), key for key.
FAISS_JSON = {
    "embedder": {"name": "all-MiniLM-L6-v2", "dim": 384},
    "chunking": {"version": "1", "min_words": 40, "max_words": 220, "chrome": "1", "headings": "1"},
    "files": {
        "a.md": {"sha256": "aa" * 32, "chunk_ids": ["c2", "c1"]},
        "b.pdf": {"sha256": "bb" * 32, "chunk_ids": []},
    },
    "chunk_ids": ["c1", "c2"],
    "skipped_files": {"locked.pdf": "cc" * 32},
    "format_version": FORMAT_VERSION,
    "chunk_count": 2,
    "vectors_file": "vectors-20260101T000000000000-0123456789abcdef.faiss",
    "sentences_file": "sentences-20260101T000000000000-0123456789abcdef.faiss",
    "chunks_file": "chunks-20260101T000000000000-0123456789abcdef.jsonl",
    "vector_index": {"exact_below": 50000, "chunks": {"type": "flat"}, "sentences": {"type": "flat"}},
    "built_at": "2026-01-01T00:00:00+00:00",
}

# The Qdrant backend's manifest point: the same, with its data's location, BM25 state and generation.
QDRANT_JSON = {
    **FAISS_JSON,
    "vectors_file": "qdrant:careerqa-data-1#4:chunk",
    "sentences_file": "qdrant:careerqa-data-1#4:sentences",
    "chunks_file": "qdrant:careerqa-data-1#4:payload",
    "vector_index": {"type": "qdrant", "location": "local:/tmp/q"},
    "bm25": {"k1": 1.5, "b": 0.75, "avg_length": 61.5, "corpus_avg_length": 62.0},
    "qdrant": {"collection": "careerqa-data-1", "generation": 4},
}


@pytest.mark.parametrize("written", [FAISS_JSON, QDRANT_JSON], ids=["faiss", "qdrant"])
def test_the_json_of_existing_indexes_reads_and_writes_back_unchanged(written):
    manifest = Manifest.from_dict(copy.deepcopy(written), "manifest.json")
    assert manifest.to_dict() == written
    assert json.loads(manifest.to_json()) == written
    assert manifest.files["a.md"] == FileEntry("aa" * 32, ("c2", "c1"))
    assert manifest.embedder == EmbedderInfo("all-MiniLM-L6-v2", 384)
    assert manifest.file_hashes == {"a.md": "aa" * 32, "b.pdf": "bb" * 32, "locked.pdf": "cc" * 32}


def test_typed_parts():
    manifest = Manifest.from_dict(copy.deepcopy(QDRANT_JSON), "meta")
    assert manifest.qdrant == QdrantInfo("careerqa-data-1", 4)
    assert manifest.bm25 is not None and manifest.bm25.avg_length == 61.5
    assert manifest.chunking == ChunkingParams(
        version="1", min_words=40, max_words=220, chrome="1", headings="1"
    )
    assert manifest.vector_index is not None and manifest.vector_index.type == "qdrant"


def test_the_version_id_is_that_of_the_data_files_and_build_time():
    a = Manifest.from_dict(copy.deepcopy(FAISS_JSON), "m")
    assert a.version == Manifest.from_dict(copy.deepcopy(FAISS_JSON), "m").version
    assert len(a.version) == 12
    other = {**FAISS_JSON, "built_at": "2026-01-02T00:00:00+00:00"}
    assert Manifest.from_dict(other, "m").version != a.version


@pytest.mark.parametrize("version", [None, 0, FORMAT_VERSION - 1, FORMAT_VERSION + 1, "3"])
def test_another_format_version_is_stale_whatever_its_shape(version):
    with pytest.raises(IndexStale, match="index --full") as raised:
        Manifest.from_dict({"format_version": version, "files": "an older shape"}, "manifest.json")
    assert not isinstance(raised.value, IndexCorrupt)


@pytest.mark.parametrize(
    "change",
    [
        {"embedder": "all-MiniLM-L6-v2"},
        {"embedder": {"name": "x"}},
        {"files": {"a.md": "not an entry"}},
        {"files": {"a.md": {"sha256": 1, "chunk_ids": []}}},
        {"files": None},
        {"chunk_ids": "c1"},
        {"vectors_file": 3},
        {"chunk_count": "2"},
        {"qdrant": {"collection": "x", "generation": "4"}},
        {"vector_index": {"exact_below": "many"}},
        {"bm25": [1.5]},
    ],
)
def test_a_damaged_field_is_corrupt_and_names_the_manifest(change):
    data = {**copy.deepcopy(FAISS_JSON), **change}
    if change.get("files", 0) is None:
        del data["files"]
    with pytest.raises(IndexCorrupt, match="/idx/manifest.json.*index --full"):
        Manifest.from_dict(data, "/idx/manifest.json")


def test_not_an_object_is_corrupt():
    with pytest.raises(IndexCorrupt, match="is not an index manifest"):
        Manifest.from_dict([1, 2], "manifest.json")


def test_unknown_chunking_rules_mean_rechunk_not_corrupt(settings):
    data = {**copy.deepcopy(FAISS_JSON), "chunking": {"version": "0", "min_words": 40}}  # an older chunker
    manifest = Manifest.from_dict(data, "m")
    assert manifest.chunking is None and manifest.chunking != chunking_params(settings)


def test_require_embedder():
    manifest = Manifest.from_dict(copy.deepcopy(FAISS_JSON), "m")
    manifest.require_embedder("all-MiniLM-L6-v2", 384)
    with pytest.raises(IndexStale, match=r"'all-MiniLM-L6-v2' \(384 dims\), but 'other' \(384 dims\)"):
        manifest.require_embedder("other", 384)


def test_sealed_sets_format_and_build_time_only_there():
    draft = Manifest(embedder=EmbedderInfo("e", 4), files={"a.md": FileEntry("s", ("c",))}, chunk_ids=("c",))
    assert draft.format_version == 0 and draft.built_at is None
    sealed = draft.sealed(chunk_count=1, vectors_file="vectors-x.faiss")
    assert sealed.format_version == FORMAT_VERSION and sealed.built_at
    assert sealed.files == draft.files and sealed.chunk_count == 1


def test_read_manifest_reads_what_the_store_wrote(settings, fake_embedder):
    from careerqa.engine.core import Engine

    report = Engine(settings, embedder=fake_embedder).sync()
    on_disk = read_manifest(settings.index_dir)
    assert on_disk == report.store.manifest
    assert json.loads((settings.index_dir / "manifest.json").read_text()) == on_disk.to_dict()
