"""Keeping the passage KV caches in step with the index: which passages want a cache, in what order,
under what budget; computing the missing ones and deleting what no passage needs any more.

One cache per passage (``Settings.kv_layout`` "passage", the default: ``kv_stitch`` swaps the slot
label in) or one per (passage, slot) ("slot", kept to compare). Order: the most-retrieved passages
first (``RetrievalCounts``), then corpus order; past the budget the rest are read live and their caches
evicted. The budget is ``Settings.kv_budget_mb``, or with 0 (the default) ``DISK_SHARE`` of the disk
where the caches live: all of the corpus whenever it fits there (``auto_budget``).

``sync_caches`` is one pass. ``careerqa index`` runs it at once (the progress bar); the background
builder (``engine/caches.py``: the server, ``index --watch``, the detached build after a first-use
``ask``) runs it with a ``turn`` hook that waits until no answer is being generated before each passage,
and a ``stop`` check between passages. One builder per cache folder at a time (``KVStore.builder``);
another process that finds it taken says so and computes nothing.

Not handled here: the files (``generate/kv_cache.py``) and llama.cpp (``generate/kv_stitch.py``).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from careerqa.config import Settings
from careerqa.generate.kv_cache import KVStore, RetrievalCounts, block_key, cache_folder, model_id, prefix_key
from careerqa.types import Chunk

if TYPE_CHECKING:
    from careerqa.generate.base import Generator
    from careerqa.index.store import Store

# Bytes of KV per token for the packaged 1.5B model (28 layers, 2 KV heads of 128): f16 measured
# (28,688); q8_0 and q4_0 take 34 and 18 bytes per 32 values. Only for the estimate in the budget's
# message; what is kept is counted in the files' real sizes.
BYTES_PER_TOKEN = {"f16": 28_688, "q8_0": 15_300, "q4_0": 8_100}
# Characters per token of the estimate: English prose has ~4.2, the pandas user guide's code-heavy text
# 2.3 (measured on 157 of its passages), so an estimate can be off by half: the budget is not sized from
# it (at 3.0 and a 25 % margin it came to 10.7 GB for 1,078 pandas passages that need ~12 GB in f16),
# only the message.
CHARS_PER_TOKEN = 2.5
DISK_SHARE = 0.25  # of the disk's free space (plus what the caches hold): what an automatic budget takes

ProgressFn = Callable[[str, int], None]
Turn = Callable[[], AbstractContextManager[None]]


class BlockComputer:
    """What ``sync_caches`` needs from the model (``LlamaGenerator.passage_computer`` provides it)."""

    def compute(self, system_prompt: str, block: str) -> tuple[int, bytes]:  # pragma: no cover
        """The KV blob of ``block`` read after ``system_prompt``, and its token count."""
        raise NotImplementedError


@dataclass
class KVReport:
    """What a sync did to the passage caches (``index --json`` → ``passage_kv``, ``/health``, doctor)."""

    folder: str = ""
    enabled: bool = True  # False: caches are off, or the generator has none to compute
    skipped: str | None = None  # why nothing was computed (setting off, backend without a KV cache, …)
    layout: str = "passage"
    kv_type: str = "f16"
    chunks: int = 0  # passages in the index
    cached_chunks: int = 0  # of them, with a cache after this run (slot 1 for the "slot" layout)
    slots: int = 0
    wanted: int = 0  # caches the index wants (one per passage, or per passage and slot)
    present: int = 0  # cached before this run and kept
    computed: int = 0
    removed: int = 0  # of deleted or changed passages, or evicted past the budget
    over_budget: int = 0  # left to live prefill because the budget is spent
    failed: int = 0
    interrupted: bool = False  # stopped before the end (the index changed, the server stopped)
    budget_bytes: int = 0
    budget: str = ""  # where the budget comes from
    bytes_total: int = 0
    bytes_per_chunk: float = 0.0  # for slot 1, averaged over the chunks cached in it
    tokens_computed: int = 0
    compute_seconds: float = 0.0  # the model's time for the caches computed in this run
    seconds_per_cache: float = 0.0  # of it, per cache computed (per passage in the default layout)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wanted_blocks(
    chunks: Sequence[Chunk],
    slots: int,
    render: Callable[[Chunk, int], str],
    counts: Mapping[str, int] | None = None,
) -> list[tuple[int, Chunk, str]]:
    """(slot, chunk, block text) in the order caches are kept under a budget: the most-retrieved
    passages first (corpus order among equals); with several slots, every passage's slot 1 first
    (every answer uses slot 1, fewer use each later slot), then slot 2, and so on."""
    counts = counts or {}
    ranked = sorted(chunks, key=lambda c: -counts.get(c.chunk_id, 0))  # stable: corpus order among ties
    return [(n, chunk, render(chunk, n)) for n in range(1, slots + 1) for chunk in ranked]


def auto_budget(folder: Path, texts: Iterable[str], kv_type: str) -> tuple[int, str]:
    """``DISK_SHARE`` of the free disk where the caches live (plus what they already take): all of
    ``texts``' caches whenever they fit there, whatever their text's characters per token. The
    message gives the corpus's estimated need, and a way to halve it when it does not fit."""
    need = int(sum(len(t) for t in texts) / CHARS_PER_TOKEN * BYTES_PER_TOKEN.get(kv_type, 28_688))
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return need, "the corpus's estimated size (the free disk is unknown)"
    share = int(DISK_SHARE * (free + KVStore(folder).bytes_used()))
    source = f"{DISK_SHARE:.0%} of the free disk; the corpus needs ~{need >> 20} MB"
    if need > share and kv_type == "f16":
        source += " (CAREERQA_KV_TYPE=q8_0 takes about half)"
    return share, source


def sync_caches(
    store: KVStore,
    blocks: Iterable[tuple[int, Chunk, str]],
    prefix: str,
    system_prompt: str,
    budget_bytes: int,
    computer_factory: Callable[[], BlockComputer],
    progress: ProgressFn | None = None,
    turn: Turn | None = None,
    stop: Callable[[], bool] | None = None,
) -> KVReport:
    """Compute the caches that are missing, keep the rest, delete what no block needs any more.

    The model is loaded (``computer_factory``) only when something must be computed. Blocks are taken
    in order until ``budget_bytes`` is spent; later ones are left to live prefill (and evicted if
    cached). ``turn`` wraps each computation (the builder waits there for the model to be free);
    ``stop`` ends the run between two of them, deleting nothing but what no block needs.
    """
    t0 = time.perf_counter()
    todo = list(blocks)
    run = _CacheSync(store, prefix, system_prompt, budget_bytes, computer_factory, progress, turn)
    run.report.wanted = len(todo)
    run.report.slots = max((n for n, _c, _b in todo), default=0)
    if not store.folder.exists():
        if not todo:
            return run.report
        run.computer()  # before anything is written: a backend without KV writes nothing
    with store.builder() as mine:
        if not mine:
            run.report.skipped = (
                "another careerqa process is computing these caches (careerqa doctor shows them)"
            )
            return run.finish(t0)
        keys = [block_key(prefix, text) for _n, _c, text in todo]
        with store.lock():
            store.remove_temporary()
            present = store.keys()
            for key in set(present) - set(keys):  # deleted or changed passages
                store.remove(key)
                run.report.removed += 1
        # A file cut short or overwritten is computed again (a changed byte inside the data is caught by
        # its CRC when it is read, and that passage is then read live).
        missing = [key not in present or not store.intact(key) for key in keys]
        if progress:
            progress("kv_total", sum(missing))
        for block, key, is_missing in zip(todo, keys, missing, strict=True):
            if stop is not None and stop():
                run.report.interrupted = True
                break
            run.take(block, key, None if is_missing else present[key])
        if not run.report.interrupted:
            with store.lock():
                for key in set(keys) - run.keep:  # evicted past the budget
                    if key in present:
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
        progress: ProgressFn | None,
        turn: Turn | None,
    ) -> None:
        self.store, self.prefix, self.system_prompt = store, prefix, system_prompt
        self.budget_bytes, self.progress, self.turn = budget_bytes, progress, turn
        self._factory = computer_factory
        self._computer: BlockComputer | None = None
        self.report = KVReport(folder=str(store.folder), budget_bytes=budget_bytes)
        self.keep: set[str] = set()
        self.spent = self.slot1_bytes = self.slot1_count = 0

    def computer(self) -> BlockComputer:
        if self._computer is None:
            self._computer = self._factory()
        return self._computer

    def take(self, block: tuple[int, Chunk, str], key: str, cached_size: int | None) -> None:
        """Keep the cache of ``block`` (``cached_size`` bytes on disk) or compute it (None), within
        the budget."""
        slot = block[0]
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
        started = time.perf_counter()
        try:
            with self.turn() if self.turn is not None else contextlib.nullcontext():
                started = time.perf_counter()
                tokens, blob = computer.compute(self.system_prompt, text)
        except Exception as exc:  # one bad passage must not stop the others
            self.report.failed += 1
            self.report.warnings.append(f"{chunk.source} › {chunk.section} (slot {slot}): {exc}")
            return None
        finally:
            self.report.compute_seconds += time.perf_counter() - started
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
        report.cached_chunks = self.slot1_count
        if report.computed:
            report.seconds_per_cache = round(report.compute_seconds / report.computed, 3)
        report.compute_seconds = round(report.compute_seconds, 3)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report


class NoKV(Exception):
    """The configured generator has no KV cache to precompute (a remote or fake backend)."""


def index_chunks(store: Store) -> list[Chunk]:
    """The index's chunks in corpus order (files by path, chunks in document order)."""
    ordered: list[Chunk] = []
    files = store.manifest.files if store.manifest is not None else {}
    for entry in files.values():
        ordered.extend(store.chunks[cid] for cid in entry.chunk_ids if cid in store.chunks)
    return ordered


def passage_computer(generator: Generator) -> BlockComputer:
    """What computes caches for ``generator``; ``NoKV`` when it has no KV cache (remote, fake)."""
    make = getattr(generator, "passage_computer", None)
    computer = make() if make is not None else None
    if computer is None:
        raise NoKV(f"the generator {generator.name!r} has no KV cache to precompute")
    return computer  # type: ignore[no-any-return]


def settings_prefix(settings: Settings) -> str:
    """What every cache key of these settings shares: the model, the system prompt, the KV type."""
    from careerqa.generate.prompts import SYSTEM_PROMPT

    return prefix_key(model_id(settings.generator), SYSTEM_PROMPT, settings.kv_type)


def sync_for_index(
    settings: Settings,
    store: Store,
    generator: Callable[[], Generator],
    progress: ProgressFn | None = None,
    turn: Turn | None = None,
    stop: Callable[[], bool] | None = None,
) -> KVReport:
    """Bring the passage caches of ``store`` (the committed index version) in line with it; see
    ``sync_caches``.

    ``generator`` is called only when a cache must be computed; a generator without a KV cache
    (remote, fake) leaves the caches alone and says so in the report.
    """
    from careerqa.generate.prompts import SYSTEM_PROMPT, passage_block

    folder = cache_folder(settings)
    layout, kv_type = settings.kv_layout, settings.kv_type
    if settings.kv_cache == "off":
        return KVReport(str(folder), enabled=False, skipped="kv_cache is off", layout=layout, kv_type=kv_type)
    chunks = index_chunks(store)
    slots = settings.kv_slots if settings.kv_layout == "slot" else 1
    counts = RetrievalCounts(folder).read()
    blocks = wanted_blocks(chunks, slots, lambda c, n: passage_block(c, n) + "\n\n", counts)
    prefix = settings_prefix(settings)
    if settings.kv_budget_mb > 0:
        budget, source = settings.kv_budget_mb << 20, "kv_budget_mb"
    else:
        budget, source = auto_budget(folder, (text for _n, _c, text in blocks), settings.kv_type)
    try:
        report = sync_caches(
            KVStore(folder), blocks, prefix, SYSTEM_PROMPT, budget,
            lambda: passage_computer(generator()), progress, turn, stop,
        )  # fmt: skip
    except NoKV as exc:
        return KVReport(str(folder), False, str(exc), layout=layout, kv_type=kv_type, chunks=len(chunks))
    report.layout, report.kv_type, report.chunks, report.budget = (
        settings.kv_layout,
        settings.kv_type,
        len(chunks),
        source,
    )
    if not report.skipped and not report.interrupted:
        with contextlib.suppress(OSError):  # forget counts of passages the index no longer has
            RetrievalCounts(folder).flush(keep=(c.chunk_id for c in chunks))
    return report


def cached_share(settings: Settings, store: Store) -> dict[str, Any]:
    """How many of the index's passages have a whole cache now, read from the folder without the model
    (``careerqa doctor``, ``/health`` before the builder has run): cheap header reads."""
    from careerqa.generate.prompts import passage_block

    folder = cache_folder(settings)
    chunks = index_chunks(store)
    prefix = settings_prefix(settings)
    kv = KVStore(folder)
    present = kv.keys()
    cached = [
        c
        for c in chunks
        if (k := block_key(prefix, passage_block(c, 1) + "\n\n")) in present and kv.intact(k)
    ]
    return {
        "folder": str(folder),
        "chunks": len(chunks),
        "cached_chunks": len(cached),
        "bytes": sum(present.values()),
        "kv_type": settings.kv_type,
        "layout": settings.kv_layout,
    }
