"""What the CLI and the web service call: search, ask (with the answer cache) and sync.

The CLI and the web service both hold one ``Engine``; tests build one with fakes through
``Engine(settings, embedder=..., generator=...)``. The engine wires three parts: ``LazyModels`` (the
embedder and the language model, loaded when first needed), ``IndexHolder`` (the current
``IndexView`` of the index, hot-swapped when another process commits) and the sync. On first use it
brings the index up to date with the corpus (``auto_sync``); a sync in this process hands the store
it saved to the holder, so nothing is read back from disk; ``caches`` keeps the passage KV caches in
step with it (``engine/caches.py``). Not handled here: printing and HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from careerqa.answer.answerer import Answerer
from careerqa.answer.grounding import Verifier
from careerqa.answer.rules import Rules
from careerqa.answer.shortcuts import AnswerCache, FaqMatcher, normalise_question
from careerqa.answer.turns import Turn
from careerqa.config import Settings
from careerqa.embed.embedding import Embedder
from careerqa.engine.caches import PassageCaches
from careerqa.engine.models import LazyModels
from careerqa.engine.view import IndexHolder, IndexView, Stamp
from careerqa.errors import CareerQAError, IndexMissing
from careerqa.events import Done, Events, TextCallback, final_answer, replayed
from careerqa.generate.base import Generator
from careerqa.index.backends import backend_for
from careerqa.index.manifest import Manifest
from careerqa.index.store import Store
from careerqa.index.sync import ProgressFn, SyncReport, chunking_params, sync_index
from careerqa.ingest.corpus import file_hashes
from careerqa.retrieve.hybrid import Retriever
from careerqa.types import Answer, Hit


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
        self.models = LazyModels(settings, embedder, generator, progress, show_model_progress)
        self.progress = progress
        # Bring the index up to date with the corpus when it is first loaded (hashing the files is
        # cheap; only changed chunks are embedded).
        self.auto_sync = auto_sync
        self.last_sync: SyncReport | None = None
        self.backend = backend_for(settings)  # FAISS files (default) or Qdrant
        self.index = IndexHolder(self.backend, self._first_load, self._load, self._make_view)
        # The passage KV caches: counted here, computed by ``caches.start()``'s builder (serve, the
        # watchers, chat), ``caches.sync()`` (``careerqa index``) or ``caches.build_detached()`` (ask).
        self.caches = PassageCaches(
            settings, self.view, lambda: self.generator, lambda: self.models.loaded_generator
        )

    # --- the models (loaded on first use; never the index) ------------------------------------------

    @property
    def embedder(self) -> Embedder:
        return self.models.embedder

    @property
    def generator(self) -> Generator:
        return self.models.generator

    @property
    def embedder_name(self) -> str:
        return self.models.embedder_name

    @property
    def dim(self) -> int:
        return self.models.dim

    # --- the index ---------------------------------------------------------------------------------

    def sync(self, full: bool = False) -> SyncReport:
        """Bring the index up to date with the corpus (see ``sync.sync_index``) and serve the version
        committed (``report.store``) from now on."""
        report = self._sync(full)
        if report.store is not None:
            self.index.install(report.store, report.stamp)
            self.caches.wake()  # a running builder brings the caches in step with this version
        return report

    def _sync(self, full: bool) -> SyncReport:
        report = sync_index(
            self.settings,
            lambda: self.embedder,
            embedder_name=self.embedder_name,
            dim=self.dim,
            full=full,
            progress=self.progress,
        )
        self.last_sync = replace(report, store=None, stamp=None)  # the report, not an old version's data
        return report

    def view(self) -> IndexView:
        """The current index view: loaded (and built or updated) on first use, and swapped for a new
        one when another process has committed since. Cheap when nothing changed (one stat)."""
        return self.index.current()

    def _first_load(self) -> tuple[Store, Stamp | None]:
        """The first version this engine serves: built first (no index yet) or updated first (the corpus
        changed, with ``auto_sync``). Only the manifest is read to decide; the store is loaded once."""
        stamp = self.backend.stamp()  # before loading: a later commit reloads again
        try:
            manifest = self.backend.read_manifest()
        except IndexMissing:
            event = "index_missing"
        else:
            manifest.require_embedder(self.embedder_name, self.dim)
            if not (self.auto_sync and self._corpus_changed(manifest)):
                return self._load(), stamp
            event = "corpus_changed"
        if self.progress:
            self.progress(event, 0)
        report = self._sync(full=False)
        if report.store is None:  # nothing committed after all: ``load`` says so
            return self._load(), self.backend.stamp()
        return report.store, report.stamp

    def _load(self) -> Store:
        return self.backend.load(self.embedder_name, self.dim)

    def _corpus_changed(self, manifest: Manifest) -> bool:
        try:
            current = file_hashes(self.settings.corpus_dir)
        except CareerQAError:
            return False  # no readable corpus here: serve the index as it is
        # Files read and skipped count as known (index/sync.py); new chunking rules (e.g. page chrome)
        # re-chunk the index, and only new text is embedded.
        return current != manifest.file_hashes or manifest.chunking != chunking_params(self.settings)

    def _make_view(self, store: Store, stamp: Stamp | None) -> IndexView:
        assert store.manifest is not None  # a loaded or committed version
        bridge = Rules.parse(self.settings.rules_off).on("bridged")
        retriever = Retriever(store, self.embedder, self.settings.candidates, self.settings.rrf_k, bridge)
        return IndexView(
            store.manifest.version,
            stamp,
            store,
            retriever,
            self._make_answerer,
            AnswerCache(self.settings.answer_cache_size),
        )

    def _make_answerer(self, retriever: Retriever) -> Answerer:
        verifier = Verifier(self.embedder, self.settings.support_threshold, self.settings.recite_margin)
        faq = FaqMatcher(retriever.store, self.embedder) if self.settings.faq_min_score <= 1 else None
        # The language model is loaded when the answerer first generates: an answer from the FAQ
        # fast path or the cache never imports llama.cpp.
        return Answerer(self.settings, retriever, self.models.deferred_generator(), verifier, faq)

    # --- what users call ---------------------------------------------------------------------------

    def search(self, query: str, top_k: int | None = None, view: IndexView | None = None) -> list[Hit]:
        view = view or self.view()
        return view.retriever.search(query, self.settings.top_k if top_k is None else top_k)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        on_text: TextCallback | None = None,
        view: IndexView | None = None,
    ) -> Answer:
        """The final answer of ``events`` (``on_text``, if given, gets each piece of text)."""
        return final_answer(self.events(question, history, top_k, view), on_text)

    def events(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        view: IndexView | None = None,
    ) -> Events:
        """Answer ``question`` from one index version, as events (``Answerer.events``). A question
        asked before, without history, on the same version is answered from the cache."""
        view = view or self.view()
        cached = None if history else self.cached(question, top_k, view)
        if cached is not None:
            yield from replayed(cached)
            return
        for event in view.answerer.events(question, history=history, top_k=top_k):
            if isinstance(event, Done):
                self.caches.note(event.answer)
                if not history:
                    view.cache.put(self._cache_key(question, top_k), event.answer)
            yield event

    def cached(self, question: str, top_k: int | None, view: IndexView) -> Answer | None:
        """The answer this version gave to the same question (without history), if it is cached."""
        answer = view.cache.get(self._cache_key(question, top_k))
        if answer is None:
            return None
        return replace(answer, question=question, timings_ms={"total": 0.0}, route="cache", tokens={})

    def _cache_key(self, question: str, top_k: int | None) -> tuple[str, int]:
        return normalise_question(question), self.settings.top_k if top_k is None else top_k
