"""The passages prompt cut where its passage caches go, in the model's own chat template and tokens.

``split_prompt`` cuts a rendered prompt into the system prefix, one block per passage and the tail
(excerpt, question, assistant header); ``slot_one`` gives the text a per-passage cache is keyed by;
``PromptRenderer`` renders and tokenizes as llama-cpp-python's ``create_chat_completion`` does, so the
stitched and the normal path read the same tokens. ``stop_at`` / ``held_for_stop`` handle stop strings
in streamed text. Not handled here: the llama.cpp context (``generate/kv_stitch.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASSAGES_HEAD = "Passages:\n\n"  # how ``prompts.build_messages`` starts the user message
_BLOCK = re.compile(r'<passage n="\d+" source=[^\n>]*>\n.*?\n</passage>\n\n', re.DOTALL)
# the first passage's key sentences repeated before the question (``prompts.excerpt_block``): read live
_EXCERPT = re.compile(r'<passage n="\d+">\n.*?\n</passage>\n\n', re.DOTALL)
# a block's label up to its slot number: what differs between the slots of one passage
LABEL = re.compile(r'<passage n="(\d+)')


def slot_one(block: str) -> str:
    """The block as it reads in slot 1: the text a per-passage cache is computed and keyed by."""
    return LABEL.sub('<passage n="1', block, count=1)


@dataclass(frozen=True)
class Layout:
    """A rendered passages prompt cut where the tokenizer always cuts: after the "\\n\\n" that ends the
    prefix and each passage block."""

    system: str
    prefix: str  # chat template + system prompt + "<user header>Passages:\n\n"
    blocks: tuple[str, ...]  # each passage block with the "\n\n" after it
    tail: str  # [excerpt block] "Question: …\nAnswer:" + the template's end of turn and assistant header


def split_prompt(rendered: str, messages: Sequence[dict[str, str]]) -> Layout | None:
    """Cut ``rendered`` (the chat template applied to ``messages``) into prefix, blocks and tail, or
    None when ``messages`` are not a system prompt and one passages message."""
    if len(messages) != 2 or messages[0].get("role") != "system" or messages[1].get("role") != "user":
        return None
    user = messages[1].get("content") or ""
    start = rendered.find(user)
    if not user.startswith(PASSAGES_HEAD) or start < 0 or rendered.find(user, start + 1) >= 0:
        return None
    pos = start + len(PASSAGES_HEAD)
    prefix = rendered[:pos]
    blocks = []
    while match := _BLOCK.match(rendered, pos):
        blocks.append(match.group(0))
        pos = match.end()
    excerpt = _EXCERPT.match(rendered, pos)
    if not rendered[excerpt.end() if excerpt else pos :].startswith("Question:"):
        return None
    return Layout(messages[0]["content"], prefix, tuple(blocks), rendered[pos:])


class PromptRenderer:
    """The model's own chat template applied to messages, and its tokenizer, as llama-cpp-python's
    ``create_chat_completion`` uses them (so both paths read the same tokens)."""

    def __init__(self, llama: Any) -> None:
        from llama_cpp import llama_chat_format

        template = llama.metadata.get("tokenizer.chat_template")
        if not template or "<|im_start|>" not in template:
            raise ValueError("the stitched path needs a ChatML-style chat template")
        self._llama = llama

        def text(token: int) -> str:
            return str(llama._model.token_get_text(token)) if token != -1 else ""

        self._formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=text(llama.token_eos()), bos_token=text(llama.token_bos())
        )

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return str(self._formatter(messages=list(messages)).prompt)  # type: ignore[arg-type]

    def tokenize(self, text: str) -> list[int]:
        # special=True as llama-cpp-python reads a whole chat prompt.
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


@dataclass
class Plan:
    layout: Layout
    prefix: list[int]
    blocks: list[list[int]]
    tail: list[int]
    labels: list[int] | None = None  # per block: tokens of its label (per-passage caches), else None


def plan_prompt(
    renderer: PromptRenderer, messages: Sequence[dict[str, str]], max_tokens: int, n_ctx: int, labels: bool
) -> Plan | None:
    """The prompt's pieces as tokens, or None when it is not a passages prompt, does not fit ``n_ctx``
    or does not tokenize piece by piece as a whole; ``labels``: each block's label length too."""
    rendered = renderer.render(messages)
    layout = split_prompt(rendered, messages)
    if layout is None:
        return None
    tokenize = renderer.tokenize
    plan = Plan(layout, tokenize(layout.prefix), [tokenize(b) for b in layout.blocks], tokenize(layout.tail))
    pieces = plan.prefix + [t for b in plan.blocks for t in b] + plan.tail
    if len(pieces) + max_tokens + 1 > n_ctx:
        return None
    # Cutting the text must not change its tokens (it does not where the pieces end in "\n\n";
    # checked every time, ~1 ms, so a template or tokenizer where it does falls back).
    if pieces != tokenize(rendered):
        return None
    if labels:
        pairs = zip(layout.blocks, plan.blocks, strict=True)
        plan.labels = [label_length(renderer, text, tokens) for text, tokens in pairs]
    return plan


def label_length(renderer: PromptRenderer, block: str, tokens: list[int]) -> int:
    """How many of the block's tokens are its label (``<passage n="2``); 0 when the label and the
    rest do not tokenize apart (the block is then looked up as it is, not as slot 1)."""
    match = LABEL.match(block)
    if match is None:
        return 0
    label = renderer.tokenize(match.group(0))
    return len(label) if tokens[: len(label)] == label and len(label) < len(tokens) else 0


def prefix_tokens(renderer: PromptRenderer, system_prompt: str) -> list[int]:
    """The tokens every passages prompt of ``system_prompt`` starts with (up to "Passages:\n\n")."""
    rendered = renderer.render(
        [{"role": "system", "content": system_prompt}, {"role": "user", "content": PASSAGES_HEAD + "\0"}]
    )
    return renderer.tokenize(rendered[: rendered.index(PASSAGES_HEAD + "\0") + len(PASSAGES_HEAD)])


def stop_at(text: str, stop: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else None


def held_for_stop(text: str, stop: Sequence[str]) -> int:
    """How many characters at the end of ``text`` could begin a stop string."""
    held = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                held = max(held, k)
                break
    return held
