"""HTML to Markdown-like text, as one cleaning step: headings become ``#`` lines, list items ``- `` lines.

Comments, the doctype, what a browser does not show (scripts, styles, ``display:none``, ``hidden``, ...:
``ingest/hidden_html.py``) and page chrome (``ingest/boilerplate.py``) are dropped; block
tags become line breaks, table cells `` | ``, ``<pre>`` a fenced block; entities are unescaped. Every
edit is a tracked substitution (``ingest/tracked.py``), so each character still maps back to the file.
Not handled here: full HTML parsing (a regex pass that suits scraped articles, not arbitrary web
pages), and the cleaning every kind of file gets afterwards (``ingest/clean.py``).
"""

from __future__ import annotations

import bisect
import html
import re

from careerqa.ingest.boilerplate import html_chrome_spans
from careerqa.ingest.hidden_html import hidden_html_spans
from careerqa.ingest.tracked import cut, tsub

_BLOCK_TAGS = (
    "p|div|br|hr|tr|section|article|header|footer|nav|main|aside|ul|ol|dl|dt|dd|table|thead|tbody|tfoot"
    "|blockquote|figure|figcaption|form|fieldset|details|summary|caption"
)


# Bump when the rules change: part of the index's chunking version, so an index cleaned by other rules
# is re-chunked (only text that changed is embedded again). 2: source line breaks are spaces.
HTML_TEXT_VERSION = "2"

_PERMALINK = r"<a\b[^>]*\bhref=[\"']#[^>]*>\s*(?:[^\w\s<&]{1,2}|&[#\w]+;)\s*</a\s*>"


def strip_html(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """Markup -> Markdown-like text: headings become ``#`` lines, list items ``- `` lines."""
    dotall = re.IGNORECASE | re.DOTALL
    text, offsets = tsub(r"<!--.*?-->", "", text, offsets, re.DOTALL)
    text, offsets = tsub(r"<!DOCTYPE[^>]*>", "", text, offsets, re.IGNORECASE)
    text, offsets = cut(text, offsets, hidden_html_spans(text))  # display:none, hidden, scripts, ...
    text, offsets = tsub(
        r"<(script|style|head|noscript|template|svg)\b[^>]*>.*?</\1\s*>", "", text, offsets, dotall
    )
    text, offsets = cut(text, offsets, html_chrome_spans(text))  # nav, footer, cookie banners, ...
    text, offsets = _collapse_source_breaks(text, offsets)

    # A heading's permalink by structure, whatever its class: a link to a place on this page whose
    # text is a symbol or two (Sphinx's and MkDocs' "¶", "#", "§", "🔗"); else it ends every heading.
    text, offsets = tsub(_PERMALINK, "", text, offsets, dotall)

    def heading(m: re.Match[str]) -> str:
        inner = re.sub(r"<br\s*/?>", " ", m.group(2), flags=re.IGNORECASE)
        inner = re.sub(r"\s+", " ", inner).strip()
        return "\n\n" + "#" * int(m.group(1)) + " " + inner + "\n\n"

    text, offsets = tsub(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", heading, text, offsets, dotall)
    # A list item's bullet stays with its text when the item opens with a paragraph (<li><p>…).
    text, offsets = tsub(r"\s*<li\b[^>]*>\s*(?:<p\b[^>]*>\s*)?", "\n- ", text, offsets, re.IGNORECASE)
    text, offsets = tsub(r"\s*(?:</p\s*>\s*)?</li\s*>", "", text, offsets, re.IGNORECASE)
    text, offsets = tsub(r"<pre\b[^>]*>", "\n```\n", text, offsets, re.IGNORECASE)
    text, offsets = tsub(r"</pre\s*>", "\n```\n", text, offsets, re.IGNORECASE)
    # A cell's own paragraph is not a paragraph of the page: <td><p>x</p></td> stays on its row.
    cell_p = r"(?<=>)\s*<p\b[^>]*>(?=[^<]*</p\s*>\s*</t[dh]\s*>)"
    text, offsets = tsub(cell_p, "", text, offsets, re.IGNORECASE)
    text, offsets = tsub(r"</p\s*>(?=\s*</t[dh]\s*>)", "", text, offsets, re.IGNORECASE)
    # Cells of a row on one line, whatever line breaks the source put between them.
    text, offsets = tsub(r"</t[dh]\s*>\s*(?=<t[dh]\b)", " | ", text, offsets, re.IGNORECASE)
    text, offsets = tsub(r"</t[dh]\s*>", " | ", text, offsets, re.IGNORECASE)
    block_run = rf"(?:\s*</?(?:{_BLOCK_TAGS})\b[^>]*>)+\s*"
    text, offsets = tsub(block_run, _block_break, text, offsets, re.IGNORECASE)
    text, offsets = tsub(r"</?[A-Za-z][^>]*>", "", text, offsets)
    text, offsets = tsub(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);", _unescape, text, offsets)
    # Indentation in HTML source means nothing; drop it so Markdown rules apply (not inside <pre>).
    fences = [m.start() for m in re.finditer(r"\n```\n", text)]

    def unindent(m: re.Match[str]) -> str:
        inside_pre = bisect.bisect_left(fences, m.start()) % 2 == 1
        return m.group(0) if inside_pre else ""

    return tsub(r"(?m)^[ \t]+", unindent, text, offsets)


def _collapse_source_breaks(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """A line break in the HTML source is a space to a browser (outside ``<pre>``): a paragraph the
    source wraps at 80 columns is one line of text, so its sentences are not cut into lines. Only
    the markup (blocks, ``<br>``, list items, headings) breaks lines afterwards."""
    pre = [(m.start(), m.end()) for m in re.finditer(r"<pre\b.*?</pre\s*>", text, re.IGNORECASE | re.DOTALL)]
    starts = [a for a, _ in pre]

    def space(m: re.Match[str]) -> str:
        at = bisect.bisect_right(starts, m.start()) - 1
        return m.group(0) if at >= 0 and m.start() < pre[at][1] else " "

    return tsub(r"[ \t]*\n\s*", space, text, offsets)


def _block_break(m: re.Match[str]) -> str:
    # A line break between rows and after <br>; a blank line (a new paragraph) around other blocks.
    names = {name.lower() for name in re.findall(r"</?([A-Za-z0-9]+)", m.group(0))}
    return "\n" if names <= {"br", "tr"} else "\n\n"


def _unescape(m: re.Match[str]) -> str:
    return html.unescape(m.group(0))
