"""The check pipeline's steps (``answer/pipeline.py``), each on a hand-built draft: what it passes,
what it refuses and with which reason, which retry it asks for, and the rules it records."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from careerqa.answer import pipeline
from careerqa.answer.focus import Focus, FocusIndex
from careerqa.answer.grounding import SentenceSupport
from careerqa.answer.pipeline import Refusal, check
from careerqa.answer.rules import Rules
from careerqa.answer.run import Checked, Draft, Question
from careerqa.config import Settings
from careerqa.generate.prompts import ABSTAIN_TEXT
from careerqa.types import Chunk, Hit

from .conftest import FakeEmbedder

DOCKER = "Docker packages a model with its dependencies, so it runs the same on every machine."


@dataclass
class _Store:
    def sentence_vectors(self, chunk: Chunk) -> np.ndarray:
        return FakeEmbedder().embed_batch(chunk.sentences())


@dataclass
class _Retriever:
    embedder: FakeEmbedder = field(default_factory=FakeEmbedder)
    store: _Store = field(default_factory=_Store)

    def prepare(self, question: str) -> str:
        return question


@dataclass
class _Parts:
    """What the steps read of the answerer: settings, rules and the retriever's embedder."""

    settings: Settings = field(default_factory=Settings)
    rules: Rules = field(default_factory=Rules)
    retriever: _Retriever = field(default_factory=_Retriever)
    generator: object = None
    verifier: object = None

    @property
    def focus_index(self) -> FocusIndex:
        return FocusIndex([DOCKER])


def _hit(text: str = DOCKER, cid: str = "c1") -> Hit:
    chunk = Chunk(chunk_id=cid, source="cloud.md", section="Cloud", text=text, start=0, end=len(text))
    return Hit(chunk=chunk, score=0.9, dense_score=0.9, rank=0)


def _focus(coverage: float = 1.0, missing: tuple[str, ...] = ()) -> Focus:
    return Focus(terms=("docker", *missing), missing=missing, coverage=coverage)


def _draft(text: str, kept: list[str] | None = None, question: str = "What does Docker do?", **changes):
    hit = _hit()
    q = Question((question,), question, question, changes.pop("focus", _focus()))
    checked = None
    if kept is not None:
        supports = [SentenceSupport(s, (1,), 1, 0.9, 0.9, 0.9, True) for s in kept]
        checked = Checked({1: hit}, supports, kept, refusals=changes.pop("refusals", 0))
    return replace(Draft(q, (hit,), text, (1,)), checked=checked, **changes)


def test_a_draft_that_starts_by_refusing_is_refused_and_may_be_retried_when_the_passages_hold_its_terms():
    parts = _Parts()
    out = pipeline.model_refused(parts, _draft(ABSTAIN_TEXT))
    assert out == Refusal(pipeline.MODEL_REFUSED, retry="refusal_retry")
    low = pipeline.model_refused(parts, _draft(ABSTAIN_TEXT, focus=_focus(coverage=0.1, missing=("swarm",))))
    assert isinstance(low, Refusal) and low.retry is None  # under focus_rescue_coverage
    again = pipeline.model_refused(parts, _draft(ABSTAIN_TEXT, retry=True))
    assert isinstance(again, Refusal) and again.retry is None  # a retry is not retried
    answer = _draft("Docker packages a model [1].")
    assert pipeline.model_refused(parts, answer) is answer


def test_nothing_left_but_refusal_sentences_is_the_models_refusal():
    parts = _Parts()
    out = pipeline.sentence_refused(parts, _draft("X is not mentioned in the passages [1].", [], refusals=1))
    assert out == Refusal(pipeline.MODEL_REFUSED, retry="refusal_retry")
    said = "Docker packages a model [1]."
    rest = _draft(f"{said} The rest is not in the passages.", [said])
    rest = replace(rest, checked=replace(rest.checked, refusals=1))
    assert pipeline.sentence_refused(parts, rest) is rest  # the supported sentence stands


def test_verified_records_sentence_refusal_and_leaves_a_checked_draft_alone(monkeypatch):
    found = Checked({}, [], [], refusals=1)
    monkeypatch.setattr(pipeline, "verify", lambda *args: found)
    out = pipeline.verified(_Parts(), _draft("X is not in the passages [1]."))
    assert isinstance(out, Draft) and out.checked is found and out.fired == ("sentence_refusal",)
    done = _draft("Docker packages a model [1].", ["Docker packages a model [1]."])
    assert pipeline.verified(_Parts(), done) is done


def test_an_answer_that_only_repeats_the_question_asks_for_the_evidence_retry_with_a_fallback():
    parts = _Parts()
    echo = _draft("Yes, Docker does [1].", ["Yes, Docker does [1]."], question="Does Docker do it?")
    out = pipeline.has_evidence(parts, echo)
    assert isinstance(out, Refusal) and out.retry == "evidence_retry"
    assert out.reason == pipeline.NOTHING_SUPPORTED and out.sentences_total == 1
    assert out.tried == frozenset({"c1"})  # the prompt held that passage alone: no retry on it
    assert out.fallback == replace(echo, bare_ok=True)
    assert pipeline.has_evidence(parts, out.fallback) is out.fallback
    nothing = _draft("Kubernetes [1].", [])
    empty = pipeline.has_evidence(parts, nothing)
    assert isinstance(empty, Refusal) and empty.fallback is None
    retried = pipeline.has_evidence(parts, replace(echo, retry=True))
    assert isinstance(retried, Refusal) and retried.retry is None and retried.fallback is None
    real = _draft("Docker packages a model [1].", ["Docker packages a model with its dependencies [1]."])
    assert pipeline.has_evidence(parts, real) is real


def test_on_target_keeps_the_sentences_about_the_question_and_refuses_an_answer_about_something_else():
    parts = _Parts()
    kept = ["Docker packages a model with its dependencies [1]."]
    out = pipeline.on_target(parts, _draft(kept[0], kept, question="What does Docker package?"))
    assert isinstance(out, Draft) and out.checked is not None and out.checked.kept == kept
    far = ["Gardens need rain in spring [1]."]
    refused = pipeline.on_target(parts, _draft(far[0], far, question="What does Docker package?"))
    assert refused == Refusal(pipeline.OFF_TARGET, sentences_total=1)


def test_check_runs_the_steps_in_order_and_stops_at_the_first_refusal_with_the_rules_fired():
    seen: list[str] = []

    def step(name: str, refuse: bool = False):
        def run(parts, draft):
            seen.append(name)
            return Refusal(name, fired=(name,)) if refuse else replace(draft, fired=draft.fired + (name,))

        return run

    out = check(_Parts(), _draft("a"), [step("one"), step("two", refuse=True), step("three")])
    assert seen == ["one", "two"] and out == Refusal("two", fired=("one", "two"))
    passed = check(_Parts(), _draft("a"), [step("one"), step("three")])
    assert isinstance(passed, Draft) and passed.fired == ("one", "three")


ARTICLE = (
    "## Missing data\n\nPandas aims to be flexible with missing data. "
    "Trailing empty fields are often dropped by spreadsheet exports. To read such files set fill to true. "
    "Counting values is easy."
)


def _quote_draft(question: str, coverage: float = 1.0):
    return _draft("", question=question, focus=_focus(coverage=coverage))


def _unchecked(monkeypatch):
    """``quote``'s own choice, without the checks after it (tested above, step by step)."""
    monkeypatch.setattr(pipeline, "check", lambda parts, draft: draft)


def test_a_refused_question_gets_the_closest_passage_sentence_and_the_next_quoted_and_cited(monkeypatch):
    _unchecked(monkeypatch)
    parts = _Parts(settings=Settings(quote_min_similarity=0.5, quote_sentences=2))
    question = _quote_draft("spreadsheet exports dropped trailing empty fields").question
    out = pipeline.quote(parts, question, [_hit(DOCKER, "c0"), _hit(ARTICLE)])
    assert isinstance(out, Draft) and out.fired == ("quote_fallback",) and out.retry
    first = "Trailing empty fields are often dropped by spreadsheet exports [1]."
    assert out.text == first + " To read such files set fill to true [1]."
    assert out.passages[0].chunk.chunk_id == "c1"
    single = _Parts(settings=Settings(quote_min_similarity=0.5, quote_sentences=1))
    one = pipeline.quote(single, question, [_hit(ARTICLE)])
    assert isinstance(one, Draft) and one.text == first


def test_no_quote_for_a_question_far_from_every_sentence_or_whose_terms_the_passages_lack(monkeypatch):
    _unchecked(monkeypatch)
    strict = _Parts(settings=Settings(quote_min_similarity=0.95))
    question = _quote_draft("spreadsheet exports dropped trailing empty fields").question
    assert pipeline.quote(strict, question, [_hit(ARTICLE)]) == Refusal(pipeline.NO_CLOSE_SENTENCE)
    loose = _Parts(settings=Settings(quote_min_similarity=0.1))
    uncovered = _quote_draft("spreadsheet exports dropped trailing empty fields", coverage=0.1).question
    assert pipeline.quote(loose, uncovered, [_hit(ARTICLE)]) == Refusal(pipeline.NO_CLOSE_SENTENCE)


def test_a_quote_shows_no_code_or_heading_and_ends_before_what_a_colon_introduces(monkeypatch):
    _unchecked(monkeypatch)
    text = (
        "## Read a CSV file\n\nx = read.csv('file.csv'); print(x)\n\nIn [1]: read a CSV file, read.csv\n\n"
        "Use read.csv to read a CSV file, as below:\n\nPass the file name first.\n\nIt returns a frame."
    )
    parts = _Parts(settings=Settings(quote_min_similarity=0.3, quote_sentences=3))
    out = pipeline.quote(parts, _quote_draft("how do I read a CSV file?").question, [_hit(text)])
    assert isinstance(out, Draft) and out.text == "Use read.csv to read a CSV file, as below [1]."


def test_the_whole_pipeline_passes_a_quote_copied_from_its_passage(tmp_path, fake_embedder):
    """Through a real engine: the model refuses twice, the closest sentence is quoted and verified."""
    from careerqa.engine.core import Engine
    from tests.conftest import make_settings
    from tests.fakes import FakeGenerator

    settings = replace(make_settings(tmp_path), quote_min_similarity=0.3)
    engine = Engine(settings, embedder=fake_embedder, generator=FakeGenerator(lambda messages: ABSTAIN_TEXT))
    answer = engine.ask("What does monitoring catch after a model is deployed?")
    assert not answer.abstained and "quote_fallback" in answer.rules, answer
    assert (
        answer.text.startswith("Monitoring catches data drift")
        and answer.citations[0].hit.chunk.source == "cloud.md"
    )
    off = replace(settings, rules_off="quote_fallback")
    engine = Engine(off, embedder=fake_embedder, generator=FakeGenerator(lambda messages: ABSTAIN_TEXT))
    assert engine.ask("What does monitoring catch after a model is deployed?").abstained
