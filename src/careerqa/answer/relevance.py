"""Is an answer about the question? Support (``answer/grounding.py``) is not enough: a sentence copied from a
neighbouring passage is perfectly supported and answers nothing.

A sentence's relevance is the cosine between it and the question (markers removed, the embedder the
index uses), plus ``FOCUS_BONUS`` when it names one of the question's rare focus terms (``answer/focus.py``),
so a short, exact answer ("Pandas [1]") is not judged by its few words alone; a sentence copied word
for word from a line of its passage is judged as that line too (``in_context``): "TorchScript, ONNX"
means what "PyTorch — Production tools: TorchScript, ONNX" says. The answer is on target
when its best sentence reaches ``Settings.min_answer_relevance``; a sentence is kept when it reaches
``Settings.min_sentence_relevance``. Both are calibrated on the dev split (``bench/replay_answers.py``
records; docs/design.md, "Answer focus, form and typo-tolerant retrieval").

``echoes`` finds a sentence that only repeats the question (a bare yes or no): an answer made of
nothing else names no evidence and is re-tried like an unsupported one (kept if the retry does no
better). ``closest_sentence`` picks, for a retry or a quote, the retrieved sentence most
similar to the question. Not handled here: whether the sentence is true to its passage
(verification) or complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from careerqa.answer.focus import Focus
from careerqa.answer.form import plain_words
from careerqa.embed.embedding import Embedder
from careerqa.index.store import Store
from careerqa.text.citations import MARKER
from careerqa.text.sentences import passage_sentences
from careerqa.text.tables import linearize_tables
from careerqa.text.tokens import stem, tokenize
from careerqa.types import Hit

FOCUS_BONUS = 0.1


def sentence_relevance(
    embedder: Embedder, question: str, sentences: Sequence[str], focus: Focus | None = None
) -> list[float]:
    """The relevance of each sentence to ``question`` (see the module docstring)."""
    if not sentences:
        return []
    plain = [" ".join(MARKER.sub("", s).split()) or s for s in sentences]
    vectors = embedder.embed_batch([question, *plain])
    cosines = vectors[1:] @ vectors[0]
    rare = {stem(t) for t in focus.terms} if focus is not None else set()
    scores = []
    for text, cosine in zip(plain, cosines, strict=True):
        bonus = FOCUS_BONUS if rare & set(tokenize(text)) else 0.0
        scores.append(round(float(cosine) + bonus, 4))
    return scores


ANSWER_WORDS = frozenset({"yes", "no", "not"})  # words that answer a yes/no question and say nothing else


def echoes(sentence: str, *questions: str) -> bool:
    """Does ``sentence`` say nothing but the question's own words, plus perhaps yes or no ("No, you do
    not need maths for AI [1].")? Such a sentence is "supported" by any passage about the topic,
    whichever way it answers: it names no evidence, so it cannot stand as an answer alone."""
    words = set(tokenize(MARKER.sub("", sentence))) - ANSWER_WORDS
    asked = {w for q in questions for w in tokenize(q)}
    return words <= asked


def in_context(sentence: str, passage: str) -> str | None:
    """The passage sentence (a line of a table or list, or a prose sentence; tables as the prompt shows
    them) that holds ``sentence`` (markers aside) word for word and says more, if any."""
    words = plain_words(MARKER.sub("", sentence))
    if not words:
        return None
    for line in linearize_tables(passage).splitlines():
        for unit in passage_sentences(line):
            plain = plain_words(unit)
            if f" {words} " in f" {plain} " and plain != words:
                return unit.strip()
    return None


def closest_sentence(
    question_vector: np.ndarray, hits: Sequence[Hit], store: Store, keep: Callable[[str], bool] | None = None
) -> tuple[float, Hit, int] | None:
    """The retrieved sentence most similar to the question, among those ``keep`` accepts (all without
    it): its cosine, its hit, and its index in ``hit.chunk.sentences()`` (the first of equals, in
    ranking order). The hit of the best of all is the passage a retry answers from."""
    best: tuple[float, Hit, int] | None = None
    for hit in hits:
        sentences = hit.chunk.sentences()
        if not sentences:
            continue
        for i, score in enumerate(store.sentence_vectors(hit.chunk) @ question_vector):
            if (keep is None or keep(sentences[i])) and (best is None or float(score) > best[0]):
                best = (float(score), hit, i)
    return best
