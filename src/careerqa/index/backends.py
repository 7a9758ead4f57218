"""Where the index lives and who searches it: FAISS files in ``index/`` (the default) or Qdrant.

``backend_for(settings)`` picks one: ``CAREERQA_QDRANT_URL`` (a server's URL, or a folder for
qdrant-client's embedded local mode) selects Qdrant, anything else the FAISS files. Both give the
engine and the sync the same four things: a cheap ``stamp`` that changes when another process commits
a new index version, ``load`` (one version, read-only), ``load_for_write`` (the store a sync changes
and commits, and the previous manifest's files) and a ``retriever`` with the ranking contract of
``hybrid.Retriever`` (dense chunk, best sentence and BM25, fused by reciprocal rank, ties by
cosine). ``/search``, ``search --json`` and answers do not know which one ran.

Not handled here: the stores themselves (``index/faiss_store.py``, ``index/qdrant_store.py``) and the
fusion of
the FAISS backend (``retrieve/hybrid.py``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from careerqa.config import Settings
from careerqa.embed.embedding import Embedder
from careerqa.errors import IndexMissing, ModelUnavailable
from careerqa.index.faiss_store import MANIFEST, IndexStore, read_manifest, remove_orphans
from careerqa.index.manifest import FileEntry, Manifest
from careerqa.retrieve.hybrid import Retriever, next_in_section
from careerqa.text.spelling import SpellingCorrector
from careerqa.types import Hit


class Backend(ABC):
    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def stamp(self) -> Hashable | None:
        """Changes whenever a new index version is committed (None: no index yet)."""

    @abstractmethod
    def read_manifest(self) -> Manifest:
        """The committed manifest alone (cheap: no data is read); ``IndexMissing`` when there is none."""

    @abstractmethod
    def load(self, embedder_name: str, dim: int) -> Any:
        """The committed index version; ``IndexMissing`` when there is none."""

    @abstractmethod
    def load_for_write(self, embedder_name: str, dim: int, full: bool) -> tuple[Any, dict[str, FileEntry]]:
        """The store a sync changes (empty for ``full``) and the files of the manifest it starts from."""

    @abstractmethod
    def retriever(self, store: Any, embedder: Embedder) -> Retriever:
        """Hybrid search over one loaded version."""

    def clean(self, store: Any) -> None:  # noqa: B027 - optional: Qdrant's cleaning is in start_write
        """After a sync with nothing to write: remove what a killed sync left behind."""
        return None


class FaissBackend(Backend):
    """FAISS files, the chunk table and ``manifest.json`` in ``settings.index_dir``; BM25 in memory."""

    name = "faiss"

    def stamp(self) -> Hashable | None:
        try:
            st = os.stat(self.settings.index_dir / MANIFEST)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read_manifest(self) -> Manifest:
        return read_manifest(self.settings.index_dir)

    def load(self, embedder_name: str, dim: int) -> IndexStore:
        return IndexStore.load(self.settings.index_dir, embedder_name, dim)

    def load_for_write(self, embedder_name: str, dim: int, full: bool) -> tuple[Any, dict[str, FileEntry]]:
        from careerqa.index.sync import (
            _load_previous,  # the FAISS path stays where the sync has always had it
        )

        return _load_previous(self.settings, embedder_name, dim, full)

    def retriever(self, store: Any, embedder: Embedder) -> Retriever:
        return Retriever(store, embedder, self.settings.candidates, self.settings.rrf_k)

    def clean(self, store: Any) -> None:
        if store.manifest is not None:
            remove_orphans(self.settings.index_dir, store.manifest)


class QdrantBackend(Backend):
    """Qdrant (``index/qdrant_store.py``): vectors, sparse BM25 and the manifest in collections, fused
    there."""

    name = "qdrant"

    def stamp(self) -> Hashable | None:
        from careerqa.index.qdrant_conn import current_generation

        return current_generation(self.settings)

    def read_manifest(self) -> Manifest:
        from careerqa.index.qdrant_conn import read_manifest as read_qdrant_manifest

        return read_qdrant_manifest(self.settings)

    def load(self, embedder_name: str, dim: int) -> Any:
        from careerqa.index.qdrant_store import QdrantStore

        return QdrantStore.load(self.settings, embedder_name, dim)

    def load_for_write(self, embedder_name: str, dim: int, full: bool) -> tuple[Any, dict[str, FileEntry]]:
        from careerqa.index import qdrant_store

        try:
            manifest: Manifest | None = self.read_manifest()
        except IndexMissing:
            manifest = None
        if full or manifest is None:
            # A new data collection; the generation counts on from the committed one, if any.
            store = qdrant_store.QdrantStore(self.settings, dim, qdrant=manifest.qdrant if manifest else None)
            store.start_write(full=True)
            return store, {}
        manifest.require_embedder(embedder_name, dim)
        store = qdrant_store.QdrantStore.load(self.settings, embedder_name, dim)
        store.start_write(full=False)
        return store, manifest.files

    def retriever(self, store: Any, embedder: Embedder) -> Retriever:
        return QdrantRetriever(store, embedder, self.settings.candidates, self.settings.rrf_k)


def backend_for(settings: Settings) -> Backend:
    return QdrantBackend(settings) if settings.qdrant_url else FaissBackend(settings)


class QdrantRetriever(Retriever):
    """The FAISS retriever's three candidate lists, searched by Qdrant in one batch (three queries per
    question), fused here as on FAISS."""

    def __init__(self, store: Any, embedder: Embedder, candidates: int = 30, rrf_k: int = 60) -> None:
        # No BM25 postings in memory: Qdrant holds them as sparse vectors.
        self.store = store
        self._qdrant: Any = store  # typed loosely: ``store`` is declared as the FAISS store by the base class
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        # Spelling is corrected against the same corpus vocabulary as on the FAISS backend.
        self.speller = SpellingCorrector.from_texts(
            (c.embedding_text() for c in store.chunks.values()), embedder.known_words()
        )
        self._next = next_in_section(store.chunks.values())

    def search_many(self, queries: Sequence[str], top_k: int = 5) -> list[list[Hit]]:
        from qdrant_client import models
        from qdrant_client.http.exceptions import ApiException

        from careerqa.index.qdrant_store import bm25_query

        queries = [self.prepare(q) for q in queries]
        vectors = self.embedder.embed_batch(list(queries))
        visible = self._qdrant._visible()
        requests = []
        for query, vector in zip(queries, vectors, strict=True):
            dense = np.asarray(vector, dtype=np.float32).tolist()
            # the FAISS retriever's three candidate lists, each with the vectors the fusion reads
            for using, q in (("chunk", dense), ("bm25", bm25_query(query)), ("sentences", [dense])):
                requests.append(
                    models.QueryRequest(
                        query=q,
                        using=using,
                        limit=self.candidates,
                        filter=visible,
                        with_payload=["chunk_id"],
                        with_vector=["chunk", "sentences"],
                    )
                )
        try:
            responses = self._qdrant.client.query_batch_points(self._qdrant.collection, requests=requests)
        except (ApiException, OSError, ValueError, RuntimeError) as exc:  # the server went, or refused
            raise ModelUnavailable(f"the Qdrant search failed: {type(exc).__name__}: {exc}") from exc
        out = []
        for row, vector in enumerate(vectors):
            dense_r, lexical_r, sentence_r = responses[3 * row : 3 * row + 3]
            stored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            lists: list[list[tuple[str, float]]] = []
            for response in (dense_r, lexical_r, sentence_r):
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
            dense_list = [(cid, float(stored[cid][0] @ vector)) for cid, _ in lists[0]]
            out.append(self._fuse(vector, dense_list, lists[2], lists[1], top_k, stored))
        return out
