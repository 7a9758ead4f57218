"""The real embedder over the shipped corpus: misspelt and informal questions still find their passage,
and the seed's related-articles block is never a search result (issue 14)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real

# Typos made up for this test (not the eval set's), each with a quote from the passage that answers it.
TYPOS = [
    ("wat does dokker do for an app", "isolated containers"),
    ("kuberntes is used for wat", "automating deployment, scaling"),
    ("wich pyton libary for numercal arrays", "NumPy: For numerical operations"),
    ("do i realy need a doctrate for a gud ai job", "Not necessarily for every good role"),
]


@pytest.mark.parametrize("question,passage", TYPOS)
def test_misspelt_question_finds_its_passage(real_engine, question, passage):
    hits = real_engine.search(question, top_k=5)
    assert any(passage in h.chunk.text for h in hits), [h.chunk.section for h in hits]


def test_words_the_embedder_knows_are_not_corrected(real_engine):
    assert real_engine.view().retriever.prepare("best pizza topping") == "best pizza topping"


def test_related_articles_block_is_never_found(real_engine):
    hits = real_engine.search("how do I get into machine learning without a degree", top_k=10)
    assert all(h.chunk.section != "More Articles" for h in hits)
    assert all("Your Pathway to AI Learning" not in h.chunk.text for h in hits)
