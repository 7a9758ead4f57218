"""Read the corpus folder into cleaned ``Document``s that remember where each character came from.

Text, Markdown and HTML files are read (recursively) and cleaned by ``ingest/clean.py``, so every
character of ``Document.text`` maps back to the raw file through ``Document.offsets``. Bad files never
stop the others: see ``_walk`` for what is skipped with a warning. PDF and Word files are turned into
text by ``ingest/readers.py`` first, and kept in memory by path and content hash.

Not handled here: the cleaning itself (``ingest/clean.py``), other binary formats (skipped), encodings
other than UTF-8 (skipped, never guessed). Offsets count characters of the file decoded as
``utf-8-sig`` (a byte-order mark is not counted).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from careerqa.errors import BadInput, CorpusEmpty
from careerqa.ingest.clean import clean_text
from careerqa.ingest.injection import drop_injections, flags_of
from careerqa.ingest.readers import Unreadable, extract, front_matter
from careerqa.types import Document, Flag

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
    text, offsets, flags = _without_injections(text, offsets, decoded)
    return Document(
        path=rel,
        sha256=hashlib.sha256(raw).hexdigest(),
        kind=kind,
        text=text,
        offsets=tuple(offsets),
        title=meta.title if meta else None,
        tags=meta.tags if meta else (),
        date=meta.date if meta else None,
        flags=flags,
    )


def _without_injections(
    text: str, offsets: list[int], source: str, pages: tuple[int, ...] = ()
) -> tuple[str, list[int], tuple[Flag, ...]]:
    """The cleaned text without its instruction-like passages (``ingest/injection.py``), and their flags."""
    kept, kept_offsets, found = drop_injections(text, offsets)
    return kept, kept_offsets, flags_of(found, text, offsets, source, pages)


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
    text, offsets, flags = _without_injections(text, offsets, extracted.text, extracted.pages)
    doc = Document(
        path=rel,
        sha256=sha,
        kind=extracted.kind,
        text=text,
        offsets=tuple(offsets),
        pages=extracted.pages,
        title=extracted.title,
        notes=extracted.warnings,
        flags=flags,
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
