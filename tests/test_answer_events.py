"""Answering as one stream of typed events: their order, what the text pieces add up to, revisions,
abstentions, the cache's replay, and closing the stream early (the model's stream is closed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from careerqa.engine.core import Engine
from careerqa.errors import BadInput
from careerqa.events import Done, Retrieved, Revised, Text, final_answer
from careerqa.generate.base import Generator
from careerqa.generate.prompts import ABSTAIN_TEXT

from .fakes import FakeGenerator

ANSWER = "Khan Academy and MIT OpenCourseWare have free courses on all three topics [1]."


def _engine(settings, fake_embedder, replies) -> Engine:
    return Engine(settings, embedder=fake_embedder, generator=FakeGenerator(replies))


def _kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def _shown(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Text))


def test_an_answer_is_retrieved_then_text_pieces_then_done(settings, fake_embedder):
    events = list(_engine(settings, fake_embedder, [ANSWER]).events("free maths courses khan academy"))
    kinds = _kinds(events)
    assert kinds[0] == "Retrieved" and kinds[-1] == "Done"
    assert set(kinds[1:-1]) == {"Text"} and len(kinds) > 3  # streamed in pieces, nothing revised
    retrieved, done = events[0], events[-1]
    assert retrieved.hits and retrieved.hits == done.answer.retrieved
    assert retrieved.standalone_question == "free maths courses khan academy"
    assert not done.answer.abstained and done.answer.text == ANSWER
    assert _shown(events).strip() == ANSWER


def test_a_text_that_checking_changes_is_revised(settings, fake_embedder):
    uncited = "Khan Academy and MIT OpenCourseWare have free maths courses."
    events = list(_engine(settings, fake_embedder, [uncited]).events("free maths courses khan academy"))
    assert _kinds(events)[-2:] == ["Revised", "Done"]
    assert _shown(events).strip() == uncited  # what the model wrote, shown as it came
    revised, done = events[-2], events[-1]
    assert (
        revised.text == done.answer.text == "Khan Academy and MIT OpenCourseWare have free maths courses [1]."
    )


def test_a_shown_answer_that_verification_rejects_is_revised_to_the_abstention(settings, fake_embedder):
    reply = "Bananas are yellow and grow on tall plants in warm tropical countries around the world [1]."
    # the retry with the closest passage alone is unsupported too
    events = list(_engine(settings, fake_embedder, [reply, reply]).events("maths courses"))
    assert _shown(events).startswith("Bananas") and ABSTAIN_TEXT not in _shown(events)
    assert events[-2] == Revised(ABSTAIN_TEXT)
    answer = events[-1].answer
    assert answer.abstained and answer.abstain_reason.startswith("verification")


def test_an_abstention_before_generating_shows_the_abstain_text(settings, fake_embedder):
    generator = FakeGenerator(["should never be asked"])
    engine = Engine(settings, embedder=fake_embedder, generator=generator)
    events = list(engine.events("zebra quasar marmalade"))
    assert _kinds(events) == ["Retrieved", "Text", "Done"]
    assert events[1] == Text(ABSTAIN_TEXT)
    assert events[2].answer.abstained and events[2].answer.abstain_reason.startswith("retrieval")
    assert generator.calls == []


def test_a_model_refusal_is_held_back_and_shown_once_as_the_abstain_text(settings, fake_embedder):
    events = list(_engine(settings, fake_embedder, [ABSTAIN_TEXT] * 2).events("maths courses"))
    assert _kinds(events) == ["Retrieved", "Text", "Done"]  # the refusal itself never streamed
    assert events[1] == Text(ABSTAIN_TEXT)
    assert events[2].answer.abstained and events[2].answer.abstain_reason.startswith("model")


def test_a_cached_answer_is_replayed_as_one_text(settings, fake_embedder):
    engine = _engine(settings, fake_embedder, [ANSWER])
    first = engine.ask("free maths courses khan academy")
    events = list(engine.events("Free maths courses, Khan Academy"))
    assert _kinds(events) == ["Text", "Done"]
    assert events[0] == Text(first.text) and events[1].answer.route == "cache"


def test_ask_is_the_done_answer_and_on_text_gets_the_pieces(settings, fake_embedder):
    engine = _engine(settings, fake_embedder, [ANSWER, ANSWER])
    events = list(engine.events("free maths courses khan academy", top_k=3))
    pieces: list[str] = []
    asked = engine.ask("free maths courses khan academy", top_k=4, on_text=pieces.append)
    assert asked.text == events[-1].answer.text and "".join(pieces) == _shown(events)
    assert final_answer(iter(events)) is events[-1].answer


@pytest.mark.parametrize("question", ["", "   ", "x" * 1001])
def test_bad_input_is_raised_by_the_first_step(settings, fake_embedder, question):
    events = _engine(settings, fake_embedder, []).view().answerer.events(question)
    with pytest.raises(BadInput):
        next(events)


class Words:
    """A model's token stream that only stops when closed (as llama.cpp's does; not a Python
    generator, so nothing closes it when it is merely dropped)."""

    def __init__(self) -> None:
        self.taken = 0
        self.closed = False

    def __iter__(self) -> Words:
        return self

    def __next__(self) -> str:
        if self.closed or self.taken >= 200:
            raise StopIteration
        self.taken += 1
        return "Khan Academy has free maths courses [1]. "

    def close(self) -> None:
        self.closed = True


class Tracked(Generator):
    """Hands out one ``Words`` stream and keeps it, so a test can see whether it was closed."""

    name = "tracked"

    def __init__(self) -> None:
        self.words = Words()

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        return self.words


def test_closing_the_events_mid_answer_closes_the_model_stream(settings, fake_embedder):
    model = Tracked()
    engine = Engine(settings, embedder=fake_embedder, generator=model)
    events = engine.events("free maths courses khan academy")
    assert isinstance(next(events), Retrieved)
    assert isinstance(next(events), Text)
    assert not model.words.closed
    events.close()  # the consumer went away
    assert model.words.closed and model.words.taken < 10
    assert not list(events)  # nothing more comes


def test_the_answer_is_done_last_even_when_nobody_reads_the_text(settings, fake_embedder):
    events = _engine(settings, fake_embedder, [ANSWER]).events("free maths courses khan academy")
    done = [e for e in events if isinstance(e, Done)]
    assert len(done) == 1 and done[0].answer.text == ANSWER


def test_a_refusal_after_shown_text_is_judged_as_when_nobody_watches(settings, fake_embedder):
    refusal = "Based on these notes, I cannot answer which maths courses are best for you."
    events = list(_engine(settings, fake_embedder, lambda messages: refusal).events("maths courses"))
    assert _shown(events).startswith("Based on")  # no refusal opener: shown at once
    assert events[-2] == Revised(ABSTAIN_TEXT)
    streamed = events[-1].answer
    unwatched = _engine(settings, fake_embedder, lambda messages: refusal).ask("maths courses")
    assert streamed.abstain_reason == unwatched.abstain_reason and streamed.abstain_reason.startswith("model")


def test_an_unsupported_draft_is_answered_again_from_the_closest_passage(settings, fake_embedder):
    unsupported = "Bananas are yellow and grow on tall plants in warm countries around the world [1]."
    generator = FakeGenerator([unsupported, ANSWER])
    engine = Engine(settings, embedder=fake_embedder, generator=generator)
    answer = engine.ask("free maths courses khan academy")
    assert not answer.abstained, answer.abstain_reason
    assert "Khan Academy" in answer.text and answer.citations
    assert len(generator.calls) == 2
    assert generator.calls[1][-1]["content"].count("<passage ") == 1  # the retry shows one passage
