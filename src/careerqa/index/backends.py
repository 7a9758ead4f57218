"""Where the index lives: FAISS files in ``index/`` (the default) or Qdrant.

``backend_for(settings)`` picks one: ``CAREERQA_QDRANT_URL`` (a server's URL, or a folder for
qdrant-client's embedded local mode) selects Qdrant, anything else the FAISS files. Both give the
engine and the sync the same things: a cheap ``stamp`` that changes when another process commits a new
index version, ``is_committed`` (is a loaded version still the committed one?), ``load`` (one version,
read-only) and ``load_for_write`` (the store a sync changes and commits, and the previous manifest's
files). Each store is a ``Store`` (``index/store.py``), so the retriever searches both alike:
``/search``, ``search --json`` and answers do not know which one ran.

Not handled here: the stores themselves (``index/faiss_store.py``, ``index/qdrant_store.py``) and
ranking (``retrieve/hybrid.py``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Hashable

from careerqa.config import Settings
from careerqa.errors import CareerQAError, IndexMissing
from careerqa.index.faiss_files import MANIFEST, read_manifest, remove_orphans
from careerqa.index.faiss_store import IndexStore
from careerqa.index.manifest import FileEntry, Manifest
from careerqa.index.store import Store


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
    def is_committed(self, manifest: Manifest) -> bool:
        """Whether the version of ``manifest`` (a loaded one) is still the committed version."""

    @abstractmethod
    def load(self, embedder_name: str, dim: int) -> Store:
        """The committed index version; ``IndexMissing`` when there is none."""

    @abstractmethod
    def load_for_write(self, embedder_name: str, dim: int, full: bool) -> tuple[Store, dict[str, FileEntry]]:
        """The store a sync changes (empty for ``full``) and the files of the manifest it starts from."""

    def clean(self, store: Store) -> None:  # noqa: B027 - optional: Qdrant's cleaning is in start_write
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

    def is_committed(self, manifest: Manifest) -> bool:
        try:
            return bool(self.read_manifest().version == manifest.version)
        except CareerQAError:
            return False

    def load(self, embedder_name: str, dim: int) -> IndexStore:
        return IndexStore.load(self.settings.index_dir, embedder_name, dim)

    def load_for_write(self, embedder_name: str, dim: int, full: bool) -> tuple[Store, dict[str, FileEntry]]:
        if full:
            return IndexStore(dim), {}
        try:
            store = self.load(embedder_name, dim)  # an incompatible index needs --full
        except IndexMissing:
            return IndexStore(dim), {}
        assert store.manifest is not None
        return store, store.manifest.files

    def clean(self, store: Store) -> None:
        if store.manifest is not None:
            remove_orphans(self.settings.index_dir, store.manifest)


class QdrantBackend(Backend):
    """Qdrant (``index/qdrant_store.py``): vectors, sparse BM25 and the manifest in collections."""

    name = "qdrant"

    def stamp(self) -> Hashable | None:
        from careerqa.index.qdrant_conn import current_generation

        return current_generation(self.settings)

    def read_manifest(self) -> Manifest:
        from careerqa.index.qdrant_conn import read_manifest as read_qdrant_manifest

        return read_qdrant_manifest(self.settings)

    def is_committed(self, manifest: Manifest) -> bool:
        info = manifest.qdrant  # the stamp is (data collection, generation): the version itself
        return info is not None and self.stamp() == (info.collection, info.generation)

    def load(self, embedder_name: str, dim: int) -> Store:
        from careerqa.index.qdrant_store import QdrantStore

        return QdrantStore.load(self.settings, embedder_name, dim)

    def load_for_write(self, embedder_name: str, dim: int, full: bool) -> tuple[Store, dict[str, FileEntry]]:
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


def backend_for(settings: Settings) -> Backend:
    return QdrantBackend(settings) if settings.qdrant_url else FaissBackend(settings)
