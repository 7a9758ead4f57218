"""Hybrid retrieval with the fake embedder and real FAISS."""

from __future__ import annotations

import pytest

from careerqa.engine.core import Engine
from careerqa.errors import BadInput
from careerqa.index.bm25 import BM25
from careerqa.text.tokens import tokenize


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


def test_best_sentence_ranking_finds_a_needle_in_a_long_passage(tmp_path, fake_embedder):
    from careerqa.index.faiss_store import IndexStore

    from .conftest import make_settings

    filler = " ".join(f"Gardeners plant tulips {w} in the spring season." for w in range(25))
    settings = make_settings(tmp_path, {"long.md": f"# Garden\n\n{filler} Terraform provisions clusters.\n"})
    engine = Engine(settings, embedder=fake_embedder)
    engine.sync()
    store = IndexStore.load(settings.index_dir, fake_embedder.name, fake_embedder.dim)
    query = fake_embedder.embed_batch(["Terraform provisions clusters"])
    by_sentence = store.search_sentences(query, 3)[0]
    assert store.chunks[by_sentence[0][0]].source == "long.md"
    assert by_sentence[0][1] > 0.9  # the sentence itself matches, whatever the rest of the passage says
    assert any(h.chunk.source == "long.md" for h in engine.search("Terraform provisions clusters", top_k=3))


def test_bm25_top_matches_a_full_sort_of_the_scores():
    texts = [f"python {'sql ' * (i % 4)} cloud {'docker' if i % 3 else 'kubernetes'} {i}" for i in range(200)]
    bm25 = BM25(texts)
    for query in ["python sql", "docker cloud", "kubernetes", "nothing here"]:
        scores = bm25.scores(query)
        expected = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
        assert bm25.top(query, 30) == expected
    assert bm25.top("python", 5) == [(i, s) for i, s in bm25.top("python", 200)[:5]]  # ties: earlier first


def test_best_run_cosines_scores_the_sum_of_consecutive_sentences():
    import numpy as np

    from careerqa.retrieve.hybrid import best_run_cosines

    # three unit sentences: the query lies between the first two, orthogonal to the third
    sentences = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    query = np.array([1.0, 1.0, 0.0], dtype=np.float32) / np.sqrt(2)
    one, two, three, five = best_run_cosines(sentences, query, [1, 2, 3, 5])
    assert one == pytest.approx(1 / np.sqrt(2))  # the best single sentence
    assert two == pytest.approx(1.0)  # sentences 1 and 2 together are the query
    assert three == pytest.approx(2 / np.sqrt(6)) == five  # a run longer than the chunk is the chunk
    assert best_run_cosines(np.zeros((0, 3), dtype=np.float32), query, [1, 3]) == [0.0, 0.0]


def test_dense_relevance_prefers_a_passage_whose_run_of_sentences_answers():
    """Chunk A's vector is diluted by its other topic, but two of its sentences together answer;
    chunk B is a little closer as a whole and has no such run: A ranks first."""
    import numpy as np

    from careerqa.retrieve.hybrid import dense_relevance

    query = np.array([1.0, 1.0, 0.0, 0.0], dtype=np.float32) / np.sqrt(2)
    a = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    b = np.array([[0.6, 0, 0.8, 0], [0, 0.6, 0, 0.8], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    assert dense_relevance(0.5, a, query) > dense_relevance(0.6, b, query)


def _chunk(cid: str, start: int, section: str = "Cloud", source: str = "a.md"):
    from careerqa.types import Chunk

    return Chunk(chunk_id=cid, source=source, section=section, text=f"text {cid}", start=start, end=start + 9)


def _retriever(chunks):
    from careerqa.retrieve.hybrid import Retriever, next_in_section

    retriever = Retriever.__new__(Retriever)  # only the section links: no index needed
    retriever._next = next_in_section(chunks)
    retriever.bridge, retriever.bridged = True, 0
    return retriever


def _between(retriever, a, c, mid):
    """The passage ``_bridged`` moves behind top-two ``a``, ``c`` from the end of the ranking, if any."""
    ranked = [(a, 0.9), (c, 0.8), ("q", 0.7), ("r", 0.6), (mid, 0.5)]
    moved = [cid for cid, _ in retriever._bridged(ranked)][2]
    return moved if moved == mid else None


def test_the_passage_between_two_of_one_section_is_found_by_their_ids():
    from careerqa.retrieve.hybrid import next_in_section

    chunks = [_chunk("c", 20), _chunk("a", 0), _chunk("b", 10), _chunk("d", 30, section="Ethics")]
    chunks += [_chunk("x", 0, source="b.md"), _chunk("y", 10, source="b.md"), _chunk("z", 20, source="b.md")]
    # in the document's order, not the list's; "d" is another section; "x" is another document
    assert next_in_section(chunks) == {"a": "b", "b": "c", "x": "y", "y": "z"}
    retriever = _retriever(chunks)
    assert _between(retriever, "a", "c", "b") == "b" and _between(retriever, "c", "a", "b") == "b"
    assert _between(retriever, "b", "d", "c") is None  # "d" is another section
    assert _between(retriever, "x", "z", "y") == "y"
    assert _between(retriever, "a", "z", "b") is None  # two documents


def test_search_ranks_the_passage_between_the_top_two_third():
    retriever = _retriever([_chunk("a", 0), _chunk("b", 10), _chunk("c", 20)])
    ranked = [("c", 0.9), ("a", 0.8), ("q", 0.7), ("r", 0.6), ("b", 0.5)]
    assert [cid for cid, _ in retriever._bridged(ranked)] == ["c", "a", "b", "q", "r"]
    # nothing moves unless the top two enclose it
    other = [("c", 0.9), ("q", 0.8), ("a", 0.7), ("b", 0.5)]
    assert retriever._bridged(other) == other
    assert retriever._bridged([("a", 0.9)]) == [("a", 0.9)]
