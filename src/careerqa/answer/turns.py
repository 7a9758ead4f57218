"""Chat turns: a ``Turn`` of the conversation, whether a question ``follows_up`` on the turns before
it, and ``rewrite``, which has the model turn such a follow-up into a standalone question to search.

Not handled here: keeping the conversation (the caller passes its turns: ``web/``, ``cli/``), the
rewrite prompt's text (``generate/prompts.py``), answering the rewritten question
(``answer/answerer.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from careerqa.generate.base import Generator
from careerqa.generate.prompts import REWRITE_PROMPT, inert

REWRITE_TURNS = 3  # the last turns of a conversation that a follow-up is rewritten with
REWRITE_MAX_TOKENS = 48  # a standalone question is one short line
HISTORY_ANSWER_WORDS = 60  # each earlier answer is cut to this many words for the rewrite

# ``follows_up``: a question this short, opening with one of these words, or holding one of the cues
# may need the conversation to be understood, and is rewritten by the model.
FOLLOW_UP_WORDS = 4
FOLLOW_UP_OPENERS = frozenset("and but so or also then plus".split())
FOLLOW_UP_CUES = frozenset(
    """it its it's itself they them their theirs those these this that that's there he she him her
    one ones same such other others another else more example examples instead too also either
    neither both former latter above previous earlier part""".split()
)

Turn = tuple[str, str]  # (question, answer text)


def rewrite(generator: Generator, question: str, history: Sequence[Turn]) -> str:
    """Turn a follow-up into a standalone question using the last turns of the conversation; a
    question that stands on its own (``follows_up``) is searched as it is, without the model."""
    if not history or not follows_up(question):
        return question
    convo = "\n".join(f"User: {q}\nAssistant: {_short(a)}" for q, a in history[-REWRITE_TURNS:])
    messages = [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": inert(f"Conversation:\n{convo}\n\nLast message: {question}")},
    ]
    out = generator.generate(messages, max_tokens=REWRITE_MAX_TOKENS, stop=["\n"])
    out = out.strip().strip('"')
    if not out or len(out) > 4 * len(question) + 200:
        # An empty or runaway rewrite: retrieve with the last question as context instead.
        return f"{history[-1][0]} {question}"
    return out


def follows_up(question: str) -> bool:
    """Might ``question`` lean on the conversation before it? Short questions ("and tensorflow?"),
    those that open like a continuation ("and", "so", "what about") and those with a word that points
    back ("it", "they", "that", "the pandas one", "an example") do; "What does a data engineer do?"
    does not, and skips the model's rewrite (about a second on 2 cores). A question wrongly taken for
    standalone loses its context, so the cues are broad: a needless rewrite only costs time."""
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", question.lower())
    if len(words) <= FOLLOW_UP_WORDS or words[0] in FOLLOW_UP_OPENERS:
        return True
    return any(w in FOLLOW_UP_CUES for w in words) or bool(
        re.search(r"\b(?:what|how) about\b", question, re.I)
    )


def _short(text: str, words: int = HISTORY_ANSWER_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")
