"""A question's FAISS search runs on one OpenMP thread (see ``index_store.FEW_QUERIES``): same results
as a batch searched on all threads, and the thread count of the caller is left as it was."""

from __future__ import annotations

import faiss

from careerqa.engine.core import Engine
from careerqa.index.faiss_store import FEW_QUERIES

from .conftest import FakeEmbedder

QUERIES = [f"{w} for machine learning" for w in ("maths", "docker", "kubernetes", "teamwork", "calculus")] * 4


def test_one_thread_for_a_question_and_the_same_results_as_a_batch(settings):
    engine = Engine(settings, embedder=FakeEmbedder())
    before = faiss.omp_get_max_threads()
    one_by_one = [engine.search(q, 3) for q in QUERIES]
    assert faiss.omp_get_max_threads() == before
    assert len(QUERIES) > FEW_QUERIES  # the batch below is searched on all threads
    batch = engine.view().retriever.search_many(QUERIES, 3)
    assert [[h.chunk.chunk_id for h in hits] for hits in batch] == [
        [h.chunk.chunk_id for h in hits] for hits in one_by_one
    ]
    assert faiss.omp_get_max_threads() == before
