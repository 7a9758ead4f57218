"""Turn a PDF or Word file into Markdown-like text (with the offset where each PDF page starts), and
split a Markdown file's front matter from its body.

- **PDF** (pdfminer.six): lines in reading order from its layout analysis, headings from font size
  (a line set clearly larger than the body text), running headers and footers dropped (a line near the
  top or bottom edge that repeats on most pages, digits ignored), words hyphenated at a line end joined
  again (unless the document spells the word with its hyphen elsewhere); a line that is the title of
  an outline entry (a bookmark) is a heading too, whatever its font. Why pdfminer.six and not pypdf:
  ``bench/bench_pdf_readers.py`` on generated layouts: both keep the words, but pypdf follows the content
  stream, so a two-column page written row by row comes out with its columns interleaved; pdfminer.six
  groups the text by position. Characters nobody sees (render mode 3, white on a white page, under 1 pt,
  off the page) are left out by ``ingest/pdf_hidden.py``, with a note that counts them. An encrypted
  PDF that needs a password, and one without a text layer
  (a scan: no OCR engine is available here), raise ``Unreadable``.
- **DOCX** (python-docx): paragraphs and tables in document order, as Markdown that keeps headings,
  lists and tables. mammoth (Word → HTML, then the corpus's HTML path) finds the same structure on the
  generated files but parses the XML in pure Python: ~0.45 s for a one-page file against ~0.03 s
  (``bench/bench_pdf_readers.py``). Runs with Word's hidden-text property (``w:vanish``, set on the
  run or by its character or paragraph style) are left out, with a note. Text boxes, footnotes and
  comments are not read.
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
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from careerqa.errors import CareerQAError

BINARY_KINDS = {".pdf": "pdf", ".docx": "docx"}
# Bump when what counts as hidden text changes, in HTML (``ingest/hidden_html.py``), PDF
# (``ingest/pdf_hidden.py``) or Word files (``_DocxVisible``): it is part of the index's chunking
# parameters, so an index built by other rules reads its HTML, PDF and Word files again.
HIDDEN_TEXT_VERSION = "1"

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
    kind: str  # the cleaner's kind: "markdown"
    pages: tuple[int, ...] = ()  # offset in ``text`` where each page starts (PDF only)
    warnings: tuple[str, ...] = field(default=())
    title: str | None = None  # a Word file's Title paragraph (or its document properties' title)


def extract(suffix: str, raw: bytes) -> Extracted:
    """The text of a ``.pdf`` or ``.docx`` file's bytes; ``Unreadable`` says why there is none."""
    kind = BINARY_KINDS[suffix]
    try:
        return read_pdf(raw) if kind == "pdf" else read_docx(raw)
    except Unreadable:
        raise
    except ImportError as exc:
        package = "pdfminer.six==20260107" if kind == "pdf" else "python-docx==1.2.0"
        raise Unreadable(f"reading {kind.upper()} files needs a package: pip install '{package}'") from exc
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
    from pdfminer.layout import LAParams, LTChar, LTTextBox
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError

    from careerqa.ingest.pdf_hidden import visible_pages

    pages: list[list[_Line]] = []
    outline = _outline_titles(raw)
    hidden: dict[int, int] = {}  # page number -> invisible characters left out
    try:
        for page in visible_pages(raw, LAParams(), hidden):
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
    extracted = _pdf_text(pages, outline)
    if hidden:
        note = _hidden_note(sum(hidden.values()), "invisible or white-on-white", sorted(hidden))
        extracted = replace(extracted, warnings=(*extracted.warnings, note))
    return extracted


def _hidden_note(count: int, how: str, pages: list[int] | None = None) -> str:
    where = f" on page(s) {', '.join(map(str, pages))}" if pages else ""
    return f"left out {count} characters of hidden text ({how}){where}"


def _outline_titles(raw: bytes) -> set[str]:
    """The titles in the PDF's outline (bookmarks), normalised; empty when it has none."""
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfparser import PDFParser

    try:
        document = PDFDocument(PDFParser(io.BytesIO(raw)))
        return {_heading_key(str(entry[1])) for entry in document.get_outlines() if entry[1]}
    except Exception:  # no outline (PDFNoOutlines), or one that does not parse: font cues only
        return set()


def _heading_key(text: str) -> str:
    return " ".join(text.lower().split())


def _edge_marks(lines: list[_Line], height: float) -> list[_Line]:
    """Mark the lines in the edge bands; whether they repeat is decided across pages."""
    for line in lines:
        line.edge = line.top < EDGE * height or line.bottom > (1 - EDGE) * height
    return lines


def _chrome_key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _pdf_text(pages: list[list[_Line]], outline: set[str]) -> Extracted:
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

    page_texts = [_page_text(page, body_size, outline) for page in body]
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


def _page_text(lines: list[_Line], body_size: float, outline: set[str]) -> str:
    out: list[str] = []
    prev: _Line | None = None
    for line in lines:
        height = line.height or line.size
        words = len(line.text.split())
        larger = body_size > 0 and line.size >= HEADING_SIZE_RATIO * body_size
        is_heading = (larger or _heading_key(line.text) in outline) and words <= HEADING_MAX_WORDS
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

_HEADING_STYLE = re.compile(r"(?:Heading|Überschrift|Titre)\s*(\d)", re.IGNORECASE)


def read_docx(raw: bytes) -> Extracted:
    """Paragraphs and tables in document order, as Markdown: a first paragraph in Word's Title style
    names the document; Heading styles become ``#`` headings, list paragraphs (a List style or Word
    numbering) ``- `` items, table rows ``| a | b |`` lines."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(raw))
    visible = _DocxVisible(document)
    blocks: list[str] = []
    title = None
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            style = paragraph.style.name if paragraph.style is not None else ""
            if title is None and not blocks and style == "Title":
                title = " ".join(visible.text(paragraph).split()) or None  # names the document
                continue
            line = _docx_paragraph(paragraph, visible.text(paragraph))
            if line:
                blocks.append(line)
        elif tag == "tbl":
            rows = []
            for row in Table(element, document).rows:
                cells = [
                    " ".join("\n".join(map(visible.text, cell.paragraphs)).split()) for cell in row.cells
                ]
                if any(cells):
                    rows.append("| " + " | ".join(cells) + " |")
            if rows:
                blocks.append("\n".join(rows))
    # The items of one list stay on consecutive lines; every other block is a paragraph of its own.
    parts: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            in_list = block.startswith("- ") and blocks[i - 1].startswith("- ")
            parts.append("\n" if in_list else "\n\n")
        parts.append(block)
    text = "".join(parts)
    if not re.search(r"\w", text):
        raise Unreadable("the Word file has no text")
    notes = (_hidden_note(visible.hidden, "Word's hidden-text formatting"),) if visible.hidden else ()
    title = title or document.core_properties.title or None
    return Extracted(text + "\n", "markdown", warnings=notes, title=title)


class _DocxVisible:
    """The text of a Word paragraph without its hidden runs (``w:vanish``: set on the run, else by its
    character style, else by the paragraph's style, each with the styles it is based on; the nearest
    setting wins). Counts the hidden characters left out."""

    def __init__(self, document: Any) -> None:
        self.hidden = 0
        self.styles: dict[str, bool | None] = {}
        for style in document.styles:
            base, value = style, None
            for _ in range(16):  # a chain of based-on styles (a loop in a damaged file stops)
                font = getattr(base, "font", None)
                value = font.hidden if font is not None else None
                base = getattr(base, "base_style", None)
                if value is not None or base is None:
                    break
            self.styles[style.style_id] = value

    def text(self, paragraph: Any) -> str:
        style = paragraph.style.style_id if paragraph.style is not None else None
        inherited = bool(self.styles.get(style)) if style else False
        parts = []
        for element in paragraph._p.xpath("w:r | w:hyperlink"):
            for run in element.xpath("w:r") if element.tag.endswith("}hyperlink") else [element]:
                if self._hidden(run, inherited):
                    self.hidden += len(run.text)
                else:
                    parts.append(run.text)
        return "".join(parts)

    def _hidden(self, run: Any, inherited: bool) -> bool:
        r_pr = run.rPr
        if r_pr is None:
            return inherited
        if r_pr.vanish is not None:
            return bool(r_pr.vanish.val)
        by_style = self.styles.get(r_pr.rStyle.val) if r_pr.rStyle is not None else None
        return inherited if by_style is None else by_style


def _docx_paragraph(paragraph: Any, text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    style = paragraph.style.name if paragraph.style is not None else ""
    if style in ("Title", "Subtitle"):
        return "# " + text
    heading = _HEADING_STYLE.match(style)
    if heading:
        return "#" * min(6, max(1, int(heading.group(1)))) + " " + text
    p_pr = paragraph._p.pPr
    if style.startswith("List") or (p_pr is not None and p_pr.numPr is not None):
        return "- " + text
    return text


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
