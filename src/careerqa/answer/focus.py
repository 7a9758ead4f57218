"""Does the question's focus appear in the passages? The check for questions the corpus does not answer.

A question's focus terms are its content words (stopwords, words under 3 letters and the words that
frame a question, ``QUESTION_FRAME``, dropped). Each is
weighted by its inverse document frequency over the corpus's passages, a word that no passage holds
weighing most: "salary" and "Germany" in "what salary does an AI engineer earn in Germany?" weigh more
than "AI" and "engineer", which half the corpus mentions. ``coverage`` is the IDF-weighted share of
the focus terms that the retrieved passages hold, in any inflection (Snowball stems, ``text/tokens.py``).

Answering uses it to decide whether a model refusal is retried with the closest passage
(``Settings.focus_rescue_coverage``). (Refusing an answer on low coverage, ``focus_check``, and a
retry's answer that names no missing term, ``retry_focus``, went: neither changed an answer on the
pooled dev splits.)
Not handled here: synonyms ("doctorate" / "PhD" share no stem: a paraphrase can look uncovered, which
is why coverage alone never refuses and the threshold sits below every answerable dev question).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from careerqa.text.tokens import STOPWORDS, stem, surface_words, tokenize

MIN_TERM_LETTERS = 3
# Words that frame a question rather than name its subject: in "what does CI/CD for ML mean?" the
# subject's words are too short to be terms, and "mean" alone, in no passage, would refuse the answer.
QUESTION_FRAME = frozenset(
    "mean means meaning meant stand stands define definition explain describe tell".split()
)


@dataclass(frozen=True)
class Focus:
    terms: tuple[str, ...]  # the question's focus words (folded), in order
    missing: tuple[str, ...]  # those that no given passage holds in any inflection
    coverage: float  # IDF-weighted share of ``terms`` the passages hold (1.0 without terms)


class FocusIndex:
    """Document frequencies of stems over the corpus's passages; built once per index version."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.df: Counter[str] = Counter()
        self.size = 0
        for text in texts:
            self.size += 1
            self.df.update(set(tokenize(text)))

    def idf(self, term_stem: str) -> float:
        """BM25's IDF; a stem in no passage gets one more than the rarest one that is in the corpus."""
        df = self.df.get(term_stem, 0)
        if df == 0:
            return math.log(1 + (self.size - 0.5) / 1.5) + 1.0
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def check(self, question: str, passages: Sequence[str]) -> Focus:
        """The focus of ``question`` against the ``passages`` retrieved for it."""
        terms = [
            w
            for w in dict.fromkeys(surface_words(question))
            if w not in STOPWORDS and w not in QUESTION_FRAME and len(w) >= MIN_TERM_LETTERS and w.isalpha()
        ]
        held = {t for p in passages for t in tokenize(p)}
        total = covered = 0.0
        missing = []
        for term in terms:
            weight = self.idf(stem(term))
            total += weight
            if stem(term) in held:
                covered += weight
            else:
                missing.append(term)
        return Focus(tuple(terms), tuple(missing), round(covered / total, 4) if total else 1.0)
