"""Okapi BM25 over a fixed list of texts: the lexical ranking of both stores.

The FAISS store keeps a ``BM25`` of its chunks in memory (``faiss_store.FaissSearch``); the Qdrant store
writes the same weights as sparse vectors (``index/qdrant_search.py``), with ``K1`` and ``B`` from here,
so both rank by one definition. Terms are ``text/tokens.py``'s.
Not handled here: fusing the lexical ranking with the dense one (``retrieve/hybrid.py``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from careerqa.text.tokens import tokenize

K1 = 1.5
B = 0.75


class BM25:
    """Okapi BM25 over a fixed list of texts, as an inverted index of numpy arrays.

    Each term's postings hold its documents and, precomputed, each document's whole BM25 weight for
    that term, so scoring a query only adds the postings of its own terms into one score array: no
    work per document of the corpus, and no Python loop per posting (at 100k passages a common term
    has tens of thousands of postings; bench/RESULTS.md measures both).
    """

    def __init__(self, texts: Iterable[str], k1: float = K1, b: float = B) -> None:
        self.k1, self.b = k1, b
        docs: dict[str, list[int]] = defaultdict(list)
        tfs: dict[str, list[int]] = defaultdict(list)
        lengths: list[int] = []
        for doc_index, text in enumerate(texts):
            tokens = tokenize(text)
            lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                docs[term].append(doc_index)
                tfs[term].append(tf)
        self.size = n = len(lengths)
        length = np.array(lengths, dtype=np.float64)
        self.avg_length = float(length.mean()) if n else 0.0
        norm = k1 * (1 - b + b * length / (self.avg_length or 1))
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, rows in docs.items():
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            ids = np.array(rows, dtype=np.int32)
            freq = np.array(tfs[term], dtype=np.float64)
            self.postings[term] = (ids, idf * freq * (k1 + 1) / (freq + norm[ids]))

    def _accumulate(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The score of every document and the indices of those that match a query term."""
        scores = np.zeros(self.size, dtype=np.float64)
        for term in dict.fromkeys(tokenize(query)):  # each term once, in query order
            posting = self.postings.get(term)
            if posting is not None:
                ids, weights = posting
                scores[ids] += weights  # a term lists a document once, so no index repeats
        # every weight is positive (idf > 0 and tf >= 1), so the matching documents are the nonzero ones
        return scores, np.flatnonzero(scores)

    def scores(self, query: str) -> dict[int, float]:
        """The score of every document that matches at least one query term."""
        scores, touched = self._accumulate(query)
        return {int(i): float(scores[i]) for i in touched}

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best-scoring matching documents, best first (ties: earlier document first)."""
        scores, touched = self._accumulate(query)
        if len(touched) > k:  # keep those at least as good as the k-th, ties at the cut included
            kth = -np.partition(-scores[touched], k - 1)[k - 1]
            touched = touched[scores[touched] >= kth]
        order = sorted(touched.tolist(), key=lambda i: (-scores[i], i))[:k]
        return [(i, float(scores[i])) for i in order]
