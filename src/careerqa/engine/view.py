"""The index version a process serves, and swapping it for a newer one while requests run.

An ``IndexView`` is one loaded version: its store, retriever and answerer, and the answer cache of that
version. ``IndexHolder`` keeps the current view: it loads the first one when first asked (through the
engine's ``first_load``, which may build or update the index), swaps in a new one when the backend's
stamp shows that another process (``careerqa index``, another server) has committed, and takes a store
this process has just committed (``install``) without reading it back. A caller that holds a view
answers a whole request from that one version while the swap happens.
Not handled here: building or updating the index (``index/sync.py``) and the models (``engine/models.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property

from careerqa.answer.answerer import Answerer
from careerqa.answer.shortcuts import AnswerCache
from careerqa.errors import CareerQAError
from careerqa.index.backends import Backend
from careerqa.index.store import Store
from careerqa.retrieve.hybrid import Retriever

# The manifest file's inode, mtime and size (FAISS), or Qdrant's committed generation: a new commit
# changes it (backends.Backend.stamp).
Stamp = Hashable

# Tries to load a version another process committed: its writer deletes the previous data files just
# after a commit, so a load that races a second commit is tried again.
RELOAD_TRIES = 3


@dataclass
class IndexView:
    """One loaded index version and the parts that read it. Only ``stamp`` ever changes: when the
    manifest file is rewritten with the same content (the same version), the view is kept."""

    version: str
    stamp: Stamp | None  # of the manifest this view was loaded from
    store: Store
    retriever: Retriever
    _make_answerer: Callable[[Retriever], Answerer]
    cache: AnswerCache = field(default_factory=AnswerCache)  # answers of this version only

    @cached_property
    def answerer(self) -> Answerer:
        """Made on first use, so searching never loads the language model (nor does it touch the index)."""
        return self._make_answerer(self.retriever)


class IndexHolder:
    """Holds the current ``IndexView`` of one backend; thread-safe, one load at a time."""

    def __init__(
        self,
        backend: Backend,
        first_load: Callable[[], tuple[Store, Stamp | None]],
        load: Callable[[], Store],
        make_view: Callable[[Store, Stamp | None], IndexView],
    ) -> None:
        self.backend = backend
        self._first_load = first_load  # the first version and its stamp (may build the index)
        self._load = load  # the committed version, read-only
        self._make_view = make_view
        self._view: IndexView | None = None
        self._lock = threading.Lock()  # one load at a time; readers keep the view they hold

    def current(self) -> IndexView:
        """The current view: loaded on first use, and swapped for a new one when the backend's stamp
        changed since. Cheap when nothing changed (one stat, or one small Qdrant read)."""
        view = self._view
        if view is not None and view.stamp == self.backend.stamp():
            return view
        with self._lock:
            if self._view is view:  # nobody swapped it while this thread waited for the lock
                if view is None:
                    self._view = self._make_view(*self._first_load())
                else:
                    stamp = self.backend.stamp()  # before loading: a later commit reloads again
                    if view.store.manifest is not None and self.backend.is_committed(view.store.manifest):
                        view.stamp = stamp
                        return view
                    self._view = self._make_view(self._reload(), stamp)
            assert self._view is not None
            return self._view

    def install(self, store: Store, stamp: Stamp | None) -> IndexView:
        """Serve ``store``, the version this process has just committed (or found current), from now on.
        The view of the same version is kept, with its answer cache."""
        with self._lock:
            view = self._view
            if view is not None and store.manifest is not None and view.version == store.manifest.version:
                view.stamp = stamp
                return view
            self._view = self._make_view(store, stamp)
            return self._view

    def _reload(self) -> Store:
        """Load the version another process committed, trying again when a second commit raced it."""
        for attempt in range(RELOAD_TRIES):
            stamp = self.backend.stamp()
            try:
                return self._load()
            except (CareerQAError, OSError):
                if attempt == RELOAD_TRIES - 1 or stamp == self.backend.stamp():
                    raise
        raise AssertionError("unreachable")
