"""Stitched generation: the prompt's passages come from their precomputed KV caches, not a live read.

llama.cpp context layout (one context of its own beside the ``Llama`` object's, sharing its weights):
sequence 0 holds the system prefix (read once), sequence 1 is the prompt being answered, sequence 2
is scratch for loading a cache (``llama_state_seq_set_data`` wipes its destination first). A block
cached at the positions right after the prefix is loaded into 2, shifted (RoPE) to where it lands,
copied into 1 and dropped from 2. The first passage's key sentences (``prompts.excerpt_block``), the
question and the assistant header are then read live in one decode, and the answer is decoded
greedily. With a cache per (passage, slot) the passage labels need no live decode either: one decode
call and one pending shift per question.

What a passage does not see: the passages before it (each was read after the system prefix alone).
The excerpt, the question and the answer see every passage. Quality against full prefill is measured in
``bench/bench_kv.py``; ``Settings.kv_cache`` chooses between "stitch", "stitch-last-live" (the last
passage read live, so it sees the others) and "off".

Fallbacks: a prompt that is not a passages prompt (the rewrite prompt, the judge), a prompt that does
not fit ``kv_n_ctx``, or a model without a ChatML-style template is not planned here (``plan`` returns
None) and the caller uses the normal path; a block whose cache is missing, stale or unreadable is
read live. Not handled here: the files (``generate/kv_cache.py``) and loading the model
(``generate/llama.py``).
"""

from __future__ import annotations

import codecs
import ctypes
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from careerqa.generate.kv_cache import BlockComputer, CachedBlock, KVStore, block_key, prefix_key

PASSAGES_HEAD = "Passages:\n\n"  # how ``prompts.build_messages`` starts the user message
_BLOCK = re.compile(r'<passage n="\d+" source=[^\n>]*>\n.*?\n</passage>\n\n', re.DOTALL)
# the first passage's key sentences repeated before the question (``prompts.excerpt_block``): read live
_EXCERPT = re.compile(r'<passage n="\d+">\n.*?\n</passage>\n\n', re.DOTALL)
SEQ_PREFIX, SEQ_MAIN, SEQ_SCRATCH = 0, 1, 2


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


class Stitcher(BlockComputer):
    """A llama.cpp context that reads passages from their caches. Not thread-safe: the generator's lock
    serialises calls."""

    def __init__(
        self,
        llama: Any,
        store: KVStore | None,
        model: str,
        n_ctx: int,
        threads: int,
        lookup: int = 0,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        self._llama = llama
        self.store = store
        self.model = model
        self.lookup = lookup  # prompt-lookup draft tokens per step; 0 = plain greedy decoding
        # Compute and store a missing cache while answering (bench_kv.py --fill-on-miss): the answer
        # is then the stitched one, and the time that of a live read.
        self.fill_on_miss = False
        self.renderer = PromptRenderer(llama)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = 512
        params.n_seq_max = 3
        params.kv_unified = True  # a partial seq_cp between sequences aborts without it
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as the Llama object's context
        params.no_perf = True
        self._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self.n_ctx = n_ctx
        self._n_batch = 512
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llama._model.model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._prefix: list[int] | None = None  # tokens now in sequence 0
        self.last: dict[str, int] = {}  # counts of the last call: tokens read live, blocks loaded, …

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()

    # --- planning -----------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self.renderer.tokenize(text)

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self.renderer.render(messages)

    def plan(self, messages: Sequence[dict[str, str]], max_tokens: int) -> Plan | None:
        rendered = self.render(messages)
        layout = split_prompt(rendered, messages)
        if layout is None:
            return None
        plan = Plan(layout, self.tokenize(layout.prefix), [self.tokenize(b) for b in layout.blocks], [])
        plan.tail = self.tokenize(layout.tail)
        pieces = plan.prefix + [t for b in plan.blocks for t in b] + plan.tail
        if len(pieces) + max_tokens + 1 > self.n_ctx:
            return None
        # Cutting the text must not change its tokens (it does not where the pieces end in "\n\n";
        # checked every time, ~1 ms, so a template or tokenizer where it does falls back).
        if pieces != self.tokenize(rendered):
            return None
        return plan

    def prefix_tokens(self, system_prompt: str) -> list[int]:
        rendered = self.render(
            [{"role": "system", "content": system_prompt}, {"role": "user", "content": PASSAGES_HEAD + "\0"}]
        )
        return self.tokenize(rendered[: rendered.index(PASSAGES_HEAD + "\0") + len(PASSAGES_HEAD)])

    # --- the context --------------------------------------------------------------------------

    def _decode(self, tokens: Sequence[int], pos: int, seq: int, logits: str = "last") -> None:
        """Read ``tokens`` into ``seq`` from ``pos`` on; logits for the last token, all of them or none."""
        for start in range(0, len(tokens), self._n_batch):
            part = tokens[start : start + self._n_batch]
            batch = self._batch
            batch.n_tokens = len(part)
            for i, token in enumerate(part):
                batch.token[i] = token
                batch.pos[i] = pos + start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = logits == "all"
            if logits == "last" and start + len(part) == len(tokens):
                batch.logits[len(part) - 1] = True
            rc = self._lib.llama_decode(self._ctx.ctx, batch)
            if rc != 0:
                raise StitchFailed(f"llama_decode returned {rc}")

    def _logits(self, i: int) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(self._ctx.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _rm(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        self._lib.llama_memory_seq_rm(self._mem, seq, p0, p1)

    def ensure_prefix(self, tokens: list[int]) -> None:
        if self._prefix == tokens:
            return
        self._lib.llama_memory_clear(self._mem, True)
        self._prefix = None
        self._decode(tokens, 0, SEQ_PREFIX, logits="none")
        self._prefix = tokens

    def compute(self, system_prompt: str, block: str) -> tuple[int, bytes]:
        """The cache of ``block`` read right after the system prefix: (tokens, blob without the prefix)."""
        prefix = self.prefix_tokens(system_prompt)
        tokens = self.tokenize(block)
        if len(prefix) + len(tokens) + 1 > self.n_ctx:
            raise ValueError(f"the passage takes {len(tokens)} tokens, more than kv_n_ctx leaves")
        self.ensure_prefix(prefix)
        self._rm(SEQ_MAIN)  # a previous answer's cells would take room
        return len(tokens), self._block_blob(tokens, len(prefix))

    def _block_blob(self, tokens: Sequence[int], prefix_len: int) -> bytes:
        """Read ``tokens`` after the prefix in the scratch sequence and return their cells alone."""
        self._rm(SEQ_SCRATCH)
        self._lib.llama_memory_seq_cp(self._mem, SEQ_PREFIX, SEQ_SCRATCH, -1, -1)
        try:
            self._decode(tokens, prefix_len, SEQ_SCRATCH, logits="none")
            self._rm(SEQ_SCRATCH, 0, prefix_len)  # the blob holds the block alone
            size = self._lib.llama_state_seq_get_size(self._ctx.ctx, SEQ_SCRATCH)
            buf = (ctypes.c_uint8 * size)()
            written = self._lib.llama_state_seq_get_data(self._ctx.ctx, buf, size, SEQ_SCRATCH)
            return ctypes.string_at(buf, written)
        finally:
            self._rm(SEQ_SCRATCH)

    def _insert(self, blob: bytes, tokens: int, at: int, prefix_len: int) -> bool:
        """Load a cached block into sequence 1 at position ``at``; False (nothing changed) if it fails."""
        buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
        ctx = self._ctx.ctx
        if not self._lib.llama_state_seq_set_data(ctx, buf, len(blob), SEQ_SCRATCH):
            self._rm(SEQ_SCRATCH)
            return False
        lo = self._lib.llama_memory_seq_pos_min(self._mem, SEQ_SCRATCH)
        hi = self._lib.llama_memory_seq_pos_max(self._mem, SEQ_SCRATCH)
        if lo != prefix_len or hi != prefix_len + tokens - 1:  # computed after another prefix
            self._rm(SEQ_SCRATCH)
            return False
        if at != prefix_len:
            self._lib.llama_memory_seq_add(self._mem, SEQ_SCRATCH, lo, hi + 1, at - prefix_len)
        self._lib.llama_memory_seq_cp(self._mem, SEQ_SCRATCH, SEQ_MAIN, -1, -1)
        self._rm(SEQ_SCRATCH)
        return True

    # --- answering ----------------------------------------------------------------------------

    def stream(
        self, plan: Plan, *, max_tokens: int, stop: Sequence[str] | None = None, live_last: bool = False
    ) -> Iterator[str]:
        """Read the plan's prompt (passages from their caches where possible) and decode greedily."""
        layout = plan.layout
        self.ensure_prefix(plan.prefix)
        self._rm(SEQ_MAIN)
        self._rm(SEQ_SCRATCH)
        self._lib.llama_memory_seq_cp(self._mem, SEQ_PREFIX, SEQ_MAIN, -1, -1)
        p = len(plan.prefix)
        pos, live = p, []
        loaded = read_live = 0
        pkey = prefix_key(self.model, layout.system)
        for i, (text, tokens) in enumerate(zip(layout.blocks, plan.blocks, strict=True)):
            use_cache = self.store is not None and not (live_last and i == len(plan.blocks) - 1)
            key = block_key(pkey, text)
            cached = self.store.get(key, len(tokens)) if use_cache and self.store else None
            if cached is None and use_cache and self.fill_on_miss and self.store is not None:
                blob = self._block_blob(tokens, p)  # as `careerqa index` would have computed it
                self.store.put(key, len(tokens), blob, {"filled_on_miss": True})
                cached = CachedBlock(len(tokens), blob)
            if cached is None:
                live.extend(tokens)
                continue
            if live:  # a sequence's batch must start right after its last position
                self._decode(live, pos, SEQ_MAIN, logits="none")
                pos += len(live)
                read_live += len(live)
                live = []
            if self._insert(cached.blob, len(tokens), pos, p):
                pos += len(tokens)
                loaded += 1
            else:
                live.extend(tokens)
        live.extend(plan.tail)
        self.last = {
            "prompt_tokens": pos + len(live),
            "live_tokens": read_live + len(live),
            "blocks": len(plan.blocks),
            "blocks_cached": loaded,
            "completion_tokens": 0,
            "drafted": 0,
            "accepted": 0,
        }
        self._decode(live, pos, SEQ_MAIN)
        pos += len(live)
        context = np.array([t for b in plan.blocks for t in b] + plan.tail, dtype=np.intc)
        yield from self._generate(pos, max_tokens, stop or [], context)

    def _generate(self, pos: int, max_tokens: int, stop: Sequence[str], context: np.ndarray) -> Iterator[str]:
        lib, vocab = self._lib, self._vocab
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        out: list[int] = []
        text, shown = "", 0
        token = int(np.argmax(self._logits(-1)))
        while len(out) < max_tokens and not lib.llama_vocab_is_eog(vocab, token):
            out.append(token)
            self.last["completion_tokens"] = len(out)
            text += decoder.decode(self._piece(token))
            cut = _stop_at(text, stop)
            if cut is not None:
                if cut > shown:
                    yield text[shown:cut]
                return
            safe = len(text) - _held_for_stop(text, stop)
            if safe > shown:
                yield text[shown:safe]
                shown = safe
            if len(out) >= max_tokens:
                break
            draft = self._draft(context, out, max_tokens - len(out) - 1)
            self._decode([token, *draft], pos, SEQ_MAIN, logits="all" if draft else "last")
            pos += 1
            if not draft:
                token = int(np.argmax(self._logits(-1)))
                continue
            # Greedy verification: keep the draft while it is what the model would have chosen.
            self.last["drafted"] += len(draft)
            accepted = 0
            token = int(np.argmax(self._logits(0)))
            while accepted < len(draft) and token == draft[accepted] and len(out) < max_tokens:
                if lib.llama_vocab_is_eog(vocab, token):
                    break
                out.append(token)
                text += decoder.decode(self._piece(token))
                accepted += 1
                token = int(np.argmax(self._logits(accepted)))
            self.last["accepted"] += accepted
            self.last["completion_tokens"] = len(out)
            pos += accepted
            self._rm(SEQ_MAIN, pos, -1)  # the rejected draft tokens
        rest = text + decoder.decode(b"", final=True)
        cut = _stop_at(rest, stop)
        rest = rest[:cut] if cut is not None else rest
        if len(rest) > shown:
            yield rest[shown:]

    def _piece(self, token: int) -> bytes:
        return bytes(self._llama._model.detokenize([token], special=False))

    def _draft(self, context: np.ndarray, out: list[int], room: int) -> list[int]:
        if self.lookup <= 0 or room <= 0 or len(out) < 2:
            return []
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        ids = np.concatenate([context, np.array(out, dtype=np.intc)])
        found = LlamaPromptLookupDecoding.find_candidate_pred_tokens(ids, 3, min(self.lookup, room))
        return [int(t) for t in found]


class StitchFailed(RuntimeError):
    """llama.cpp refused a stitched decode; before any text is out, the caller reads the prompt normally."""


def _stop_at(text: str, stop: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else None


def _held_for_stop(text: str, stop: Sequence[str]) -> int:
    """How many characters at the end of ``text`` could begin a stop string."""
    held = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                held = max(held, k)
                break
    return held
