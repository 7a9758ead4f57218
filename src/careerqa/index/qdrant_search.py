"""Searching Qdrant: BM25 as sparse vectors, and the three candidate lists of a query in one batch.

``bm25`` is a sparse vector of a chunk's terms (``text/tokens.py``, hashed to 32 bits by ``term_id``)
weighted ``tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len))``, with Qdrant's ``IDF`` modifier: the dot
product with a query of its distinct terms (weight 1) is Okapi BM25 as ``index/bm25.py`` computes it
(Qdrant's IDF is the same ``ln(1 + (N - n + 0.5) / (n + 0.5))``).

``QdrantSearch`` asks for the FAISS store's three candidate lists (chunk vector, best sentence, BM25)
with three queries per question in one ``query_batch_points`` call, with the vectors the fusion reads;
the dense cosines are computed here from the vectors, as on FAISS (Qdrant's scores round differently).
Not handled here: the collections and their points (``index/qdrant_store.py``), the fusion
(``retrieve/hybrid.py``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from careerqa.errors import ModelUnavailable
from careerqa.index.bm25 import K1, B
from careerqa.index.store import Candidates
from careerqa.text.tokens import tokenize
from careerqa.types import Chunk


def term_id(term: str) -> int:
    """A stable 32-bit sparse index for a term (collisions: about one per 90,000 distinct terms)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big")


def bm25_document(tokens: list[str], avg_length: float, k1: float = K1, b: float = B) -> Any:
    """The sparse vector of one chunk's terms (see the module docstring)."""
    from qdrant_client import models

    norm = k1 * (1 - b + b * len(tokens) / (avg_length or 1.0))
    weights: dict[int, float] = {}
    for term, tf in Counter(tokens).items():
        index = term_id(term)
        weights[index] = weights.get(index, 0.0) + tf * (k1 + 1) / (tf + norm)
    return models.SparseVector(indices=list(weights), values=list(weights.values()))


def bm25_query(text: str) -> Any:
    """Each distinct query term once, weight 1: Qdrant multiplies by its IDF."""
    from qdrant_client import models

    indices = list(dict.fromkeys(term_id(t) for t in tokenize(text)))
    return models.SparseVector(indices=indices, values=[1.0] * len(indices))


class QdrantVersion(Protocol):
    """What the search reads of a ``QdrantStore``."""

    client: Any
    collection: str | None
    chunks: dict[str, Chunk]

    def visible(self) -> Any:
        """The filter that lets through the points of this version only."""
        ...


class QdrantSearch:
    """The candidates of one Qdrant version: the points of its collection that it sees."""

    def __init__(self, store: QdrantVersion) -> None:
        self.store = store

    def candidates(self, queries: Sequence[str], vectors: np.ndarray, k: int) -> list[Candidates]:
        from qdrant_client import models
        from qdrant_client.http.exceptions import ApiException

        visible = self.store.visible()
        requests = []
        for query, vector in zip(queries, vectors, strict=True):
            dense = np.asarray(vector, dtype=np.float32).tolist()
            # the FAISS store's three candidate lists, each with the vectors the fusion reads
            for using, q in (("chunk", dense), ("bm25", bm25_query(query)), ("sentences", [dense])):
                requests.append(
                    models.QueryRequest(
                        query=q,
                        using=using,
                        limit=k,
                        filter=visible,
                        with_payload=["chunk_id"],
                        with_vector=["chunk", "sentences"],
                    )
                )
        try:
            responses = self.store.client.query_batch_points(self.store.collection, requests=requests)
        except (ApiException, OSError, ValueError, RuntimeError) as exc:  # the server went, or refused
            raise ModelUnavailable(f"the Qdrant search failed: {type(exc).__name__}: {exc}") from exc
        return [
            self._candidates(responses[3 * row : 3 * row + 3], vector) for row, vector in enumerate(vectors)
        ]

    def _candidates(self, responses: Sequence[Any], vector: np.ndarray) -> Candidates:
        stored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        lists: list[list[tuple[str, float]]] = []
        for response in responses:  # chunk vector, BM25, best sentence
            ranked = []
            for point in response.points:
                chunk = self.store.chunks.get(point.payload["chunk_id"])
                if chunk is None:  # not in this version (cannot happen through the filter; kept safe)
                    continue
                sentences = np.asarray(point.vector["sentences"], dtype=np.float32)
                stored[chunk.chunk_id] = (
                    np.asarray(point.vector["chunk"], dtype=np.float32),
                    sentences[: len(chunk.sentence_spans)],
                )
                ranked.append((chunk.chunk_id, float(point.score)))
            lists.append(ranked)
        # cosines from the vectors, as on FAISS (not Qdrant's scores, which round differently)
        dense = [(cid, float(stored[cid][0] @ vector)) for cid, _ in lists[0]]
        return Candidates(dense, lists[2], lists[1], stored)
