"""The web API's request bodies, validated by pydantic; limits that docs/manual.md documents
("Web service") live here.

Not handled here: routes and responses (``web/app.py``), OpenAI response shapes (``openai_compat.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from careerqa.answer.answerer import MAX_QUESTION_CHARS
from careerqa.answer.turns import Turn

MAX_BODY_BYTES = 64 * 1024  # a larger request body is refused with 413 before it is parsed
MAX_HISTORY_MESSAGES = 20  # ten question/answer turns
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
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class OpenAIChatRequest(BaseModel):
    """The OpenAI chat completions request; sampling options are accepted and ignored (decoding is
    greedy, so answers are reproducible)."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str | None = None
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_HISTORY_MESSAGES + 5)
    stream: bool = False

    @field_validator("messages")
    @classmethod
    def ends_with_a_question(cls, messages: list[OpenAIMessage]) -> list[OpenAIMessage]:
        last = messages[-1]
        if last.role != "user":
            raise ValueError("the last message must come from the user")
        question = last.text()
        if not question.strip():
            raise ValueError("the last user message must not be blank")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is over {MAX_QUESTION_CHARS} characters")
        if any(len(m.text()) > MAX_MESSAGE_CHARS for m in messages):
            raise ValueError(f"a message is over {MAX_MESSAGE_CHARS} characters")
        return messages

    def question(self) -> str:
        return self.messages[-1].text()

    def turns(self) -> list[Turn]:
        """Earlier user/assistant turns; system prompts are ignored (careerqa keeps its own)."""
        return history_turns(
            [(m.role, m.text()) for m in self.messages[:-1] if m.role in ("user", "assistant")]
        )


def history_turns(messages: list[tuple[str, str]]) -> list[Turn]:
    """Pair each user message with the assistant reply that follows it (or "" when none does)."""
    turns: list[Turn] = []
    for role, content in messages:
        if role == "user":
            turns.append((content, ""))
        elif turns and not turns[-1][1]:
            turns[-1] = (turns[-1][0], content)
    return turns


class FeedbackRequest(BaseModel):
    """A thumbs up or down for an answer, by the ``log_id`` the answer came with."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(pattern=r"^[0-9a-f]{16}$", description="The answer's `log_id`.")
    vote: Literal["up", "down"]
