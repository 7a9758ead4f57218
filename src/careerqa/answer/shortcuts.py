"""Ways to answer faster than generating over whole passages.

- ``FaqMatcher``: a question that closely matches an FAQ question in the corpus is answered from that
  FAQ entry, cited, without the language model. The threshold (``Settings.faq_min_score``) is set from
  the eval set so that it never fires on a question the entry does not answer (see
  ``bench/calibrate_faq.py``); 1.0 or more turns it off.
- ``select_sentences``: the sentences of the retrieved passages that bear on the question, under a token
  budget, so the model reads a shorter prompt; citations still point at the whole passages.
- ``AnswerCache``: answers kept per index version (a new version starts an empty cache), keyed by the
  normalised question.

Not handled here: deciding when to use them (``answer/answerer.py``, ``engine/core.py``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from careerqa.embed.embedding import Embedder
from careerqa.index.store import Store
from careerqa.text.citations import cite
from careerqa.text.sentences import split_sentences
from careerqa.types import Answer, Chunk, Hit

FAQ_ANSWER_WORDS = 90  # an FAQ answer is cut at the sentence boundary before this many words


class FaqMatcher:
    """The FAQ entries of one index, matched by the cosine between the question and their questions."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self._lock = threading.Lock()
        self._entries: list[Chunk] | None = None
        self._vectors: np.ndarray | None = None

    def _load(self) -> tuple[list[Chunk], np.ndarray]:
        with self._lock:
            if self._entries is None or self._vectors is None:
                entries = [c for c in self.store.chunks.values() if c.kind == "faq" and c.section.strip()]
                entries.sort(key=lambda c: c.chunk_id)
                vectors = (
                    self.embedder.embed([c.section for c in entries])
                    if entries
                    else np.zeros((0, self.store.dim), dtype=np.float32)
                )
                self._entries, self._vectors = entries, vectors
            return self._entries, self._vectors

    def best(self, question_vector: np.ndarray) -> tuple[Chunk, float] | None:
        entries, vectors = self._load()
        if not entries:
            return None
        sims = vectors @ question_vector
        i = int(np.argmax(sims))
        return entries[i], float(sims[i])


def faq_answer(chunk: Chunk, words: int = FAQ_ANSWER_WORDS, sentences: int | None = None) -> str:
    """The entry's answer (its question line dropped), whole sentences up to ``words`` and at most
    ``sentences`` of them, each cited [1]."""
    first, _, rest = chunk.text.strip().partition("\n")
    body = rest if first.strip("#*> \t") == chunk.section.strip() else chunk.text
    kept: list[str] = []
    for sentence in split_sentences(body.strip()):
        if kept and sum(len(s.split()) for s in kept) + len(sentence.split()) > words:
            break
        if sentences is not None and len(kept) >= sentences:
            break
        kept.append(sentence)
    return " ".join(cite(s) for s in kept)


def select_sentences(
    question_vector: np.ndarray,
    hits: Sequence[Hit],
    store: Store,
    count_tokens: Callable[[str], int],
    budget: int,
    per_passage: int = 3,
) -> dict[str, str]:
    """For each hit's chunk id, the text to show: its sentences closest to the question (at most
    ``per_passage``, in their original order), chosen best-first across passages until ``budget`` tokens
    are spent. Passages with no chosen sentence are left out of the result."""
    candidates: list[tuple[float, int, int, str]] = []  # (-cosine, hit index, sentence index, text)
    for h, hit in enumerate(hits):
        sentences = hit.chunk.sentences()  # as the index stored them with the chunk
        vectors = store.sentence_vectors(hit.chunk)
        for s, (sentence, sim) in enumerate(zip(sentences, vectors @ question_vector, strict=True)):
            candidates.append((-float(sim), h, s, sentence))
    candidates.sort()
    chosen: dict[int, list[tuple[int, str]]] = {}
    spent = 0
    for _neg, h, s, sentence in candidates:
        if len(chosen.get(h, [])) >= per_passage:
            continue
        cost = count_tokens(sentence)
        if spent + cost > budget and spent:
            continue
        chosen.setdefault(h, []).append((s, sentence))
        spent += cost
    return {hits[h].chunk.chunk_id: " … ".join(t for _s, t in sorted(picked)) for h, picked in chosen.items()}


def normalise_question(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


class AnswerCache:
    """A small LRU of answers for one index version."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> Answer | None:
        with self._lock:
            answer = self._items.get(key)
            if answer is not None:
                self._items.move_to_end(key)
            return answer

    def put(self, key: tuple[str, int], answer: Answer) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = answer
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
