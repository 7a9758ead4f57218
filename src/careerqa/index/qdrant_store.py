"""The index in Qdrant: chunk vectors, sentence vectors and BM25 in one collection, versioned by generation.

One point per chunk, its id the chunk's FAISS id (``faiss_store.faiss_id``), in a data collection with
three named vectors:

- ``chunk``: the chunk's unit vector (dot product = cosine);
- ``sentences``: the vectors of its sentences as a multivector compared by ``MAX_SIM``, so a query
  scores a chunk by its best-matching sentence (the FAISS backend's third ranking, without the
  "fetch 4k sentences, keep k chunks" approximation);
- ``bm25``: a sparse vector of the chunk's terms with Qdrant's ``IDF`` modifier, so that its dot
  product with a query is Okapi BM25 as ``index/bm25.py`` computes it (``index/qdrant_search.py``).

A search (``candidate_search``, ``index/qdrant_search.py``) is one batch of three queries per question,
the FAISS store's three candidate lists; the retriever fuses them as on FAISS.

The manifest (the same JSON as ``manifest.json``) is the payload of one point of a meta collection,
``<collection>-meta``; writing it is the commit. Index versions: every point carries ``added_in`` (the
generation that added it) and, once stale, ``removed_in``; a reader of generation g sees only points
with ``added_in <= g`` and no ``removed_in <= g``. A sync upserts new chunks as generation g+1 (unseen),
marks stale ones, commits the manifest of g+1, then deletes the stale points. A sync killed at any step
leaves generation g whole; the next sync deletes what it left (uncommitted points, stale points not
yet deleted). A full rebuild writes a new data collection and drops the old one after the commit.

The BM25 weights of stored points use the average chunk length recorded in the manifest; when the
corpus's average length drifts more than ``BM25_REWEIGHT_DRIFT`` from it, a sync rewrites every
point's sparse vector. Until a sync has finished, points it added or has not yet deleted count in
Qdrant's IDF. Not handled here: several writers at once (one sync at a time: the write lock is a
local file lock), and keeping the chunk table out of a replica's memory (each loaded version holds
the chunks' text and metadata, as the FAISS backend does; the vectors and postings stay in Qdrant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.config import Settings
from careerqa.errors import IndexCorrupt
from careerqa.index.bm25 import K1, B
from careerqa.index.faiss_store import faiss_id
from careerqa.index.manifest import Bm25Info, Manifest, QdrantInfo, VectorIndexInfo
from careerqa.index.qdrant_conn import META_POINT, client_for, read_manifest
from careerqa.index.qdrant_search import QdrantSearch, bm25_document
from careerqa.text.tokens import tokenize
from careerqa.types import Chunk

BATCH = 256  # points per upsert / retrieve call
# Rewrite every sparse vector when the mean chunk length moved this much since the weights were set:
# each term's weight moves by under 2 % below it (the length enters as b * len / avg).
BM25_REWEIGHT_DRIFT = 0.02


# --------------------------------------------------------------------------- the store


class QdrantStore:
    """One index version in Qdrant: the same reading and changing methods as ``IndexStore``."""

    def __init__(
        self, settings: Settings, dim: int, manifest: Manifest | None = None, qdrant: QdrantInfo | None = None
    ) -> None:
        """``manifest``: the committed version this store holds; ``qdrant``: where a store that holds
        nothing yet counts its generations on from (a full rebuild)."""
        self.settings = settings
        self.client = client_for(settings)
        self.dim = dim
        self.meta = f"{settings.qdrant_collection}-meta"
        self.manifest = manifest
        info = (manifest.qdrant if manifest is not None else qdrant) or QdrantInfo()
        self.generation: int = int(info.generation)
        self.collection: str | None = info.collection
        self.chunks: dict[str, Chunk] = {}
        self._lengths: dict[str, int] = {}  # BM25 token count of each chunk
        self._stale: set[str] = set()
        self._moved: dict[str, Chunk] = {}
        self._new_collection = False
        self._weights_avg: float | None = None  # the mean length a new collection's weights use

    # --- reading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, settings: Settings, embedder: str, dim: int) -> QdrantStore:
        manifest = read_manifest(settings)
        manifest.require_embedder(embedder, dim)
        store = cls(settings, dim, manifest)
        if not store.collection:
            raise IndexCorrupt(f"the Qdrant manifest in {store.meta} names no data collection")
        offset = None
        while True:
            points, offset = store.client.scroll(
                store.collection,
                scroll_filter=store.visible(),
                limit=1024,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )
            for point in points:
                payload = dict(point.payload or {})
                store._lengths[payload["chunk_id"]] = int(payload.pop("bm25_length"))
                fields = {k: payload[k] for k in _chunk_fields() if k in payload}  # older points: defaults
                store.chunks[payload["chunk_id"]] = Chunk(**fields)
            if offset is None:
                break
        wanted = manifest.chunk_ids
        if wanted is not None and sorted(store.chunks) != sorted(wanted):
            raise IndexCorrupt(
                f"the Qdrant collection {store.collection} does not hold the chunks its manifest lists "
                f"({len(store.chunks)} points, {len(wanted)} in the manifest); "
                "run `careerqa index --full` to rebuild it"
            )
        return store

    def visible(self, generation: int | None = None) -> Any:
        """The filter that lets through the points of generation ``generation`` (this version's) only."""
        from qdrant_client import models

        g = self.generation if generation is None else generation
        return models.Filter(
            must=[models.FieldCondition(key="added_in", range=models.Range(lte=g))],
            must_not=[models.FieldCondition(key="removed_in", range=models.Range(lte=g))],
        )

    def __len__(self) -> int:
        return len(self.chunks)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.chunks

    def _retrieve(self, chunk_ids: list[str], vector: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for start in range(0, len(chunk_ids), BATCH):
            batch = chunk_ids[start : start + BATCH]
            points = self.client.retrieve(
                self.collection,
                [faiss_id(c) for c in batch],
                with_payload=["chunk_id"],
                with_vectors=[vector],
            )
            for point in points:
                out[point.payload["chunk_id"]] = point.vector[vector]
        return out

    def vectors(self, chunk_ids: Iterable[str]) -> np.ndarray:
        ids = list(chunk_ids)
        found = self._retrieve(ids, "chunk")
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, chunk_id in enumerate(ids):
            if chunk_id in found:  # a point deleted by a later version keeps a zero vector
                out[row] = found[chunk_id]
        return out

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray:
        found = self._retrieve([chunk.chunk_id], "sentences")
        count = len(chunk.sentence_spans)
        if chunk.chunk_id not in found:  # deleted by a later version
            return np.zeros((count, self.dim), dtype=np.float32)
        return np.asarray(found[chunk.chunk_id], dtype=np.float32)[:count]

    def candidate_search(self) -> QdrantSearch:
        return QdrantSearch(self)

    # --- changing ----------------------------------------------------------------------------

    def start_write(self, full: bool) -> None:
        """Before a sync: delete what a killed sync left, or (``full``) start a new data collection."""
        from qdrant_client import models

        if full or not self.collection or not self.client.collection_exists(self.collection):
            stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f")
            self.collection = f"{self.settings.qdrant_collection}-data-{stamp}"
            self._create_collection(self.collection)
            self._new_collection = True
            self.chunks.clear()
            self._lengths.clear()
            return
        g = self.generation
        leftovers = models.Filter(
            should=[
                models.FieldCondition(key="added_in", range=models.Range(gt=g)),
                models.FieldCondition(key="removed_in", range=models.Range(lte=g)),
            ]
        )
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=leftovers))
        unmarked = models.Filter(must=[models.FieldCondition(key="removed_in", range=models.Range(gt=g))])
        self.client.delete_payload(self.collection, keys=["removed_in"], points=unmarked)

    def _create_collection(self, name: str) -> None:
        from qdrant_client import models

        self.client.create_collection(
            name,
            vectors_config={
                "chunk": models.VectorParams(size=self.dim, distance=models.Distance.DOT),
                "sentences": models.VectorParams(
                    size=self.dim,
                    distance=models.Distance.DOT,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                ),
            },
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
            shard_number=self.settings.qdrant_shards,
            replication_factor=self.settings.qdrant_replicas,
        )
        if self.settings.qdrant_url.startswith(("http://", "https://")):  # local mode has no indexes
            for key in ("added_in", "removed_in"):
                self.client.create_payload_index(name, key, field_schema=models.PayloadSchemaType.INTEGER)

    def add(self, chunks: list[Chunk], vectors: np.ndarray, sentence_vectors: np.ndarray) -> None:
        """Upsert chunks as the next generation (unseen by readers until ``save`` commits it)."""
        from qdrant_client import models

        counts = [len(c.sentence_spans) for c in chunks]
        if len(chunks) != len(vectors) or sum(counts) != len(sentence_vectors):
            raise ValueError(
                f"{len(chunks)} chunks with {sum(counts)} sentences, "
                f"but {len(vectors)} chunk vectors and {len(sentence_vectors)} sentence vectors"
            )
        avg = self._avg_length_for_weights(chunks)
        points, row = [], 0
        for chunk, vector, count in zip(chunks, vectors, counts, strict=True):
            tokens = tokenize(chunk.embedding_text())
            self._lengths[chunk.chunk_id] = len(tokens)
            payload = {**asdict(chunk), "bm25_length": len(tokens), "added_in": self.generation + 1}
            sentences = np.asarray(sentence_vectors[row : row + count], dtype=np.float32)
            row += count
            points.append(
                models.PointStruct(
                    id=faiss_id(chunk.chunk_id),
                    vector={
                        "chunk": np.asarray(vector, dtype=np.float32).tolist(),
                        "sentences": sentences.tolist() if count else [[0.0] * self.dim],
                        "bm25": bm25_document(tokens, avg),
                    },
                    payload=payload,
                )
            )
            self.chunks[chunk.chunk_id] = chunk
            if len(points) >= BATCH:
                self.client.upsert(self.collection, points, wait=True)
                points = []
        if points:
            self.client.upsert(self.collection, points, wait=True)

    def _avg_length_for_weights(self, new: list[Chunk]) -> float:
        recorded = self._recorded_avg_length()
        if recorded and not self._new_collection:
            return float(recorded)
        lengths = [len(tokenize(c.embedding_text())) for c in new] + list(self._lengths.values())
        self._weights_avg = float(np.mean(lengths)) if lengths else 1.0
        return self._weights_avg

    def refresh(self, chunks: Iterable[Chunk]) -> None:
        for chunk in chunks:
            if chunk.chunk_id not in self.chunks:
                raise KeyError(chunk.chunk_id)
            if self.chunks[chunk.chunk_id] != chunk:
                self._moved[chunk.chunk_id] = chunk
            self.chunks[chunk.chunk_id] = chunk

    def remove(self, chunk_ids: Iterable[str]) -> None:
        for chunk_id in chunk_ids:
            if chunk_id in self.chunks:
                del self.chunks[chunk_id]
                self._lengths.pop(chunk_id, None)
                self._stale.add(chunk_id)

    # --- committing --------------------------------------------------------------------------

    def _recorded_avg_length(self) -> float | None:
        bm25 = self.manifest.bm25 if self.manifest is not None else None
        return bm25.avg_length if bm25 is not None else None

    def save(self, index_dir: Path, manifest: Manifest) -> Manifest:
        """Mark stale points, commit the manifest of the next generation, then delete the stale points.
        ``index_dir`` is not used (the FAISS backend's signature)."""
        from qdrant_client import models

        g = self.generation + 1
        stale = [faiss_id(c) for c in sorted(self._stale)]
        for start in range(0, len(stale), BATCH):
            self.client.set_payload(self.collection, {"removed_in": g}, points=stale[start : start + BATCH])
        for chunk in self._moved.values():  # a kept chunk of a changed file: its new span and metadata
            self.client.set_payload(self.collection, asdict(chunk), points=[faiss_id(chunk.chunk_id)])
        bm25 = self._bm25_state()
        manifest = manifest.sealed(
            embedder=dataclasses.replace(manifest.embedder, dim=self.dim),
            chunk_count=len(self.chunks),
            # Where the data is, for the index version id (Manifest.version) and for people.
            vectors_file=f"qdrant:{self.collection}#{g}:chunk",
            sentences_file=f"qdrant:{self.collection}#{g}:sentences",
            chunks_file=f"qdrant:{self.collection}#{g}:payload",
            vector_index=VectorIndexInfo(
                type="qdrant", location=_describe_location(self.settings.qdrant_url)
            ),
            bm25=bm25,
            qdrant=QdrantInfo(collection=self.collection, generation=g),
        )
        if not self.client.collection_exists(self.meta):
            vector = models.VectorParams(size=1, distance=models.Distance.DOT)
            self.client.create_collection(self.meta, vectors_config=vector)
        payload = {"manifest": manifest.to_dict(), "generation": g, "collection": self.collection}
        point = models.PointStruct(id=META_POINT, vector=[1.0], payload=payload)
        self.client.upsert(self.meta, [point], wait=True)  # the commit
        # Committed: readers of g see it now; the stale points go (readers of g-1 lose nothing they
        # have already been given), and a full rebuild's previous collection with them.
        self.generation, self.manifest = g, manifest
        if stale:
            gone = models.Filter(must=[models.FieldCondition(key="removed_in", range=models.Range(lte=g))])
            self.client.delete(self.collection, points_selector=models.FilterSelector(filter=gone))
        self._stale.clear()
        self._moved.clear()
        self._drop_other_collections(keep=self.collection)
        self._new_collection = False
        # The order ``load`` gives (points scroll by id, the chunk id's first 60 bits): ties rank alike.
        self.chunks = {c: self.chunks[c] for c in sorted(self.chunks)}
        return manifest

    def _bm25_state(self) -> Bm25Info:
        """The corpus's mean chunk length, and the one the stored weights use (rewritten on drift)."""
        lengths = list(self._lengths.values())
        exact = float(np.mean(lengths)) if lengths else 1.0
        recorded = self._recorded_avg_length()
        used = self._weights_avg if self._new_collection else recorded
        if used is None or abs(exact - used) > BM25_REWEIGHT_DRIFT * used:
            self._reweight(exact)
            used = exact
        return Bm25Info(k1=K1, b=B, avg_length=used, corpus_avg_length=exact)

    def _reweight(self, avg: float) -> None:
        from qdrant_client import models

        updates = [
            models.PointVectors(
                id=faiss_id(c.chunk_id), vector={"bm25": bm25_document(tokenize(c.embedding_text()), avg)}
            )
            for c in self.chunks.values()
        ]
        for start in range(0, len(updates), BATCH):
            self.client.update_vectors(self.collection, updates[start : start + BATCH], wait=True)

    def _drop_other_collections(self, keep: str | None) -> None:
        """Data collections of earlier full rebuilds, and of rebuilds killed before their commit."""
        prefix = f"{self.settings.qdrant_collection}-data-"
        for collection in self.client.get_collections().collections:
            if collection.name.startswith(prefix) and collection.name != keep:
                self.client.delete_collection(collection.name)


def _chunk_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Chunk)]


def _describe_location(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else "local:" + url
