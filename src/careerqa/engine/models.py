"""The engine's models, each loaded when first needed: the embedder and the language model.

``LazyModels`` holds what a test passes in (fakes) or builds the configured models on first use, once
per process even when several threads ask at the same time. ``DeferredGenerator`` stands for the
language model in an ``Answerer``, so an answer from the FAQ fast path or the cache never loads it.
Not handled here: the index (``engine/view.py``) and what is asked of the models (``engine/core.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from careerqa.config import Settings
from careerqa.embed.embedding import Embedder
from careerqa.embed.loader import load_embedder
from careerqa.generate.base import Generator
from careerqa.generate.llama import load_generator
from careerqa.index.sync import ProgressFn

# Dimensions of the packaged embedders, so an index can be checked without loading the model.
EMBEDDER_DIMS = {"all-MiniLM-L6-v2": 384}


class LazyModels:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        progress: ProgressFn | None = None,
        show_model_progress: bool = True,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self.progress = progress
        self.show_model_progress = show_model_progress
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The embedder, loaded on first use (a model load; never the index)."""
        if self._embedder is None:
            with self._lock:
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
        """The language model, loaded on first use (a model load; never the index)."""
        if self._generator is None:
            with self._lock:
                if self._generator is None:
                    self._generator = load_generator(self.settings, progress=self.show_model_progress)
        return self._generator

    @property
    def loaded_generator(self) -> Generator | None:
        """The language model if it is loaded or was passed in (a test's fake), without loading it."""
        return self._generator

    @property
    def embedder_name(self) -> str:
        return self._embedder.name if self._embedder is not None else self.settings.embedder

    @property
    def dim(self) -> int:
        """The embedder's dimensions: known without loading it for the packaged embedders."""
        if self._embedder is not None:
            return self._embedder.dim
        return EMBEDDER_DIMS.get(self.settings.embedder) or self.embedder.dim

    def deferred_generator(self) -> Generator:
        """A stand-in for ``generator`` that loads it on its first use."""
        return DeferredGenerator(lambda: self.generator)


class DeferredGenerator(Generator):
    """Stands for a generator and loads it on first use."""

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
