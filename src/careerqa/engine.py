"""Wiring: settings → index (built on first use) → retriever → answerer, each made when first needed.

The CLI and the web service both hold one ``Engine``; tests build one with fakes through
``Engine(settings, embedder=..., generator=...)``. Not handled here: printing and HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .answering import Answerer, TextCallback, Turn
from .config import Settings
from .corpus import file_hashes
from .embedding import Embedder, load_embedder
from .errors import CareerQAError, IndexMissing
from .generation import Generator, load_generator
from .grounding import Verifier
from .index_store import IndexStore
from .indexing import ProgressFn, SyncReport, sync_index
from .retrieval import Retriever
from .types import Answer, Hit

EMBEDDER_DIMS = {"all-MiniLM-L6-v2": 384}


class Engine:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        progress: ProgressFn | None = None,
        show_model_progress: bool = True,
        auto_sync: bool = True,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._retriever: Retriever | None = None
        self._answerer: Answerer | None = None
        self.progress = progress
        self.show_model_progress = show_model_progress
        # Bring the index up to date with the corpus when it is first loaded (hashing the files is
        # cheap; only changed chunks are embedded).
        self.auto_sync = auto_sync
        self.last_sync: SyncReport | None = None

    # --- parts, made lazily ----------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder)
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = load_generator(self.settings, progress=self.show_model_progress)
        return self._generator

    @property
    def embedder_name(self) -> str:
        return self._embedder.name if self._embedder is not None else self.settings.embedder

    @property
    def dim(self) -> int:
        if self._embedder is not None:
            return self._embedder.dim
        return EMBEDDER_DIMS.get(self.settings.embedder) or self.embedder.dim

    def sync(self, full: bool = False) -> SyncReport:
        """Bring the index up to date with the corpus (see ``indexing.sync_index``)."""
        report = sync_index(
            self.settings,
            lambda: self.embedder,
            embedder_name=self.embedder_name,
            dim=self.dim,
            full=full,
            progress=self.progress,
        )
        if report.written:
            self._retriever = None
            self._answerer = None
        self.last_sync = report
        return report

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            store = self._load_current_index()
            self._retriever = Retriever(store, self.embedder, self.settings.candidates, self.settings.rrf_k)
        return self._retriever

    def _load_current_index(self) -> IndexStore:
        """Load the index, first building it (first use) or updating it (the corpus changed)."""
        try:
            store = IndexStore.load(self.settings.index_dir, self.embedder_name, self.dim)
        except IndexMissing:
            event = "index_missing"
        else:
            if not (self.auto_sync and self._corpus_changed(store.manifest)):
                return store
            event = "corpus_changed"
        if self.progress:
            self.progress(event, 0)
        self.sync()
        return IndexStore.load(self.settings.index_dir, self.embedder_name, self.dim)

    def _corpus_changed(self, manifest: dict[str, Any]) -> bool:
        try:
            current = file_hashes(self.settings.corpus_dir)
        except CareerQAError:
            return False  # no readable corpus here: serve the index as it is
        known = {path: entry.get("sha256") for path, entry in (manifest.get("files") or {}).items()}
        return current != known

    @property
    def answerer(self) -> Answerer:
        if self._answerer is None:
            verifier = Verifier(self.embedder, self.settings.support_threshold)
            self._answerer = Answerer(self.settings, self.retriever, self.generator, verifier)
        return self._answerer

    # --- what users call ---------------------------------------------------------------------------

    def search(self, query: str, top_k: int | None = None) -> list[Hit]:
        return self.retriever.search(query, self.settings.top_k if top_k is None else top_k)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        on_text: TextCallback | None = None,
    ) -> Answer:
        return self.answerer.ask(question, history=history, top_k=top_k, on_text=on_text)
