"""Passage caches kept in step without a model: one per passage, the order and budget, one builder per
folder, the server's background builder waiting for an idle model, and the detached build after an ask."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from careerqa.config import Settings
from careerqa.engine import caches as caches_mod
from careerqa.engine.caches import read_synced, settings_env, synced_key
from careerqa.engine.core import Engine
from careerqa.generate.kv_cache import KVStore, RetrievalCounts, block_key, cache_folder, prefix_key
from careerqa.generate.kv_prompt import slot_one
from careerqa.generate.kv_sync import (
    BlockComputer,
    auto_budget,
    cached_share,
    sync_caches,
    wanted_blocks,
)
from careerqa.generate.prompts import SYSTEM_PROMPT, passage_block
from careerqa.types import Chunk

from .conftest import FakeEmbedder
from .fakes import FakeGenerator


def chunk(i: int, text: str) -> Chunk:
    return Chunk(f"{i:064x}", f"doc{i}.md", f"Section {i}", text, 0, len(text))


def render(c: Chunk, n: int) -> str:
    return passage_block(c, n) + "\n\n"


class Computer(BlockComputer):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def compute(self, system_prompt: str, block: str) -> tuple[int, bytes]:
        self.calls.append(block)
        return len(block.split()), block.encode() * 10


def test_slot_one_is_the_block_a_per_passage_cache_is_keyed_by():
    c = chunk(1, "Linear algebra matters.")
    assert slot_one(passage_block(c, 3)) == passage_block(c, 1)
    assert slot_one(passage_block(c, 12)) == passage_block(c, 1)
    assert slot_one(passage_block(c, 1)) == passage_block(c, 1)


def test_one_cache_per_passage_most_retrieved_first():
    chunks = [chunk(i, f"passage {i}") for i in range(4)]
    blocks = wanted_blocks(chunks, 1, render, {chunks[2].chunk_id: 5, chunks[3].chunk_id: 1})
    assert [c for _n, c, _t in blocks] == [chunks[2], chunks[3], chunks[0], chunks[1]]  # ties: corpus order
    assert {n for n, _c, _t in blocks} == {1}


def test_a_budget_keeps_the_most_retrieved_and_evicts_the_rest(tmp_path):
    store = KVStore(tmp_path / "kv")
    chunks = [chunk(i, f"passage number {i} about careers") for i in range(3)]
    prefix = prefix_key("m", SYSTEM_PROMPT, "q8_0")
    size = len(render(chunks[0], 1).encode()) * 10 + 200
    sync_caches(store, wanted_blocks(chunks, 1, render), prefix, SYSTEM_PROMPT, 1 << 30, Computer)
    assert len(store.keys()) == 3
    favourite = {chunks[2].chunk_id: 9}
    report = sync_caches(
        store, wanted_blocks(chunks, 1, render, favourite), prefix, SYSTEM_PROMPT, size, Computer
    )
    assert report.present == 1 and report.removed == 2 and report.over_budget == 2
    assert set(store.keys()) == {block_key(prefix, render(chunks[2], 1))}


def test_auto_budget_is_a_share_of_the_disk_whatever_the_corpus_estimate(tmp_path, monkeypatch):
    class Usage:
        free = 4000 << 20

    monkeypatch.setattr("careerqa.generate.kv_sync.shutil.disk_usage", lambda _p: Usage())
    texts = ["x" * 2500] * 10  # ~1,000 tokens each by the estimate, which real text may exceed
    budget, source = auto_budget(tmp_path / "kv", texts, "q8_0")
    assert budget == 1000 << 20 and "free disk" in source and "needs ~0 MB" not in source
    assert "q8_0" not in source  # it fits
    Usage.free = 100 << 20  # the corpus would not fit
    budget, source = auto_budget(tmp_path / "kv", ["x" * 3_000_000], "q8_0")
    assert budget == 25 << 20 and "q8_0" not in source
    _budget, source = auto_budget(tmp_path / "kv", ["x" * 3_000_000], "f16")
    assert "CAREERQA_KV_TYPE=q8_0" in source  # the way to fit twice the passages


def test_one_builder_per_folder_and_a_stop_between_passages(tmp_path):
    store = KVStore(tmp_path / "kv")
    chunks = [chunk(i, f"passage number {i}") for i in range(3)]
    blocks = wanted_blocks(chunks, 1, render)
    prefix = prefix_key("m", SYSTEM_PROMPT)
    with store.builder() as mine:
        assert mine
        other = sync_caches(store, blocks, prefix, SYSTEM_PROMPT, 1 << 30, Computer)
    assert other.skipped and "another" in other.skipped and store.keys() == {}
    computer = Computer()
    stopped = sync_caches(
        store, blocks, prefix, SYSTEM_PROMPT, 1 << 30, lambda: computer, stop=lambda: len(computer.calls) >= 1
    )
    assert stopped.interrupted and stopped.computed == 1 and len(store.keys()) == 1


def test_retrieval_counts_add_up_across_processes(tmp_path):
    a, b = RetrievalCounts(tmp_path), RetrievalCounts(tmp_path)
    a.bump(["x", "y", "x"])
    b.bump(["y"])
    a.flush()
    b.flush()
    assert RetrievalCounts(tmp_path).read() == {"x": 2, "y": 2}
    a.flush(keep=["y"])
    assert json.loads((tmp_path / RetrievalCounts.FILE).read_text()) == {"y": 2}


def test_settings_env_rebuilds_the_settings_without_secrets(monkeypatch, tmp_path):
    settings = Settings(corpus_dir=tmp_path / "c", kv_type="q8_0", kv_budget_mb=7, admin_token="secret")
    env = settings_env(settings)
    assert "CAREERQA_ADMIN_TOKEN" not in env and env["CAREERQA_KV_TYPE"] == "q8_0"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings.from_env() == settings.replace(admin_token="")


# --------------------------------------------------------------------------- the engine's builder


class KVGenerator(FakeGenerator):
    """A fake model with a KV cache to compute, busy while ``busy`` is set."""

    def __init__(self) -> None:
        super().__init__(["Linear algebra [1]."])
        self.computer = Computer()
        self.busy = threading.Event()
        self.computed_while_busy = 0

    def passage_computer(self) -> BlockComputer:
        outer = self

        class Watched(BlockComputer):
            def compute(self, system_prompt: str, block: str) -> tuple[int, bytes]:
                outer.computed_while_busy += outer.busy.is_set()
                return outer.computer.compute(system_prompt, block)

        return Watched()

    def idle_for(self) -> float:
        return 0.0 if self.busy.is_set() else 10.0


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def kv_engine(settings) -> Iterator[tuple[Engine, KVGenerator]]:
    generator = KVGenerator()
    on = settings.replace(kv_cache="stitch", kv_background=1)
    engine = Engine(on, embedder=FakeEmbedder(), generator=generator)
    yield engine, generator
    engine.caches.stop()


def test_the_builder_computes_only_while_no_answer_runs_and_follows_each_sync(kv_engine, monkeypatch):
    engine, generator = kv_engine
    monkeypatch.setattr(caches_mod, "POLL_S", 0.1)
    chunks = len(engine.view().store)
    generator.busy.set()  # an answer is being generated
    engine.caches.start()
    wait_for(lambda: engine.caches.status()["state"] == "waiting for the model")
    time.sleep(0.2)
    assert generator.computer.calls == []
    generator.busy.clear()
    wait_for(lambda: engine.caches.status()["state"] == "ready")
    status = engine.caches.status()
    assert status["cached_chunks"] == status["chunks"] == chunks and generator.computed_while_busy == 0
    assert read_synced(cache_folder(engine.settings)) == synced_key(engine.settings, engine.view().version)
    assert cached_share(engine.settings, engine.view().store)["cached_chunks"] == chunks

    corpus = engine.settings.corpus_dir
    (corpus / "new.md").write_text("# New\n\nA new passage about prompt engineering careers.\n")
    before = len(generator.computer.calls)
    engine.sync()  # what POST /reindex and the watchers call
    wait_for(lambda: len(generator.computer.calls) > before and engine.caches.status()["state"] == "ready")
    assert engine.caches.status()["cached_chunks"] == len(engine.view().store)


def test_answers_count_their_passages(kv_engine):
    engine, _generator = kv_engine
    answer = engine.ask("what maths for machine learning?")
    engine.caches.flush_counts()
    counts = RetrievalCounts(cache_folder(engine.settings)).read()
    assert answer.route == "generated" and counts
    assert set(counts) <= {h.chunk.chunk_id for h in answer.retrieved}


def test_index_cli_caches_then_the_detached_build_is_not_needed(kv_engine, monkeypatch):
    engine, generator = kv_engine
    started: list[tuple[list[str], dict]] = []

    class Child:
        pid = 42

    monkeypatch.setattr(
        caches_mod.subprocess, "Popen", lambda args, **kw: started.append((args, kw)) or Child
    )
    engine.models._generator = FakeGenerator(["x"])  # a model without a KV cache: nothing to compute
    assert engine.caches.build_detached() is None and started == []
    engine.models._generator = generator
    assert engine.caches.build_detached() == 42
    args, kw = started[0]
    assert args[-3:] == ["careerqa", "index", "--json"] and kw["start_new_session"]
    assert kw["env"]["CAREERQA_KV_CACHE"] == "stitch" and kw["env"]["CAREERQA_KV_BACKGROUND"] == "0"
    with KVStore(cache_folder(engine.settings)).builder():  # a builder at work elsewhere
        assert engine.caches.build_detached() is None
    engine.sync()  # `careerqa index` syncs the index first (which wakes the builder, were one running)
    report = engine.caches.sync()  # then the caches: records the version it is in step with
    assert report.computed == len(engine.view().store) and not report.interrupted
    assert engine.caches.build_detached() is None and len(started) == 1  # in step: nothing to start
    engine.caches.settings = engine.settings.replace(kv_type="q8_0")  # another type: not in step
    assert engine.caches.build_detached() == 42 and len(started) == 2
