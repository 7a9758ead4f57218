"""The store contract: what one index version offers, whichever backend holds it.

``Store`` is what ``IndexStore`` (FAISS files, ``index/faiss_store.py``) and ``QdrantStore``
(``index/qdrant_store.py``) both provide and their users need: the committed manifest, the chunk table,
the stored vectors, the changes a sync makes and ``save``, which commits them. ``candidate_search``
gives the three candidate rankings the retriever fuses (``Candidates``): by chunk vector, by best
sentence and by BM25, each store searching them its own way. The protocols are checked by mypy
wherever a store is used as a ``Store``.
Not handled here: loading a version or choosing the backend (``index/backends.py``), fusing the
candidates into one ranking (``retrieve/hybrid.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from careerqa.index.manifest import Manifest
from careerqa.types import Chunk

# chunk id -> (its chunk vector, its sentences' vectors)
StoredVectors = Mapping[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Candidates:
    """One query's candidates, each ranking best first as (chunk id, score) pairs."""

    dense: list[tuple[str, float]]  # by chunk vector: the cosine
    by_sentence: list[tuple[str, float]]  # by best-matching sentence
    lexical: list[tuple[str, float]]  # by BM25: the BM25 score
    # the vectors of candidates the search already returned (Qdrant's); the others are read from the store
    vectors: StoredVectors = field(default_factory=dict)


class CandidateSearch(Protocol):
    def candidates(self, queries: Sequence[str], vectors: np.ndarray, k: int) -> list[Candidates]:
        """For each query (its text as searched and its unit vector), up to ``k`` candidates a ranking."""
        ...


class Store(Protocol):
    """One index version: read by the retriever and the answerer, changed and saved by a sync."""

    dim: int
    manifest: Manifest | None  # of the committed version this store holds (None: not saved yet)
    chunks: dict[str, Chunk]

    def __len__(self) -> int: ...

    def __contains__(self, chunk_id: object) -> bool: ...

    def vectors(self, chunk_ids: Iterable[str]) -> np.ndarray:
        """The chunk vectors of ``chunk_ids``, one row each, in that order."""
        ...

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray:
        """The stored vectors of ``chunk.sentences()``, in that order."""
        ...

    def candidate_search(self) -> CandidateSearch:
        """The candidate search of this version as it is now; made once per retriever (the FAISS store
        builds its BM25 postings here)."""
        ...

    def add(self, chunks: list[Chunk], vectors: np.ndarray, sentence_vectors: np.ndarray) -> None:
        """Add chunks with their vectors and the vectors of their sentences, chunk after chunk."""
        ...

    def refresh(self, chunks: Iterable[Chunk]) -> None:
        """Replace the metadata (span, kind) of chunks already indexed; vectors are untouched."""
        ...

    def remove(self, chunk_ids: Iterable[str]) -> None: ...

    def save(self, index_dir: Path, manifest: Manifest) -> Manifest:
        """Commit this version; return the manifest as committed."""
        ...
