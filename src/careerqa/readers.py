"""Turn a PDF or Word file into Markdown-like text (with the offset where each PDF page starts), and
split a Markdown file's front matter from its body.

- **PDF** (pdfminer.six): lines in reading order from its layout analysis, headings from font size
  (a line set clearly larger than the body text), running headers and footers dropped (a line near the
  top or bottom edge that repeats on most pages, digits ignored), words hyphenated at a line end joined
  again (unless the document spells the word with its hyphen elsewhere). Why pdfminer.six and not pypdf:
  ``bench/bench_pdf_readers.py`` on generated layouts: both keep the words, but pypdf follows the content
  stream, so a two-column page written row by row comes out with its columns interleaved; pdfminer.six
  groups the text by position. An encrypted PDF that needs a password, and one without a text layer
  (a scan: no OCR engine is available here), raise ``Unreadable``.
- **DOCX** (mammoth): Word → HTML that keeps headings, lists and tables, read by the corpus's HTML path.
- **Front matter** (python-frontmatter's YAML handler): a leading ``---`` block; ``title``, ``tags`` and
  ``date`` are kept, the block itself is not indexed.

Not handled here: OCR, PDF forms and annotations, tables inside PDFs (their cells come out as lines),
right-to-left scripts, ``.doc`` (the binary Word format), password prompts. Heavy libraries are imported
inside the functions.
"""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .errors import CareerQAError

BINARY_KINDS = {".pdf": "pdf", ".docx": "docx"}

# A PDF line is a heading when its font is this much larger than the body text's (the size most of the
# characters are set in); 1.15 keeps 12 pt headings over 10.5 pt text and leaves bold body text alone.
HEADING_SIZE_RATIO = 1.15
HEADING_MAX_WORDS = 14
# Running headers and footers: lines in the top or bottom EDGE share of the page that repeat, digits
# ignored ("Page 3 of 9"), on at least REPEAT_SHARE of the pages (and on two pages at least).
EDGE = 0.12
REPEAT_SHARE = 0.5
# A PDF with fewer letters than this per page on average has no usable text layer.
MIN_LETTERS_PER_PAGE = 20


class Unreadable(CareerQAError):
    """A file careerqa cannot take text from (encrypted, image-only, damaged); the corpus skips it."""


@dataclass(frozen=True)
class Extracted:
    """Text taken from a binary document, as the corpus's cleaner reads it."""

    text: str
    kind: str  # the cleaner's kind: "markdown" (PDF) or "html" (DOCX)
    pages: tuple[int, ...] = ()  # offset in ``text`` where each page starts (PDF only)
    warnings: tuple[str, ...] = field(default=())


def extract(suffix: str, raw: bytes) -> Extracted:
    """The text of a ``.pdf`` or ``.docx`` file's bytes; ``Unreadable`` says why there is none."""
    kind = BINARY_KINDS[suffix]
    try:
        return read_pdf(raw) if kind == "pdf" else read_docx(raw)
    except Unreadable:
        raise
    except Exception as exc:  # a damaged or truncated file (a copy still being written) is skipped
        raise Unreadable(f"cannot read this {kind.upper()} file ({type(exc).__name__}: {exc})") from exc


# --------------------------------------------------------------------------- PDF


@dataclass
class _Line:
    text: str
    size: float
    top: float  # distance from the page's top edge, in points
    bottom: float
    height: float
    edge: bool = False  # in the top or bottom band of the page, where running headers and footers sit


def read_pdf(raw: bytes) -> Extracted:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextBox
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError

    pages: list[list[_Line]] = []
    try:
        for page in extract_pages(io.BytesIO(raw), laparams=LAParams()):
            lines: list[_Line] = []
            for box in page:
                if not isinstance(box, LTTextBox):
                    continue
                for line in box:
                    text = line.get_text().strip()
                    sizes = [c.size for c in line if isinstance(c, LTChar) and not c.get_text().isspace()]
                    if text and sizes:
                        top, bottom = page.height - line.y1, page.height - line.y0
                        lines.append(_Line(text, statistics.median(sizes), top, bottom, line.height))
            pages.append(_edge_marks(lines, page.height))
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        message = "the PDF is encrypted with a password; save an unprotected copy to index it"
        raise Unreadable(message) from exc
    except PDFSyntaxError as exc:
        raise Unreadable(f"not a readable PDF ({exc})") from exc
    letters = sum(ch.isalpha() for page_lines in pages for line in page_lines for ch in line.text)
    if not pages or letters < MIN_LETTERS_PER_PAGE * len(pages):
        raise Unreadable(
            "the PDF has no text layer (a scan or images only?); no OCR engine is available, "
            "so export it with its text or add a text version"
        )
    return _pdf_text(pages)


def _edge_marks(lines: list[_Line], height: float) -> list[_Line]:
    """Mark the lines in the edge bands; whether they repeat is decided across pages."""
    for line in lines:
        line.edge = line.top < EDGE * height or line.bottom > (1 - EDGE) * height
    return lines


def _chrome_key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _pdf_text(pages: list[list[_Line]]) -> Extracted:
    edge_counts = Counter(
        key for page in pages for key in {_chrome_key(line.text) for line in page if line.edge}
    )
    threshold = max(2, REPEAT_SHARE * len(pages))
    chrome = {key for key, n in edge_counts.items() if n >= threshold}
    body = [[line for line in page if not (line.edge and _chrome_key(line.text) in chrome)] for page in pages]
    weights: Counter[float] = Counter()
    for page in body:
        for line in page:
            weights[round(line.size, 1)] += len(line.text)
    body_size = weights.most_common(1)[0][0] if weights else 0.0

    page_texts = [_page_text(page, body_size) for page in body]
    hyphenated = {m.group(0).lower() for t in page_texts for m in re.finditer(r"\b[A-Za-z]+-[A-Za-z]+\b", t)}
    text_parts: list[str] = []
    starts: list[int] = []
    pos = 0
    warnings = []
    empty = [str(i) for i, t in enumerate(page_texts, start=1) if not t.strip()]
    if empty:
        warnings.append(f"no text on page(s) {', '.join(empty)} (images only?)")
    for page_text in page_texts:
        page_text = _dehyphenate(page_text, hyphenated)
        starts.append(pos)
        chunk = page_text.strip() + "\n\n"
        text_parts.append(chunk)
        pos += len(chunk)
    return Extracted("".join(text_parts), "markdown", tuple(starts), tuple(warnings))


def _page_text(lines: list[_Line], body_size: float) -> str:
    out: list[str] = []
    prev: _Line | None = None
    for line in lines:
        height = line.height or line.size
        words = len(line.text.split())
        larger = body_size > 0 and line.size >= HEADING_SIZE_RATIO * body_size
        is_heading = larger and words <= HEADING_MAX_WORDS
        if is_heading:
            out.append("\n\n# " + " ".join(line.text.split()) + "\n\n")
        elif prev is None:
            out.append(line.text)
        else:
            gap = line.top - prev.bottom
            # A new paragraph after a gap taller than a line, or when the flow jumps up (next column).
            out.append(("\n\n" if gap > height or gap < -height else "\n") + line.text)
        prev = None if is_heading else line
    return "".join(out)


_HYPHEN_BREAK = re.compile(r"\b([A-Za-z]+)-\n([a-z]+)\b")


def _dehyphenate(text: str, hyphenated: set[str]) -> str:
    """``"recom-\\nmend"`` → ``"recommend"``; ``"well-\\nknown"`` stays ``"well-known"`` when the
    document writes ``well-known`` elsewhere on one line."""

    def join(m: re.Match[str]) -> str:
        whole = f"{m.group(1)}-{m.group(2)}"
        return whole if whole.lower() in hyphenated else m.group(1) + m.group(2)

    return _HYPHEN_BREAK.sub(join, text)


# --------------------------------------------------------------------------- DOCX

# Word's "Title" style is not a heading to mammoth; it names the document here.
_DOCX_STYLE_MAP = "p[style-name='Title'] => h1:fresh\np[style-name='Subtitle'] => h2:fresh"


def read_docx(raw: bytes) -> Extracted:
    import mammoth

    result = mammoth.convert_to_html(io.BytesIO(raw), style_map=_DOCX_STYLE_MAP)
    # mammoth puts each table cell's text in <p>: unwrap it, so that a row stays one line of the table.
    html = re.sub(r"<t([dh])\b([^>]*)>(.*?)</t\1>", _unwrap_cell, result.value, flags=re.DOTALL)
    if not re.search(r"\w", re.sub(r"<[^>]*>", " ", html)):
        raise Unreadable("the Word file has no text")
    return Extracted(html, "html")


def _unwrap_cell(m: re.Match[str]) -> str:
    inner = re.sub(r"</p>\s*<p[^>]*>", " ", m.group(3))
    inner = re.sub(r"</?p\b[^>]*>", "", inner)
    return f"<t{m.group(1)}{m.group(2)}>{inner}</t{m.group(1)}>"


# --------------------------------------------------------------------------- front matter

_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class FrontMatter:
    end: int  # characters of the block, from the start of the text
    title: str | None = None
    tags: tuple[str, ...] = ()
    date: str | None = None


def front_matter(text: str) -> FrontMatter | None:
    """The leading YAML block of a Markdown file, or None when there is none or it is not YAML
    mapping (then the file is read as it is: a block that does not parse may be a horizontal rule)."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return None
    from frontmatter.default_handlers import YAMLHandler

    try:
        data = YAMLHandler().load(m.group(1) or "")
    except Exception:  # yaml raises many error types; a block that is not YAML is not front matter
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None
    return FrontMatter(m.end(), _title(data.get("title")), _tags(data.get("tags")), _date(data.get("date")))


def _title(value: Any) -> str | None:
    if value is None:
        return None
    title = " ".join(str(value).split())
    return title or None


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else re.split(r"[,;]", str(value))
    return tuple(t for t in (" ".join(str(v).split()) for v in items) if t)


def _date(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None if value is None else str(value)
