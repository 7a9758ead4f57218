"""Plain, frozen data objects passed between the modules."""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field

from careerqa.text.sentences import passage_spans


@dataclass(frozen=True)
class Flag:
    """A passage of a corpus file left out of the index because it reads as instructions to the assistant
    or a model (``ingest/injection.py``): where it starts, the rule that fired, a short excerpt."""

    line: int  # 1-based, in the file (PDF and Word: in the text read from it)
    rule: str
    excerpt: str
    page: int | None = None  # PDFs only

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"line": self.line, "rule": self.rule, "excerpt": self.excerpt}
        if self.page is not None:
            out["page"] = self.page
        return out


@dataclass(frozen=True)
class Document:
    """One corpus file after cleaning.

    ``text`` is the cleaned text; ``offsets[i]`` is the index in the raw file of ``text[i]``
    (with one extra entry for the end), so spans found in ``text`` map back to the file.
    """

    path: str  # relative to the corpus root, with forward slashes
    sha256: str  # of the raw file bytes
    kind: str  # "text", "markdown" or "html"
    text: str
    offsets: tuple[int, ...] = field(repr=False, compare=False, default=())
    # Offsets (into the raw text, as ``offsets`` count) where each page starts: PDFs only.
    pages: tuple[int, ...] = field(repr=False, default=())
    title: str | None = None  # from a Markdown file's front matter
    tags: tuple[str, ...] = ()
    date: str | None = None
    notes: tuple[str, ...] = field(repr=False, compare=False, default=())  # reader warnings (empty pages)
    # Passages left out of ``text`` because they read as instructions to a model (``ingest/injection.py``).
    flags: tuple[Flag, ...] = field(repr=False, compare=False, default=())

    def page_of(self, raw_offset: int) -> int | None:
        """The 1-based page holding ``raw_offset``, or None for a document without pages."""
        if not self.pages:
            return None
        return max(1, bisect.bisect_right(self.pages, raw_offset))

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of the cleaned text to the raw file."""
        if not self.offsets:
            return start, end
        raw_end = self.offsets[end - 1] + 1 if end > start else self.offsets[start]
        return self.offsets[start], raw_end


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: the unit that is embedded, retrieved and cited."""

    chunk_id: str  # derived from source, section and text
    source: str
    section: str
    text: str
    start: int  # character span in the raw source file
    end: int
    kind: str = "text"  # "text", "list", "table", "faq", "code"
    # Where the document says so: PDF pages the passage spans, and a Markdown file's front matter.
    page: int | None = None
    page_end: int | None = None
    title: str | None = None
    tags: tuple[str, ...] = ()
    date: str | None = None
    # The (start, end) spans in ``text`` of the sentences the index embeds one by one
    # (``sentences.passage_spans``). Stored with the chunk, so a loaded index's sentence ids never
    # depend on the splitter of the careerqa that reads it; found here when a chunk is made without.
    sentence_spans: tuple[tuple[int, int], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.tags, list):  # read back from the JSON chunk table
            object.__setattr__(self, "tags", tuple(self.tags))
        spans = self.sentence_spans or passage_spans(self.text)  # pairs are lists in the JSON table
        object.__setattr__(self, "sentence_spans", tuple((a, b) for a, b in spans))

    def sentences(self) -> list[str]:
        """The texts of ``sentence_spans``, in order: what the index's sentence vectors embed."""
        return [self.text[a:b] for a, b in self.sentence_spans]

    def embedding_text(self) -> str:
        """What the embedder sees: the section title (and the document's title) give a passage context."""
        text = self.text
        if self.section and not self.text.startswith(self.section):
            text = f"{self.section}\n{text}"
        if self.title and self.title != self.section:
            text = f"{self.title}\n{text}"
        return text

    def label(self) -> str:
        """How a citation names the passage: ``guide.pdf › p. 4 › Section``."""
        parts = [self.source]
        if self.page is not None:
            end = self.page_end or self.page
            parts.append(f"p. {self.page}" if end == self.page else f"pp. {self.page}–{end}")
        if self.section:
            parts.append(self.section)
        return " › ".join(parts)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by retrieval, with its fused score and the scores behind it."""

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    rank: int = 0


@dataclass(frozen=True)
class Citation:
    """A passage an answer cites, numbered as the answer's ``[n]`` markers are."""

    n: int
    hit: Hit


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...]
    timings_ms: dict[str, float]
    standalone_question: str | None = None
    abstain_reason: str | None = None
    sentences_total: int = 0
    sentences_supported: int = 0
    draft: str | None = None  # the model's text before verification (markers renumbered)
    route: str = "generated"  # "generated", "faq" (the corpus's own FAQ answer) or "cache"
    # The model's own counts for the answer's prompt and completion ({} when nothing was generated).
    tokens: dict[str, int] = field(default_factory=dict)
    rules: tuple[str, ...] = ()  # the named rules that changed this answer's course (``answer/rules.py``)


def document_id(path: str) -> str:
    """A corpus file's id in the API (``GET /documents/{id}``): derived from its path, never a path."""
    return hashlib.sha256(f"document\n{path}".encode()).hexdigest()[:16]


def hit_to_dict(hit: Hit, n: int | None = None) -> dict[str, object]:
    """The JSON shape of a passage, shared by ``search --json``, ``ask --json`` and the web API."""
    c = hit.chunk
    return {
        "n": hit.rank if n is None else n,
        "chunk_id": c.chunk_id,
        "document_id": document_id(c.source),
        "source": c.source,
        "section": c.section,
        "text": c.text,
        "score": hit.score,
        "dense_score": hit.dense_score,
        "span": [c.start, c.end],
        "page": c.page,
        "page_end": c.page_end,
        "label": c.label(),
        "title": c.title,
        "tags": list(c.tags),
        "date": c.date,
    }


def answer_to_dict(answer: Answer) -> dict[str, object]:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "citations": [hit_to_dict(c.hit, c.n) for c in answer.citations],
        "retrieved": [hit_to_dict(h) for h in answer.retrieved],
        "sentences": {"total": answer.sentences_total, "supported": answer.sentences_supported},
        "draft": answer.draft,
        "route": answer.route,
        "timings_ms": answer.timings_ms,
        "tokens": answer.tokens,
        "rules": list(answer.rules),
    }
