"""Passage KV caches with the real model (Qwen2.5-Coder-1.5B, llama.cpp): computed by the index step,
stitched at question time, and every way a cache can be unusable falls back to reading the passage."""

from __future__ import annotations

import pytest

from careerqa.engine.core import Engine
from careerqa.generate.kv_cache import KVStore, cache_folder
from careerqa.generate.kv_sync import sync_for_index
from careerqa.generate.llama import load_generator
from careerqa.generate.prompts import SYSTEM_PROMPT, build_messages
from careerqa.index.faiss_store import IndexStore

from .conftest import FakeEmbedder, make_settings

pytestmark = pytest.mark.real

QUESTION = "Where can I find free courses to improve my maths?"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kv-real")
    settings = make_settings(root).replace(
        kv_cache="stitch",
        kv_slots=3,
        kv_cache_dir=str(root / "kv"),
        answer_cache_size=0,
        faq_min_score=2.0,
        kv_type="q8_0",  # the quantized path (flash attention) here; the default f16 in test_real_caches.py
    )
    generator = load_generator(settings.replace(cache_dir=_model_cache()), progress=False)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=generator)
    engine.sync()
    store = IndexStore.load(settings.index_dir, "fake-bow", 256)
    report = sync_for_index(settings, store, lambda: generator)
    yield engine, generator, report, settings
    generator.close()  # type: ignore[attr-defined]


def _model_cache():
    from careerqa.config import Settings

    return Settings().cache_dir  # the assembled GGUF, shared with the other real tests


def test_index_step_computes_one_quantized_cache_per_passage(setup):
    engine, _generator, report, settings = setup
    chunks = len(engine.view().store)
    assert report.computed == report.wanted == report.cached_chunks == chunks and report.failed == 0
    assert report.kv_type == "q8_0" and report.layout == "passage"
    assert 0 < report.seconds_per_cache == pytest.approx(report.compute_seconds / report.computed, abs=0.01)
    # q8_0: ~15.2 kB per token (f16: 28.7 kB), passages of 40+ tokens
    assert 12_000 * 40 < report.bytes_per_chunk < 17_000 * 400
    assert len(KVStore(cache_folder(settings)).keys()) == chunks
    again = sync_for_index(settings, engine.view().store, lambda: pytest.fail("nothing to compute"))
    assert again.computed == 0 and again.present == report.computed


@pytest.mark.parametrize("excerpt", [None, "Khan Academy has free maths courses."])
def test_stitched_prompt_is_the_prompt_llama_cpp_reads(setup, excerpt):
    engine, generator, _report, settings = setup
    hits = engine.search(QUESTION, 5)
    count, budget = generator.count_tokens, settings.context_tokens
    messages, used = build_messages(QUESTION, hits, count, budget, excerpt=excerpt and (lambda _h: excerpt))
    stitcher = generator.passage_kv().stitcher()
    plan = stitcher.plan(messages, 10)
    assert plan is not None and len(plan.blocks) == len(used) >= 2
    generator.kv_mode = "off"
    try:
        generator.generate(messages, max_tokens=1)  # the normal path: llama-cpp-python's own template
    finally:
        generator.kv_mode = "stitch"
    pieces = plan.prefix + [t for b in plan.blocks for t in b] + plan.tail
    assert list(generator._llama.input_ids[: len(pieces)]) == pieces
    assert generator.last_usage["prompt_tokens"] == len(pieces)


def test_last_live_mode_reads_the_last_passage_live(setup):
    engine, generator, _report, settings = setup
    hits = engine.search("Docker and Kubernetes in production", 5)
    count = generator.count_tokens
    messages, used = build_messages("what runs containers?", hits, count, settings.context_tokens)
    stitcher = generator.passage_kv().stitcher()
    generator.kv_mode = "stitch-last-live"
    try:
        assert generator.generate(messages, max_tokens=8)
    finally:
        generator.kv_mode = "stitch"
    assert len(used) >= 2 and stitcher.last["blocks"] == len(used)
    assert stitcher.last["blocks_cached"] == min(len(used) - 1, settings.kv_slots)


def test_stitched_answer_reads_only_the_question_live_and_survives_a_damaged_cache(setup):
    engine, generator, _report, settings = setup
    stitcher = generator.passage_kv().stitcher()
    answer = engine.ask(QUESTION)
    last = dict(stitcher.last)
    assert not answer.abstained, answer
    assert "Khan Academy" in answer.text or "MIT" in answer.text
    assert last["blocks_cached"] == last["blocks"] >= 2
    assert last["labels_swapped"] == last["blocks"] - 1  # slots 2.. from the slot-1 caches
    # the excerpt (<= excerpt_tokens of the first passage), the question and the assistant header,
    # not the passages
    assert last["live_tokens"] < settings.excerpt_tokens + 50
    assert answer.tokens["prompt_tokens"] == last["prompt_tokens"] > 200

    store = KVStore(cache_folder(settings))
    for key in store.keys():  # every cache damaged: one byte of KV data changed
        data = bytearray(store.path(key).read_bytes())
        data[-7] ^= 0xFF
        store.path(key).write_bytes(bytes(data))
    fallback = engine.ask(QUESTION)
    assert stitcher.last["blocks_cached"] == 0 and stitcher.last["live_tokens"] > 200
    assert not fallback.abstained and ("Khan Academy" in fallback.text or "MIT" in fallback.text)


def test_a_cache_for_another_system_prompt_is_never_used(setup):
    engine, generator, _report, _settings = setup
    hits = engine.search(QUESTION, 5)
    messages, _used = build_messages(QUESTION, hits, generator.count_tokens, 600)
    messages[0]["content"] = SYSTEM_PROMPT + "\nAnswer in English."
    text = "".join(generator.stream(messages, max_tokens=8))
    stitcher = generator.passage_kv().stitcher()
    assert text and stitcher.last["blocks_cached"] == 0


def test_prompt_lookup_decoding_keeps_the_greedy_answer(setup):
    engine, generator, _report, settings = setup
    hits = engine.search(QUESTION, 5)
    messages, _used = build_messages(QUESTION, hits, generator.count_tokens, settings.context_tokens)
    stitcher = generator.passage_kv().stitcher()
    try:
        stitcher.lookup = 0
        plain = generator.generate(messages, max_tokens=60)
        stitcher.lookup = 10
        drafted = generator.generate(messages, max_tokens=60)
    finally:
        stitcher.lookup = settings.kv_lookup
    assert drafted == plain and stitcher.last["accepted"] > 0, (plain, drafted, stitcher.last)
