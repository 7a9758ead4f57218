"""Spelling correction of questions against the corpus's own vocabulary.

A question word is corrected only when it is unknown (in no passage and not in the lexicon of known
English words given, e.g. the embedder's word-piece vocabulary) and some corpus word lies within a small
Damerau-Levenshtein distance (1 for words of 4-5 letters, 2 from 6): "dokker" → "docker",
"exmaple" → "example", "framworks" → "frameworks". Among candidates, the smallest distance wins, then
the same first letter, then the more frequent corpus word. Words under 4 letters, numbers and words
with digits are left alone ("ppl", "4", "gpt4").

rapidfuzz (C++) computes the distances. bench/bench_spelling.py measures it against symspellpy on
synthetic misspellings of the corpus vocabulary (accuracy and time per word); see
docs/design.md, "Answer focus, form and typo-tolerant retrieval".
Not handled here: words run together or split apart ("data set" / "dataset"), real-word errors
("form" for "from"), context (each word is corrected alone).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein

from careerqa.text.tokens import STOPWORDS, fold, surface_words

MIN_LENGTH = 4
_WORD = re.compile(r"\b[^\W\d_]+\b")  # letters only: words with digits are never corrected


def max_distance(word: str) -> int:
    """The largest edit distance a correction of ``word`` may have."""
    return 0 if len(word) < MIN_LENGTH else 1 if len(word) <= 5 else 2


class SpellingCorrector:
    """Corrects unknown words to the nearest corpus word; built once per index, shared by queries."""

    def __init__(self, counts: Counter[str], lexicon: Iterable[str] = ()) -> None:
        self.counts = counts
        self.known = frozenset(counts) | frozenset(lexicon) | STOPWORDS
        by_length: dict[int, list[str]] = defaultdict(list)
        for word in counts:
            if word.isalpha():
                by_length[len(word)].append(word)
        self._by_length = dict(by_length)
        self._with_stopwords: dict[int, list[str]] = {}
        self._cache: dict[str, str | None] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str], lexicon: Iterable[str] = ()) -> SpellingCorrector:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(surface_words(text))
        return cls(counts, lexicon)

    def correct_word(self, word: str) -> str | None:
        """The corpus word ``word`` is a misspelling of, or None (known, too short, or nothing near)."""
        word = fold(word)
        if word in self._cache:
            return self._cache[word]
        limit = max_distance(word)
        best: tuple[int, int, int, str] | None = None
        if limit and word.isalpha() and word not in self.known:
            # words of the vocabulary whose spelling is closest to ``word`` (stopwords included:
            # "wich" is "which", which retrieval then drops, rather than "rich")
            for length in range(len(word) - limit, len(word) + limit + 1):
                # one C++ loop over the words of this length with the fast (bit-parallel) Levenshtein
                # distance; a transposition costs it 2, so survivors are checked with Damerau's
                found = process.extract(
                    word,
                    self._candidates(length),
                    scorer=Levenshtein.distance,
                    score_cutoff=limit + 1,
                    limit=None,
                )
                for candidate, _, _ in found:
                    distance = DamerauLevenshtein.distance(word, candidate)
                    if distance > limit:
                        continue
                    key = (int(distance), candidate[0] != word[0], -self.counts.get(candidate, 0), candidate)
                    if best is None or key < best:
                        best = key
        result = best[3] if best is not None else None
        if len(self._cache) < 100_000:
            self._cache[word] = result
        return result

    def _candidates(self, length: int) -> list[str]:
        if length not in self._with_stopwords:
            words = self._by_length.get(length, [])
            stop = [w for w in STOPWORDS if len(w) == length and w not in self.counts]
            self._with_stopwords[length] = words + stop
        return self._with_stopwords[length]

    def correct(self, text: str) -> tuple[str, dict[str, str]]:
        """``text`` with its misspelt words replaced (the rest untouched), and the corrections made."""
        corrections: dict[str, str] = {}

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            fixed = self.correct_word(word)
            if fixed is None:
                return word
            corrections[fold(word)] = fixed
            return fixed

        return _WORD.sub(fix, text), corrections
