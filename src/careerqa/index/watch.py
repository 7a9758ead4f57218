"""Keep the index in step with the corpus folder while it changes (``index --watch``, ``serve --watch``).

``watch_corpus`` waits for changes with watchfiles (inotify on Linux), lets a burst settle (no new change
for ``quiet_ms``, or ``max_wait_ms`` at most), then runs one incremental sync. Files that are not corpus
documents never wake it: hidden files (editors' swap and lock files, ``.x.md.swp``, ``.#x.md``), backups
(``x.md~``) and unsupported types. A file still being written when the sync reads it is either skipped
(a truncated PDF does not parse) or read as it was; either way the write's last change wakes the watcher
again, and a sync during which a document changed is followed by another one, so the index ends with the
file as it was finally written. A rename is a removal and an addition.

Not handled here: network file systems that send no change events (watchfiles' polling would be needed),
printing (the caller gets each ``SyncReport`` or ``CareerQAError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from careerqa.errors import CareerQAError, CorpusEmpty
from careerqa.index.sync import SyncReport
from careerqa.ingest.corpus import KINDS, file_hashes

QUIET_MS = 400  # a burst of changes is over when nothing changed for this long
MAX_WAIT_MS = 5_000  # ...or when it has gone on this long
MAX_RESYNCS = 5  # syncs in a row while documents keep changing under them

SyncFn = Callable[[], SyncReport]
OnSync = Callable[["SyncReport | CareerQAError"], None]


def is_document_change(path: str, corpus_dir: Path) -> bool:
    """Whether a changed path can matter to the index: a supported document, or a folder (added, removed
    or renamed, which no suffix tells apart from a file without one) outside hidden folders."""
    try:
        parts = Path(path).relative_to(corpus_dir).parts
    except ValueError:
        return False
    if not parts or any(p.startswith(".") for p in parts):
        return False
    suffix = Path(parts[-1]).suffix.lower()
    return suffix in KINDS or (suffix == "" and not parts[-1].isdigit())  # vim writes a probe file "4913"


def sync_until_settled(corpus_dir: Path, sync: SyncFn, on_sync: OnSync) -> None:
    """Sync; sync again while the documents changed during the sync (a file still being written)."""
    for _ in range(MAX_RESYNCS):
        try:
            before = file_hashes(corpus_dir)
        except CareerQAError:
            before = {}
        try:
            on_sync(sync())
        except CareerQAError as exc:  # an empty corpus, a damaged index: say so, keep watching
            on_sync(exc)
        try:
            after = file_hashes(corpus_dir)
        except CareerQAError:
            after = {}
        if after == before:
            return


def watch_corpus(
    corpus_dir: Path,
    sync: SyncFn,
    on_sync: OnSync,
    stop: threading.Event | None = None,
    quiet_ms: int = QUIET_MS,
    max_wait_ms: int = MAX_WAIT_MS,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Sync once, then after every settled burst of changes, until ``stop`` is set (or Ctrl-C)."""
    from watchfiles import watch

    if not corpus_dir.is_dir():
        raise CorpusEmpty(f"corpus folder {corpus_dir} does not exist; create it before watching it")
    corpus_dir = corpus_dir.resolve()
    sync_until_settled(corpus_dir, sync, on_sync)
    if on_ready is not None:
        on_ready()
    for _changes in watch(
        corpus_dir,
        watch_filter=lambda _change, path: is_document_change(path, corpus_dir),
        debounce=max_wait_ms,
        step=quiet_ms,
        stop_event=stop,
        rust_timeout=1_000,  # how often a stop is noticed
        raise_interrupt=False,
    ):
        sync_until_settled(corpus_dir, sync, on_sync)


def sync_line(report: SyncReport, now: float | None = None) -> str:
    """One line for a sync that changed the index: what changed, and how long it took."""
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    changes = [f"+{n}" for n in report.files_added] + [f"~{n}" for n in report.files_changed]
    changes.extend(f"-{n}" for n in report.files_removed)
    shown = " ".join(changes[:6]) + (f" and {len(changes) - 6} more" if len(changes) > 6 else "")
    seconds = report.seconds.get("total", 0.0)
    return (
        f"{stamp} synced {shown or 'the index'}: {report.chunks_added} chunks added, "
        f"{report.chunks_removed} removed, {report.chunk_count} in the index ({seconds:.1f} s)"
    )
