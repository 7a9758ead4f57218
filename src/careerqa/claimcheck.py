"""A lexical second opinion for the support judge: catches swapped names, numbers and terms.

The LLM judge (``judge.py``) says yes to a claim that reuses a passage's words around a swap ("NumPy
is like Excel on steroids" from a passage where Pandas is). This check, run first, says no when:
- a number of the claim (``50%``, ``2014``) is not in the passage;
- no stretch of the passage (a list item, a table cell, one sentence or two adjacent sentences of
  prose) holds every name (used on one line of the passage only) of
  the claim that the passage mentions (capitalised words and words with digits: NumPy, EC2, AWS)
  together with at least ``MIN_LOCAL_COVERAGE`` of the claim's content words, in any inflection:
  a claim that takes its subject from one line and its predicate from another is a swap.
A claim that passes still goes to the LLM judge; this check never says yes on its own.
``MIN_LOCAL_COVERAGE`` is set on ``eval/judge_pairs.jsonl`` (``careerqa eval --judge-agreement``).
Not handled here: negation, and swapped relations between words of the same sentence.
"""

from __future__ import annotations

import re

from .citations import MARKER
from .grounding import split_sentences
from .tokens import STOPWORDS, stem, tokenize

MIN_LOCAL_COVERAGE = 0.63  # between the highest hard negative (0.60) and the lowest supported claim (0.67)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_NAME = re.compile(r"\b(?:[A-Z][\w+#-]*|\w*\d\w*)")


def _names(claim: str) -> set[str]:
    """Capitalised words and words with digits; the first word only when it is a name whatever its
    place ("NumPy", "EC2", "AWS"), not merely capitalised because it starts the sentence."""
    names = set()
    for m in _NAME.finditer(claim):
        word = m.group(0)
        if word.lower() in STOPWORDS or word.isdigit():
            continue
        if not claim[: m.start()].strip() and word[1:].islower():
            continue
        names.add(stem(word.lower()))
    return names


def passage_units(passage: str) -> list[tuple[str, int, bool]]:
    """The passage's units as ``(text, line number, prose)``: sentences, and for a table row one unit
    per column, with the column's header and the row's first cell ("PyTorch Computational Graph
    Dynamic"), so a claim cannot take its subject from one column and its value from the other.
    Adjacent units may join when they share a line (a list item's sentences) or are both prose."""
    units: list[tuple[str, int, bool]] = []
    header: list[str] | None = None
    for number, line in enumerate(passage.splitlines()):
        if line.count("|") >= 2:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-*:?", c) for c in cells):
                continue  # the separator row
            if header is None:
                header = cells
                units.append((line, number, False))
                continue
            for col in range(1, len(cells)):
                name = header[col] if col < len(header) else ""
                units.append((f"{name} {cells[0]} {cells[col]}", -len(units) - 1, False))  # alone
            continue
        header = None
        item = bool(_LIST_ITEM.match(line))
        units.extend((u, number, not item) for u in split_sentences(line) if u.strip())
    return units


def lexical_verdict(passage: str, claim: str) -> tuple[bool, str]:
    """``(False, why)`` when the claim cannot be what the passage says; ``(True, "")`` otherwise."""
    claim = " ".join(MARKER.sub("", claim).split())
    numbers = set(_NUMBER.findall(claim))
    held_numbers = set(_NUMBER.findall(passage))
    missing = sorted(numbers - held_numbers)
    if missing:
        return False, f"number {missing[0]} is not in the passage"
    words = set(tokenize(claim))
    if not words:
        return True, ""
    units = passage_units(passage)
    singles = [set(tokenize(text)) for text, _, _ in units]
    windows = list(singles)  # every unit, and two adjacent ones of one line or of prose
    for i in range(len(units) - 1):
        (_, line_a, prose_a), (_, line_b, prose_b) = units[i], units[i + 1]
        if line_a == line_b or (prose_a and prose_b):
            windows.append(singles[i] | singles[i + 1])
    # names the passage uses in one place only: those a swap moves ("AI", all over, tells nothing)
    lines = [set(tokenize(line)) for line in passage.splitlines()]
    names = {n for n in _names(claim) if sum(n in line for line in lines) == 1}
    best = 0.0
    for window in windows:
        if names <= window:
            best = max(best, len(words & window) / len(words))
    if best < MIN_LOCAL_COVERAGE:
        return False, "no sentence of the passage holds the claim's names with its other words"
    return True, ""
