"""A lexical second opinion for the support judge: catches swapped names, numbers and terms.

The LLM judge (``judge.py``) says yes to a claim that reuses a passage's words around a swap ("NumPy
is like Excel on steroids" from a passage where Pandas is). This check, run first, says no when:
- a number of the claim (``50%``, ``2014``) is not in the passage;
- no stretch of the passage (a list item, a table cell, one sentence or two adjacent sentences of
  prose) holds every name (used on one line of the passage only, its title aside) of
  the claim that the passage mentions (capitalised words and words with digits: NumPy, EC2, AWS)
  together with at least ``MIN_LOCAL_COVERAGE`` of the claim's content words, in any inflection:
  a claim that takes its subject from one line and its predicate from another is a swap.
A claim that passes still goes to the LLM judge; this check never says yes on its own.
``MIN_LOCAL_COVERAGE`` is set on ``eval/judge_pairs.jsonl`` (``careerqa eval --judge-agreement``).
Not handled here: negation, and swapped relations between words of the same sentence.
"""

from __future__ import annotations

import re

from ..chunking import is_title_like
from ..citations import MARKER
from ..grounding import split_sentences
from ..tokens import STOPWORDS, stem, tokenize

MIN_LOCAL_COVERAGE = 0.63  # between the highest hard negative (0.60) and the lowest supported claim (0.67)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_NAME = re.compile(r"\b(?:[A-Z][\w+#-]*|\w*\d\w*)")


def _names(claim: str) -> set[str]:
    """Capitalised words and words with digits ("NumPy", "EC2", "Reinforcement")."""
    words = {m.group(0) for m in _NAME.finditer(claim)}
    return {stem(w.lower()) for w in words if w.lower() not in STOPWORDS and not w.isdigit()}


Unit = tuple[str, int, bool, str]  # text, line number, prose, the table column's header ("" elsewhere)


def passage_units(passage: str) -> list[Unit]:
    """The passage's units as ``(text, line number, prose)``: sentences, and for a table row one unit
    per column, with the column's header and the row's first cell ("PyTorch Computational Graph
    Dynamic"), so a claim cannot take its subject from one column and its value from the other.
    Adjacent units may join when they share a line (a list item's sentences) or are both prose."""
    units: list[Unit] = []
    header: list[str] | None = None
    for number, line in enumerate(passage.splitlines()):
        if line.count("|") >= 2:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-*:?", c) for c in cells):
                continue  # the separator row
            if header is None:
                header = cells
                units.append((line, number, False, ""))
                continue
            for col in range(1, len(cells)):
                name = header[col] if col < len(header) else ""
                units.append((f"{name} {cells[0]} {cells[col]}", -len(units) - 1, False, name))  # alone
            continue
        header = None
        item = bool(_LIST_ITEM.match(line))
        units.extend((u, number, not item, "") for u in split_sentences(line) if u.strip())
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
    claim_names = _names(claim)
    # a claim that names a table column ("TensorFlow has a dynamic graph") is read in that column only
    columns = {u[3] for u in units if u[3]}
    named = {c for c in columns if set(tokenize(c)) & claim_names}
    units = [u for u in units if not (named and u[3] and u[3] not in named)]
    singles = [set(tokenize(u[0])) for u in units]
    windows = list(singles)  # every unit, and two adjacent ones of one line or of prose
    for i in range(len(units) - 1):
        (_, line_a, prose_a, _), (_, line_b, prose_b, _) = units[i], units[i + 1]
        if line_a == line_b or (prose_a and prose_b):
            windows.append(singles[i] | singles[i + 1])
    # names the passage uses in one place only: those a swap moves ("AI", all over, tells nothing)
    lines = passage.splitlines()
    if lines and is_title_like(lines[0]):
        lines = lines[1:]  # the section title names what the whole passage is about
    line_words = [set(tokenize(line)) for line in lines]
    names = {n for n in claim_names if sum(n in words for words in line_words) == 1}
    best = 0.0
    for window in windows:
        if names <= window:
            best = max(best, len(words & window) / len(words))
    if best < MIN_LOCAL_COVERAGE:
        return False, "no sentence of the passage holds the claim's names with its other words"
    return True, ""
