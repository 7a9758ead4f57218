"""The ONNX backend of the embedder: its file cache and pooling (fast), and, with the real packaged
model, the same word pieces, vectors and rankings as the torch backend on the whole corpus and every
eval question (``bench/bench_onnx.py`` reports the same comparison with timings)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import careerqa.embed.onnx as ox
from careerqa.config import Settings
from careerqa.embed.loader import load_embedder
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.evals.scoring import load_eval_set, retrieval_query
from careerqa.index.faiss_store import IndexStore
from careerqa.index.sync import sync_index
from careerqa.retrieve.hybrid import Retriever
from careerqa.text.sentences import passage_sentences

from .conftest import REPO

# --------------------------------------------------------------------------- fast: no model run


def test_mean_pooling_leaves_out_padding_and_normalises():
    hidden = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]], [[0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    out = ox.mean_pool_normalise(hidden.astype(np.float32), mask)
    assert out.dtype == np.float32
    assert np.allclose(out[0], np.array([2.0, 2.0]) / np.sqrt(8))  # mean of the two real tokens
    assert np.allclose(out[1], [0.0, 1.0])


@pytest.fixture
def fake_model(tmp_path, monkeypatch) -> Path:
    """A model folder with the files the export key reads (no weights worth the name)."""
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.safetensors", *ox._CONFIG_FILES):
        (model / name).write_text(f"{name} v1")
    monkeypatch.setattr(ox, "model_dir", lambda: model)
    return model


def test_the_file_name_changes_with_the_model_the_recipe_and_the_variant(fake_model, tmp_path, monkeypatch):
    first = ox.onnx_file(tmp_path, "fp32")
    assert first.parent == tmp_path / "onnx" and first.name.startswith("all-MiniLM-L6-v2-fp32-")
    assert ox.onnx_file(tmp_path, "fp32") == first
    assert ox.onnx_file(tmp_path, "int8") != first
    (fake_model / "tokenizer.json").write_text("another tokenizer")
    second = ox.onnx_file(tmp_path, "fp32")
    assert second != first
    (fake_model / "model.safetensors").write_text("other weights, other size")
    assert ox.onnx_file(tmp_path, "fp32") not in (first, second)
    monkeypatch.setattr(ox, "EXPORT_VERSION", ox.EXPORT_VERSION + 1)
    assert ox.onnx_file(tmp_path, "fp32") not in (first, second)
    with pytest.raises(BadInput):
        ox.onnx_file(tmp_path, "int4")


def test_an_existing_export_is_used_without_torch(fake_model, tmp_path, monkeypatch):
    target = ox.onnx_file(tmp_path, "fp32")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"exported")
    monkeypatch.setattr(ox, "_export", lambda *a: pytest.fail("exported again"))
    assert ox.ensure_onnx(tmp_path, "fp32") == target


class _Reference:
    def __init__(self) -> None:
        self._threads = 1


def test_a_failed_export_check_leaves_nothing_behind(fake_model, tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(ox, "SentenceTransformerEmbedder", _Reference)
    monkeypatch.setattr(ox, "_export", lambda reference, out: out.write_bytes(b"a bad export"))

    def check(path, model, reference, variant, bar):
        assert path.exists() and path.name.endswith(".tmp")
        raise ModelUnavailable("does not match the torch model")

    monkeypatch.setattr(ox, "_check", check)
    with pytest.raises(ModelUnavailable, match="does not match"):
        ox.ensure_onnx(tmp_path, "fp32", on_event=lambda event, n: events.append(event))
    assert events == ["embedder_export"]
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [".export.lock"]


def test_unknown_backend_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="unknown embedder backend"):
        load_embedder("all-MiniLM-L6-v2", backend="tensorflow", cache_dir=tmp_path)


# --------------------------------------------------------------------------- real: the packaged model

real = pytest.mark.real
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def backends():
    """The torch and ONNX embedders (the ONNX file from the model cache, exported there if missing)."""
    torch_emb = load_embedder("all-MiniLM-L6-v2", backend="torch")
    onnx_emb = load_embedder("all-MiniLM-L6-v2", backend="onnx", cache_dir=Settings().cache_dir)
    return torch_emb, onnx_emb


@pytest.fixture(scope="module")
def indexes(backends, tmp_path_factory):
    """The shipped corpus indexed by each backend."""
    root = tmp_path_factory.mktemp("onnx")
    shutil.copytree(REPO / "corpus", root / "corpus")
    stores = []
    for emb, name in zip(backends, ("torch", "onnx"), strict=True):
        settings = Settings(corpus_dir=root / "corpus", index_dir=root / name, cache_dir=root / "cache")
        sync_index(settings, lambda emb=emb: emb, embedder_name=emb.name, dim=emb.dim, full=True)
        stores.append(IndexStore.load(settings.index_dir, emb.name, emb.dim))
    return stores


def _questions() -> list[str]:
    return list(dict.fromkeys(retrieval_query(i) for i in load_eval_set(REPO / "eval" / "questions.jsonl")))


def _corpus_texts(store: IndexStore) -> list[str]:
    chunks = list(store.chunks.values())
    texts = [c.embedding_text() for c in chunks] + [s for c in chunks for s in passage_sentences(c.text)]
    return texts + [c.section for c in chunks if c.kind == "faq"]


EDGE_TEXTS = ["", "   padded   ", "é ü 日本語 🙂", "word " * 400, "C++ / C# & R: ML-ops?!"]


@real
def test_same_word_pieces_as_sentence_transformers(backends, indexes):
    model = backends[0]._model
    texts = _corpus_texts(indexes[0]) + _questions() + EDGE_TEXTS
    ours = ox.tokenize_ids(texts)
    for start in range(0, len(texts), 64):
        features = model.preprocess(texts[start : start + 64])
        for row, text in enumerate(texts[start : start + 64]):
            theirs = features["input_ids"][row][features["attention_mask"][row].bool()].tolist()
            assert theirs == ours[start + row], text[:80]


@real
def test_same_vectors_on_the_whole_corpus_and_every_question(backends, indexes):
    torch_emb, onnx_emb = backends
    torch_store, onnx_store = indexes
    # Every passage and every sentence of the corpus, as each backend embedded it into its index.
    ids = sorted(torch_store.chunks)
    assert ids == sorted(onnx_store.chunks)
    pairs = [(torch_store.vectors(ids), onnx_store.vectors(ids))]
    pairs += [
        (torch_store.sentence_vectors(c), onnx_store.sentence_vectors(c)) for c in torch_store.chunks.values()
    ]
    stored = np.concatenate([np.sum(a * b, axis=1) for a, b in pairs])
    # every chunk and every stored sentence (31 + 261 on the shipped corpus with sentences.py)
    expected = len(ids) + sum(len(c.sentence_spans) for c in torch_store.chunks.values())
    assert len(stored) == expected > 250 and stored.min() >= MIN_COSINE
    # FAQ questions (the FAQ matcher embeds them) and odd texts, in one bulk batch.
    texts = [c.section for c in torch_store.chunks.values() if c.kind == "faq"] + EDGE_TEXTS * 2
    bulk = np.sum(torch_emb.embed(texts) * onnx_emb.embed(texts), axis=1)
    assert bulk.min() >= MIN_COSINE, texts[int(bulk.argmin())][:80]
    for question in _questions():  # one at a time: the query path (one thread, cached)
        cosine = float(torch_emb.embed_batch([question])[0] @ onnx_emb.embed_batch([question])[0])
        assert cosine >= MIN_COSINE, question


@real
def test_identical_top5_on_every_eval_question(backends, indexes):
    torch_emb, onnx_emb = backends
    torch_store, onnx_store = indexes
    reference = Retriever(torch_store, torch_emb)
    query_only = Retriever(torch_store, onnx_emb)  # an index built with torch, queried with ONNX
    onnx_only = Retriever(onnx_store, onnx_emb)  # built and queried with ONNX
    questions = _questions()
    assert len(questions) >= 120
    for question in questions:
        expected = [h.chunk.chunk_id for h in reference.search(question, 5)]
        assert [h.chunk.chunk_id for h in query_only.search(question, 5)] == expected, question
        assert [h.chunk.chunk_id for h in onnx_only.search(question, 5)] == expected, question


@real
def test_a_damaged_cached_file_is_exported_again(backends, tmp_path):
    good = backends[1].path
    copy = ox.onnx_file(tmp_path, "fp32")
    copy.parent.mkdir(parents=True)
    copy.write_bytes(good.read_bytes()[: good.stat().st_size // 3])  # truncated
    events: list[str] = []
    embedder = ox.OnnxEmbedder.load(tmp_path, on_event=lambda event, n: events.append(event))
    assert events == ["embedder_export"] and embedder.path == copy
    assert copy.stat().st_size == good.stat().st_size
    vector = embedder.embed_batch(["what maths do I need for AI"])[0]
    assert float(vector @ backends[0].embed_batch(["what maths do I need for AI"])[0]) >= MIN_COSINE
    assert not list(copy.parent.glob("*.tmp"))
