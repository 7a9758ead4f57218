"""Bring the index in line with the corpus, embedding only what changed.

``sync_index`` compares the corpus files' sha256 with the manifest: unchanged files keep their
chunks and vectors; new and changed files are chunked again and only chunks whose id (a hash of
source, section and text) is not in the index are embedded; chunks of deleted files, and chunks a
changed file no longer has, are removed. The embedder is built only when something must be embedded,
so a no-op sync loads no model. PDF and Word files (slow to read) that the index holds unchanged are
only hashed, not read again. Not handled here: watching the folder for changes (``index/watch.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.config import Settings
from careerqa.embed.embedding import Embedder
from careerqa.errors import CareerQAError
from careerqa.index.backends import backend_for
from careerqa.index.faiss_store import write_lock
from careerqa.index.manifest import ChunkingParams, EmbedderInfo, FileEntry, Manifest
from careerqa.index.store import Store
from careerqa.ingest.boilerplate import CHROME_VERSION, is_chrome_text
from careerqa.ingest.chunking import CHUNKER_VERSION, chunk_document
from careerqa.ingest.corpus import BINARY_SUFFIXES, CorpusScan, load_or_warn, scan_corpus
from careerqa.ingest.headings import HEADINGS_VERSION, by_embedder, restore_headings
from careerqa.ingest.html_text import HTML_TEXT_VERSION
from careerqa.ingest.injection import INJECTION_VERSION
from careerqa.ingest.readers import HIDDEN_TEXT_VERSION
from careerqa.types import Chunk, Document

# Called with (event, amount): ("embed_total", n) once, then ("embedded", n) after each batch;
# the engine adds ("index_missing", 0) or ("corpus_changed", 0) before it syncs on loading.
ProgressFn = Callable[[str, int], None]


@dataclass
class SyncReport:
    files_added: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_unchanged: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    chunks_embedded: int = 0
    chunk_count: int = 0
    full: bool = False
    written: bool = False
    warnings: list[str] = field(default_factory=list)
    # Every file of the committed version with passages left out as instructions to a model
    # (``ingest/injection.py``): path -> its flags (line, rule, excerpt), whether this sync read it or not.
    flagged: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # The committed version in memory (an ``IndexStore`` or ``QdrantStore``; None: no index) and the
    # backend's stamp of it, so the engine serves it without reading it back. Not in ``to_dict``.
    store: Store | None = field(default=None, repr=False, compare=False)
    stamp: Hashable | None = field(default=None, repr=False, compare=False)

    def count_chunks(self, *, removed: int, added: int, total: int) -> None:
        self.chunks_removed, self.chunks_added = removed, added
        self.chunks_unchanged, self.chunk_count = total - added, total

    @property
    def changed(self) -> bool:
        return bool(self.files_added or self.files_changed or self.files_removed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, store=None, stamp=None))
        del out["store"], out["stamp"]
        return out


def chunking_params(settings: Settings) -> ChunkingParams:
    return ChunkingParams(
        # The injection rules change the text that is chunked: an index left by other rules reads again.
        version=f"{CHUNKER_VERSION}+injection.{INJECTION_VERSION}+hidden.{HIDDEN_TEXT_VERSION}"
        f"+html.{HTML_TEXT_VERSION}",
        min_words=settings.chunk_min_words,
        max_words=settings.chunk_max_words,
        chrome=CHROME_VERSION,
        headings=HEADINGS_VERSION,
    )


def index_chunks(doc: Document, settings: Settings, embedder: Embedder | None = None) -> list[Chunk]:
    """The chunks of ``doc`` that are indexed: all but page chrome (``ingest/boilerplate.py``), after the
    titles a scraper flattened into lists are put back before their paragraphs (``ingest/headings.py``,
    which needs ``embedder``; without one that repair is skipped)."""
    if embedder is not None:
        doc = restore_headings(doc, by_embedder(embedder))
    chunks = chunk_document(doc, settings.chunk_min_words, settings.chunk_max_words)
    return [c for c in chunks if not is_chrome_text(c.text)]


def sync_index(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    *,
    embedder_name: str,
    dim: int,
    full: bool = False,
    progress: ProgressFn | None = None,
) -> SyncReport:
    """Update ``settings.index_dir`` from ``settings.corpus_dir``; see the module docstring. The report's
    ``store`` is the version committed when it returns (this sync's, or the one it found up to date)."""
    report = SyncReport(full=full)
    t0 = time.perf_counter()
    scan, skipped = _read_corpus(settings, full, report)
    report.seconds["read"] = time.perf_counter() - t0

    with write_lock(settings.index_dir):
        backend = backend_for(settings)
        store, old_files = backend.load_for_write(embedder_name, dim, full)
        params = chunking_params(settings)
        rechunk_all = store.manifest is None or store.manifest.chunking != params

        t1 = time.perf_counter()
        files, wanted = _plan(
            settings, scan, store, old_files, skipped, rechunk_all, report, embedder_factory
        )
        report.seconds["chunk"] = time.perf_counter() - t1

        stale = [cid for cid in store.chunks if cid not in wanted]
        new = [chunk for cid, chunk in wanted.items() if cid not in store]
        report.count_chunks(removed=len(stale), added=len(new), total=len(wanted))

        skipped_changed = (store.manifest.skipped_files if store.manifest else {}) != skipped
        if not (new or stale or report.changed or rechunk_all or full or skipped_changed):
            if store.manifest is not None:  # nothing to write, but a killed build may have left files behind
                backend.clean(store)
                report.store, report.stamp = store, backend.stamp()
            return report

        t2 = time.perf_counter()
        vectors = _embed(settings, new, embedder_factory, progress, report)
        report.seconds["embed"] = time.perf_counter() - t2

        _apply(store, stale, new, vectors, wanted)
        manifest = Manifest(
            embedder=EmbedderInfo(embedder_name, dim),
            chunking=params,
            files=dict(sorted(files.items())),
            chunk_ids=tuple(sorted(wanted)),
            skipped_files=dict(sorted(skipped.items())),
        )
        t3 = time.perf_counter()
        store.save(settings.index_dir, manifest)
        report.seconds["save"] = time.perf_counter() - t3
        report.written = True
        # Read under the lock: no other writer can have committed since this save.
        report.store, report.stamp = store, backend.stamp()
    report.seconds["total"] = time.perf_counter() - t0
    return report


def _read_corpus(settings: Settings, full: bool, report: SyncReport) -> tuple[CorpusScan, dict[str, str]]:
    """Scan the corpus; return it with the files read but skipped (path -> sha256)."""
    # PDF and Word files the index holds as they are now are not read again (checked under the lock).
    scan = scan_corpus(settings.corpus_dir, keep={} if full else _indexed_binary_files(settings))
    report.warnings = scan.warnings
    # Files read but skipped (an encrypted or image-only PDF): remembered, so that the engine's check
    # for a changed corpus does not see them as new at every start and sync again.
    read = {doc.path for doc in scan.documents} | set(scan.kept)
    skipped = {rel: sha for rel, sha in scan.hashes.items() if rel not in read}
    return scan, skipped


def _plan(
    settings: Settings,
    scan: CorpusScan,
    store: Store,
    old_files: dict[str, FileEntry],
    skipped: dict[str, str],
    rechunk_all: bool,
    report: SyncReport,
    embedder_factory: Callable[[], Embedder],
) -> tuple[dict[str, FileEntry], dict[str, Chunk]]:
    """The files and chunks of the new version; unchanged files keep their chunks, the others are
    chunked again. Fills the report's file lists; adds files that cannot be read to ``skipped``."""
    documents = scan.documents
    files: dict[str, FileEntry] = {}
    wanted: dict[str, Chunk] = {}
    for rel, raw in scan.kept.items():
        previous = old_files.get(rel)
        if previous is not None and previous.sha256 == scan.hashes[rel] and not rechunk_all:
            report.files_unchanged.append(rel)
            files[rel] = previous
            wanted.update((cid, store.chunks[cid]) for cid in previous.chunk_ids)
        else:  # the index changed since it was peeked at, or must be rechunked: read the file now
            doc = load_or_warn(rel, raw, report.warnings)
            if doc is None:
                skipped[rel] = scan.hashes[rel]
            else:
                documents.append(doc)
    for doc in documents:
        previous = old_files.get(doc.path)
        if previous is not None and previous.sha256 == doc.sha256 and not rechunk_all:
            report.files_unchanged.append(doc.path)
            files[doc.path] = previous
            wanted.update((cid, store.chunks[cid]) for cid in previous.chunk_ids)
            continue
        (report.files_changed if previous is not None else report.files_added).append(doc.path)
        chunks = index_chunks(doc, settings, embedder_factory())
        files[doc.path] = FileEntry(doc.sha256, tuple(c.chunk_id for c in chunks), doc.flags)
        wanted.update((c.chunk_id, c) for c in chunks)
    report.files_removed = sorted(set(old_files) - set(files))
    report.files_unchanged.sort()
    report.flagged = {p: [f.as_dict() for f in e.flags] for p, e in sorted(files.items()) if e.flags}
    return files, wanted


def _embed(
    settings: Settings,
    new: list[Chunk],
    embedder_factory: Callable[[], Embedder],
    progress: ProgressFn | None,
    report: SyncReport,
) -> np.ndarray | None:
    """The vectors of the new chunks, then of their sentences (None when there is nothing new)."""
    if not new:
        return None
    embedder = embedder_factory()
    # Each new chunk is embedded whole and sentence by sentence (the retriever's third ranking).
    # the sentences of its ``sentence_spans``, which the chunk table stores with it
    texts = [c.embedding_text() for c in new] + [s for c in new for s in c.sentences()]
    if progress:
        progress("embed_total", len(texts))
    vectors = embedder.embed(
        texts,
        batch_size=settings.embed_batch_size,
        on_progress=(lambda n: progress("embedded", n)) if progress else None,
    )
    report.chunks_embedded = len(new)
    return vectors


def _apply(
    store: Store, stale: list[str], new: list[Chunk], vectors: np.ndarray | None, wanted: dict[str, Chunk]
) -> None:
    store.remove(stale)
    if new and vectors is not None:
        store.add(new, vectors[: len(new)], vectors[len(new) :])
    # A kept chunk of a changed file may have moved: take its new span, keep its vector.
    # A kept chunk of a changed file may have moved: take its new span, keep its vectors and the
    # sentence spans they were embedded from (a newer splitter may cut the same text otherwise).
    store.refresh(
        replace(c, sentence_spans=store.chunks[c.chunk_id].sentence_spans)
        for c in wanted.values()
        if c.chunk_id in store
    )


def _indexed_binary_files(settings: Settings) -> dict[str, str]:
    """PDF and Word files the committed index holds, with their sha256 (read without the lock: the
    sync checks each against the manifest it loads under the lock)."""
    try:
        files = backend_for(settings).read_manifest().files
    except CareerQAError:
        return {}
    return {rel: entry.sha256 for rel, entry in files.items() if Path(rel).suffix.lower() in BINARY_SUFFIXES}
