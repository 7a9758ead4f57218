"""The web API's request bodies, validated by pydantic; limits that docs/manual.md documents
("Web service") live here.

Not handled here: routes and responses (``web/app.py``), OpenAI response shapes (``openai_compat.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from careerqa.answer.answerer import MAX_QUESTION_CHARS
from careerqa.answer.turns import Turn
from careerqa.errors import CareerQAError
from careerqa.web.openai_compat import Shape, plain_answer
from careerqa.web.tasks import MAX_TASK_CHARS, is_task

MAX_BODY_BYTES = 64 * 1024  # a larger request body is refused with 413 before it is parsed
MAX_HISTORY_MESSAGES = 20  # ten question/answer turns
MAX_OPENAI_MESSAGES = 200  # a long client conversation is accepted; only its last turns are read
MAX_STOP_SEQUENCES = 4  # as OpenAI's API
MAX_MESSAGE_CHARS = 10 * MAX_QUESTION_CHARS
MAX_TOP_K = 50
# Every model is strict: a field takes the JSON type the OpenAPI schema gives it (`"stream": 0` or
# `"top_k": "5"` is 422, not quietly converted), so the schema describes what the server accepts.


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class Message(BaseModel):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_MESSAGE_CHARS)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="What to look for.")
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="How many passages to return.")

    @field_validator("query")
    @classmethod
    def query_not_blank(cls, value: str) -> str:
        return _not_blank(value)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, description=f"At most {MAX_QUESTION_CHARS} characters."
    )
    history: list[Message] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_MESSAGES,
        description="Earlier turns, oldest first; follow-ups are rewritten with them before retrieval.",
    )
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K, description="Passages to retrieve.")
    stream: bool = Field(default=False, description="Answer with server-sent events.")

    @field_validator("question")
    @classmethod
    def question_not_blank(cls, value: str) -> str:
        return _not_blank(value)

    def turns(self) -> list[Turn]:
        return history_turns([(m.role, m.content) for m in self.history])


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: str
    text: str | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool | None = None


class UnsupportedOption(CareerQAError):
    """A known OpenAI option with a value careerqa cannot honour (``n`` over 1)."""

    http_status = 400


class OpenAIChatRequest(BaseModel):
    """The OpenAI chat completions request. Honoured: ``messages``, ``stream``, ``stop``,
    ``max_tokens`` / ``max_completion_tokens`` (cut what the client is sent), ``n`` (1 only),
    ``stream_options.include_usage``. Any other field (``temperature``, ``top_p``, ``seed``,
    ``presence_penalty``, ``frequency_penalty``, ``user``, ``tools``, ``response_format``, …) is
    accepted and ignored: decoding is greedy, answers come from the corpus, careerqa calls no tools."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str | None = None
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_OPENAI_MESSAGES)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(default=None, description="The content ends before the first.")
    max_tokens: int | None = Field(default=None, ge=1, description="The content is cut to this many tokens.")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="As `max_tokens`.")
    n: int | None = Field(default=None, ge=1, description="Choices: careerqa gives one (n=1).")

    @field_validator("messages")
    @classmethod
    def ends_with_a_question(cls, messages: list[OpenAIMessage]) -> list[OpenAIMessage]:
        last = messages[-1]
        if last.role != "user":
            raise ValueError("the last message must come from the user")
        question = last.text()
        if not question.strip():
            raise ValueError("the last user message must not be blank")
        if is_task(question):  # a client's title, tag or follow-up prompt: long, and no question
            if len(question) > MAX_TASK_CHARS:
                raise ValueError(f"the task prompt is over {MAX_TASK_CHARS} characters")
        elif len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is over {MAX_QUESTION_CHARS} characters")
        if any(len(m.text()) > MAX_MESSAGE_CHARS for m in messages[:-1]):
            raise ValueError(f"a message is over {MAX_MESSAGE_CHARS} characters")
        return messages

    @field_validator("stop")
    @classmethod
    def few_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return stop

    def check_supported(self) -> None:
        """``UnsupportedOption`` (400) for what careerqa cannot do: several choices."""
        if self.n is not None and self.n > 1:
            raise UnsupportedOption(
                f"n={self.n}: careerqa gives one answer per request (decoding is greedy, so more "
                "choices would be copies); send n=1 or leave n out"
            )

    def question(self) -> str:
        return self.messages[-1].text()

    def task(self) -> bool:
        """Whether the last message is a client's background task prompt (``web/tasks.py``)."""
        return is_task(self.question())

    def shape(self) -> Shape:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return Shape(tuple(s for s in stops if s), self.max_completion_tokens or self.max_tokens)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def turns(self) -> list[Turn]:
        """Earlier user/assistant turns (the last ``MAX_HISTORY_MESSAGES`` messages), careerqa's own
        answers as plain text (``plain_answer``); system prompts are ignored (careerqa keeps its own)."""
        said = [(m.role, m.text()) for m in self.messages[:-1] if m.role in ("user", "assistant")]
        return history_turns(said[-MAX_HISTORY_MESSAGES:])


def history_turns(messages: Sequence[tuple[str, str]]) -> list[Turn]:
    """Pair each user message with the assistant reply that follows it (or "" when none does); a
    reply is read as its plain answer text (no sources trailer, no markers: ``plain_answer``)."""
    turns: list[Turn] = []
    for role, content in messages:
        if role == "user":
            turns.append((content, ""))
        elif turns and not turns[-1][1]:
            turns[-1] = (turns[-1][0], plain_answer(content))
    return turns


class FeedbackRequest(BaseModel):
    """A thumbs up or down for an answer, by the ``log_id`` the answer came with."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(pattern=r"^[0-9a-f]{16}$", description="The answer's `log_id`.")
    vote: Literal["up", "down"]
