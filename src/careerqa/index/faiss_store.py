"""The on-disk index: a FAISS inner-product index with an ID map, the chunk table and a manifest.

Layout of ``index/``::

    manifest.json            the commit point: format, embedder, chunking, files, chunk ids
    (``index/manifest.py``)
    vectors-<digest>.faiss   IndexIDMap2(IndexFlatIP) over unit vectors (so scores are cosines)
    sentences-<digest>.faiss the same for every sentence of every chunk (``Chunk.sentence_spans``)
    chunks-<digest>.jsonl    one chunk per line, sorted by chunk id, with its sentences' spans

A save writes new data files beside the old ones, then replaces ``manifest.json`` by rename.
A build that fails or is killed before that rename leaves the previous index untouched; the data
files of older generations are deleted only after the new manifest is in place. JSON, never pickle.

``FaissSearch`` is the store's candidate search (``index/store.py``): chunk vectors and best sentences
from FAISS, BM25 over the chunk table in memory (``index/bm25.py``).
Not handled here: deciding what to embed (``index/sync.py``), ``manifest.json`` and the removal of old
files (``index/faiss_files.py``), and fusing the candidates (``retrieve/hybrid.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.errors import IndexCorrupt
from careerqa.index.bm25 import BM25
from careerqa.index.faiss_files import (
    DATA_PREFIXES,
    MANIFEST,
    fsync_path,
    read_manifest,
    remove_stale_files,
    write_atomic,
    write_manifest,
)
from careerqa.index.manifest import REBUILD_HINT, Manifest, VectorIndexInfo
from careerqa.index.store import Candidates
from careerqa.index.vector_index import EXACT_BELOW, describe, refit
from careerqa.locks import file_lock
from careerqa.types import Chunk

# Query vectors searched on one OpenMP thread: for a question or a few, a second thread costs more than
# it saves, 16.7 ms instead of 0.07 ms p50 on a busy 2-core machine (docs/design.md, "Start-up time").
FEW_QUERIES = 8


@contextlib.contextmanager
def _omp_threads(threads: int | None) -> Iterator[None]:
    """FAISS's OpenMP thread count for this thread only (an OpenMP setting is per thread), restored."""
    if threads is None:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def faiss_id(chunk_id: str) -> int:
    """A stable, positive int64 FAISS id for a chunk id (its first 60 bits)."""
    return int(chunk_id[:15], 16)


def sentence_ids(chunk: Chunk) -> list[int]:
    """FAISS ids of a chunk's sentences (its stored ``sentence_spans``), derived from its id and their
    positions, so they need no table of their own."""
    count = len(chunk.sentence_spans)
    return [faiss_id(hashlib.sha256(f"{chunk.chunk_id}:{i}".encode()).hexdigest()) for i in range(count)]


class IndexStore:
    """Chunks and their vectors, in memory; ``load`` and ``save`` move them to and from disk."""

    def __init__(self, dim: int, manifest: Manifest | None = None, exact_below: int = EXACT_BELOW) -> None:
        import faiss

        self.dim = dim
        # Each FAISS index is exact below this many vectors and IVF from there on (``vector_index``);
        # the type is fitted to the count when the index is saved, so adding and removing stay cheap.
        self.exact_below = exact_below
        self.manifest = manifest  # of the committed version this store holds (None: not saved yet)
        self.chunks: dict[str, Chunk] = {}
        self._by_fid: dict[int, str] = {}
        self._by_sentence: dict[int, str] = {}  # sentence FAISS id -> chunk id
        self._faiss: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))  # faiss's stubs are incomplete
        self._sentences: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    # --- reading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, index_dir: Path, embedder: str, dim: int) -> IndexStore:
        """Load the index, checking that it was built by this format and embedder and is whole.

        Every way the files can disagree (a missing or truncated file, a chunk table that does not
        match the checksum in its name, vectors that do not match the chunks) raises ``IndexCorrupt``
        naming the file, so a damaged index is never searched.
        """
        import faiss

        manifest = read_manifest(index_dir)
        manifest.require_embedder(embedder, dim)
        _check_data_files(manifest, index_dir / MANIFEST)
        store = cls(dim, manifest)
        chunks = _read_chunk_table(index_dir / manifest.chunks_file)
        index = _read_faiss(faiss, index_dir / manifest.vectors_file)
        sentences = _read_faiss(faiss, index_dir / manifest.sentences_file)
        table_ids = sorted(c.chunk_id for c in chunks)
        if len(set(table_ids)) != len(table_ids):
            raise _corrupt(index_dir / manifest.chunks_file, "lists a chunk twice")
        if manifest.chunk_ids is not None and list(manifest.chunk_ids) != table_ids:
            raise _corrupt(index_dir / MANIFEST, f"does not list the chunks of {manifest.chunks_file}")
        store._faiss, store._sentences = index, sentences
        for chunk in chunks:
            store._remember(chunk)
        _check_vectors(index, index_dir / manifest.vectors_file, dim, set(store._by_fid), "chunks")
        _check_vectors(
            sentences, index_dir / manifest.sentences_file, dim, set(store._by_sentence), "sentences"
        )
        return store

    def _remember(self, chunk: Chunk) -> None:
        self.chunks[chunk.chunk_id] = chunk
        self._by_fid[faiss_id(chunk.chunk_id)] = chunk.chunk_id
        for sid in sentence_ids(chunk):
            self._by_sentence[sid] = chunk.chunk_id

    def __len__(self) -> int:
        return len(self.chunks)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.chunks

    def vectors(self, chunk_ids: Iterable[str]) -> np.ndarray:
        ids = list(chunk_ids)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, chunk_id in enumerate(ids):
            out[row] = self._faiss.reconstruct(faiss_id(chunk_id))
        return out

    def sentence_vectors(self, chunk: Chunk) -> np.ndarray:
        """The stored vectors of ``chunk.sentences()``, in that order."""
        return np.stack([self._sentences.reconstruct(sid) for sid in sentence_ids(chunk)])

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query vector, up to ``k`` (chunk id, cosine) pairs, best first."""
        return self._search(self._faiss, self._by_fid, vectors, k, k)

    def search_sentences(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query vector, up to ``k`` chunks ranked by their best-matching sentence."""
        return self._search(self._sentences, self._by_sentence, vectors, 4 * k, k)

    def _search(
        self, index: Any, owner: dict[int, str], vectors: np.ndarray, fetch: int, k: int
    ) -> list[list[tuple[str, float]]]:
        if len(self.chunks) == 0:
            return [[] for _ in range(len(vectors))]
        with _omp_threads(1 if len(vectors) <= FEW_QUERIES else None):
            scores, fids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), fetch)
        out = []
        for row_s, row_f in zip(scores, fids, strict=True):
            best: dict[str, float] = {}  # first (best) score of each chunk
            for score, fid in zip(row_s, row_f, strict=True):
                if fid != -1:
                    best.setdefault(owner[int(fid)], float(score))
            out.append(list(best.items())[:k])
        return out

    def candidate_search(self) -> FaissSearch:
        return FaissSearch(self)

    # --- changing ----------------------------------------------------------------------------

    def add(self, chunks: list[Chunk], vectors: np.ndarray, sentence_vectors: np.ndarray) -> None:
        """Add chunks with their vectors and the vectors of their sentences, chunk after chunk."""
        sids = [sid for c in chunks for sid in sentence_ids(c)]
        if len(chunks) != len(vectors) or len(sids) != len(sentence_vectors):
            raise ValueError(
                f"{len(chunks)} chunks with {len(sids)} sentences, "
                f"but {len(vectors)} chunk vectors and {len(sentence_vectors)} sentence vectors"
            )
        if not chunks:
            return
        fids = np.array([faiss_id(c.chunk_id) for c in chunks], dtype=np.int64)
        self._faiss.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), fids)
        self._sentences.add_with_ids(
            np.ascontiguousarray(sentence_vectors, dtype=np.float32), np.array(sids, dtype=np.int64)
        )
        for chunk in chunks:
            self._remember(chunk)

    def refresh(self, chunks: Iterable[Chunk]) -> None:
        """Replace the metadata (span, kind) of chunks already indexed; vectors are untouched."""
        for chunk in chunks:
            if chunk.chunk_id not in self.chunks:
                raise KeyError(chunk.chunk_id)
            self.chunks[chunk.chunk_id] = chunk

    def remove(self, chunk_ids: Iterable[str]) -> None:
        ids = [c for c in chunk_ids if c in self.chunks]
        if not ids:
            return
        self._faiss.remove_ids(np.array([faiss_id(c) for c in ids], dtype=np.int64))
        sids = [sid for c in ids for sid in sentence_ids(self.chunks[c])]
        self._sentences.remove_ids(np.array(sids, dtype=np.int64))
        for chunk_id in ids:
            del self.chunks[chunk_id]
            del self._by_fid[faiss_id(chunk_id)]
        for sid in sids:
            del self._by_sentence[sid]

    # --- writing -----------------------------------------------------------------------------

    def save(self, index_dir: Path, manifest: Manifest) -> Manifest:
        """Write the index atomically; return the manifest as written. The store then holds that
        version as ``load`` would read it (chunks in table order), so it can be searched at once."""
        import faiss

        index_dir.mkdir(parents=True, exist_ok=True)
        ordered = [self.chunks[c] for c in sorted(self.chunks)]
        table = "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in ordered)
        digest = hashlib.sha256(table.encode("utf-8")).hexdigest()[:16]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        vectors_file, chunks_file = f"vectors-{stamp}-{digest}.faiss", f"chunks-{stamp}-{digest}.jsonl"
        sentences_file = f"sentences-{stamp}-{digest}.faiss"

        # The FAISS file's row order follows insertion; the chunk table is sorted. Loading maps
        # rows through FAISS ids, so the two orders need not agree.
        write_atomic(index_dir / chunks_file, table.encode("utf-8"))
        self._faiss = refit(self._faiss, self.dim, self.exact_below)
        self._sentences = refit(self._sentences, self.dim, self.exact_below)
        for index, name in ((self._faiss, vectors_file), (self._sentences, sentences_file)):
            tmp = index_dir / f".{name}.tmp"
            faiss.write_index(index, str(tmp))
            fsync_path(tmp)
            os.replace(tmp, index_dir / name)

        manifest = manifest.sealed(
            embedder=replace(manifest.embedder, dim=self.dim),
            chunk_count=len(ordered),
            vectors_file=vectors_file,
            sentences_file=sentences_file,
            chunks_file=chunks_file,
            vector_index=VectorIndexInfo(
                exact_below=self.exact_below,
                chunks=describe(self._faiss),
                sentences=describe(self._sentences),
            ),
        )
        write_manifest(index_dir, manifest)
        self.manifest = manifest
        self.chunks = {c.chunk_id: c for c in ordered}  # the order ``load`` gives (ties rank alike)
        remove_stale_files(index_dir, keep=set(manifest.data_files))
        return manifest


class FaissSearch:
    """The candidates of one FAISS version: by chunk vector and by best sentence from FAISS, by BM25 from
    postings of its chunk table built here, once (never per query)."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._chunks: list[Chunk] = list(store.chunks.values())
        self._bm25 = BM25(c.embedding_text() for c in self._chunks)

    def candidates(self, queries: Sequence[str], vectors: np.ndarray, k: int) -> list[Candidates]:
        dense_all = self.store.search(vectors, k)
        sentence_all = self.store.search_sentences(vectors, k)
        return [
            Candidates(dense, by_sentence, self.lexical(query, k))
            for query, dense, by_sentence in zip(queries, dense_all, sentence_all, strict=True)
        ]

    def lexical(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs, best first."""
        return [(self._chunks[i].chunk_id, s) for i, s in self._bm25.top(query, k)]


_TABLE_NAME = re.compile(r"chunks-.*-([0-9a-f]{16})\.jsonl")


def _corrupt(path: Path, problem: str) -> IndexCorrupt:
    return IndexCorrupt(f"the index file {path} {problem}; {REBUILD_HINT}")


def _check_data_files(manifest: Manifest, path: Path) -> None:
    """The data file names are plain names inside the index folder (``Manifest.from_dict`` checked the
    other fields): a manifest cannot point the loader outside it."""
    for key, name in zip(("vectors_file", "sentences_file", "chunks_file"), manifest.data_files, strict=True):
        if not name.startswith(DATA_PREFIXES) or Path(name).name != name:
            raise _corrupt(path, f"has no valid {key!r}")


def _read_chunk_table(path: Path) -> list[Chunk]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _corrupt(path, f"cannot be read ({exc.strerror or exc})") from exc
    named = _TABLE_NAME.fullmatch(path.name)
    # ``save`` names the table after the sha256 of its contents: a truncated or altered table shows.
    if named and hashlib.sha256(data).hexdigest()[:16] != named.group(1):
        raise _corrupt(path, "is damaged (its contents do not match the checksum in its name)")
    try:
        return [_stored_chunk(json.loads(line)) for line in data.decode("utf-8").splitlines() if line.strip()]
    except (ValueError, TypeError) as exc:
        raise _corrupt(path, f"is damaged ({exc})") from exc


def _stored_chunk(row: Any) -> Chunk:
    """A chunk of the table with the sentence spans it was stored with (never split again here: the ids
    of its sentence vectors are their positions)."""
    if not isinstance(row, dict):
        raise ValueError(f"a line is not a chunk: {str(row)[:60]}")
    if not isinstance(row.get("sentence_spans"), list) or not row["sentence_spans"]:
        raise ValueError(f"chunk {row.get('chunk_id')} has no sentence spans")
    chunk = Chunk(**row)
    bounds = [i for span in chunk.sentence_spans for i in span]
    if bounds != sorted(bounds) or bounds[0] < 0 or bounds[-1] > len(chunk.text):
        raise ValueError(f"chunk {chunk.chunk_id} has sentence spans outside its text")
    return chunk


def _read_faiss(faiss: Any, path: Path) -> Any:
    if not path.is_file():
        raise _corrupt(path, "is missing")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:  # faiss's message is a C++ source location and a failed assertion
        raise _corrupt(path, "is damaged or truncated (FAISS cannot read it)") from exc


def _check_vectors(index: Any, path: Path, dim: int, ids: set[int], what: str) -> None:
    if index.d != dim or index.ntotal != len(ids):
        raise _corrupt(path, f"holds {index.ntotal} vectors of {index.d} dims for {len(ids)} {what}")
    id_map = getattr(index, "id_map", None)
    if id_map is not None:
        import faiss

        if set(faiss.vector_to_array(id_map).tolist()) != ids:
            raise _corrupt(path, f"holds vectors for other {what} than the chunk table")


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Serialise writers: two `careerqa index` runs never interleave their saves."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(index_dir / ".lock"):
        yield
