"""Headings a scraper flattened into a list, put back in front of the paragraphs they headed.

Scraped pages often lose their sub-headings this way: the page's

    <h3>Supervised Learning</h3><p>This involves training a model on labeled data…</p>
    <h3>Reinforcement Learning</h3><p>An agent learns to make decisions…</p>

arrives as a list of bare titles (``- Supervised Learning``, ``- Reinforcement Learning``) followed by
the paragraphs, which no longer say what they are about. "How does reinforcement learning work?" then
misses the paragraph that answers it (nothing in it says "reinforcement"), and the model, shown the
list and the paragraphs, pairs them wrongly. The seed article has seven such runs.

The repair pairs titles with paragraphs in order by the embedder's similarity (a monotone alignment:
a title may have no paragraph — a parent item such as "Types of Machine Learning" —, and a paragraph
no title — a worked example after the descriptions) and writes the title in front of its paragraph,
the way ``repairs.repair_definition_list`` writes ``Pandas: For data…``. Only pairs the scores around
them agree with are kept (``consistent``: neither the title nor a neighbouring title matches a
neighbouring paragraph clearly better), and so are those between two certain pairs with as many titles
as paragraphs in between, where the order decides (``bridged``), in runs of at least two; elsewhere
nothing changes. On the seed
this restores 28 of the 35 titles that headed a paragraph, none wrongly, and leaves its 3 parent items
unpaired; where MiniLM's scores contradict the order (Containerization / Docker / Kubernetes) the run
is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from careerqa.embed.embedding import Embedder
from careerqa.text.lines import iter_lines
from careerqa.types import Document

HEADINGS_VERSION = "2"

_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(?P<body>\S.*)$")
MAX_TITLE_WORDS = 8
MIN_PARAGRAPH_WORDS = 5
MIN_SIMILARITY = 0.2  # cosine of title and paragraph (all-MiniLM-L6-v2): below it a lone pair is noise
MIN_RUN_SIMILARITY = 0.1  # ... and below this even a pair that continues a run
RUN_BONUS = 0.1
TOLERANCE = 0.05  # how much better a neighbour may match before a pair is doubted
MIN_PAIRS = 2
STRONG_SIMILARITY = 0.6  # a pair this close, and clearly the best of its row and column, ...
STRONG_MARGIN = 0.1  # ... by this much, is certain on its own (``bridged``)
PARAGRAPH_WORDS = 60  # how much of a paragraph is compared with the titles

Similarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]


def _title(line: str) -> str | None:
    """The bare title of a list item ("- Reinforcement Learning"), else None."""
    m = _ITEM.match(line)
    if m is None:
        return None
    body = m.group("body").strip()
    if ":" in body or body.endswith((".", "!", "?", ";", ",")) or len(body.split()) > MAX_TITLE_WORDS:
        return None
    return body


def _is_paragraph(line: str) -> bool:
    return (
        _ITEM.match(line) is None
        and "|" not in line
        and len(line.split()) >= MIN_PARAGRAPH_WORDS
        and re.search(r"[.!?:)”\"]\s*$", line) is not None
    )


def align(
    scores: np.ndarray, floor: float = MIN_SIMILARITY, run_bonus: float = RUN_BONUS
) -> list[tuple[int, int]]:
    """The order-keeping pairs (title, paragraph) that maximise the summed ``score - floor``.

    ``scores[i, j]`` is the similarity of title ``i`` and paragraph ``j``. A pair that continues a
    run (title and paragraph both next after the previous pair's) earns ``run_bonus``: a flattened
    page lists its titles in the order of their paragraphs. Titles and paragraphs may stay unpaired;
    no pair under ``MIN_RUN_SIMILARITY`` is ever made."""
    n, m = scores.shape
    gain = np.where(scores >= MIN_RUN_SIMILARITY, scores - floor, -np.inf)
    # best[c, i, j]: the best total from (i, j) on; c = 1 when (i - 1, j - 1) was a pair.
    best = np.zeros((2, n + 1, m + 1))
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            for c in (0, 1):
                take = gain[i, j] + run_bonus * c + best[1, i + 1, j + 1]
                skip = max(best[0, i + 1, j], best[0, i, j + 1])
                best[c, i, j] = max(take, skip) if take > best[0, i + 1, j + 1] else skip
    pairs = []
    i = j = c = 0
    while i < n and j < m:
        take = gain[i, j] + run_bonus * c + best[1, i + 1, j + 1]
        if take > best[0, i + 1, j + 1] and best[c, i, j] == take:
            pairs.append((i, j))
            i, j, c = i + 1, j + 1, 1
        elif best[c, i, j] == best[0, i + 1, j]:
            i, c = i + 1, 0
        else:
            j, c = j + 1, 0
    return pairs


def consistent(scores: np.ndarray, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pairs that the scores around them agree with, in runs of at least ``MIN_PAIRS``.

    A pair (t, p) is dropped when title t matches a neighbouring paragraph better (p - 1, p + 1), or a
    neighbouring title (t - 1, t + 1) matches p better than the pair it got itself: the alignment
    was forced there by the run bonus, not by the text. The pairs between two trusted ones are put
    back (``bridged``); a pair left alone after that (no pair on its diagonal next to it) is dropped."""
    partner = dict(pairs)
    n, m = scores.shape
    kept = []
    for t, p in pairs:
        row_ok = all(scores[t, q] <= scores[t, p] + TOLERANCE for q in (p - 1, p + 1) if 0 <= q < m)
        col_ok = all(
            scores[u, p] <= scores[t, p] + TOLERANCE
            or (u in partner and scores[u, partner[u]] >= scores[u, p])
            for u in (t - 1, t + 1)
            if 0 <= u < n
        )
        if row_ok and col_ok:
            kept.append((t, p))
    kept = bridged(scores, pairs, kept)
    on = set(kept)
    return [(t, p) for t, p in kept if _in_run(t, p, on)]


def _in_run(t: int, p: int, on: set[tuple[int, int]]) -> bool:
    """Does a pair of ``on`` continue (t, p)'s diagonal, before or after it?"""
    return (t - 1, p - 1) in on or (t + 1, p + 1) in on


def _strong(scores: np.ndarray, t: int, p: int) -> bool:
    """Is (t, p) a pair that the scores alone make certain: high, and clearly the best of its row and
    of its column?"""
    score = scores[t, p]
    row = np.delete(scores[t], p)
    column = np.delete(scores[:, p], t)
    return bool(
        score >= STRONG_SIMILARITY
        and (row.size == 0 or score - row.max() >= STRONG_MARGIN)
        and (column.size == 0 or score - column.max() >= STRONG_MARGIN)
    )


def bridged(
    scores: np.ndarray, aligned: list[tuple[int, int]], kept: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``kept`` plus the aligned pairs between two trusted kept pairs on one diagonal.

    A kept pair is trusted when a kept neighbour continues its diagonal or the scores make it certain
    (``_strong``). Between two trusted pairs with as many titles as paragraphs in between, every
    title has its paragraph and the order says which: "Model Deployment" pairs with "Putting trained
    models into production…" although MiniLM scores it closer to the CI/CD paragraph before it. The
    filled pairs must be aligned and not below ``MIN_RUN_SIMILARITY``."""
    on = set(kept)
    trusted = sorted((t, p) for t, p in kept if _in_run(t, p, on) or _strong(scores, t, p))
    aligned_set = set(aligned)
    added = []
    for (t1, p1), (t2, p2) in zip(trusted, trusted[1:], strict=False):
        between = [(t1 + k, p1 + k) for k in range(1, t2 - t1)]
        if t2 - t1 != p2 - p1 or not between:
            continue
        if all(pair in aligned_set and scores[pair] >= MIN_RUN_SIMILARITY for pair in between):
            added += [pair for pair in between if pair not in on]
    return sorted(on | set(added))


def _runs(lines: list[str]) -> list[tuple[list[int], list[int]]]:
    """(title line numbers, paragraph line numbers) of each list immediately followed by paragraphs."""
    runs = []
    i = 0
    while i < len(lines):
        if _ITEM.match(lines[i]) is None:
            i += 1
            continue
        j = i
        while j < len(lines) and _ITEM.match(lines[j]):
            j += 1
        k = j
        while k < len(lines) and _is_paragraph(lines[k]):
            k += 1
        titles = [n for n in range(i, j) if _title(lines[n])]
        if len(titles) >= MIN_PAIRS and k - j >= MIN_PAIRS:
            runs.append((titles, list(range(j, k))))
        i = max(j, k)
    return runs


def label_paragraphs(text: str, similarity: Similarity) -> list[tuple[int, str]]:
    """Where to insert which title: (offset of the paragraph's first character, ``"Title: "``)."""
    spans = list(iter_lines(text))
    lines = [text[s:e] for s, e in spans]
    inserts: list[tuple[int, str]] = []
    for titles, paragraphs in _runs(lines):
        names = [_title(lines[n]) or "" for n in titles]
        bodies = [" ".join(lines[p].split()[:PARAGRAPH_WORDS]) for p in paragraphs]
        scores = np.asarray(similarity(names, bodies), dtype=np.float64)
        pairs = consistent(scores, align(scores))
        if len(pairs) < MIN_PAIRS:
            continue
        for t, p in pairs:
            line = lines[paragraphs[p]]
            if line.lower().startswith(names[t].lower()):
                continue  # the paragraph already starts with its title
            start = spans[paragraphs[p]][0] + (len(line) - len(line.lstrip()))
            inserts.append((start, f"{names[t]}: "))
    return inserts


def by_embedder(embedder: Embedder) -> Similarity:
    """Cosine similarity of titles and paragraphs by ``embedder`` (its vectors are normalised)."""

    def similarity(titles: Sequence[str], paragraphs: Sequence[str]) -> np.ndarray:
        return embedder.embed_batch(list(titles)) @ embedder.embed_batch(list(paragraphs)).T

    return similarity


def restore_headings(doc: Document, similarity: Similarity) -> Document:
    """``doc`` with each flattened title written in front of the paragraph it headed (see above).

    The inserted characters map to the raw position of the paragraph's first character, so a span of
    the new text still maps back into the file."""
    inserts = label_paragraphs(doc.text, similarity)
    if not inserts:
        return doc
    offsets = list(doc.offsets) or list(range(len(doc.text) + 1))
    parts: list[str] = []
    new_offsets: list[int] = []
    pos = 0
    for at, title in sorted(inserts):
        parts.append(doc.text[pos:at])
        new_offsets.extend(offsets[pos:at])
        parts.append(title)
        new_offsets.extend([offsets[at]] * len(title))
        pos = at
    parts.append(doc.text[pos:])
    new_offsets.extend(offsets[pos:])
    return replace(doc, text="".join(parts), offsets=tuple(new_offsets))
