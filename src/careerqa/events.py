"""What answering a question yields, in order: ``Retrieved``, ``Text`` pieces, ``Revised`` when the
checked answer differs from what was shown, and ``Done`` with the final ``Answer``.

A consumer (the CLI, the ``/chat`` event stream, the OpenAI-style stream) iterates these and stops
early by closing the iterator; ``final_answer`` derives the plain answer from them. Not handled
here: producing them (``answer/answerer.py``), printing or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

from careerqa.types import Answer, Hit

TextCallback = Callable[[str], None]


@dataclass(frozen=True)
class Retrieved:
    """The passages retrieved for the (standalone) question, before anything is generated."""

    hits: tuple[Hit, ...]
    standalone_question: str


@dataclass(frozen=True)
class Text:
    """A piece of answer text the user may see now; the pieces joined are what was shown."""

    text: str


@dataclass(frozen=True)
class Revised:
    """Checking changed the shown text (a sentence removed, a citation fixed, an abstention):
    ``text`` is the whole final answer text, which replaces what the ``Text`` pieces showed."""

    text: str


@dataclass(frozen=True)
class Done:
    """The last event: the final answer."""

    answer: Answer


Event = Retrieved | Text | Revised | Done
Events = Generator[Event, None, None]  # an answer's events; ``close()`` stops it early


def final_answer(events: Iterable[Event], on_text: TextCallback | None = None) -> Answer:
    """The ``Done`` answer of ``events``, passing each ``Text`` piece to ``on_text`` on the way."""
    answer = None
    for event in events:
        if isinstance(event, Text) and on_text is not None:
            on_text(event.text)
        elif isinstance(event, Done):
            answer = event.answer
    if answer is None:
        raise RuntimeError("the answer's events ended without Done")
    return answer


def replayed(answer: Answer) -> Iterator[Event]:
    """The events of an answer given before (the answer cache): its whole text at once, then it."""
    yield Text(answer.text)
    yield Done(answer)


def same_text(shown: str, final: str) -> bool:
    """Whether the final text reads as what was shown (whitespace aside)."""
    return shown.split() == final.split()
