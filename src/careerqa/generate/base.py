"""The ``Generator`` contract: chat messages in, text out.

A backend implements one method, ``stream``; ``generate`` is derived from it, and ``prefill``,
``count_tokens`` and ``last_usage`` have defaults a backend may refine. ``SEED`` is the fixed seed
every backend asks for: decoding is always greedy, so answers are reproducible.

Not handled here: the backends (``generate/llama.py``, ``generate/remote.py``), prompts
(``generate/prompts.py``) and the test double (``tests/fakes.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

SEED = 1234  # decoding is greedy; a fixed seed only rules out surprises


class Generator(ABC):
    """Turns chat messages into text. Backends implement ``stream``; the rest derives from it."""

    name: str = "generator"

    @abstractmethod
    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` (``{"role": ..., "content": ...}``) piece by piece."""

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> str:
        """The whole reply, as one string."""
        return "".join(self.stream(messages, max_tokens=max_tokens, stop=stop))

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Read ``messages`` into the model's cache ahead of time; a no-op for backends without one."""
        return None

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes; this default is a word count, backends give the exact number."""
        return len(text.split())

    # {"prompt_tokens", "completion_tokens"} of the last finished ``stream``; empty when unknown.
    last_usage: dict[str, int] = {}  # noqa: RUF012 (replaced, never mutated)
