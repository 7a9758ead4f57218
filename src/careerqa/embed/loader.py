"""Choosing the embedder: ``load_embedder`` builds the model ``Settings.embedder`` names on the backend
``Settings.embedder_backend`` names.

Not handled here: the backends themselves (``embed/embedding.py`` for torch, ``embed/onnx.py`` for ONNX
Runtime) and when the model is loaded (``engine/models.py`` loads it on first use).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from careerqa.embed.embedding import Embedder, SentenceTransformerEmbedder
from careerqa.embed.onnx import OnnxEmbedder
from careerqa.errors import BadInput, ModelUnavailable

BACKENDS = ("onnx", "torch")


def load_embedder(
    name: str,
    backend: str = "torch",
    cache_dir: Path | None = None,
    on_event: Callable[[str, int], None] | None = None,
) -> Embedder:
    """The embedder ``name`` on ``backend``: "torch" (sentence-transformers) or "onnx" (ONNX Runtime,
    the model exported once into ``cache_dir``; ``on_event("embedder_export", 0)`` announces that)."""
    if name != SentenceTransformerEmbedder.name:
        raise ModelUnavailable(
            f"unknown embedder {name!r}; the only one shipped is {SentenceTransformerEmbedder.name!r}"
        )
    if backend == "torch":
        return SentenceTransformerEmbedder()
    if backend == "onnx":
        if cache_dir is None:
            raise BadInput("the onnx embedder backend needs a cache folder for its model file")
        return OnnxEmbedder.load(cache_dir, on_event=on_event)
    raise BadInput(f"unknown embedder backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
