"""How often the engine reads an index: a version this process commits is served without being read
back, a first use reads it at most once, and another process's commit is read once and swapped in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from careerqa.engine.core import Engine
from careerqa.index import qdrant_conn
from careerqa.index.faiss_store import IndexStore
from careerqa.index.qdrant_store import QdrantStore

from .conftest import FakeEmbedder
from .fakes import FakeGenerator
from .test_backends import BACKENDS, NEW_DOC, with_backend


@pytest.fixture(autouse=True)
def _close_qdrant() -> Iterator[None]:
    yield
    qdrant_conn.close_clients()


@pytest.fixture(params=BACKENDS)
def bsettings(settings, request):
    return with_backend(settings, request.param)


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every full read of a committed index, by either backend's store."""
    seen: list[str] = []
    for cls in (IndexStore, QdrantStore):
        original = cls.load.__func__  # type: ignore[attr-defined]

        def counting(klass, *args, _original=original, **kwargs):
            store = _original(klass, *args, **kwargs)
            seen.append(klass.__name__)  # read whole (a missing index is not a read)
            return store

        monkeypatch.setattr(cls, "load", classmethod(counting))
    return seen


def engine_for(settings, auto_sync: bool = True) -> Engine:
    return Engine(
        settings, embedder=FakeEmbedder(), generator=FakeGenerator(["x [1]."] * 2), auto_sync=auto_sync
    )


def test_the_first_use_builds_the_index_and_reads_nothing_back(bsettings, loads):
    engine = engine_for(bsettings)
    assert engine.search("kubernetes docker")
    assert engine.last_sync is not None and engine.last_sync.written
    assert loads == []
    assert engine.view() is engine.view()


def test_a_sync_hands_over_the_store_it_saved(bsettings, loads):
    engine = engine_for(bsettings)
    before = engine.view()
    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    report = engine.sync()
    assert report.written and report.store is not None
    assert len(loads) == 1  # the sync's own read of the version it changes, under the write lock
    view = engine.view()
    assert view.store is report.store and view.version != before.version
    assert view.version == report.store.manifest.version
    assert engine.search("satellite crop yields")[0].chunk.source == "new.md"
    assert len(loads) == 1  # nothing read back after the commit
    assert "store" not in report.to_dict()


def test_a_sync_with_nothing_to_do_keeps_the_view_and_its_cache(bsettings, loads):
    engine = engine_for(bsettings)
    view = engine.view()
    engine.ask("which maths matters for machine learning?")
    report = engine.sync()
    assert not report.written and report.store is not None
    assert engine.view() is view and engine.ask("which maths matters for machine learning?").route == "cache"


def test_a_first_use_reads_the_index_once(bsettings, loads):
    engine_for(bsettings).sync()
    assert engine_for(bsettings).search("kubernetes docker") and len(loads) == 1  # up to date: one read
    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    loads.clear()
    engine = engine_for(bsettings)
    assert engine.search("satellite crop yields")[0].chunk.source == "new.md"
    assert engine.last_sync is not None and engine.last_sync.files_added == ["new.md"]
    assert len(loads) == 1  # the corpus changed: the sync's read only (it was three before)


def test_another_process_commit_is_read_once_then_swapped_in(bsettings, loads):
    server = engine_for(bsettings, auto_sync=False)
    writer = engine_for(bsettings)
    writer.sync()
    old = server.view()
    loads.clear()
    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    writer.sync()
    assert len(loads) == 1  # the writer's sync
    new = server.view()
    assert new is not old and new.version == writer.view().version
    assert len(loads) == 2 and server.view() is new  # the server read it once
    assert server.search("satellite crop yields")[0].chunk.source == "new.md"


def test_a_swapped_in_store_ranks_like_one_read_from_disk(settings):
    engine = engine_for(settings)
    (settings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    saved = engine.sync().store
    read = IndexStore.load(settings.index_dir, FakeEmbedder.name, FakeEmbedder.dim)
    assert list(saved.chunks) == list(read.chunks)  # the same order, so ties rank alike
    fresh = engine_for(settings, auto_sync=False)
    for query in ("kubernetes docker", "maths courses", "satellite crop yields", "soft skills"):
        assert [h.chunk.chunk_id for h in engine.search(query, 10)] == [
            h.chunk.chunk_id for h in fresh.search(query, 10)
        ]
