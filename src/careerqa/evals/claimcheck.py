"""A lexical second opinion for the support judge: catches swapped names, numbers and terms.

The LLM judge (``judge.py``) says yes to a claim that reuses a passage's words around a swap ("NumPy
is like Excel on steroids" from a passage where Pandas is). This check, run first, says no when:
- a number of the claim (``50%``, ``2014``) is not in the passage;
- no stretch of the passage (a list item, a table cell, one sentence or two adjacent sentences of
  prose; a sentence of a line headed "Title: …" with its title, which is what "They are the backbone
  of …" is about) holds every name (used on one line of the passage only, its title aside) of
  the claim that the passage mentions (capitalised words and words with digits: NumPy, EC2, AWS)
  together with at least ``MIN_LOCAL_COVERAGE`` of the claim's content words, in any inflection:
  a claim that takes its subject from one line and its predicate from another is a swap;
- the claim uses at least ``MIN_BRACKET_WORDS`` words that the passage has only inside one bracket
  ("calculus (for optimization), statistics (for model evaluation)") but none of the words the
  bracket belongs to (back to the previous comma, bracket or sentence stop): "Calculus is needed for
  model evaluation" hangs one item's bracket on another item.
It says yes on its own (``copied``) only to a claim that repeats a run of the passage word for word,
from one punctuation mark or line break to another ("TorchScript, ONNX."), or that names a run of the
passage's list items in order, under the item it names (``copied_list``): that states nothing the
passage does not. Every other claim that passes still goes to the LLM judge.
``MIN_LOCAL_COVERAGE`` is set on ``eval/judge_pairs.jsonl`` (``careerqa eval --judge-agreement``).
Not handled here: negation, and swapped relations between words of the same sentence.
"""

from __future__ import annotations

import re

from careerqa.answer.grounding import split_sentences
from careerqa.text.citations import MARKER
from careerqa.text.lines import LIST_MARK, is_title_like
from careerqa.text.tokens import STOPWORDS, stem, tokenize

MIN_LOCAL_COVERAGE = 0.63  # between the highest hard negative (0.60) and the lowest supported claim (0.67)
# Of the labelled pairs, the one that hangs a bracket on the wrong item takes 4 of the bracket's words;
# the supported claims that use a bracket's own words all name what it belongs to. 2, not 1, so that
# one word repeated by chance ("model") never rejects a claim.
MIN_BRACKET_WORDS = 2
MIN_COPY_WORDS = 2  # a copied single word ("Docker.") states nothing; the model decides it
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b(?:[A-Z][\w+#-]*|\w*\d\w*)")
_WORD = re.compile(r"\w+(?:[+#]+|\b)")
_BOUNDARY = re.compile(r"[.,;:!?()\[\]{}|\"“”–—]|\n")  # what may stand before and after a copied run
_BRACKET = re.compile(r"\(([^()\n]*)\)?")  # an unclosed one runs to the end of its line
_TOPIC = re.compile(r"^\s*([A-Z][^:.!?\n]*?):\s+\S")  # "Title: text" (a definition or a restored heading)
MAX_TOPIC_WORDS = 8
_HEAD_STOP = re.compile(r"[,;:(|]|[.!?]\s")  # where the words a bracket belongs to begin


def copied(passage: str, claim: str) -> bool:
    """Does ``claim`` (markers aside) repeat, word for word, a run of ``passage`` that starts and ends
    at a punctuation mark, a line break or the passage's ends? A question is no copy: it states nothing."""
    claim = MARKER.sub("", claim).strip()
    said = [w.lower() for w in _WORD.findall(claim)]
    if len(said) < MIN_COPY_WORDS or claim.endswith("?"):
        return False
    found = list(_WORD.finditer(passage))
    words = [m.group(0).lower() for m in found]
    n = len(said)
    for i in range(len(words) - n + 1):
        if words[i : i + n] != said:
            continue
        before = passage[found[i - 1].end() : found[i].start()] if i else "\n"
        after = passage[found[i + n - 1].end() : found[i + n].start()] if i + n < len(found) else "\n"
        if _BOUNDARY.search(before) and _BOUNDARY.search(after):
            return True
    return False


LIST_VERBS = frozenset(stem(w) for w in "are is include includes cover covers encompass encompasses".split())


def _item_text(line: str) -> str | None:
    """A list line's item ("- Model Versioning" → "model versioning"; the name before a colon), else None."""
    if not LIST_MARK.match(line):
        return None
    body = LIST_MARK.sub("", line).split(":", 1)[0]
    return " ".join(w.lower() for w in _WORD.findall(body))


def copied_list(passage: str, claim: str) -> bool:
    """Does ``claim`` (markers aside) name, in order, a run of consecutive list items of ``passage``
    ("Convolutional Neural Networks (CNNs), Recurrent Neural Networks (RNNs), and Transformers"), with
    at most a short lead whose words, list verbs aside, are those of the item right before the run
    ("MLOps covers model versioning, …" under "- MLOps (Machine Learning Operations)")? Like
    ``copied``, such a claim says nothing the passage does not; a lead that names another parent
    ("Cloud Platforms covers model versioning") is left to the other checks."""
    claim = MARKER.sub("", claim).strip().rstrip(".!?")
    parts = [re.sub(r"^(?:and|or)\s+", "", p.strip(), flags=re.I) for p in claim.split(",")]
    if len(parts) < 2 or not all(parts):
        return False
    items = [" ".join(w.lower() for w in _WORD.findall(p)) for p in parts]
    lines = passage.splitlines()
    names = [_item_text(line) for line in lines]
    first = items[0]
    for start, name in enumerate(names):
        lead = ""
        if name is None:
            continue
        if name != first:
            lead_words = first.split()
            tail = name.split()
            if not tail or lead_words[-len(tail) :] != tail or len(lead_words) - len(tail) > 4:
                continue
            lead = " ".join(lead_words[: -len(tail)])
        run = names[start : start + len(items)]
        if run[1:] != items[1:] or len(run) != len(items):
            continue
        if not lead:
            return True
        parent = set(tokenize(lines[start - 1])) if start else set()
        if parent and set(tokenize(lead)) - LIST_VERBS <= parent:
            return True
    return False


def _misplaced_bracket(passage: str, claim_words: set[str]) -> str | None:
    """The first bracket of ``passage`` whose own words the claim takes without what it belongs to."""
    for line in passage.splitlines():
        for match in _BRACKET.finditer(line):
            inside = set(tokenize(match.group(1)))
            rest = passage.replace(match.group(0), " ")
            own = (inside - set(tokenize(rest))) & claim_words
            if len(own) < MIN_BRACKET_WORDS:
                continue
            before = line[: match.start()]
            stops = list(_HEAD_STOP.finditer(before))
            head = set(tokenize(before[stops[-1].end() :] if stops else before))
            if head and not head & claim_words:
                return match.group(0)
    return None


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
        item = bool(LIST_MARK.match(line))
        units.extend((u, number, not item, "") for u in split_sentences(line) if u.strip())
    return units


def _topic(line: str) -> str | None:
    """The title of a prose line headed "Title: …" ("Convolutional Neural Networks (CNNs): Primarily
    used for …"): a short, capitalised lead before a colon. None for other lines and list items."""
    if LIST_MARK.match(line):
        return None
    m = _TOPIC.match(line)
    return m.group(1) if m is not None and len(m.group(1).split()) <= MAX_TOPIC_WORDS else None


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
    lines = passage.splitlines()
    topics = {n: set(tokenize(t)) for n, line in enumerate(lines) if (t := _topic(line))}
    # every sentence of a line headed "Title: …" is about its title ("They are the backbone of …")
    # (a window that joins two lines does not: the next line's first sentence is not about this title)
    own = [set(tokenize(u[0])) for u in units]
    windows = [words | topics.get(u[1], set()) for words, u in zip(own, units, strict=True)]
    for i in range(len(units) - 1):  # and two adjacent units of one line or of prose
        (_, line_a, prose_a, _), (_, line_b, prose_b, _) = units[i], units[i + 1]
        if line_a == line_b:
            windows.append(own[i] | own[i + 1] | topics.get(line_a, set()))
        elif prose_a and prose_b:
            windows.append(own[i] | own[i + 1])
    # names the passage uses in one place only: those a swap moves ("AI", all over, tells nothing)
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
    bracket = _misplaced_bracket(passage, words)
    if bracket is not None:
        return False, f"the claim takes the words of {bracket[:40]!r} without what it belongs to"
    return True, ""
