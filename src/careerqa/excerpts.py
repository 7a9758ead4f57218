"""Shorten retrieved passages to the sentences that matter for the question, before prompting.

Prompt processing dominates answer latency on a CPU (llama.cpp reads the prompt at a few dozen
tokens a second here), so each long passage is cut to its title line and the sentences closest to the
question, in their original order, with "…" marking what was left out. Citations still point to
the whole passage, and verification checks answers against the whole passage.
Not handled here: choosing passages (retrieval) or fitting them to the token budget (answering).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .embedding import Embedder
from .retrieval import tokenize
from .types import Hit

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“‘(])|\n+")


def _units(text: str) -> list[str]:
    return [u.strip() for u in _SPLIT.split(text) if u.strip()]


def excerpts(
    question: str, hits: Sequence[Hit], embedder: Embedder, keep: int = 4, min_words: int = 90
) -> dict[str, str]:
    """chunk id → the text to show the model. Passages under ``min_words`` words are shown whole."""
    shown = {h.chunk.chunk_id: h.chunk.text for h in hits}
    long_hits = [h for h in hits if len(h.chunk.text.split()) >= min_words]
    if keep < 1 or not long_hits:
        return shown
    units = {h.chunk.chunk_id: _units(h.chunk.text) for h in long_hits}
    flat = [u for h in long_hits for u in units[h.chunk.chunk_id]]
    vectors = embedder.embed_batch([question, *flat])
    q_vec, u_vecs = vectors[0], vectors[1:]
    q_words = set(tokenize(question))
    offset = 0
    for hit in long_hits:
        parts = units[hit.chunk.chunk_id]
        sims = u_vecs[offset : offset + len(parts)] @ q_vec
        offset += len(parts)
        lexical = np.array([len(q_words & set(tokenize(p))) / (len(q_words) or 1) for p in parts])
        score = sims + 0.5 * lexical
        chosen = {0} | set(np.argsort(-score)[:keep].tolist())  # the first line names the section
        lines: list[str] = []
        for i, part in enumerate(parts):
            if i in chosen:
                lines.append(part)
            elif lines and lines[-1] != "…":
                lines.append("…")
        shown[hit.chunk.chunk_id] = " ".join(lines)
    return shown
