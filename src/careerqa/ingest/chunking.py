"""Split a cleaned ``Document`` into ``Chunk``s that follow its headings, lists, tables and FAQ pairs.

Pure functions: the same document always gives the same chunks. A chunk is a contiguous slice of
``Document.text``; together the chunks cover every non-blank character of it.

What one line is (a title, a question, a list item, a table row, code) is decided by ``text/lines.py``.
Not handled here: nested Markdown structure beyond "a ``#`` heading starts a section" (setext
``===`` headings, HTML inside Markdown and block quotes are treated as plain paragraphs), token
counts (sizes are in whitespace-separated words), overlap between chunks, and merging across
headings or FAQ pairs (a short section stays a short chunk).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

from careerqa.text.lines import (
    FAQ_TITLES,
    LIST_ITEM,
    TABLE_ROW,
    TERMINAL,
    is_title_like,
    iter_lines,
    line_kind,
    question_text,
)
from careerqa.text.sentences import sentence_spans
from careerqa.types import Chunk, Document

CHUNKER_VERSION = "1"

_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


class ChunkSpan(NamedTuple):
    """Where a chunk lies in the cleaned text, before it becomes a ``Chunk``."""

    section: str
    kind: str
    start: int
    end: int


@dataclass
class _Block:
    kind: str  # "heading", "question", "text", "list", "table", "code"
    start: int
    end: int
    title: str = ""


@dataclass
class _Piece:
    start: int
    end: int
    words: int
    kinds: Counter[str] = field(default_factory=Counter)

    def join(self, other: _Piece) -> _Piece:
        return _Piece(self.start, other.end, self.words + other.words, self.kinds + other.kinds)


@dataclass
class _Group:
    title: str
    faq: bool
    blocks: list[_Block] = field(default_factory=list)


def chunk_id(source: str, section: str, text: str) -> str:
    """Content-derived id: the same passage in the same place always gets the same id."""
    return hashlib.sha256(f"{source}\n{section}\n{text}".encode()).hexdigest()[:16]


def chunk_document(doc: Document, min_words: int = 60, max_words: int = 250) -> list[Chunk]:
    chunks: list[Chunk] = []
    for span in chunk_spans(doc, min_words, max_words):
        text = doc.text[span.start : span.end]
        start, end = doc.raw_span(span.start, span.end)
        # The title is embedded with the passage, so a new title is a new chunk (one without, as before).
        placed = f"{doc.title}\n{span.section}" if doc.title else span.section
        chunks.append(
            Chunk(
                chunk_id=chunk_id(doc.path, placed, text),
                source=doc.path,
                section=span.section,
                text=text,
                start=start,
                end=end,
                kind=span.kind,
                page=doc.page_of(start),
                page_end=doc.page_of(max(start, end - 1)),
                title=doc.title,
                tags=doc.tags,
                date=doc.date,
            )
        )
    return chunks


def chunk_spans(doc: Document, min_words: int = 60, max_words: int = 250) -> list[ChunkSpan]:
    """The chunks of ``doc`` as spans of its cleaned text (``chunk_document`` without the raw mapping)."""
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    text = doc.text
    blocks = _markdown_blocks(text) if doc.kind in ("markdown", "html") else _text_blocks(text)
    spans: list[ChunkSpan] = []
    for group in _groups(text, blocks, doc.title or _pretty_stem(doc.path)):
        if group.faq:
            spans.append(ChunkSpan(group.title, "faq", group.blocks[0].start, group.blocks[-1].end))
            continue
        for piece in _pack_group(text, group.blocks, min_words, max_words):
            spans.append(ChunkSpan(group.title, _dominant(piece.kinds), piece.start, piece.end))
    return spans


def _pretty_stem(path: str) -> str:
    return re.sub(r"[-_\s]+", " ", PurePosixPath(path).stem).strip()


def _words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- blocks


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _text_blocks(text: str) -> list[_Block]:
    """Plain text: one block per paragraph line (hard-wrapped lines are joined), list or table run."""
    blocks: list[_Block] = []
    prev_kind = "blank"  # of the previous line
    prev_terminal = True
    in_title_run = False
    for start, end in iter_lines(text):
        line = text[start:end]
        if not line.strip():
            prev_kind, prev_terminal, in_title_run = "blank", True, False
            continue
        start, end = _strip_span(text, start, end)
        line = text[start:end]
        boundary = prev_kind != "text" or prev_terminal
        if line.strip().lower() in FAQ_TITLES and boundary:
            blocks.append(_Block("heading", start, end, line.strip()))
            kind, in_title_run = "heading", True
        elif boundary and is_title_like(line):
            if in_title_run:  # "More Articles" followed by article titles: the titles are its body
                _extend(blocks, "list", start, end, same_kind_only=True)
            else:
                blocks.append(_Block("heading", start, end, line))
            kind, in_title_run = "heading", True
        elif boundary and (question := question_text(line)) is not None:
            blocks.append(_Block("question", start, end, question))
            kind, in_title_run = "text", False
        else:
            kind, in_title_run = line_kind(line), False
            if kind == "text" and prev_kind == "text" and not prev_terminal:
                blocks[-1].end = end  # a hard-wrapped paragraph continues
            else:
                _extend(blocks, kind, start, end, same_kind_only=kind != "text")
        prev_kind, prev_terminal = kind, bool(TERMINAL.search(line))
    return blocks


def _extend(blocks: list[_Block], kind: str, start: int, end: int, same_kind_only: bool) -> None:
    """Append a line as a block, or grow the previous block of the same kind (lists, tables, code)."""
    if same_kind_only and blocks and blocks[-1].kind == kind and blocks[-1].end < start:
        blocks[-1].end = end
    else:
        blocks.append(_Block(kind, start, end))


def _markdown_blocks(text: str) -> list[_Block]:
    """Markdown (and stripped HTML): ``#`` headings, fenced code, lists, tables, paragraphs."""
    blocks: list[_Block] = []
    lines = list(iter_lines(text))
    i = 0
    prev_kind = "blank"
    while i < len(lines):
        start, end = lines[i]
        line = text[start:end]
        if not line.strip():
            prev_kind = "blank"
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            j = i + 1
            while j < len(lines) and not text[lines[j][0] : lines[j][1]].strip().startswith(fence.group(1)):
                j += 1
            last = min(j, len(lines) - 1)
            blocks.append(_Block("code", *_strip_span(text, start, lines[last][1])))
            prev_kind = "code"
            i = last + 1
            continue
        span = _strip_span(text, start, end)
        heading = _MD_HEADING.match(line.strip())
        if heading:
            blocks.append(_Block("heading", *span, heading.group(1)))
            kind = "heading"
        elif LIST_ITEM.match(line) or (prev_kind == "list" and line[:1].isspace()):
            kind = "list"
            _extend(blocks, kind, *span, same_kind_only=True)
        elif TABLE_ROW.search(line):
            kind = "table"
            _extend(blocks, kind, *span, same_kind_only=True)
        elif prev_kind != "text" and (question := question_text(line)) is not None:
            blocks.append(_Block("question", *span, question))
            kind = "question"
        else:
            kind = "text"
            if prev_kind == "text":
                blocks[-1].end = span[1]
            else:
                blocks.append(_Block("text", *span))
        prev_kind = kind
        i += 1
    return blocks


# --------------------------------------------------------------------------- groups


def _groups(text: str, blocks: list[_Block], intro_title: str) -> list[_Group]:
    """Sections (split at headings) and FAQ pairs (a question and its answer, never split)."""
    groups: list[_Group] = [_Group(intro_title, faq=False)]
    faq_mode = False
    section_title = intro_title
    # Blocks an open FAQ pair still takes as its answer: None for "until the next question or
    # heading" (FAQ mode, question headings); a count for a lone question in ordinary prose.
    answer_left: int | None = None
    for index, block in enumerate(blocks):
        if block.kind == "heading":
            is_question = block.title.endswith("?")
            faq_mode = block.title.lower().rstrip(":") in FAQ_TITLES or (faq_mode and is_question)
            section_title = block.title
            groups.append(_Group(block.title, faq=is_question, blocks=[block]))
            answer_left = None
            continue
        if block.kind == "question":
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if faq_mode or (following is not None and following.kind in ("text", "list", "code")):
                groups.append(_Group(block.title, faq=True, blocks=[block]))
                answer_left = None if faq_mode else 1
                continue
            block.kind = "text"
        current = groups[-1]
        if current.faq and answer_left == 0:  # a lone question has had its answer
            current = _Group(section_title, faq=False)
            groups.append(current)
        current.blocks.append(block)
        if current.faq and answer_left:
            # An answer that ends "...:" also takes the list that follows it.
            answer_left = 1 if block.kind == "text" and text[block.end - 1] == ":" else 0
    return [g for g in groups if g.blocks]


# --------------------------------------------------------------------------- packing


def _pack_group(text: str, blocks: list[_Block], min_words: int, max_words: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    pending_heading: _Piece | None = None
    for block in blocks:
        piece = _Piece(block.start, block.end, _words(text[block.start : block.end]), Counter())
        piece.kinds[block.kind] = piece.words
        if block.kind == "heading":
            if pending_heading is not None:
                pieces.append(pending_heading)
            pending_heading = piece
            continue
        budget = max_words - (pending_heading.words if pending_heading else 0)
        parts = _split_block(text, block, piece, max(budget, 1)) if piece.words > budget else [piece]
        if pending_heading is not None:
            parts[0] = pending_heading.join(parts[0])
            pending_heading = None
        # Keep a list, table or code block with the paragraph that introduces it ("...include:").
        if (
            pieces
            and block.kind in ("list", "table", "code")
            and text[pieces[-1].end - 1] == ":"
            and pieces[-1].words + parts[0].words <= max_words
        ):
            parts[0] = pieces.pop().join(parts[0])
        pieces.extend(parts)
    if pending_heading is not None:
        pieces.append(pending_heading)
    return _merge_small(_pack(pieces, min_words, max_words), min_words, max_words)


def _split_block(text: str, block: _Block, piece: _Piece, max_words: int) -> list[_Piece]:
    """A block over the size limit, cut at sentences (paragraphs) or lines (lists, tables)."""
    if block.kind == "code":
        return [piece]
    if block.kind in ("list", "table"):
        cuts = [m.end() for m in re.finditer(r"\n", text[block.start : block.end])]
    else:  # a paragraph's line breaks are hard wraps: its sentences end at punctuation only
        cuts = [start for start, _end in sentence_spans(text[block.start : block.end], lines=False)[1:]]
    bounds = [0, *cuts, block.end - block.start]
    parts: list[_Piece] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        start, end = _strip_span(text, block.start + a, block.start + b)
        if start < end:
            words = _words(text[start:end])
            parts.append(_Piece(start, end, words, Counter({block.kind: words})))
    return _pack(parts, 1, max_words) if parts else [piece]


def _pack(pieces: list[_Piece], min_words: int, max_words: int) -> list[_Piece]:
    """Consecutive pieces into chunks of at most ``max_words``, balanced around an even share."""
    total = sum(p.words for p in pieces)
    if not pieces:
        return []
    target = total / max(1, math.ceil(total / max_words))
    chunks: list[_Piece] = []
    current: _Piece | None = None
    for piece in pieces:
        if current is not None and (
            current.words + piece.words > max_words
            or (current.words >= min_words and current.words + piece.words / 2 > target)
        ):
            chunks.append(current)
            current = None
        current = piece if current is None else current.join(piece)
    if current is not None:
        chunks.append(current)
    return chunks


def _merge_small(chunks: list[_Piece], min_words: int, max_words: int) -> list[_Piece]:
    """Merge a chunk under ``min_words`` into its smaller neighbour while the result fits."""
    chunks = list(chunks)
    merged = True
    while merged:
        merged = False
        for i, chunk in enumerate(chunks):
            if chunk.words >= min_words:
                continue
            options = [j for j in (i - 1, i + 1) if 0 <= j < len(chunks)]
            options = [j for j in options if chunks[j].words + chunk.words <= max_words]
            if not options:
                continue
            j = min(options, key=lambda k: chunks[k].words)
            a, b = min(i, j), max(i, j)
            chunks[a : b + 1] = [chunks[a].join(chunks[b])]
            merged = True
            break
    return chunks


def _dominant(kinds: Counter[str]) -> str:
    content = [(words, kind) for kind, words in kinds.items() if kind not in ("heading", "question")]
    if not content:
        return "text"
    return max(content, key=lambda item: (item[0], item[1] == "text"))[1]
