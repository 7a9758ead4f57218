"""The real embedder's fast path gives the vectors ``SentenceTransformer.encode`` gives."""

from __future__ import annotations

import numpy as np
import pytest

import careerqa.embed.embedding
from careerqa.embed.embedding import QUERY_BATCH
from careerqa.embed.loader import load_embedder

pytestmark = pytest.mark.real

TEXTS = [
    "what maths do I need for AI",
    "is python required?",
    "Do I really need a PhD to land a good AI role? " * 40,  # longer than the model reads: truncated
    "Kubernetes",
    "é ü 日本語 🙂",
]


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("all-MiniLM-L6-v2")


def test_same_vectors_as_encode(embedder):
    expected = embedder._model.encode(TEXTS, normalize_embeddings=True, show_progress_bar=False)
    for text, want in zip(TEXTS, expected, strict=True):  # one by one: the query path
        assert np.allclose(embedder.embed_batch([text])[0], want, atol=1e-5)
    bulk = TEXTS * (QUERY_BATCH // len(TEXTS) + 1)  # more than a query batch: the bulk path
    assert np.allclose(embedder.embed_batch(bulk)[: len(TEXTS)], expected, atol=1e-5)


def test_query_cache_returns_copies_and_stays_bounded(embedder, monkeypatch):
    monkeypatch.setattr(careerqa.embed.embedding, "QUERY_CACHE_SIZE", 20)
    first = embedder.embed_batch(["a cached question", "a cached question"])
    first[:] = 0  # the caller's array is its own
    again = embedder.embed_batch(["a cached question"])
    assert np.isclose(np.linalg.norm(again[0]), 1.0)
    for i in range(0, 40, QUERY_BATCH):
        embedder.embed_batch([f"q {j}" for j in range(i, i + QUERY_BATCH)])
    assert len(embedder._cache) == 20
