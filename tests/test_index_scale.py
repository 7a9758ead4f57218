"""The FAISS index type follows the vector count: exact below a threshold, IVF above it."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from careerqa.index.faiss_store import IndexStore
from careerqa.index.manifest import EmbedderInfo, Manifest
from careerqa.index.vector_index import build, contents, describe, index_spec, refit
from careerqa.types import Chunk

DIM = 32


def clustered(n: int, dim: int = DIM, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres: like sentence embeddings, unlike uniform noise, they have
    near neighbours (uniform random vectors in many dimensions are all about equally far apart, so
    no approximate index finds their "nearest" ones; bench/RESULTS.md measures that case)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_chunks(n: int) -> list[Chunk]:
    chunks = []
    for i in range(n):
        text = f"Passage number {i} talks about one thing."  # one sentence each
        cid = hashlib.sha256(text.encode()).hexdigest()
        chunks.append(Chunk(cid, "synthetic.md", "S", text, 0, len(text)))
    return chunks


def test_type_by_count():
    assert index_spec(0, exact_below=100) == {"type": "flat"}
    assert index_spec(99, exact_below=100) == {"type": "flat"}
    spec = index_spec(10_000, exact_below=100)
    assert spec["type"] == "ivf_flat" and spec["nlist"] == 100
    assert 1 <= spec["nprobe"] <= spec["nlist"]
    assert index_spec(10_000)["type"] == "flat"  # the default threshold is well above the test sizes


def test_ivf_recall_at_10_against_exact():
    x, queries = clustered(4000), clustered(200, seed=1)
    ids = np.arange(10**12, 10**12 + len(x), dtype=np.int64)  # large ids, as chunk hashes are
    exact = build({"type": "flat"}, DIM, ids, x)
    ivf = build(index_spec(len(x), exact_below=1000), DIM, ids, x)
    assert describe(ivf)["type"] == "ivf_flat"
    _, truth = exact.search(queries, 10)
    _, found = ivf.search(queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95


def test_contents_and_refit_round_trip():
    x = clustered(1500)
    ids = np.arange(7, 7 + len(x), dtype=np.int64)
    flat = build({"type": "flat"}, DIM, ids, x)
    ivf = refit(flat, DIM, exact_below=1000)
    assert describe(ivf)["type"] == "ivf_flat"
    got_ids, got = contents(ivf, DIM)
    order = np.argsort(got_ids)
    assert np.array_equal(got_ids[order], ids) and np.allclose(got[order], x)
    assert refit(ivf, DIM, exact_below=1000) is ivf  # same count: kept as it is
    back = refit(ivf, DIM, exact_below=5000)
    assert describe(back) == {"type": "flat"} and back.ntotal == len(x)


def test_store_switches_type_and_stays_incremental(tmp_path):
    chunks, x = make_chunks(1200), clustered(1200)
    store = IndexStore(DIM, exact_below=1000)
    store.add(chunks[:900], x[:900], x[:900])
    manifest = store.save(tmp_path, Manifest(embedder=EmbedderInfo("fake", DIM)))
    assert manifest.vector_index is not None and manifest.vector_index.chunks == {"type": "flat"}

    store.add(chunks[900:], x[900:], x[900:])
    manifest = store.save(tmp_path, manifest)
    written = json.loads((tmp_path / "manifest.json").read_text())["vector_index"]
    assert written == manifest.to_dict()["vector_index"]
    assert written["exact_below"] == 1000
    assert written["chunks"]["type"] == written["sentences"]["type"] == "ivf_flat"
    assert written["chunks"]["nlist"] == 30 and written["chunks"]["nprobe"] >= 1

    loaded = IndexStore.load(tmp_path, "fake", DIM)
    assert describe(loaded._faiss) == written["chunks"]
    assert loaded.search(x[5:6], 1)[0][0][0] == chunks[5].chunk_id
    assert np.allclose(loaded.vectors([chunks[1000].chunk_id]), x[1000:1001])
    assert np.allclose(loaded.sentence_vectors(chunks[3]), x[3:4])

    # removing from an IVF index happens in place, and the removed chunk is never found again
    loaded.exact_below = 1000
    loaded.remove([chunks[5].chunk_id])
    assert all(cid != chunks[5].chunk_id for cid, _ in loaded.search(x[5:6], 10)[0])
    loaded.save(tmp_path, loaded.manifest)
    again = IndexStore.load(tmp_path, "fake", DIM)
    assert len(again) == 1199 and describe(again._faiss)["type"] == "ivf_flat"

    # shrinking below the threshold makes it exact again
    again.exact_below = 1000
    again.remove([c.chunk_id for c in chunks[:400]])
    assert again.save(tmp_path, again.manifest).vector_index.chunks == {"type": "flat"}
    final = IndexStore.load(tmp_path, "fake", DIM)
    assert len(final) == 800  # chunk 5 was among the first 400
    assert final.search(x[1100:1101], 1)[0][0][0] == chunks[1100].chunk_id


def test_unknown_type_is_an_error():
    with pytest.raises(ValueError, match="unknown index type"):
        build({"type": "hnsw"}, DIM, np.zeros(0, np.int64), np.zeros((0, DIM), np.float32))
