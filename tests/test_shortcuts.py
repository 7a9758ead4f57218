"""The fast paths: answers from the corpus's FAQ entries, the answer cache per index version, and
prompts made of the passages' best sentences."""

from __future__ import annotations

from careerqa.answer.shortcuts import (
    AnswerCache,
    FaqMatcher,
    faq_answer,
    normalise_question,
    select_sentences,
)
from careerqa.engine.core import Engine
from careerqa.types import Chunk

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator

FAQ_DOC = """# Careers FAQ

## Frequently Asked Questions

### Do I need a PhD for an AI engineering job?

Not for most roles. A master's degree or a strong portfolio of projects is enough for many engineering jobs.
Research labs still prefer a doctorate for scientist positions. Publications help there too.

### Which cloud certification should I get first?

Start with the AWS Certified Machine Learning Specialty exam, then add Azure or Google Cloud later.
"""

ANSWER = "Linear algebra and calculus are the foundation of machine learning [1]."


def _engine(tmp_path, replies=None, **settings):
    # the scripted ANSWER is off target for most questions here: no relevance retries in these tests
    s = make_settings(tmp_path, {"faq.md": FAQ_DOC}).replace(**{"min_answer_relevance": 0.0, **settings})
    generator = FakeGenerator(replies or (lambda messages: ANSWER))
    return Engine(s, embedder=FakeEmbedder(), generator=generator), generator


def test_faq_answer_drops_the_question_and_cites_every_sentence():
    chunk = Chunk(
        "c1", "faq.md", "Is it hard?", "Is it hard?\nIt is. Very much so. Practise daily.", 0, 1, "faq"
    )
    assert faq_answer(chunk) == "It is [1]. Very much so [1]. Practise daily [1]."
    long = Chunk("c2", "faq.md", "Q?", "Q?\n" + "Word word word word word. " * 40, 0, 1, "faq")
    assert len(faq_answer(long, words=20).split()) <= 20 + 4  # whole sentences only, each with [1]


def test_a_question_close_to_an_faq_question_is_answered_from_the_entry(tmp_path):
    engine, generator = _engine(tmp_path, faq_min_score=0.9)
    answer = engine.ask("Do I need a PhD for an AI engineering job?")
    assert answer.route == "faq" and not answer.abstained
    assert answer.rules == ("faq_route",)  # the named rule that answered (answer/rules.py)
    assert generator.calls == []  # no generation at all
    assert answer.text.startswith("Not for most roles [1].") and "portfolio" in answer.text
    assert answer.citations[0].hit.chunk.kind == "faq"
    assert answer.citations[0].hit.chunk.section == "Do I need a PhD for an AI engineering job?"
    assert answer.timings_ms["first_token"] == 0.0


def test_a_different_question_still_goes_to_the_model(tmp_path):
    engine, generator = _engine(tmp_path, faq_min_score=0.9)
    answer = engine.ask("which maths is the foundation of machine learning?")
    assert answer.route == "generated" and len(generator.calls) == 1


def test_the_fast_path_can_be_turned_off(tmp_path):
    engine, generator = _engine(tmp_path, faq_min_score=2.0)
    assert engine.ask("Do I need a PhD for an AI engineering job?").route == "generated"
    assert len(generator.calls) == 1


def test_faq_matcher_scores_the_closest_entry(tmp_path):
    engine, _ = _engine(tmp_path)
    matcher = FaqMatcher(engine.view().store, FakeEmbedder())
    vector = FakeEmbedder().embed_batch(["which cloud certification first?"])[0]
    chunk, score = matcher.best(vector)
    assert chunk.section == "Which cloud certification should I get first?" and 0.5 < score < 1.0


def test_a_repeated_question_comes_from_the_cache(tmp_path):
    engine, generator = _engine(tmp_path)
    first = engine.ask("Which maths is the foundation of machine learning?")
    again = engine.ask("  which MATHS is the foundation of machine learning  ")
    assert again.route == "cache" and again.text == first.text and again.citations == first.citations
    assert len(generator.calls) == 1
    streamed: list[str] = []
    engine.ask("which maths is the foundation of machine learning?", on_text=streamed.append)
    assert "".join(streamed) == first.text


def test_history_and_top_k_bypass_the_cache(tmp_path):
    engine, generator = _engine(tmp_path, replies=[ANSWER, "What maths matters?", ANSWER, ANSWER])
    engine.ask("which maths matters?")
    engine.ask("which maths matters?", history=[("what is docker?", "A packager [1].")])
    engine.ask("which maths matters?", top_k=2)
    assert len(generator.calls) == 4


def test_a_new_index_version_starts_an_empty_cache(tmp_path):
    engine, generator = _engine(tmp_path)
    engine.ask("which maths matters for machine learning?")
    (engine.settings.corpus_dir / "extra.md").write_text("# Extra\n\nGo and learn Rust for speed.\n")
    engine.sync()
    assert engine.ask("which maths matters for machine learning?").route == "generated"
    assert len(generator.calls) == 2


def test_cache_is_bounded():
    cache = AnswerCache(size=2)
    for i in range(3):
        cache.put((str(i), 5), object())  # type: ignore[arg-type]
    assert cache.get(("0", 5)) is None and cache.get(("2", 5)) is not None
    assert normalise_question("What's  NEW?") == "what s new"


def test_sentence_selection_keeps_the_best_sentences_under_budget(tmp_path):
    engine, _ = _engine(tmp_path)
    view = engine.view()
    hits = engine.search("free maths courses Khan Academy", 3)
    vector = FakeEmbedder().embed_batch(["free maths courses Khan Academy"])[0]
    texts = select_sentences(vector, hits, view.store, lambda t: len(t.split()), budget=25, per_passage=1)
    chosen = " ".join(texts.values())
    assert "Khan Academy" in chosen and len(chosen.split()) <= 25 + 20
    assert all(len(t.split(" … ")) == 1 for t in texts.values())


def test_sentences_mode_prompts_are_shorter_and_still_cite_whole_passages(tmp_path):
    long_doc = "# Maths\n\n" + " ".join(f"Filler sentence number {i} about nothing much." for i in range(40))
    long_doc += " Khan Academy has free maths courses for beginners."
    engine, generator = _engine(
        tmp_path,
        replies=lambda m: "Khan Academy has free maths courses for beginners [1].",
        context_mode="sentences",
        sentence_tokens=40,
    )
    (engine.settings.corpus_dir / "long.md").write_text(long_doc)
    answer = engine.ask("free maths courses Khan Academy beginners")
    prompt = generator.calls[0][-1]["content"]
    assert "Khan Academy" in prompt and "Filler sentence number 3 " not in prompt
    assert not answer.abstained and answer.citations
    assert "Khan Academy" in answer.citations[0].hit.chunk.text


def test_an_faq_answer_keeps_the_sentence_limit():
    chunk = Chunk(
        "c1", "faq.md", "Is it hard?", "Is it hard?\nIt is. Very much so. Practise daily.", 0, 1, "faq"
    )
    assert faq_answer(chunk, sentences=2) == "It is [1]. Very much so [1]."
