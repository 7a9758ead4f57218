"""Repairs of the artefacts the seed corpus's scraper left, each only where it is unambiguous.

``"e. G. , fill"`` -> ``"e.g., fill"``; a definition list flattened into ``"... -\\nPandas\\n: For data"``
-> ``"- Pandas: For data"``; ``"TensorFlow andPyTorch"`` -> ``"TensorFlow and PyTorch"``; and, inside
code lines only, ``df. Head()`` -> ``df.head()``. Each repair is a tracked substitution
(``ingest/tracked.py``) and never drops a word.
Not handled here: the "." the scraper put in place of ", and" (ambiguous, left as it is), and what
counts as a code line (``text/lines.py``).
"""

from __future__ import annotations

import re

from careerqa.ingest.tracked import tsub
from careerqa.text.lines import line_at, looks_like_code


def repair_abbreviations(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """``"e. G. , fill"`` -> ``"e.g., fill"``; ``"e. G. spam"`` -> ``"e.g. spam"`` (also i.e.)."""

    def fix(m: re.Match[str]) -> str:
        first, second = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return f"{first}.{second.lower()}."

    pattern = r"(?<![\w.])(?:([eE])\. ?([gG])|([iI])\. ?([eE]))\.(?: (?=,))?"
    return tsub(pattern, fix, text, offsets)


# A term line of a scraped definition list: short, no sentence punctuation.
_TERM = r"[A-Za-z0-9][^\n:.!?;]{0,40}"
_TERMS = rf"{_TERM}(?:\n{_TERM}){{0,2}}"


def repair_definition_list(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """``"...libraries. -\\nPandas\\n: For data"`` -> ``"...libraries.\\n- Pandas: For data"``."""
    # The " -" dangling at the end of a description is the dash of the next item.
    text, offsets = tsub(rf"(?<=\S) -\n(?={_TERMS}\n: )", "\n-\n", text, offsets)

    def join(m: re.Match[str]) -> str:
        return "- " + m.group(1).replace("\n", " ") + ": "

    text, offsets = tsub(rf"(?m)^-\n({_TERMS})\n: ", join, text, offsets)

    # "...networks. - Other Languages\n- Software..." : a plain item glued after a repaired one.
    def split_item(m: re.Match[str]) -> str:
        line_start = m.string.rfind("\n", 0, m.start()) + 1
        if re.match(r"- [^\n:]{1,60}: ", m.string[line_start : m.start()]):
            return "\n- "
        return m.group(0)

    text, offsets = tsub(r"(?<=[.!?]) - (?=[A-Z][^\n.!?:]{0,60}\n- )", split_item, text, offsets)

    # "TensorFlow andPyTorch" -> "TensorFlow and PyTorch" (not in code, where andThen is a name).
    def unglue(m: re.Match[str]) -> str:
        if looks_like_code(line_at(m.string, m.start())):
            return m.group(0)
        return m.group(1) + " "

    return tsub(r"(?<!\S)(and|or)(?=[A-Z][a-z]\w*)", unglue, text, offsets)


_ATTRIBUTE = re.compile(r"(?<=[\w)\]])\. ([A-Z]\w*)")


def repair_code_lines(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """Inside code lines, ``df. Head()`` -> ``df.head()`` (the scraper capitalised after ". ")."""
    line_info: dict[int, tuple[bool, set[tuple[str, str]]]] = {}

    def clear(m: re.Match[str]) -> bool:
        word = m.group(1)
        follower = m.string[m.end() : m.end() + 1]
        return "_" in word or (follower != "" and follower in "([.'\":")

    def ident_before(m: re.Match[str]) -> str:
        # Only the match's own line: the word before it never crosses a line break, and searching the
        # whole text before every match took seconds on a long document.
        line_start = m.string.rfind("\n", 0, m.start()) + 1
        found = re.search(r"\w+$", m.string[line_start : m.start()])
        return found.group(0) if found else ""

    def info(line_start: int, line: str) -> tuple[bool, set[tuple[str, str]]]:
        if line_start not in line_info:
            is_code = looks_like_code(line)
            pairs: set[tuple[str, str]] = set()
            if is_code:
                for m in _ATTRIBUTE.finditer(text, line_start, line_start + len(line)):
                    if clear(m):
                        pairs.add((ident_before(m), m.group(1)))
            line_info[line_start] = (is_code, pairs)
        return line_info[line_start]

    def fix(m: re.Match[str]) -> str:
        line_start = m.string.rfind("\n", 0, m.start()) + 1
        is_code, pairs = info(line_start, line_at(m.string, m.start()))
        if is_code and (clear(m) or (ident_before(m), m.group(1)) in pairs):
            word = m.group(1)
            return "." + word[0].lower() + word[1:]
        return m.group(0)

    return tsub(_ATTRIBUTE, fix, text, offsets)
