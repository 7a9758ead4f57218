"""What one line of cleaned text is: a list item, a table row, source code, a title or a question.

Cleaning (``ingest/repairs.py``), chunking, page-chrome detection, heading restoration, the answerer
and the claim check all classify lines with these rules, so they agree on what a list item or a
heading is. ``iter_lines`` gives the ``(start, end)`` of every line.
Not handled here: blocks of several lines (``ingest/chunking.py`` joins lines into paragraphs, lists,
tables and sections), and Markdown headings and code fences (the chunker's own rules).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

FAQ_TITLES = {"faq", "faqs", "frequently asked questions", "questions and answers", "q&a"}
_SMALL_WORDS = {
    "a", "an", "the", "and", "or", "nor", "but", "of", "to", "in", "on", "for", "with", "vs", "by", "at",
    "from", "as", "into", "via", "per", "is", "are", "be", "its", "it", "your", "you", "that", "than",
}  # fmt: skip
LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")  # a list item's bullet or number
LIST_ITEM = re.compile(LIST_MARK.pattern + r"\S")
TABLE_ROW = re.compile(r"^\s*\|.*\||\s\|\s|^\s*:?-{3,}:?\s*\|")
TERMINAL = re.compile(r"[.!?:;][\"'”’)\]*_]*$")  # ends in punctuation (then maybe quotes, brackets, emphasis)
_QUESTION_MARKS = re.compile(r"^(?:[*_]+|Q\s*[:.]\s*|#+\s*)+|[*_]+$")
_CODE_START = re.compile(r"^\s*(?:import \w|from [\w.]+ import |def \w+\s*\(|class \w+\s*[(:]|try:|except\b)")
_CODE_SIGNS = ("print(", " = ", "()", "):", "return ", "self.", "==")


def iter_lines(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every line of ``text`` (without its newline)."""
    pos = 0
    while pos <= len(text):
        end = text.find("\n", pos)
        if end < 0:
            end = len(text)
        yield pos, end
        pos = end + 1


def line_at(text: str, pos: int) -> str:
    """The line of ``text`` that holds position ``pos`` (without its newline)."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def looks_like_code(line: str) -> bool:
    """A line that is clearly source code (scraped code often arrives flattened into one line)."""
    if _CODE_START.match(line):
        return True
    return sum(sign in line for sign in _CODE_SIGNS) >= 2


def is_title_like(line: str) -> bool:
    """A short, Title Case line without sentence punctuation: a heading in plain text."""
    line = line.strip()
    words = line.split()
    if not words or len(words) > 12 or TERMINAL.search(line) or line.endswith(","):
        return False
    if LIST_ITEM.match(line) or TABLE_ROW.search(line) or looks_like_code(line):
        return False
    if not (line[0].isupper() or line[0].isdigit()):
        return False
    if line.lower() in FAQ_TITLES:
        return True
    head = line.split(": ", 1)[0] if ": " in line else line
    significant = [w for w in re.findall(r"[^\W_][\w'’&.-]*", head) if w.lower() not in _SMALL_WORDS]
    if not significant:
        return False
    capitalised = sum(w[0].isupper() or w[0].isdigit() for w in significant)
    return capitalised / len(significant) >= 0.7


def question_text(line: str) -> str | None:
    """The question on a standalone question line (markup removed), else None."""
    bare = _QUESTION_MARKS.sub("", line.strip()).strip()
    if not bare.endswith("?") or len(bare.split()) > 30 or LIST_ITEM.match(line) or TABLE_ROW.search(line):
        return None
    return bare


def line_kind(line: str) -> str:
    """``"list"``, ``"table"``, ``"code"`` or ``"text"``: what a line that is not a heading holds."""
    if LIST_ITEM.match(line):
        return "list"
    if TABLE_ROW.search(line):
        return "table"
    if looks_like_code(line):
        return "code"
    return "text"
