"""``GET /documents/{document_id}``: a corpus document as the index read it, for a citation to open.

The document is read from the corpus folder now and cleaned as the index cleaned it
(``ingest.corpus.load_document``), but only when its bytes are still those the served index read (the
manifest's SHA-256): otherwise the spans would point at other text, and the answer is ``409``. Only
files the index lists are served, by their ``document_id`` (never a path), and only regular files
under the corpus folder (no link out of it).

The JSON gives the cleaned ``text`` and, in its coordinates (characters of ``text``):
- ``pages``: where each PDF page starts and ends (empty for other formats);
- ``passage`` (with ``?chunk=<chunk_id>``): the cited passage's span, section and pages;
- ``highlights`` (with ``&claim=<answer sentence>``, repeatable): for each claim, the passage sentence
  (the index's own sentence spans) that shares the most content words with it; none when no word is
  shared. A lexical choice on purpose: it is instant, and it shows the reader the words the claim
  rests on; whether the claim is supported was decided when the answer was checked.
The text is the corpus's, untrusted: it is sent as JSON and shown by the page as text, never markup.

Not handled here: the route itself (``web/app.py``), the chat page's viewer (``web/static/chat.html``),
the MCP resource over the same documents (``web/mcp_server.py`` uses ``indexed_paths`` and
``read_document``).
"""

from __future__ import annotations

import bisect
import hashlib
from typing import TYPE_CHECKING, Any

from careerqa.errors import BadInput, CareerQAError
from careerqa.text.tokens import tokenize
from careerqa.types import Chunk, Document, document_id

if TYPE_CHECKING:
    from careerqa.engine.core import Engine

MAX_CLAIMS = 8
MAX_CLAIM_CHARS = 1000


class DocumentNotFound(CareerQAError):
    """No indexed document, or no passage of it, has that id."""

    http_status = 404


class DocumentChanged(CareerQAError):
    """The file changed (or went) since the served index read it."""

    http_status = 409


def indexed_paths(engine: Engine) -> list[str]:
    """The corpus paths the served index holds, sorted."""
    manifest = engine.view().store.manifest
    return sorted(manifest.files) if manifest is not None else []


def read_document(engine: Engine, wanted: str) -> Document:
    """The indexed document whose ``document_id`` is ``wanted``, read and cleaned now."""
    from careerqa.ingest.corpus import MAX_FILE_BYTES, load_document

    manifest = engine.view().store.manifest
    files = manifest.files if manifest is not None else {}
    path = next((p for p in sorted(files) if document_id(p) == wanted), None)
    if path is None:
        raise DocumentNotFound(f"no document {wanted!r} in the index")
    root = engine.settings.corpus_dir.resolve()
    file = root / path
    if file.is_symlink() or not file.resolve().is_relative_to(root) or not file.is_file():
        raise DocumentChanged(f"{path} is no longer a file in the corpus folder: reindex")
    raw = file.read_bytes()
    if len(raw) > MAX_FILE_BYTES:
        raise BadInput(f"{path} is over the {MAX_FILE_BYTES // 2**20} MiB limit for one file")
    if hashlib.sha256(raw).hexdigest() != files[path].sha256:
        raise DocumentChanged(f"{path} changed since the index read it: reindex to open its citations")
    return load_document(path, raw)


def document_view(engine: Engine, wanted: str, chunk_id: str | None, claims: list[str]) -> dict[str, Any]:
    """The JSON of ``GET /documents/{wanted}`` (see the module docstring)."""
    doc = read_document(engine, wanted)
    body: dict[str, Any] = {
        "document_id": wanted,
        "source": doc.path,
        "kind": doc.kind,
        "title": doc.title,
        "index_version": engine.view().version,
        "text": doc.text,
        "pages": _pages(doc),
        "passage": None,
        "highlights": [],
    }
    if chunk_id is None:
        return body
    chunk = engine.view().store.chunks.get(chunk_id)
    if chunk is None or chunk.source != doc.path:
        raise DocumentNotFound(f"no passage {chunk_id!r} in {doc.path}")
    start, end = _cleaned_span(doc, chunk.start, chunk.end)
    body["passage"] = {
        "chunk_id": chunk.chunk_id,
        "section": chunk.section,
        "start": start,
        "end": end,
        "page": chunk.page,
        "page_end": chunk.page_end,
    }
    body["highlights"] = _highlights(doc.text, start, end, chunk, claims)
    return body


def _cleaned(doc: Document, raw_offset: int) -> int:
    """The index in ``doc.text`` of the first character at or after ``raw_offset`` of the file."""
    if not doc.offsets:
        return min(raw_offset, len(doc.text))
    return min(bisect.bisect_left(doc.offsets, raw_offset), len(doc.text))


def _cleaned_span(doc: Document, raw_start: int, raw_end: int) -> tuple[int, int]:
    start = _cleaned(doc, raw_start)
    return start, max(start, _cleaned(doc, raw_end))


def _pages(doc: Document) -> list[dict[str, int]]:
    starts = [_cleaned(doc, offset) for offset in doc.pages]
    if not starts:
        return []
    ends = starts[1:] + [len(doc.text)]
    return [{"page": n, "start": s, "end": e} for n, (s, e) in enumerate(zip(starts, ends, strict=True), 1)]


def _highlights(text: str, start: int, end: int, chunk: Chunk, claims: list[str]) -> list[dict[str, int]]:
    """For each claim, the passage sentence sharing the most content words with it (first on a tie),
    as a span of the document's text; a sentence is given once."""
    shown = text[start:end]
    sentences = []
    for a, b in chunk.sentence_spans:
        piece = chunk.text[a:b].strip()
        at = shown.find(piece) if piece else -1
        if at >= 0:  # the chunk's text may carry its title; place each sentence in the document
            sentences.append((start + at, start + at + len(piece), set(tokenize(piece))))
    chosen: list[tuple[int, int]] = []
    for claim in claims:
        words = set(tokenize(claim))
        best = max(sentences, key=lambda s: len(words & s[2]), default=None)
        if best is not None and words & best[2] and (best[0], best[1]) not in chosen:
            chosen.append((best[0], best[1]))
    return [{"start": a, "end": b} for a, b in sorted(chosen)]
