"""Excerpts: long passages shrink to their title and the sentences nearest the question."""

from __future__ import annotations

from careerqa.excerpts import excerpts
from careerqa.types import Chunk, Hit

FILLER = [f"Filler sentence number {i} talks about gardening and weather in spring." for i in range(12)]


def _hit(text: str, cid: str = "a" * 16) -> Hit:
    return Hit(Chunk(cid, "doc.txt", "Title", text, 0, len(text)), 1.0, 1.0)


def test_long_passage_keeps_title_and_relevant_sentences(fake_embedder):
    text = (
        "Learning Resources\n"
        + " ".join(FILLER[:6])
        + " Khan Academy offers free maths courses. "
        + " ".join(FILLER[6:])
    )
    shown = excerpts("free maths courses", [_hit(text)], fake_embedder, keep=2, min_words=20)["a" * 16]
    assert shown.startswith("Learning Resources")
    assert "Khan Academy offers free maths courses." in shown
    assert "…" in shown and len(shown.split()) < len(text.split()) / 2
    # what is kept appears in the original order, verbatim
    kept = [part.strip() for part in shown.split("…") if part.strip()]
    positions = [text.index(part.split(". ")[0]) for part in kept]
    assert positions == sorted(positions)


def test_short_passages_and_keep_zero_are_whole(fake_embedder):
    short = _hit("Python is essential. NumPy handles arrays.")
    assert excerpts("python", [short], fake_embedder)[short.chunk.chunk_id] == short.chunk.text
    long = _hit(" ".join(FILLER), cid="b" * 16)
    assert (
        excerpts("gardening", [long], fake_embedder, keep=0, min_words=5)[long.chunk.chunk_id]
        == long.chunk.text
    )
