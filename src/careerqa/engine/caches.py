"""The engine's passage KV caches: kept in step with its index wherever the index is built.

``PassageCaches`` is the engine's handle on them:
- ``start()`` runs a builder thread (``careerqa serve``, ``index --watch``, ``chat``): after the index
  is loaded and after every sync (``Engine.sync`` wakes it; another process's commit is noticed within
  ``POLL_S``) it computes the missing caches one passage at a time, each only when the model has been
  idle for ``QUIET_S`` (no answer running or waiting), so an answer waits at most for one passage's
  compute (~2 s); the most-retrieved passages first. ``status()`` says how far it is (``/health``).
- ``note(answer)`` counts the passages an answer retrieved (``RetrievalCounts``: the order under a
  budget).
- ``build_detached()`` (a one-shot CLI ``ask``): when caches are missing and no builder is running,
  starts ``careerqa index`` as a background process at nice 10 to compute them, so the next answers
  are fast without anyone waiting now.

Nothing here computes anything when ``kv_cache`` is off or the generator has no KV cache (remote,
fake). Not handled here: which caches, the budget and the files (``generate/kv_sync.py``,
``generate/kv_cache.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from careerqa.config import ENV_PREFIX, Settings
from careerqa.generate.kv_cache import KVStore, RetrievalCounts, cache_folder
from careerqa.generate.kv_sync import KVReport, cached_share, settings_prefix, sync_for_index

if TYPE_CHECKING:
    from careerqa.engine.view import IndexView
    from careerqa.generate.base import Generator
    from careerqa.types import Answer

logger = logging.getLogger("careerqa.engine.caches")

QUIET_S = 0.5  # the model idle this long (covers the gap between an answer's draft and its retry)
POLL_S = 30.0  # how often the builder looks for a version another process committed
COUNT_FLUSH = 10  # answers counted in memory before the counts are added to the file
SYNCED = "synced.json"  # what the last whole run brought the caches in step with (``synced_key``)


class PassageCaches:
    """``view``: the engine's current index view; ``generator``: its language model (loaded on first
    use); ``loaded``: the model if loaded (or passed in), without loading it."""

    def __init__(
        self,
        settings: Settings,
        view: Callable[[], IndexView],
        generator: Callable[[], Generator],
        loaded: Callable[[], Generator | None],
    ) -> None:
        self._view, self._generator, self._loaded = view, generator, loaded
        self.settings = settings
        self.folder = cache_folder(self.settings)
        self.counts = RetrievalCounts(self.folder)
        self._noted = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = "not started"
        self._progress = {"to_compute": 0, "computed": 0}
        self.last: KVReport | None = None  # the last run's report
        self._synced_version: str | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.kv_cache != "off" and not self.settings.generator_url

    # --- the background builder ----------------------------------------------------------------

    def start(self) -> None:
        """Run the builder thread (once); a no-op when caches are off."""
        if not self.enabled:
            self._state = "off"
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="careerqa-passage-caches", daemon=True)
            self._thread.start()
        self.wake()

    def wake(self) -> None:
        """The index changed: bring the caches in step (the run in progress restarts with it)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(POLL_S)
            if self._stop.is_set():
                break
            if not woken and not self._index_moved():
                continue
            self._wake.clear()
            try:
                report = self.sync()
            except Exception:  # the builder must never take the server down
                logger.exception("passage caches: the builder failed; answers read passages live")
                self._state = "failed"
                continue
            if not report.enabled:  # caches off, or a generator without a KV cache: nothing to do, ever
                self._state = "off"
                break
            if report.skipped and report.skipped.startswith("another"):
                self._wake.wait(POLL_S)  # its builder may stop before ours could start: look again
                self._wake.set()

    def _index_moved(self) -> bool:
        try:
            return self._view().version != self._synced_version
        except Exception:  # no index (yet): nothing to cache
            return False

    def sync(self, progress: Callable[[str, int], None] | None = None) -> KVReport:
        """One run over the current index version: the builder's, and ``careerqa index``'s (with its
        progress bar)."""
        self._wake.clear()  # this run brings the caches in step with the version read now; a later sync
        view = self._view()  # (a wake while it runs) interrupts it, and the builder starts over
        self._progress = {"to_compute": 0, "computed": 0}
        self._state = "starting"
        self.flush_counts()

        def on_progress(event: str, amount: int) -> None:
            self._on_progress(event, amount)
            if progress is not None:
                progress(event, amount)

        report = sync_for_index(
            self.settings,
            view.store,
            self._generator,
            progress=on_progress,
            turn=self._turn,
            stop=lambda: self._stop.is_set() or self._wake.is_set(),
        )
        self.last = report
        if report.skipped:
            self._state = "skipped"
        elif report.interrupted:
            self._state = "interrupted"
        else:
            self._state = "ready"
            self._synced_version = view.version
            write_synced(self.folder, synced_key(self.settings, view.version))
        logger.info("passage caches: %s", _summary(report))
        return report

    def _on_progress(self, event: str, amount: int) -> None:
        if event == "kv_total":
            self._progress["to_compute"] = amount
        elif event == "kv_computed":
            self._progress["computed"] += amount

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Wait until no answer has been generated for ``QUIET_S``, then compute one passage."""
        idle_for = getattr(self._generator(), "idle_for", None)
        self._state = "waiting for the model"
        while idle_for is not None and idle_for() < QUIET_S and not self._stop.is_set():
            time.sleep(0.05)
        self._state = "computing"
        yield

    def status(self) -> dict[str, Any]:
        """How far the caches are, for ``/health``: the builder's state and counts, or the folder's."""
        body: dict[str, Any] = {"state": self._state, "kv_type": self.settings.kv_type}
        if not self.enabled:
            return {**body, "state": "off"}
        if self._state in ("starting", "waiting for the model", "computing"):
            body.update(self._progress)
        if self.last is not None:
            last = self.last
            body.update(
                chunks=last.chunks,
                cached_chunks=last.cached_chunks,
                bytes=last.bytes_total,
                budget_bytes=last.budget_bytes,
                over_budget=last.over_budget,
                skipped=last.skipped,
            )
        return body

    def share(self) -> dict[str, Any]:
        """What the folder holds for the current index, read without the model (``careerqa doctor``)."""
        return cached_share(self.settings, self._view().store)

    # --- retrieval counts ----------------------------------------------------------------------

    def note(self, answer: Answer) -> None:
        """Count the passages a generated answer retrieved (the prompt's, at most ``kv_slots``)."""
        if not self.enabled or answer.route != "generated":
            return
        self.counts.bump(h.chunk.chunk_id for h in answer.retrieved[: self.settings.kv_slots])
        self._noted += 1
        if self._noted >= COUNT_FLUSH:
            self.flush_counts()

    def flush_counts(self) -> None:
        self._noted = 0
        with contextlib.suppress(OSError):
            self.counts.flush()

    # --- a detached build after a one-shot CLI answer ------------------------------------------------

    def build_detached(self) -> int | None:
        """Start ``careerqa index`` in the background when this index version's caches are not all
        computed and no builder runs; its pid, or None when nothing was started."""
        if not self.enabled or not self.settings.kv_background:
            return None
        loaded = self._loaded()
        if loaded is not None and getattr(loaded, "passage_computer", None) is None:
            return None  # a generator without a KV cache (a test's fake)
        try:
            version = self._view().version
        except Exception:
            return None
        if read_synced(self.folder) == synced_key(self.settings, version):
            return None
        store = KVStore(self.folder)
        with store.builder() as free:
            if not free:
                return None  # a builder is at work already
        log = self.folder / "build.log"
        env = {**os.environ, **settings_env(self.settings), "CAREERQA_KV_BACKGROUND": "0"}
        nice = shutil.which("nice")  # below the user's next commands (no preexec_fn: we have threads)
        command = [*([nice, "-n", "10"] if nice else []), sys.executable, "-m", "careerqa", "index", "--json"]
        with open(log, "ab") as err:
            child = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        return child.pid


def settings_env(settings: Settings) -> dict[str, str]:
    """``CAREERQA_*`` variables that rebuild ``settings`` in a child that inherits this environment
    (where a command-line option overrode it; secrets are left out: the child needs none)."""
    default = Settings.from_env()
    out: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.repr and value != getattr(default, f.name):
            out[ENV_PREFIX + f.name.upper()] = str(value)
    return out


def synced_key(settings: Settings, version: str) -> str:
    """What a whole run brings the caches in step with: the index version, and what every cache key
    shares (model, system prompt, KV type, layout), so another ``CAREERQA_KV_TYPE`` is not in step."""
    return f"{version}:{settings.kv_layout}:{settings_prefix(settings)}"


def write_synced(folder: Any, key: str) -> None:
    with contextlib.suppress(OSError):
        tmp = folder / f".{SYNCED}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"in_step_with": key}), encoding="utf-8")
        os.replace(tmp, folder / SYNCED)


def read_synced(folder: Any) -> str | None:
    try:
        data = json.loads((folder / SYNCED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("in_step_with") if isinstance(data, dict) else None


def _summary(report: KVReport) -> str:
    if report.skipped:
        return f"skipped ({report.skipped})"
    return (
        f"{report.cached_chunks} of {report.chunks} passages cached ({report.computed} computed, "
        f"{report.removed} removed, {report.over_budget} over the budget), {report.bytes_total >> 20} MB"
    )
