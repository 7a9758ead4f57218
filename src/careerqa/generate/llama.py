"""The local generator: a packaged GGUF model run in this process by llama.cpp, and choosing the
generator the settings name.

``load_generator`` builds the configured generator: ``RemoteGenerator`` when ``generator_url`` is set,
else ``LlamaGenerator`` over the model file ``ensure_model`` joins. ``check_generator`` makes sure the
local model can run here (``generate/llama_check.py``) before a process maps it.

Not handled here: prompts (``answer/answerer.py`` builds them and trims passages to a token budget with
``count_tokens``), the model files (``generate/model_files.py``) and the passage KV caches
(``generate/kv_path.py``, ``generate/kv_stitch.py``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from careerqa.config import Settings
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.generate.base import SEED, Generator
from careerqa.generate.kv_path import StitchedPath
from careerqa.generate.kv_stitch import StitchFailed
from careerqa.generate.kv_sync import BlockComputer
from careerqa.generate.model_files import ensure_model


class LlamaGenerator(Generator):
    """A GGUF model run by llama.cpp on the CPU, decoding greedily.

    One instance holds one llama.cpp context, which is not thread-safe: calls are serialised by a lock.
    Consecutive calls reuse the KV cache for their common token prefix (llama-cpp-python's
    ``Llama.generate`` compares the new prompt with the previous input ids), so a constant system
    prompt is evaluated once, not on every question.
    """

    _kv: StitchedPath | None = None  # passages from their precomputed caches (generate/kv_stitch.py)
    kv_mode = "off"  # "stitch", "stitch-last-live" or "off" (Settings.kv_cache); a bench may switch it

    def __init__(self, model_path: Path, settings: Settings, name: str | None = None) -> None:
        from careerqa.generate.llama_check import ensure_llama_runs

        threads = model_threads(settings)
        # Before this process maps the model: a library built for CPU features this machine forbids
        # would otherwise kill it (SIGILL) on the first token. Remembered after the first success.
        ensure_llama_runs(Path(model_path), settings.cache_dir, threads=threads)
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelUnavailable(
                "llama-cpp-python is not installed; run: make llama  (or: scripts/install_llama.sh .venv)"
            ) from exc
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=settings.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=SEED,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(
                f"could not load the model {model_path}: {exc}; delete the file and run again to rebuild it"
            ) from exc
        self.name = name or Path(model_path).stem
        self.n_ctx = settings.n_ctx
        self._lock = threading.Lock()
        self._owner: int | None = None  # thread id of the stream holding the lock
        self._state = threading.Lock()  # guards the two counts below
        self._streams = 0  # streams running or waiting for the lock (the cache builder waits for 0)
        self._last_end = 0.0  # time.monotonic() when the last one ended
        self._kv = StitchedPath(self._llama, Path(model_path), settings, self.name)
        self.kv_mode = settings.kv_cache

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        if self._owner == threading.get_ident():
            # Waiting would deadlock: this thread holds the context through an unfinished stream.
            raise RuntimeError(
                "a previous stream() from this thread is still open; finish or close() it first"
            )
        with self._state:
            self._streams += 1
        try:
            yield from self._stream_locked(messages, max_tokens, stop)
        finally:
            with self._state:
                self._streams -= 1
                self._last_end = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last stream ended; 0 while one runs or waits (``engine/caches.py``)."""
        return 0.0 if self._streams else time.monotonic() - self._last_end

    def _stream_locked(
        self, messages: list[dict[str, str]], max_tokens: int, stop: list[str] | None
    ) -> Iterator[str]:
        with self._lock:
            self._owner = threading.get_ident()
            try:
                kv = self._kv
                stitched = kv.stream(messages, self.kv_mode, max_tokens=max_tokens, stop=stop) if kv else None
                started = False
                try:
                    for piece in stitched or ():  # passages read from their precomputed caches
                        started = True
                        yield piece
                    if kv is not None and stitched is not None:
                        self.last_usage = kv.usage()
                        return
                except StitchFailed:
                    if started:
                        raise
                    # nothing shown yet: read the prompt normally
                produced: list[str] = []
                # With stream=True the result is an iterator of OpenAI-style chunks.
                chunks: Iterator[Any] = self._llama.create_chat_completion(  # type: ignore[assignment]
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    temperature=0.0,
                    top_k=1,
                    top_p=1.0,
                    min_p=0.0,
                    repeat_penalty=1.0,
                    max_tokens=max_tokens,
                    stop=stop,
                    seed=SEED,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        produced.append(piece)
                        yield piece
                if kv is not None:
                    self.last_usage = kv.count_usage(messages, "".join(produced), self.count_tokens)
            except ValueError as exc:
                if "exceed context window" in str(exc):
                    raise BadInput(f"the prompt is too long for the model's context: {exc}") from exc
                raise
            finally:
                self._owner = None

    def prefill(self, messages: list[dict[str, str]]) -> None:
        # One generated token makes llama.cpp evaluate the whole prompt, which then stays in its KV
        # cache: later prompts that start with the same system message skip re-reading it.
        self.generate(messages, max_tokens=1)
        system = messages[0].get("role") == "system" if messages else False
        if self._kv is not None and self.kv_mode != "off" and system:
            with self._lock:
                self._kv.prefill(messages[0]["content"])

    def passage_kv(self) -> StitchedPath | None:
        """The stitched path (its ``Stitcher``, the files it reads)."""
        return self._kv

    def passage_computer(self) -> BlockComputer | None:
        """What computes passage caches (``kv_sync.sync_caches``), one at a time under this model's
        lock, so never in the middle of an answer; None when the stitched path cannot run."""
        stitcher = self._kv.stitcher() if self._kv is not None and self.kv_mode != "off" else None
        return None if stitcher is None else _LockedComputer(stitcher, self._lock)

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        """Free the model now rather than when the object is collected."""
        if self._kv is not None:
            self._kv.close()
        self._llama.close()


class _LockedComputer(BlockComputer):
    """A ``Stitcher``'s ``compute`` under the generator's lock."""

    def __init__(self, stitcher: Any, lock: threading.Lock) -> None:
        self._stitcher, self._lock = stitcher, lock

    def compute(self, system_prompt: str, block: str) -> tuple[int, bytes]:
        with self._lock:
            return self._stitcher.compute(system_prompt, block)  # type: ignore[no-any-return]


def model_threads(settings: Settings) -> int:
    """The threads llama.cpp runs on: ``settings.threads``, or every core when it is 0."""
    return settings.threads if settings.threads > 0 else (os.cpu_count() or 1)


def check_generator(settings: Settings, progress: bool = True) -> None:
    """Make sure the configured local model can run here, before a process loads it into itself.

    Joins the model file if needed, then runs (or recalls) ``llama_check``'s child-process decode;
    raises ``ModelUnavailable`` with the fix when llama.cpp cannot run on this CPU. A remote generator
    (``generator_url``) needs neither.
    """
    from careerqa.generate.llama_check import ensure_llama_runs

    if settings.generator_url:  # no llama.cpp runs in this process
        return
    path = ensure_model(settings.generator, settings.cache_dir, progress=progress)
    threads = model_threads(settings)
    ensure_llama_runs(path, settings.cache_dir, threads=threads)


def load_generator(settings: Settings, progress: bool = True) -> Generator:
    """Build the generator ``settings.generator`` names, joining its model file first if needed."""
    if settings.generator_url:  # an OpenAI-compatible server instead of the local model
        from careerqa.generate.remote import RemoteGenerator

        return RemoteGenerator.from_settings(settings)
    path = ensure_model(settings.generator, settings.cache_dir, progress=progress)
    return LlamaGenerator(path, settings, name=settings.generator)
