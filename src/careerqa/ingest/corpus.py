"""Read the corpus folder into cleaned ``Document``s that remember where each character came from.

Text, Markdown and HTML files are read (recursively); cleaning is a sequence of tracked regex
substitutions, so every character of ``Document.text`` maps back to the raw file through
``Document.offsets``. Cleaning repairs only unambiguous scraping artefacts and never drops words
(of HTML, the markup, scripts and page chrome are dropped).

Bad files never stop the others: see ``_walk`` for what is skipped with a warning.

PDF and Word files are turned into text by ``ingest/readers.py`` first. Not handled here: other binary
formats (skipped), encodings other than
UTF-8 (skipped, never guessed), Markdown rendering (Markdown stays Markdown), full HTML
parsing (a regex pass that suits scraped articles, not arbitrary web pages; page chrome such as
``<nav>`` and footers is cut by ``ingest/boilerplate.py``), and the "." the
scraper put in place of ", and" (ambiguous, left as it is). Offsets count characters of the file
decoded as ``utf-8-sig`` (a byte-order mark is not counted).
"""

from __future__ import annotations

import bisect
import hashlib
import html
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from careerqa.errors import BadInput, CorpusEmpty
from careerqa.ingest.boilerplate import html_chrome_spans
from careerqa.ingest.readers import Unreadable, extract, front_matter
from careerqa.types import Document

KINDS: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    # Binary documents, turned into text by ``ingest/readers.py`` (and then cleaned as Markdown or HTML).
    ".pdf": "pdf",
    ".docx": "docx",
}
BINARY_SUFFIXES = frozenset({".pdf", ".docx"})
_BINARY_SNIFF = 8192
# Larger files are skipped with a warning: cleaning keeps one offset per character, so a 50 MB file
# would take gigabytes of memory, and a corpus document is rarely over a few hundred kilobytes.
MAX_FILE_BYTES = 5 * 2**20
MAX_DEPTH = 32  # folders below the corpus folder; deeper ones are skipped with a warning

Repl = str | Callable[[re.Match[str]], str]


# --------------------------------------------------------------------------- reading


def _walk(
    corpus_dir: Path, max_bytes: int = MAX_FILE_BYTES
) -> tuple[list[tuple[str, Path, bytes]], list[str]]:
    """Readable UTF-8 text files as ``(relative path, path, raw bytes)``, sorted; and warnings.

    Everything else is skipped with a warning, never an error: hidden files and folders, symbolic
    links (never followed, so a link can neither loop nor bring in a file from outside the folder),
    special files, unsupported types, files over ``max_bytes``, binary files, files that are not
    UTF-8, empty files, file names that are not UTF-8, unreadable files and folders deeper than
    ``MAX_DEPTH``.
    """
    if not corpus_dir.exists():
        raise CorpusEmpty(
            f"corpus folder {corpus_dir} does not exist; create it and put .txt, .md or .html files in it"
        )
    if not corpus_dir.is_dir():
        raise CorpusEmpty(f"corpus path {corpus_dir} is not a folder")
    found: list[tuple[str, Path, bytes]] = []
    warnings: list[str] = []

    def unreadable_folder(exc: OSError) -> None:
        where = _show(_rel(Path(exc.filename), corpus_dir)) if exc.filename else str(corpus_dir)
        warnings.append(f"skipped {where}/: cannot read the folder ({exc.strerror or exc})")

    for root, dirs, files in os.walk(corpus_dir, onerror=unreadable_folder):
        root_path = Path(root)
        depth = len(root_path.relative_to(corpus_dir).parts) + 1  # of the folders in ``dirs``
        keep = []
        for name in sorted(dirs):
            path = root_path / name
            rel = _show(_rel(path, corpus_dir))
            if name.startswith("."):
                warnings.append(f"skipped hidden folder {rel}/")
            elif path.is_symlink():
                warnings.append(f"skipped {rel}/: symbolic links are not followed")
            elif depth > MAX_DEPTH:
                warnings.append(f"skipped {rel}/: more than {MAX_DEPTH} folders deep")
            else:
                keep.append(name)
        dirs[:] = keep
        for name in sorted(files):
            item = _read_file(root_path / name, corpus_dir, max_bytes, warnings)
            if item is not None:
                found.append(item)
    found.sort(key=lambda item: item[0])
    return found, warnings


def _read_file(
    path: Path, corpus_dir: Path, max_bytes: int, warnings: list[str]
) -> tuple[str, Path, bytes] | None:
    """One file's ``(relative path, path, raw bytes)``, or None with a warning saying why it is skipped."""
    rel = _rel(path, corpus_dir)
    shown = _show(rel)

    def skip(reason: str) -> None:
        warnings.append(f"skipped {shown}: {reason}")

    if path.name.startswith("."):
        warnings.append(f"skipped hidden file {shown}")
        return None
    try:
        st = path.lstat()
    except OSError as exc:
        skip(f"cannot read it ({exc.strerror or exc})")
        return None
    if stat.S_ISLNK(st.st_mode):
        skip("symbolic links are not followed")
        return None
    if not stat.S_ISREG(st.st_mode):
        skip("not a regular file")
        return None
    suffix = path.suffix.lower()
    if suffix not in KINDS:
        skip(f"unsupported file type {suffix or '(no extension)'!r}")
        return None
    if shown != rel:  # a name that is not UTF-8 could not be written to the manifest
        skip("the file name is not valid UTF-8; rename it")
        return None
    if st.st_size > max_bytes:
        skip(f"{st.st_size / 2**20:.1f} MiB is over the {max_bytes / 2**20:g} MiB limit for one file")
        return None
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may have grown since lstat
    except OSError as exc:
        skip(f"cannot read it ({exc.strerror or exc})")
        return None
    if len(raw) > max_bytes:
        skip(f"over the {max_bytes / 2**20:g} MiB limit for one file")
        return None
    if suffix in BINARY_SUFFIXES:  # read by ``ingest/readers.py`` when the file is loaded
        if not raw:
            skip("empty file")
            return None
        return rel, path, raw
    if b"\x00" in raw[:_BINARY_SNIFF]:
        skip("looks like a binary file")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        skip(f"not valid UTF-8 (bad byte at offset {exc.start}); convert it to UTF-8")
        return None
    if not text.strip():
        skip("empty file")
        return None
    return rel, path, raw


def _show(rel: str) -> str:
    """``rel`` printable: bytes of a file name that are not UTF-8 appear as ``\\xNN``."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _rel(path: Path, corpus_dir: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def file_hashes(corpus_dir: Path, max_bytes: int = MAX_FILE_BYTES) -> dict[str, str]:
    """Relative path -> sha256 of the raw bytes, for the files ``load_corpus`` would read."""
    found, _ = _walk(corpus_dir, max_bytes)
    return {rel: hashlib.sha256(raw).hexdigest() for rel, _, raw in found}


def decode(raw: bytes, name: str) -> str:
    """Strict UTF-8 (a leading byte-order mark is dropped); ``BadInput`` names the bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{name} is not valid UTF-8 (bad byte at offset {exc.start}); convert it to UTF-8 and retry"
        ) from exc


def load_document(rel: str, raw: bytes) -> Document:
    """Decode and clean one file's bytes; ``rel`` is its path relative to the corpus folder.

    PDF and Word files are turned into text first (``ingest/readers.py``; ``readers.Unreadable`` when there is
    none): their offsets then count characters of that text, not bytes of the file. A Markdown file's
    front matter is left out of the text; its title, tags and date go to the ``Document``.
    """
    kind = KINDS[Path(rel).suffix.lower()]
    if kind in ("pdf", "docx"):
        return _load_binary(rel, raw)
    decoded = decode(raw, rel)
    meta = front_matter(decoded) if kind == "markdown" else None
    if meta is None:
        text, offsets = clean_text(decoded, kind)
    else:  # the block is not indexed; offsets still count from the top of the file
        text, offsets = clean_text(decoded[meta.end :], kind)
        offsets = [o + meta.end for o in offsets]
    return Document(
        path=rel,
        sha256=hashlib.sha256(raw).hexdigest(),
        kind=kind,
        text=text,
        offsets=tuple(offsets),
        title=meta.title if meta else None,
        tags=meta.tags if meta else (),
        date=meta.date if meta else None,
    )


# Every sync reads the whole corpus, and a PDF takes far longer to read than a text file: a long-running
# process (``index --watch``, ``serve``) keeps the documents it read, by path and content hash.
_BINARY_CACHE: OrderedDict[tuple[str, str], Document] = OrderedDict()
BINARY_CACHE_SIZE = 128


_BINARY_CACHE_LOCK = threading.Lock()


def _load_binary(rel: str, raw: bytes) -> Document:
    sha = hashlib.sha256(raw).hexdigest()
    with _BINARY_CACHE_LOCK:
        cached = _BINARY_CACHE.get((rel, sha))
        if cached is not None:
            _BINARY_CACHE.move_to_end((rel, sha))
            return cached
    extracted = extract(Path(rel).suffix.lower(), raw)
    text, offsets = clean_text(extracted.text, extracted.kind)
    doc = Document(
        path=rel,
        sha256=sha,
        kind=extracted.kind,
        text=text,
        offsets=tuple(offsets),
        pages=extracted.pages,
        title=extracted.title,
        notes=extracted.warnings,
    )
    with _BINARY_CACHE_LOCK:
        _BINARY_CACHE[(rel, sha)] = doc
        while len(_BINARY_CACHE) > BINARY_CACHE_SIZE:
            _BINARY_CACHE.popitem(last=False)
    return doc


def load_corpus(corpus_dir: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[list[Document], list[str]]:
    """Every readable document under ``corpus_dir`` (sorted by path) and the warnings for skipped files.

    A bad file never stops the others from loading: it is skipped with a warning (see ``_walk``).
    """
    scan = scan_corpus(corpus_dir, max_bytes)
    return scan.documents, scan.warnings


@dataclass
class CorpusScan:
    documents: list[Document]  # sorted by path
    warnings: list[str]
    hashes: dict[str, str]  # sha256 of every file read: loaded, kept or skipped
    kept: dict[str, bytes]  # files not loaded, because their sha256 is the one ``keep`` gave


def scan_corpus(
    corpus_dir: Path, max_bytes: int = MAX_FILE_BYTES, keep: Mapping[str, str] | None = None
) -> CorpusScan:
    """``load_corpus``, but a file whose sha256 is ``keep[path]`` is only hashed, not loaded: a sync
    passes the PDF and Word files its index already holds, whose reading is slow."""
    found, warnings = _walk(corpus_dir, max_bytes)
    scan = CorpusScan([], warnings, {}, {})
    for rel, _, raw in found:
        sha = hashlib.sha256(raw).hexdigest()
        scan.hashes[rel] = sha
        if keep and keep.get(rel) == sha:
            scan.kept[rel] = raw
            continue
        doc = load_or_warn(rel, raw, warnings)
        if doc is not None:
            scan.documents.append(doc)
    if not scan.documents and not scan.kept:
        skipped = "; ".join(warnings[:3]) + (f"; and {len(warnings) - 3} more" if len(warnings) > 3 else "")
        raise CorpusEmpty(
            f"corpus folder {corpus_dir} holds no readable .txt, .md, .html, .pdf or .docx documents"
            + (f" ({skipped})" if skipped else "")
        )
    return scan


def load_or_warn(rel: str, raw: bytes, warnings: list[str]) -> Document | None:
    """``load_document``, or None with a warning for a file with no text to index."""
    try:
        doc = load_document(rel, raw)
    except Unreadable as exc:
        warnings.append(f"skipped {rel}: {exc}")
        return None
    warnings.extend(f"{rel}: {note}" for note in doc.notes)
    if not doc.text.strip():
        warnings.append(f"skipped {rel}: no text left after cleaning")
        return None
    return doc


# --------------------------------------------------------------------------- tracked substitution


def _tsub(
    pattern: str | re.Pattern[str], repl: Repl, text: str, offsets: list[int], flags: int = 0
) -> tuple[str, list[int]]:
    """``re.sub`` that also rewrites ``offsets`` (one raw index per char, plus one for the end).

    Replacement characters are aligned with the matched text (case-insensitively), so kept
    characters keep their exact raw position and inserted ones take their neighbour's.
    """
    rx = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    parts: list[str] = []
    new_offsets: list[int] = []
    pos = 0
    for m in rx.finditer(text):
        old = m.group(0)
        new = repl(m) if callable(repl) else m.expand(repl)
        if new == old:
            continue
        parts.append(text[pos : m.start()])
        new_offsets.extend(offsets[pos : m.start()])
        parts.append(new)
        new_offsets.extend(_align(old, new, offsets, m.start()))
        pos = m.end()
    if pos == 0 and not parts:
        return text, offsets
    parts.append(text[pos:])
    new_offsets.extend(offsets[pos:])
    return "".join(parts), new_offsets


def _align(old: str, new: str, offsets: list[int], base: int) -> list[int]:
    if not new:
        return []
    if len(old) == len(new):
        return offsets[base : base + len(new)]
    if not old:
        return [offsets[base]] * len(new)
    last = len(old) - 1
    result: list[int] = []
    done_new = 0
    done_old = 0
    matcher = SequenceMatcher(None, old.lower(), new.lower(), autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        result.extend([offsets[base + min(done_old, last)]] * (b - done_new))
        result.extend(offsets[base + a : base + a + size])
        done_new, done_old = b + size, a + size
    return result


# --------------------------------------------------------------------------- cleaning

_CODE_START = re.compile(r"^\s*(?:import \w|from [\w.]+ import |def \w+\s*\(|class \w+\s*[(:]|try:|except\b)")
_CODE_SIGNS = ("print(", " = ", "()", "):", "return ", "self.", "==")


def looks_like_code(line: str) -> bool:
    """A line that is clearly source code (scraped code often arrives flattened into one line)."""
    if _CODE_START.match(line):
        return True
    return sum(sign in line for sign in _CODE_SIGNS) >= 2


def clean_text(raw: str, kind: str = "text") -> tuple[str, list[int]]:
    """Cleaned text and its offsets into ``raw`` (``len(text) + 1`` entries)."""
    text, offsets = raw, list(range(len(raw) + 1))
    text, offsets = _tsub(r"\r\n?", "\n", text, offsets)
    if kind == "html":
        text, offsets = _strip_html(text, offsets)
    text, offsets = _normalise_space(text, offsets)
    text, offsets = _repair_abbreviations(text, offsets)
    text, offsets = _repair_definition_list(text, offsets)
    text, offsets = _repair_code_lines(text, offsets)
    return text, offsets


def _normalise_space(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    text, offsets = _tsub(r"[\u00a0\u202f\u2007]", " ", text, offsets)
    text, offsets = _tsub(r"[\f\v\u2028\u2029]", "\n", text, offsets)
    text, offsets = _tsub(r"[ \t]+(?=\n|\Z)", "", text, offsets)  # trailing spaces
    text, offsets = _tsub(r"(?<=\S)(?: {2,}|[ \t]*\t[ \t]*)", " ", text, offsets)  # runs inside a line
    text, offsets = _tsub(r"\n{3,}", "\n\n", text, offsets)
    return _tsub(r"\A\s+|\s+\Z", "", text, offsets)


def _repair_abbreviations(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """``"e. G. , fill"`` -> ``"e.g., fill"``; ``"e. G. spam"`` -> ``"e.g. spam"`` (also i.e.)."""

    def fix(m: re.Match[str]) -> str:
        first, second = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return f"{first}.{second.lower()}."

    pattern = r"(?<![\w.])(?:([eE])\. ?([gG])|([iI])\. ?([eE]))\.(?: (?=,))?"
    return _tsub(pattern, fix, text, offsets)


# A term line of a scraped definition list: short, no sentence punctuation.
_TERM = r"[A-Za-z0-9][^\n:.!?;]{0,40}"
_TERMS = rf"{_TERM}(?:\n{_TERM}){{0,2}}"


def _repair_definition_list(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """``"...libraries. -\\nPandas\\n: For data"`` -> ``"...libraries.\\n- Pandas: For data"``."""
    # The " -" dangling at the end of a description is the dash of the next item.
    text, offsets = _tsub(rf"(?<=\S) -\n(?={_TERMS}\n: )", "\n-\n", text, offsets)

    def join(m: re.Match[str]) -> str:
        return "- " + m.group(1).replace("\n", " ") + ": "

    text, offsets = _tsub(rf"(?m)^-\n({_TERMS})\n: ", join, text, offsets)

    # "...networks. - Other Languages\n- Software..." : a plain item glued after a repaired one.
    def split_item(m: re.Match[str]) -> str:
        line_start = m.string.rfind("\n", 0, m.start()) + 1
        if re.match(r"- [^\n:]{1,60}: ", m.string[line_start : m.start()]):
            return "\n- "
        return m.group(0)

    text, offsets = _tsub(r"(?<=[.!?]) - (?=[A-Z][^\n.!?:]{0,60}\n- )", split_item, text, offsets)

    # "TensorFlow andPyTorch" -> "TensorFlow and PyTorch" (not in code, where andThen is a name).
    def unglue(m: re.Match[str]) -> str:
        if looks_like_code(_line_at(m.string, m.start())):
            return m.group(0)
        return m.group(1) + " "

    return _tsub(r"(?<!\S)(and|or)(?=[A-Z][a-z]\w*)", unglue, text, offsets)


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


_ATTRIBUTE = re.compile(r"(?<=[\w)\]])\. ([A-Z]\w*)")


def _repair_code_lines(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """Inside code lines, ``df. Head()`` -> ``df.head()`` (the scraper capitalised after ". ")."""
    line_info: dict[int, tuple[bool, set[tuple[str, str]]]] = {}

    def clear(m: re.Match[str]) -> bool:
        word = m.group(1)
        follower = m.string[m.end() : m.end() + 1]
        return "_" in word or (follower != "" and follower in "([.'\":")

    def ident_before(m: re.Match[str]) -> str:
        found = re.search(r"\w+$", m.string[: m.start()])
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
        is_code, pairs = info(line_start, _line_at(m.string, m.start()))
        if is_code and (clear(m) or (ident_before(m), m.group(1)) in pairs):
            word = m.group(1)
            return "." + word[0].lower() + word[1:]
        return m.group(0)

    return _tsub(_ATTRIBUTE, fix, text, offsets)


# --------------------------------------------------------------------------- HTML

_BLOCK_TAGS = (
    "p|div|br|hr|tr|section|article|header|footer|nav|main|aside|ul|ol|dl|dt|dd|table|thead|tbody|tfoot"
    "|blockquote|figure|figcaption|form|fieldset|details|summary|caption"
)


def _strip_html(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """Markup -> Markdown-like text: headings become ``#`` lines, list items ``- `` lines."""
    dotall = re.IGNORECASE | re.DOTALL
    text, offsets = _tsub(r"<!--.*?-->", "", text, offsets, re.DOTALL)
    text, offsets = _tsub(r"<!DOCTYPE[^>]*>", "", text, offsets, re.IGNORECASE)
    text, offsets = _tsub(
        r"<(script|style|head|noscript|template|svg)\b[^>]*>.*?</\1\s*>", "", text, offsets, dotall
    )
    text, offsets = _cut(text, offsets, html_chrome_spans(text))  # nav, footer, cookie banners, ...

    def heading(m: re.Match[str]) -> str:
        inner = re.sub(r"<br\s*/?>", " ", m.group(2), flags=re.IGNORECASE)
        inner = re.sub(r"\s+", " ", inner).strip()
        return "\n\n" + "#" * int(m.group(1)) + " " + inner + "\n\n"

    text, offsets = _tsub(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", heading, text, offsets, dotall)
    text, offsets = _tsub(r"\s*<li\b[^>]*>\s*", "\n- ", text, offsets, re.IGNORECASE)
    text, offsets = _tsub(r"\s*</li\s*>", "", text, offsets, re.IGNORECASE)
    text, offsets = _tsub(r"<pre\b[^>]*>", "\n```\n", text, offsets, re.IGNORECASE)
    text, offsets = _tsub(r"</pre\s*>", "\n```\n", text, offsets, re.IGNORECASE)
    text, offsets = _tsub(r"</t[dh]\s*>", " | ", text, offsets, re.IGNORECASE)
    block_run = rf"(?:\s*</?(?:{_BLOCK_TAGS})\b[^>]*>)+\s*"
    text, offsets = _tsub(block_run, _block_break, text, offsets, re.IGNORECASE)
    text, offsets = _tsub(r"</?[A-Za-z][^>]*>", "", text, offsets)
    text, offsets = _tsub(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);", _unescape, text, offsets)
    # Indentation in HTML source means nothing; drop it so Markdown rules apply (not inside <pre>).
    fences = [m.start() for m in re.finditer(r"\n```\n", text)]

    def unindent(m: re.Match[str]) -> str:
        inside_pre = bisect.bisect_left(fences, m.start()) % 2 == 1
        return m.group(0) if inside_pre else ""

    return _tsub(r"(?m)^[ \t]+", unindent, text, offsets)


def _cut(text: str, offsets: list[int], spans: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """``text`` without the ``[start, end)`` spans (sorted, disjoint), with its offsets."""
    if not spans:
        return text, offsets
    parts: list[str] = []
    kept: list[int] = []
    pos = 0
    for start, end in spans:
        parts.append(text[pos:start])
        kept.extend(offsets[pos:start])
        pos = end
    parts.append(text[pos:])
    kept.extend(offsets[pos:])
    return "".join(parts), kept


def _block_break(m: re.Match[str]) -> str:
    # A line break between rows and after <br>; a blank line (a new paragraph) around other blocks.
    names = {name.lower() for name in re.findall(r"</?([A-Za-z0-9]+)", m.group(0))}
    return "\n" if names <= {"br", "tr"} else "\n\n"


def _unescape(m: re.Match[str]) -> str:
    return html.unescape(m.group(0))


def iter_lines(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every line of ``text`` (without its newline)."""
    pos = 0
    while pos <= len(text):
        end = text.find("\n", pos)
        if end < 0:
            end = len(text)
        yield pos, end
        pos = end + 1
