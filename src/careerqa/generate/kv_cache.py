"""Passage KV caches on disk: where they live, how they are keyed, and keeping them in step with the index.

A passage's key/value cache, computed after the constant system prompt, does not depend on the
question, so it is computed once per passage (``generate/kv_sync.py`` keeps them in step with the
index) and ``generate/kv_stitch.py`` loads it at question time instead of reading the passage again
(``docs/design.md``, "Passage KV caches").

Keys are content hashes: the model file's sha256, the system prompt, the KV cache type, the cache
format and the exact text of the passage block as the prompt shows it in slot 1 (``<passage n="1"
source=… section=…>`` and the chunk text; the chunk id is a hash of the same source, section and text).
A changed chunk, prompt, model or cache type therefore has another key: a stale cache is never found,
so never used.

Where the bytes live: ``<cache_dir>/passage-kv/<hash of the index folder>/`` (``Settings.kv_cache_dir``
overrides it), outside the index folder. A passage costs ~5 MB in f16 (28,688 bytes per token for the
1.5B model; ~2.7 MB in q8_0): too big to sit in a folder that lives in a project tree or is copied
with the index, and not needed to search or to answer (a missing cache means the passage is read live).
One folder per index folder, so two indexes never delete each other's caches.

Atomicity: each file is written to a temporary name and renamed, under a ``flock`` of the folder;
a killed run leaves whole files (valid for their key) and temporary files that the next run deletes.
Every file carries its key, token count and a CRC of the blob: a file that fails any check is treated
as missing. ``RetrievalCounts`` keeps how often each passage was retrieved (``retrievals.json``), the
order caches are kept in under a budget. Not handled here: llama.cpp itself (``generate/kv_stitch.py``),
which caches are wanted (``generate/kv_sync.py``) and choosing passages (``answer/answerer.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import threading
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careerqa.config import Settings
from careerqa.generate.model_files import MODELS
from careerqa.locks import file_lock, try_file_lock

CACHE_FORMAT = 2  # bump when the blob layout or the block text changes meaning
MAGIC = b"CQKV"
SUFFIX = ".kv"
_HEADER = struct.Struct("<4sIIQ")  # magic, header JSON length, CRC32 of the blob, blob length


def model_id(generator_name: str, model_path: Path | None = None) -> str:
    """The identity of a model file for cache keys: the packaged model's sha256, else name and size."""
    profile = MODELS.get(generator_name)
    if profile is not None:
        return profile.sha256
    size = model_path.stat().st_size if model_path is not None and model_path.exists() else 0
    return hashlib.sha256(f"{generator_name}:{size}".encode()).hexdigest()


def prefix_key(model: str, system_prompt: str, kv_type: str = "f16") -> str:
    """What every cache of one model, system prompt and KV cache type shares."""
    return hashlib.sha256(f"{CACHE_FORMAT}\0{model}\0{system_prompt}\0{kv_type}".encode()).hexdigest()


def block_key(prefix: str, block: str) -> str:
    """The key of one passage block (its text as the prompt holds it, the separator after it included)."""
    return hashlib.sha256(f"{prefix}\0{block}".encode()).hexdigest()[:40]


def cache_folder(settings: Settings) -> Path:
    if settings.kv_cache_dir:
        return Path(settings.kv_cache_dir).expanduser()
    index = str(Path(settings.index_dir).expanduser().resolve())
    return (
        Path(settings.cache_dir).expanduser() / "passage-kv" / hashlib.sha256(index.encode()).hexdigest()[:16]
    )


@dataclass(frozen=True)
class CachedBlock:
    tokens: int
    blob: bytes


class KVStore:
    """One folder of passage caches, one file per block key."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def get(self, key: str, tokens: int) -> CachedBlock | None:
        """The cache for ``key`` if it is whole, for this key and ``tokens`` tokens long; else None."""
        try:
            data = self.path(key).read_bytes()
        except OSError:
            return None
        return _parse(data, key, tokens)

    def put(self, key: str, tokens: int, blob: bytes, meta: dict[str, Any]) -> int:
        """Write one cache atomically; return the bytes written."""
        header = json.dumps({**meta, "key": key, "tokens": tokens, "format": CACHE_FORMAT}).encode()
        data = _HEADER.pack(MAGIC, len(header), zlib.crc32(blob), len(blob)) + header + blob
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return len(data)

    def tokens(self, key: str) -> int | None:
        """The token count a cache file says it holds (its header alone), or None."""
        try:
            with self.path(key).open("rb") as fh:
                magic, header_len, _crc, _len = _HEADER.unpack(fh.read(_HEADER.size))
                meta = json.loads(fh.read(header_len)) if magic == MAGIC and header_len < 1 << 16 else {}
        except (OSError, ValueError, struct.error):
            return None
        return meta.get("tokens") if isinstance(meta, dict) else None

    def intact(self, key: str) -> bool:
        """A cheap check of a file's header and length (the CRC of the data is checked when it is read)."""
        try:
            with self.path(key).open("rb") as fh:
                head = fh.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    return False
                magic, header_len, _crc, blob_len = _HEADER.unpack(head)
                meta = json.loads(fh.read(header_len)) if magic == MAGIC and header_len < 1 << 16 else None
                size = os.fstat(fh.fileno()).st_size
        except (OSError, ValueError):
            return False
        ok = isinstance(meta, dict) and meta.get("key") == key and meta.get("format") == CACHE_FORMAT
        return ok and size == _HEADER.size + header_len + blob_len

    def keys(self) -> dict[str, int]:
        """Key → file size of every cache file present."""
        out: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        out[entry.name[: -len(SUFFIX)]] = entry.stat().st_size
        return out

    def remove(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.path(key).unlink()

    def remove_temporary(self) -> None:
        """Delete the temporary files of killed runs (only names ``put`` makes)."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The folder's writers' lock, held while files are added or removed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with file_lock(self.folder / ".lock"):
            yield

    @contextlib.contextmanager
    def builder(self) -> Iterator[bool]:
        """Whether this process may compute caches now: one builder per folder at a time (a server's
        background builder, ``careerqa index``); the others skip rather than compute the same ones."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with try_file_lock(self.folder / ".builder") as held:
            yield held

    def bytes_used(self) -> int:
        return sum(self.keys().values())


class RetrievalCounts:
    """How often each passage was retrieved for an answer, kept beside the caches (``retrievals.json``):
    under a budget the most-retrieved passages are cached first and evicted last. Counted in memory,
    added to the file by ``flush`` (under the folder's lock, so processes add up, never overwrite)."""

    FILE = "retrievals.json"

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / self.FILE
        self._new: Counter[str] = Counter()
        self._lock = threading.Lock()

    def bump(self, chunk_ids: Iterable[str]) -> None:
        with self._lock:
            self._new.update(chunk_ids)

    def read(self) -> Counter[str]:
        """The counts on disk plus those not yet flushed."""
        with self._lock:
            return self._read() + self._new

    def _read(self) -> Counter[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Counter()
        return (
            Counter({k: int(v) for k, v in data.items() if isinstance(v, int)})
            if isinstance(data, dict)
            else Counter()
        )

    def flush(self, keep: Iterable[str] | None = None) -> None:
        """Add the counts made since the last flush to the file; ``keep`` (chunk ids) drops the others."""
        with self._lock:
            new, self._new = self._new, Counter()
        if not new and keep is None:
            return
        store = KVStore(self.path.parent)
        with store.lock():
            counts = self._read() + new
            if keep is not None:
                wanted = set(keep)
                counts = Counter({k: v for k, v in counts.items() if k in wanted})
            tmp = self.path.with_name(f".{self.FILE}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(dict(counts.most_common()), separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)


def _parse(data: bytes, key: str, tokens: int) -> CachedBlock | None:
    if len(data) < _HEADER.size:
        return None
    magic, header_len, crc, blob_len = _HEADER.unpack_from(data)
    start = _HEADER.size + header_len
    if magic != MAGIC or len(data) != start + blob_len:
        return None
    try:
        meta = json.loads(data[_HEADER.size : start])
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("tokens") != tokens:
        return None
    if meta.get("format") != CACHE_FORMAT:
        return None
    blob = data[start:]
    if zlib.crc32(blob) != crc:
        return None
    return CachedBlock(tokens=tokens, blob=blob)
