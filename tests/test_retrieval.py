"""Hybrid retrieval with the fake embedder and real FAISS."""

from __future__ import annotations

import pytest

from careerqa.engine import Engine
from careerqa.errors import BadInput
from careerqa.retrieval import BM25, tokenize


def test_tokenize_stems_and_drops_stopwords():
    assert tokenize("The Maths of models") == ["math", "model"]


def test_bm25_prefers_rare_matching_terms():
    bm25 = BM25(["kubernetes cluster", "python python code", "cluster analysis"])
    scores = bm25.scores("kubernetes cluster")
    assert max(scores, key=scores.get) == 0
    assert 1 not in scores


def test_search_ranks_and_fields(settings, fake_embedder):
    engine = Engine(settings, embedder=fake_embedder)
    hits = engine.search("free maths courses Khan Academy", top_k=3)
    assert hits[0].chunk.source == "maths.md" and "Khan Academy" in hits[0].chunk.text
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))
    assert all(h.dense_score is not None for h in hits)


def test_lexical_only_match_is_found(settings, fake_embedder):
    engine = Engine(settings, embedder=fake_embedder)
    hits = engine.search("Teamwork", top_k=5)
    assert hits[0].chunk.source == "soft.txt"
    assert hits[0].lexical_score is not None


@pytest.mark.parametrize("query,top_k", [("", 5), ("   ", 5), ("maths", 0)])
def test_bad_queries(settings, fake_embedder, query, top_k):
    engine = Engine(settings, embedder=fake_embedder)
    with pytest.raises(BadInput):
        engine.search(query, top_k=top_k)


def test_bm25_built_once_not_per_query(settings, fake_embedder, monkeypatch):
    engine = Engine(settings, embedder=fake_embedder)
    engine.search("maths")
    built = []
    monkeypatch.setattr(BM25, "__init__", lambda self, *a, **k: built.append(1))
    engine.search("cloud")
    engine.search("teamwork")
    assert built == []
