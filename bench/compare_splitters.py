"""How many of the hard cases in ``tests/test_sentences.py`` each sentence splitter gets exactly right.

The splitters careerqa had before ``text/sentences.py`` are copied here as they were (commit 9d4b251), each
used as a splitter of whole texts; pysbd is measured when it can be imported (it is no dependency:
``pip download pysbd`` and put the unpacked wheel on ``PYTHONPATH``). Sentences are compared with
their white space collapsed, so only where the cuts fall counts.

    PYTHONPATH=src:/tmp/pysbd python bench/compare_splitters.py [--misses]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from careerqa.text.citations import MARKER  # noqa: E402
from careerqa.text.sentences import split_sentences  # noqa: E402
from tests.test_sentences import CASES, normalise  # noqa: E402

# ingest/chunking.py: where a long paragraph was cut
_CHUNK_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_CHUNK_ABBREVIATION = re.compile(r"(?:\b(?:vs|e\.g|i\.e|etc|Dr|Mr|Mrs|Ms|St|Fig|No|approx)|\b[A-Z])\.$")
# answer/grounding.py: an answer's sentences
_ANSWER_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+\])*\s+(?=[A-Z0-9\"'“‘(*-])")


def old_chunk_cuts(text: str) -> list[str]:
    cuts = [m.start() for m in _CHUNK_END.finditer(text) if not _CHUNK_ABBREVIATION.search(text[: m.start()])]
    bounds = [0, *cuts, len(text)]
    return [text[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b].strip()]


def old_passage_sentences(text: str) -> list[str]:
    """Without its three-word filter (kept in ``passage_spans``), which is not a rule of splitting."""
    return [p.strip() for p in re.split(r"(?<=[.!?:])\s+|\n+", text) if p.strip()]


def old_answer_sentences(text: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _ANSWER_END.finditer(text):
        before = text[start : match.start()]
        if before.count("(") > before.count(")"):
            continue
        end = match.start() + len(match.group(0).rstrip())
        parts.append(text[start:end].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p and re.search(r"\w", MARKER.sub("", p))]


def old_faq_sentences(text: str) -> list[str]:
    pieces = (p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text.strip()))
    return [p for p in pieces if re.search(r"\w", p)]


def splitters() -> dict[str, Callable[[str], list[str]]]:
    found: dict[str, Callable[[str], list[str]]] = {
        "sentences.split_sentences": split_sentences,
        "chunking, long-paragraph cuts (before)": old_chunk_cuts,
        "chunking.passage_sentences (before)": old_passage_sentences,
        "grounding.split_sentences (before)": old_answer_sentences,
        "shortcuts.faq_answer (before)": old_faq_sentences,
    }
    try:
        import pysbd
    except ImportError:
        print("pysbd not importable: not measured", file=sys.stderr)
    else:
        segmenter = pysbd.Segmenter(language="en", clean=False)
        found[f"pysbd {pysbd.__version__}"] = lambda text: [s for s in segmenter.segment(text) if s.strip()]
    return found


def main() -> None:
    show_misses = "--misses" in sys.argv
    print(f"| splitter | cases right (of {len(CASES)}) |\n|---|---|")
    misses: dict[str, list[str]] = {}
    for name, split in splitters().items():
        wrong = [case for case, text, expected in CASES if normalise(split(text)) != normalise(expected)]
        misses[name] = wrong
        print(f"| {name} | {len(CASES) - len(wrong)} |")
    if show_misses:
        for name, wrong in misses.items():
            print(f"\n{name}: {', '.join(wrong) or '-'}")


if __name__ == "__main__":
    main()
