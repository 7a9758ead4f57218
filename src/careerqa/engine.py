"""Wiring: settings → index (built on first use) → retriever → answerer, each made when first needed.

The CLI and the web service both hold one ``Engine``; tests build one with fakes through
``Engine(settings, embedder=..., generator=...)``. The loaded index is an immutable ``IndexView``
(store, retriever and answerer of one index version). ``Engine.view()`` notices when another process
(``careerqa index``) has committed a new manifest and swaps in a new view; a caller that holds a view
answers a whole request from that one version while the swap happens. Not handled here: printing and
HTTP.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .answering import Answerer, Turn
from .backends import backend_for
from .config import Settings
from .corpus import file_hashes
from .embedding import Embedder, load_embedder
from .errors import CareerQAError, IndexMissing
from .events import Done, Events, TextCallback, final_answer, replayed
from .generation import Generator, load_generator
from .grounding import Verifier
from .index_store import IndexStore, read_manifest
from .indexing import ProgressFn, SyncReport, chunking_params, sync_index
from .retrieval import Retriever
from .shortcuts import AnswerCache, FaqMatcher, normalise_question
from .types import Answer, Hit

EMBEDDER_DIMS = {"all-MiniLM-L6-v2": 384}

# The manifest file's inode, mtime and size (FAISS), or Qdrant's committed generation: a new commit
# changes it (backends.Backend.stamp).
Stamp = Hashable


@dataclass
class IndexView:
    """One loaded index version and the parts that read it. Only ``stamp`` ever changes: when the
    manifest file is rewritten with the same content (the same version), the view is kept."""

    version: str
    stamp: Stamp | None  # of the manifest this view was loaded from
    store: IndexStore
    retriever: Retriever
    _make_answerer: Callable[[Retriever], Answerer]
    cache: AnswerCache = field(default_factory=AnswerCache)  # answers of this version only

    @cached_property
    def answerer(self) -> Answerer:
        """Made on first use, so searching never loads the language model."""
        return self._make_answerer(self.retriever)


def index_version(manifest: dict[str, Any]) -> str:
    """A short id of one committed index: its data files and build time."""
    keys = ("vectors_file", "sentences_file", "chunks_file", "built_at")
    return hashlib.sha256("|".join(str(manifest.get(k)) for k in keys).encode()).hexdigest()[:12]


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
        self._view: IndexView | None = None
        self._view_lock = threading.Lock()  # one load at a time; readers keep the view they hold
        self._parts_lock = threading.Lock()
        self.progress = progress
        self.show_model_progress = show_model_progress
        # Bring the index up to date with the corpus when it is first loaded (hashing the files is
        # cheap; only changed chunks are embedded).
        self.auto_sync = auto_sync
        self.last_sync: SyncReport | None = None
        self.backend = backend_for(settings)  # FAISS files (default) or Qdrant

    # --- parts, made lazily ----------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._parts_lock:
                if self._embedder is None:
                    self._embedder = load_embedder(
                        self.settings.embedder,
                        backend=self.settings.embedder_backend,
                        cache_dir=self.settings.cache_dir,
                        on_event=self.progress,
                    )
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            with self._parts_lock:
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
        self.last_sync = report
        return report

    def view(self) -> IndexView:
        """The current index view: loaded (and built or updated) on first use, and swapped for a new
        one when the manifest on disk has been replaced since. Cheap when nothing changed (one stat)."""
        view = self._view
        if view is not None and view.stamp == _manifest_stamp(self.settings):
            return view
        with self._view_lock:
            if self._view is view:  # nobody swapped it while this thread waited for the lock
                stamp = _manifest_stamp(self.settings)  # before loading: a later commit reloads again
                if view is not None and self._same_version(view):
                    view.stamp = stamp
                    return view
                store = self._load_current_index() if view is None else self._reload_index()
                retriever = self.backend.retriever(store, self.embedder)
                self._view = IndexView(
                    index_version(store.manifest),
                    stamp,
                    store,
                    retriever,
                    self._make_answerer,
                    AnswerCache(self.settings.answer_cache_size),
                )
            assert self._view is not None
            return self._view

    def _same_version(self, view: IndexView) -> bool:
        if self.settings.qdrant_url:  # its stamp is (data collection, generation): the version itself
            info = view.store.manifest.get("qdrant") or {}
            return _manifest_stamp(self.settings) == (info.get("collection"), info.get("generation"))
        try:
            return index_version(read_manifest(self.settings.index_dir)) == view.version
        except CareerQAError:
            return False

    def _make_answerer(self, retriever: Retriever) -> Answerer:
        verifier = Verifier(self.embedder, self.settings.support_threshold)
        faq = FaqMatcher(retriever.store, self.embedder) if self.settings.faq_min_score <= 1 else None
        # The language model is loaded when the answerer first generates: an answer from the FAQ
        # fast path or the cache never imports llama.cpp.
        return Answerer(self.settings, retriever, _DeferredGenerator(lambda: self.generator), verifier, faq)

    def _reload_index(self) -> IndexStore:
        """Load the manifest another process committed. Its writer deletes the previous data files
        just after a commit, so a load that races a second commit is tried again."""
        for attempt in range(3):
            stamp = _manifest_stamp(self.settings)
            try:
                store: IndexStore = self.backend.load(self.embedder_name, self.dim)
                return store
            except (CareerQAError, OSError):
                if attempt == 2 or stamp == _manifest_stamp(self.settings):
                    raise
        raise AssertionError("unreachable")

    @property
    def retriever(self) -> Retriever:
        return self.view().retriever

    def _load_current_index(self) -> IndexStore:
        """Load the index, first building it (first use) or updating it (the corpus changed)."""
        try:
            store: IndexStore = self.backend.load(self.embedder_name, self.dim)
        except IndexMissing:
            event = "index_missing"
        else:
            if not (self.auto_sync and self._corpus_changed(store.manifest)):
                return store
            event = "corpus_changed"
        if self.progress:
            self.progress(event, 0)
        self.sync()
        loaded: IndexStore = self.backend.load(self.embedder_name, self.dim)
        return loaded

    def _corpus_changed(self, manifest: dict[str, Any]) -> bool:
        try:
            current = file_hashes(self.settings.corpus_dir)
        except CareerQAError:
            return False  # no readable corpus here: serve the index as it is
        known = {path: entry.get("sha256") for path, entry in (manifest.get("files") or {}).items()}
        skipped = manifest.get("skipped_files")
        if isinstance(skipped, dict):  # files read before and skipped (indexing.py)
            known.update(skipped)
        # new chunking rules (e.g. page chrome) re-chunk the index; only new text is embedded
        return current != known or manifest.get("chunking") != chunking_params(self.settings)

    @property
    def answerer(self) -> Answerer:
        return self.view().answerer

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
            if isinstance(event, Done) and not history:
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


class _DeferredGenerator(Generator):
    """Stands for the engine's generator and loads it on first use."""

    def __init__(self, load: Callable[[], Generator]) -> None:
        self._load = load

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._load().name

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        return self._load().stream(messages, max_tokens=max_tokens, stop=stop)

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> str:
        return self._load().generate(messages, max_tokens=max_tokens, stop=stop)

    def prefill(self, messages: list[dict[str, str]]) -> None:
        self._load().prefill(messages)

    def count_tokens(self, text: str) -> int:
        return self._load().count_tokens(text)

    @property
    def last_usage(self) -> dict[str, int]:  # type: ignore[override]
        return self._load().last_usage


def _manifest_stamp(settings: Settings) -> Stamp | None:
    return backend_for(settings).stamp()
