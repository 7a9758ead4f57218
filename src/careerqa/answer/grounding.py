"""Is each answer sentence supported by the passages it cites?

No NLI or cross-encoder model is shipped for this machine, so support is measured with two signals:
- lexical coverage: the share of the sentence's content words (stemmed, stopwords removed) that
  occur in the cited passage;
- semantic similarity: the best cosine between the sentence and any sentence of the cited passage,
  with the same embedder the index uses.
The score is their mean; a sentence is supported when the score of its best cited passage reaches
the threshold. Used by answering (to drop unsupported sentences) and by the eval (to report it),
the eval's own grounding metric is a separate, string-level check.
Not handled here: contradiction (a sentence that reuses a passage's words to say the opposite can
pass); numbers are compared as words only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from careerqa.answer.form import is_copy
from careerqa.embed.embedding import Embedder
from careerqa.text import sentences
from careerqa.text.citations import MARKER
from careerqa.text.tokens import tokenize


@dataclass(frozen=True)
class SentenceSupport:
    text: str  # the sentence with its markers
    cited: tuple[int, ...]  # marker numbers in the sentence
    best: int | None  # the passage that supports it best: a cited one if any supports it
    lexical: float
    semantic: float
    score: float
    supported: bool


def split_sentences(text: str) -> list[str]:
    """An answer's sentences, each with its citation markers. Line breaks end no sentence here: the
    answer is rebuilt by joining the sentences it keeps, and a list inside a sentence keeps its lines."""
    return sentences.split_sentences(text, lines=False)


def lexical_coverage(sentence: str, passage: str) -> float:
    words = set(tokenize(MARKER.sub("", sentence)))
    if not words:
        return 0.0
    return len(words & set(tokenize(passage))) / len(words)


class Verifier:
    def __init__(self, embedder: Embedder, threshold: float = 0.5, recite_margin: float = 1.0) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.recite_margin = recite_margin

    def check(
        self,
        answer: str,
        passages: dict[int, str],
        passage_vectors: dict[int, np.ndarray] | None = None,
    ) -> list[SentenceSupport]:
        """Score every sentence of ``answer`` against the passages it cites (numbers → text).

        ``passages`` holds every passage the model was shown, cited or not. A sentence whose cited
        passages do not support it, or that cites nothing, is scored against all of them: when one
        supports it, that passage becomes its citation (``best``); the model misnumbered it. So does a
        passage that supports it by ``recite_margin`` more than the cited one: a small model tends to
        cite the passage nearest the question, and a list copied from passage 1 and cited [3] is only
        "supported" by 3 because both talk about the same thing. A sentence that copies a run of one
        passage word for word (``form.is_copy``: six words or more) is cited to that passage: "AWS
        SageMaker, Azure Machine Learning, Google AI Platform [2]" comes from the list in passage 1,
        whatever passage 2, which names AWS, Azure and Google too, scores.
        ``passage_vectors`` may give the vectors of each passage's sentences (the index stores them
        with the chunk's ``sentence_spans``); the sentences of passages without them
        (``sentences.passage_sentences``) are embedded here.
        """
        answer_sentences = split_sentences(answer)
        if not answer_sentences:
            return []
        numbers = sorted(passages)
        sent_vecs, piece_vecs, owner = self._vectors(answer_sentences, passages, passage_vectors or {})
        results = []
        for sentence, vec in zip(answer_sentences, sent_vecs, strict=True):
            sims = piece_vecs @ vec
            scored: dict[int, tuple[float, float, float]] = {}
            for n in numbers:
                semantic = float(sims[owner == n].max()) if (owner == n).any() else 0.0
                lexical = lexical_coverage(sentence, passages[n])
                scored[n] = ((lexical + max(semantic, 0.0)) / 2, lexical, semantic)
            results.append(self._support(sentence, passages, scored))
        return results

    def _vectors(
        self, answer_sentences: list[str], passages: dict[int, str], known: dict[int, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The answer sentences' vectors, the passage sentences' vectors (``known`` ones as given, the
        rest embedded here in one batch with the answer's), and the passage number of each."""
        numbers = sorted(passages)
        to_embed = {n: sentences.passage_sentences(passages[n]) for n in numbers if n not in known}
        vectors = self.embedder.embed_batch(
            [MARKER.sub("", s).strip() for s in answer_sentences] + [s for n in to_embed for s in to_embed[n]]
        )
        sent_vecs, embedded = vectors[: len(answer_sentences)], iter(vectors[len(answer_sentences) :])
        piece_vecs = np.concatenate(
            [known[n] if n in known else np.stack([next(embedded) for _ in to_embed[n]]) for n in numbers]
            or [np.zeros((0, sent_vecs.shape[1]), dtype=np.float32)]
        )
        counts = {n: len(known[n]) if n in known else len(to_embed[n]) for n in numbers}
        owner = np.array([n for n in numbers for _ in range(counts[n])])
        return sent_vecs, piece_vecs, owner

    def _support(
        self, sentence: str, passages: dict[int, str], scored: dict[int, tuple[float, float, float]]
    ) -> SentenceSupport:
        """``sentence``'s support, given its (score, lexical, semantic) against each passage: the cited
        passage that supports it best, else the strongest one, else the one it copies (``check``)."""
        numbers = sorted(passages)
        cited = tuple(int(x) for m in MARKER.finditer(sentence) for x in re.findall(r"\d+", m.group(1)))
        in_cited = [n for n in cited if n in scored]
        best = max(in_cited, key=lambda n: scored[n][0]) if in_cited else None
        strongest = max(numbers, key=lambda n: scored[n][0]) if numbers else None
        if best is None or scored[best][0] < self.threshold:
            best = strongest
        elif strongest is not None and scored[strongest][0] >= scored[best][0] + self.recite_margin:
            best = strongest
        copied_from = [n for n in numbers if is_copy(sentence, passages[n])]
        if copied_from and best not in copied_from:  # words copied from a passage come from there
            source = max(copied_from, key=lambda n: scored[n][0])
            best = source if scored[source][0] >= self.threshold else best
        total, lexical, semantic = scored[best] if best is not None else (0.0, 0.0, 0.0)
        return SentenceSupport(
            text=sentence,
            cited=cited,
            best=best,
            lexical=round(lexical, 4),
            semantic=round(semantic, 4),
            score=round(total, 4),
            supported=best is not None and total >= self.threshold,
        )
