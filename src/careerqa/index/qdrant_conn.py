"""Connections to Qdrant and the committed manifest: one client per location and process, the manifest
point of ``<collection>-meta``, and the cheap read of its generation that the engine polls.

Local mode (a folder, or ``:memory:``) runs inside this process and is not thread-safe, so its calls
are serialised; its folder is locked against other processes. Not handled here: the data collection
(``index/qdrant_store.py``).
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Any

from careerqa.config import Settings
from careerqa.errors import IndexCorrupt, IndexMissing, ModelUnavailable
from careerqa.index.manifest import Manifest

META_POINT = 1

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


class _Serialised:
    """qdrant-client's local mode is not thread-safe: one call at a time (a server needs no lock)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def client_for(settings: Settings) -> Any:
    """One client per location and process (local mode locks its folder against other processes)."""
    location = settings.qdrant_url
    key = (location, settings.qdrant_api_key)
    with _clients_lock:
        if key in _clients:
            return _clients[key]
        try:
            from qdrant_client import QdrantClient
        except ImportError as exc:
            raise ModelUnavailable(
                "CAREERQA_QDRANT_URL is set but qdrant-client is not installed; run: "
                "pip install 'careerqa[remote]'"
            ) from exc
        client: Any
        try:
            if location.startswith(("http://", "https://")):
                # No version check at start: it is one more request, and a warning when the server is down.
                client = QdrantClient(
                    url=location,
                    api_key=settings.qdrant_api_key or None,
                    timeout=30,
                    check_compatibility=False,
                )
            elif location == ":memory:":
                client = _Serialised(QdrantClient(location=":memory:"))
            else:
                Path(location).expanduser().mkdir(parents=True, exist_ok=True)
                client = _Serialised(QdrantClient(path=str(Path(location).expanduser())))
        except (RuntimeError, OSError) as exc:  # local mode: the folder is held by another process
            raise ModelUnavailable(f"cannot open the Qdrant store at {location}: {exc}") from exc
        if not _clients:  # closed before the interpreter tears modules down (its __del__ would fail)
            atexit.register(close_clients)
        _clients[key] = client
        return client


def close_clients() -> None:
    """Close every client (tests; a local-mode folder is then free for another process)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def _unavailable(settings: Settings, exc: Exception) -> ModelUnavailable:
    return ModelUnavailable(f"Qdrant at {settings.qdrant_url} failed: {type(exc).__name__}: {exc}")


def read_manifest(settings: Settings) -> Manifest:
    client = client_for(settings)
    meta = f"{settings.qdrant_collection}-meta"
    try:
        exists = client.collection_exists(meta)
        points = client.retrieve(meta, [META_POINT], with_payload=True) if exists else []
    except Exception as exc:  # the transport's errors differ by version (httpx, grpc, qdrant's own)
        raise _unavailable(settings, exc) from exc
    if not points:
        raise IndexMissing(f"no index in Qdrant at {settings.qdrant_url}: run `careerqa index` to build it")
    manifest = (points[0].payload or {}).get("manifest")
    if not isinstance(manifest, dict):
        raise IndexCorrupt(
            f"the manifest point of {meta} is damaged; run `careerqa index --full` to rebuild it"
        )
    return Manifest.from_dict(manifest, f"{meta} (its manifest point)")


def current_generation(settings: Settings) -> tuple[str, int] | None:
    """The committed (data collection, generation), cheaply: what the engine polls on each request."""
    client = client_for(settings)
    meta = f"{settings.qdrant_collection}-meta"
    try:
        if not client.collection_exists(meta):
            return None
        points = client.retrieve(meta, [META_POINT], with_payload=["generation", "collection"])
    except Exception as exc:
        raise _unavailable(settings, exc) from exc
    if not points:
        return None
    payload = points[0].payload or {}
    return str(payload.get("collection")), int(payload.get("generation", 0))
