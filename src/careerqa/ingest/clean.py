"""Cleaning: one file's decoded text -> the text that is chunked, with where each character came from.

``clean_text`` runs the steps in order: line endings, HTML to text (HTML files only,
``ingest/html_text.py``), white space, then the scraper repairs (``ingest/repairs.py``). Every step is
a tracked substitution (``ingest/tracked.py``), so every character of the result maps back to ``raw``.
Cleaning repairs only unambiguous scraping artefacts and never drops words (of HTML, the markup,
scripts, page chrome and hidden elements are dropped: ``ingest/hidden_html.py``).
Not handled here: reading and decoding files (``ingest/corpus.py``), Markdown rendering (Markdown stays
Markdown), and splitting into chunks (``ingest/chunking.py``).
"""

from __future__ import annotations

from careerqa.ingest.html_text import strip_html
from careerqa.ingest.repairs import repair_abbreviations, repair_code_lines, repair_definition_list
from careerqa.ingest.tracked import tsub


def clean_text(raw: str, kind: str = "text") -> tuple[str, list[int]]:
    """Cleaned text and its offsets into ``raw`` (``len(text) + 1`` entries)."""
    text, offsets = raw, list(range(len(raw) + 1))
    text, offsets = tsub(r"\r\n?", "\n", text, offsets)
    if kind == "html":
        text, offsets = strip_html(text, offsets)
    text, offsets = _normalise_space(text, offsets)
    text, offsets = repair_abbreviations(text, offsets)
    text, offsets = repair_definition_list(text, offsets)
    text, offsets = repair_code_lines(text, offsets)
    return text, offsets


def _normalise_space(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    text, offsets = tsub(r"[\u00a0\u202f\u2007]", " ", text, offsets)
    text, offsets = tsub(r"[\f\v\u2028\u2029]", "\n", text, offsets)
    text, offsets = tsub(r"[ \t]+(?=\n|\Z)", "", text, offsets)  # trailing spaces
    text, offsets = tsub(r"(?<=\S)(?: {2,}|[ \t]*\t[ \t]*)", " ", text, offsets)  # runs inside a line
    text, offsets = tsub(r"\n{3,}", "\n\n", text, offsets)
    return tsub(r"\A\s+|\s+\Z", "", text, offsets)
