"""Page chrome: navigation, footers, related-article lists and similar text that is not content.

Recognised by structure, never by a list of one site's strings:
- HTML: ``<nav>``, ``<footer>`` and ``<aside>`` elements, elements whose ARIA role is navigation,
  contentinfo or complementary, and elements whose class or id names a chrome part (nav, menu,
  breadcrumb, footer, sidebar, cookie, share, social, related, newsletter, subscribe, a table of
  contents, a heading's permalink, previous/next page links, …) are cut when the page is cleaned
  (``html_chrome_spans``), as scripts and styles are.
- Any text: a passage that is a heading followed only by three or more short title lines (no
  sentence, no list markers: a scraped "More Articles" / "Related posts" block), by a list whose
  every item is only a link, or whose lines are mostly a book's contents or index entries (a title,
  dot leaders, a page number: "Encodings . . . . 4") (``is_chrome_text``). The chunker keeps such a
  passage (chunks cover the whole document, and ids stay stable); indexing leaves it out, so it is
  never retrieved.
Not handled here: chrome spread over the article text (inline ads, "Read more:" lines within
paragraphs), and a genuine list of titles without list markers under a heading (a reading list
pasted as bare lines looks like a related-articles block and is left out too).
"""

from __future__ import annotations

import re

from careerqa.text.lines import LIST_MARK, is_title_like

# Bump when the rules change: it is part of the index's chunking parameters, so an index built with
# other rules is re-chunked (only text that becomes content again is embedded).
CHROME_VERSION = "3"  # 2: tables of contents ("toc", "On this page") and heading anchors; 3: leaders

_CHROME_TAGS = ("nav", "footer", "aside")
_CHROME_ROLES = ("navigation", "contentinfo", "complementary")
_CHROME_NAME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|footer|sidebar|cookies?|cookie-banner|"
    r"consent|share|sharing|social|related|newsletter|subscribe|signup|advert|ads?|promo|pagination|"
    r"skip-link|toc|tocsection|table-of-contents|onthispage|headerlink|anchorjs-link|prev-next|prev-next-area|"
    r"footer-buttons)(?:$|[\s_-])",
    re.IGNORECASE,
)
_OPEN_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9]*)\b([^>]*)>")
_ATTR = re.compile(r"""\b(class|id|role)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())
# A contents or index entry: dot leaders, then a page or pages ("… . . . 11, 32").
_LEADER_LINE = re.compile(r"(?:\.\s?){4,}\s*[\divxlc]+(?:\s*[,–-]\s*[\divxlc]+)*\s*$", re.I)
_NUMBER_LINE = re.compile(r"^[\d.]+$|^[ivxlc]+$", re.IGNORECASE)  # "1.1", "ii": a number alone
_LINK_LINE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])?\s*\[[^\]\n]+\]\([^)\n]*\)\s*$")


def _is_chrome_element(name: str, attributes: str) -> bool:
    if name.lower() in _CHROME_TAGS:
        return True
    for attr in _ATTR.finditer(attributes):
        key = attr.group(1).lower()
        value = next(v for v in attr.groups()[1:] if v is not None)
        if key == "role" and value.strip().lower() in _CHROME_ROLES:
            return True
        if key in ("class", "id") and _CHROME_NAME.search(value):
            return True
    return False


def html_chrome_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every chrome element of an HTML page, outermost only, in order.

    An element's end is found by counting its own tag name's opening and closing tags, so a
    ``<div class="cookie">`` holding other ``<div>``s is cut whole; an element never closed runs to
    the end of its parent's text, which is cut no further than the end of the page.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        match = _OPEN_TAG.search(text, pos)
        if match is None:
            return spans
        name, attributes = match.group(1), match.group(2)
        void = name.lower() in _VOID or attributes.rstrip().endswith("/")
        if void or not _is_chrome_element(name, attributes):
            pos = match.end()
            continue
        end = _element_end(text, name, match.end())
        spans.append((match.start(), end))
        pos = end


def _element_end(text: str, name: str, pos: int) -> int:
    tags = re.compile(rf"<(/?){re.escape(name)}\b[^>]*>", re.IGNORECASE)
    depth = 1
    for tag in tags.finditer(text, pos):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return tag.end()
    return len(text)


def is_chrome_text(text: str) -> bool:
    """A passage that is only a list of article titles or links (see the module docstring)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    leaders = sum(bool(_LEADER_LINE.search(line)) for line in lines)
    entries = [line for line in lines if not line.startswith("#") and not _NUMBER_LINE.match(line)]
    if leaders and 2 * leaders >= len(entries):
        return True  # a book's table of contents or index: "Encodings . . . . . 4", most of its lines
    if lines and (lines[0].startswith("#") or is_title_like(lines[0])) and len(lines) > 3:
        body = lines[1:]
    else:
        body = lines
    if len(body) < 3:
        return False
    if all(_LINK_LINE.match(line) for line in body):
        return True
    return all(is_title_like(line) and not LIST_MARK.match(line) for line in body)
