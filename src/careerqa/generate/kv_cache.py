"""Passage KV caches on disk: where they live, how they are keyed, and keeping them in step with the index.

A passage's key/value cache, computed after the constant system prompt, does not depend on the
question, so ``careerqa index`` computes it once per (passage, slot) and ``generate/kv_stitch.py`` loads it at
question time instead of reading the passage again (``docs/design.md``, "Passage KV caches").

Keys are content hashes: the model file's sha256, the system prompt, the cache format and the exact
text of the passage block as the prompt shows it in that slot (``<passage n="2" source=… section=…>``
and the chunk text; the chunk id is a hash of the same source, section and text). A changed chunk,
prompt, model or slot therefore has another key: a stale cache is never found, so never used.

Where the bytes live: ``<cache_dir>/passage-kv/<hash of the index folder>/`` (``Settings.kv_cache_dir``
overrides it), outside the index folder. A passage costs ~5 MB per slot (28,688 bytes per token for
the 1.5B model), a few hundred MB for the seed corpus: too big to sit in a folder that lives in a
project tree or is copied with the index, and not needed to search or to answer (a missing cache means
the passage is read live). One folder per index folder, so two indexes never delete each other's caches.

Atomicity: each file is written to a temporary name and renamed, under a ``flock`` of the folder;
a killed run leaves whole files (valid for their key) and temporary files that the next run deletes.
Every file carries its key, token count and a CRC of the blob: a file that fails any check is treated
as missing. Not handled here: llama.cpp itself (``generate/kv_stitch.py``) and choosing passages
(``answer/answerer.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from careerqa.config import Settings
from careerqa.generate.model_files import MODELS
from careerqa.locks import file_lock
from careerqa.types import Chunk

if TYPE_CHECKING:
    from careerqa.generate.base import Generator
    from careerqa.index.store import Store

CACHE_FORMAT = 1  # bump when the blob layout or the block text changes meaning
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


def prefix_key(model: str, system_prompt: str) -> str:
    """What every cache of one model and system prompt shares."""
    return hashlib.sha256(f"{CACHE_FORMAT}\0{model}\0{system_prompt}".encode()).hexdigest()


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
        self.folder.mkdir(parents=True, exist_ok=True)
        with file_lock(self.folder / ".lock"):
            yield


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


# --------------------------------------------------------------------------- keeping caches in step


class BlockComputer:
    """What ``sync_caches`` needs from the model (``kv_stitch.Stitcher`` provides it)."""

    def compute(self, system_prompt: str, block: str) -> tuple[int, bytes]:  # pragma: no cover
        """The KV blob of ``block`` read after ``system_prompt``, and its token count."""
        raise NotImplementedError


@dataclass
class KVReport:
    """What ``careerqa index`` did to the passage caches (``index --json`` → ``passage_kv``)."""

    folder: str = ""
    enabled: bool = True
    skipped: str | None = None  # why nothing was computed (setting off, backend without a KV cache)
    slots: int = 0
    wanted: int = 0  # (passage, slot) pairs the index has
    present: int = 0  # cached before this run and kept
    computed: int = 0
    removed: int = 0  # of deleted or changed passages, or over the budget
    over_budget: int = 0  # pairs left to live prefill because the budget is spent
    failed: int = 0
    bytes_total: int = 0
    bytes_per_chunk: float = 0.0  # for slot 1, averaged over the chunks cached in it
    tokens_computed: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wanted_blocks(
    chunks: Sequence[Chunk], slots: int, render: Callable[[Chunk, int], str]
) -> list[tuple[int, Chunk, str]]:
    """(slot, chunk, block text) in the order caches are kept under a budget: every passage's slot 1
    first (every answer uses slot 1, fewer use each later slot), then slot 2, and so on."""
    return [(n, chunk, render(chunk, n)) for n in range(1, slots + 1) for chunk in chunks]


def sync_caches(
    store: KVStore,
    blocks: Iterable[tuple[int, Chunk, str]],
    prefix: str,
    system_prompt: str,
    budget_bytes: int,
    computer_factory: Callable[[], BlockComputer],
    progress: Callable[[str, int], None] | None = None,
) -> KVReport:
    """Compute the caches that are missing, keep the rest, delete what no block needs any more.

    The model is loaded (``computer_factory``) only when something must be computed. Blocks are taken
    in order until ``budget_bytes`` is spent; later ones are left to live prefill (and deleted if cached).
    """
    t0 = time.perf_counter()
    todo = list(blocks)
    run = _CacheSync(store, prefix, system_prompt, budget_bytes, computer_factory, progress)
    if not store.folder.exists():
        if not todo:
            return run.report
        run.computer()  # before anything is written: a backend without KV writes nothing
    with store.lock():
        store.remove_temporary()
        present = store.keys()
        run.report.wanted = len(todo)
        run.report.slots = max((n for n, _c, _b in todo), default=0)
        # A file cut short or overwritten is computed again (a changed byte inside the data is caught by
        # its CRC when it is read, and that passage is then read live).
        missing = [
            (key := block_key(prefix, text)) not in present or not store.intact(key) for _n, _c, text in todo
        ]
        if progress:
            progress("kv_total", sum(missing))
        for block, is_missing in zip(todo, missing, strict=True):
            run.take(block, None if is_missing else present[block_key(prefix, block[2])])
        for key in set(present) - run.keep:
            store.remove(key)
            run.report.removed += 1
    return run.finish(t0)


class _CacheSync:
    """One run of ``sync_caches``: the blocks kept so far, the bytes spent and the report."""

    def __init__(
        self,
        store: KVStore,
        prefix: str,
        system_prompt: str,
        budget_bytes: int,
        computer_factory: Callable[[], BlockComputer],
        progress: Callable[[str, int], None] | None,
    ) -> None:
        self.store, self.prefix, self.system_prompt = store, prefix, system_prompt
        self.budget_bytes, self.progress = budget_bytes, progress
        self._factory = computer_factory
        self._computer: BlockComputer | None = None
        self.report = KVReport(folder=str(store.folder))
        self.keep: set[str] = set()
        self.spent = self.slot1_bytes = self.slot1_count = 0

    def computer(self) -> BlockComputer:
        if self._computer is None:
            self._computer = self._factory()
        return self._computer

    def take(self, block: tuple[int, Chunk, str], cached_size: int | None) -> None:
        """Keep the cache of ``block`` (``cached_size`` bytes on disk) or compute it (None), within
        the budget."""
        slot, _chunk, text = block
        key = block_key(self.prefix, text)
        if self.spent >= self.budget_bytes or (
            cached_size is not None and self.spent + cached_size > self.budget_bytes
        ):
            self.report.over_budget += 1
            return
        if cached_size is not None:
            size = cached_size
            self.report.present += 1
        else:
            computed = self._compute(block, key)
            if computed is None:
                return
            size = computed
        self.keep.add(key)
        self.spent += size
        if slot == 1:
            self.slot1_bytes += size
            self.slot1_count += 1

    def _compute(self, block: tuple[int, Chunk, str], key: str) -> int | None:
        """Compute and write one cache; its size, or None when it failed or is over the budget."""
        slot, chunk, text = block
        computer = self.computer()  # a model that cannot load stops the run (not one passage's failure)
        try:
            tokens, blob = computer.compute(self.system_prompt, text)
        except Exception as exc:  # one bad passage must not stop the others
            self.report.failed += 1
            self.report.warnings.append(f"{chunk.source} › {chunk.section} (slot {slot}): {exc}")
            return None
        finally:
            if self.progress:
                self.progress("kv_computed", 1)
        if self.spent + len(blob) > self.budget_bytes:
            self.report.over_budget += 1
            self.spent = self.budget_bytes
            return None
        size = self.store.put(key, tokens, blob, {"chunk_id": chunk.chunk_id, "slot": slot})
        self.report.computed += 1
        self.report.tokens_computed += tokens
        return size

    def finish(self, t0: float) -> KVReport:
        report = self.report
        report.bytes_total = sum(size for key, size in self.store.keys().items() if key in self.keep)
        report.bytes_per_chunk = round(self.slot1_bytes / self.slot1_count, 1) if self.slot1_count else 0.0
        report.seconds = round(time.perf_counter() - t0, 3)
        return report


class _NoKV(Exception):
    """The configured generator has no KV cache to precompute (a remote or fake backend)."""


def index_chunks(store: Store) -> list[Chunk]:
    """The index's chunks in corpus order (files by path, chunks in document order)."""
    ordered: list[Chunk] = []
    files = store.manifest.files if store.manifest is not None else {}
    for entry in files.values():
        ordered.extend(store.chunks[cid] for cid in entry.chunk_ids if cid in store.chunks)
    return ordered


def sync_for_index(
    settings: Settings,
    store: Store,
    generator: Callable[[], Generator],
    progress: Callable[[str, int], None] | None = None,
) -> KVReport:
    """Bring the passage caches of ``store`` (the committed index version) in line with it; see
    ``sync_caches``.

    ``generator`` is called only when a cache must be computed; a generator without ``passage_kv``
    (remote, fake) leaves the caches alone and says so in the report.
    """
    from careerqa.generate.prompts import SYSTEM_PROMPT, passage_block

    folder = cache_folder(settings)
    if settings.kv_cache == "off":
        return KVReport(folder=str(folder), enabled=False, skipped="kv_cache is off")

    def computer() -> BlockComputer:
        gen = generator()
        passage_kv = getattr(gen, "passage_kv", None)
        path = passage_kv() if passage_kv is not None else None
        stitcher = path.stitcher() if path is not None else None
        if stitcher is None:
            raise _NoKV(f"the generator {gen.name!r} has no KV cache to precompute")
        return stitcher  # type: ignore[no-any-return]

    blocks = wanted_blocks(index_chunks(store), settings.kv_slots, lambda c, n: passage_block(c, n) + "\n\n")
    prefix = prefix_key(model_id(settings.generator), SYSTEM_PROMPT)
    try:
        return sync_caches(
            KVStore(folder), blocks, prefix, SYSTEM_PROMPT, settings.kv_budget_mb << 20, computer, progress
        )
    except _NoKV as exc:
        return KVReport(folder=str(folder), skipped=str(exc))
