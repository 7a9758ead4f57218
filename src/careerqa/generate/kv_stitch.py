"""Stitched generation: the prompt's passages come from their precomputed KV caches, not a live read.

llama.cpp context layout (one context of its own beside the ``Llama`` object's, sharing its weights):
sequence 0 holds the system prefix (read once), sequence 1 is the prompt being answered, sequence 2
is scratch for loading a cache (``llama_state_seq_set_data`` wipes its destination first). A block
cached at the positions right after the prefix is loaded into 2, shifted (RoPE) to where it lands,
copied into 1 and dropped from 2. The first passage's key sentences (``prompts.excerpt_block``), the
question and the assistant header are then read live in one decode, and the answer is decoded
greedily: one decode call and one pending shift per question.

One cache per passage (``Settings.kv_layout`` "passage"): each passage is cached as it reads in slot 1
(``<passage n="1" …``). In slot n its first tokens, the label up to the slot number, are replaced by the
cells of ``<passage n="n`` read after the system prefix alone (computed once per slot and kept in
memory, a few tokens each), exactly what a cache computed for slot n holds there; the rest of the
passage keeps the cells it got after label 1. "slot" keeps one cache per (passage, slot), for
comparison (``bench/bench_kv_layouts.py``).

KV types (``Settings.kv_type``): f16, or llama.cpp's q8_0 / q4_0 blocks for K and V (about 0.53 / 0.28
of the bytes). A quantized V cache needs flash attention, so the context then runs with it.

What a passage does not see: the passages before it (each was read after the system prefix alone).
The excerpt, the question and the answer see every passage. Quality against full prefill is measured in
``bench/bench_kv.py``; ``Settings.kv_cache`` chooses between "stitch", "stitch-last-live" (the last
passage read live, so it sees the others) and "off".

Fallbacks: a prompt that is not a passages prompt (the rewrite prompt, the judge), a prompt that does
not fit ``kv_n_ctx``, or a model without a ChatML-style template is not planned here (``plan`` returns
None) and the caller uses the normal path; a block whose cache is missing, stale or unreadable is
read live. Not handled here: the files (``generate/kv_cache.py``, ``generate/kv_sync.py``) and
loading the model (``generate/llama.py``).
"""

from __future__ import annotations

import codecs
import ctypes
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from careerqa.generate.kv_cache import CachedBlock, KVStore, block_key, prefix_key
from careerqa.generate.kv_prompt import (
    LABEL,
    Plan,
    PromptRenderer,
    held_for_stop,
    plan_prompt,
    prefix_tokens,
    slot_one,
    stop_at,
)
from careerqa.generate.kv_sync import BlockComputer

# llama.cpp's ggml_type numbers for the KV cache types offered (Settings.kv_type)
KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}
SEQ_PREFIX, SEQ_MAIN, SEQ_SCRATCH = 0, 1, 2


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
        kv_type: str = "f16",
        layout: str = "passage",
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        self._llama = llama
        self.store = store
        self.model = model
        self.lookup = lookup  # prompt-lookup draft tokens per step; 0 = plain greedy decoding
        if kv_type not in KV_TYPES:
            raise ValueError(f"unknown KV cache type {kv_type!r}; choose one of {', '.join(KV_TYPES)}")
        self.kv_type = kv_type
        self.per_passage = layout == "passage"
        # Compute and store a missing cache while answering (Settings.kv_fill_on_miss, for benchmarks):
        # the answer is then the stitched one, and the time that of a live read.
        self.fill_on_miss = False
        self._labels: dict[tuple[tuple[int, ...], tuple[int, ...]], bytes] = {}  # label cells by prefix
        self.renderer = PromptRenderer(llama)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = 512
        params.n_seq_max = 3
        params.kv_unified = True  # a partial seq_cp between sequences aborts without it
        params.n_threads = params.n_threads_batch = threads
        params.type_k = params.type_v = KV_TYPES[kv_type]
        # As the Llama object's context, unless the V cache is quantized: llama.cpp needs flash
        # attention for that.
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            if kv_type == "f16"
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        )
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
        return plan_prompt(self.renderer, messages, max_tokens, self.n_ctx, self.per_passage)

    def prefix_tokens(self, system_prompt: str) -> list[int]:
        return prefix_tokens(self.renderer, system_prompt)

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

    def label_blob(self, prefix: list[int], label: list[int]) -> bytes:
        """The cells of a slot's label read right after the prefix (computed once, kept in memory)."""
        key = (tuple(prefix), tuple(label))
        if key not in self._labels:
            self._labels[key] = self._block_blob(label, len(prefix))
        return self._labels[key]

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

    def _insert(self, blob: bytes, tokens: int, at: int, prefix_len: int, skip: int = 0) -> bool:
        """Load a cached block of ``tokens`` tokens into sequence 1, its first ``skip`` cells left out and
        the rest starting at position ``at``; False (nothing changed) if it fails."""
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
        if skip:
            self._rm(SEQ_SCRATCH, lo, lo + skip)
        if at != prefix_len + skip:
            self._lib.llama_memory_seq_add(self._mem, SEQ_SCRATCH, lo + skip, hi + 1, at - prefix_len - skip)
        self._lib.llama_memory_seq_cp(self._mem, SEQ_SCRATCH, SEQ_MAIN, -1, -1)
        self._rm(SEQ_SCRATCH)
        return True

    def _lookup(self, plan: Plan, i: int, pkey: str) -> list[tuple[bytes, int, int]] | None:
        """What puts block ``i`` into sequence 1 from caches: (blob, its tokens, cells left out) in
        order, or None when there is no cache for it (the block is then read live)."""
        assert self.store is not None
        text, tokens = plan.layout.blocks[i], plan.blocks[i]
        p = len(plan.prefix)
        label = plan.labels[i] if plan.labels is not None else 0
        one = slot_one(text) if label else text
        if one == text:  # slot 1, or a cache per (passage, slot): the block as it is
            cached = self._cached(block_key(pkey, text), tokens, p)
            return None if cached is None else [(cached.blob, len(tokens), 0)]
        # Another slot of a per-passage cache: this slot's label cells, then the passage's own cells
        # after the label it was computed with.
        one_label = self.tokenize(LABEL.match(one).group(0))  # type: ignore[union-attr]
        cached = self._cached(block_key(pkey, one), one_label + tokens[label:], p)
        if cached is None:
            return None
        return [
            (self.label_blob(plan.prefix, tokens[:label]), label, 0),
            (cached.blob, cached.tokens, len(one_label)),
        ]

    def _place(self, parts: list[tuple[bytes, int, int]], pos: int, prefix_len: int) -> bool:
        """Insert ``parts`` (``_lookup``) from ``pos`` on; False, with nothing changed, if one fails."""
        at = pos
        for blob, tokens, skip in parts:
            if not self._insert(blob, tokens, at, prefix_len, skip):
                self._rm(SEQ_MAIN, pos, at)
                return False
            at += tokens - skip
        return True

    def _cached(self, key: str, tokens: list[int], prefix_len: int) -> CachedBlock | None:
        assert self.store is not None
        cached = self.store.get(key, len(tokens))
        if cached is None and self.fill_on_miss:
            blob = self._block_blob(tokens, prefix_len)  # as `careerqa index` would have computed it
            self.store.put(key, len(tokens), blob, {"filled_on_miss": True})
            cached = CachedBlock(len(tokens), blob)
        return cached

    # --- answering ----------------------------------------------------------------------------

    def stream(
        self, plan: Plan, *, max_tokens: int, stop: Sequence[str] | None = None, live_last: bool = False
    ) -> Iterator[str]:
        """Read the plan's prompt (passages from their caches where possible) and decode greedily."""
        layout = plan.layout
        self.ensure_prefix(plan.prefix)
        self._rm(SEQ_MAIN)
        self._rm(SEQ_SCRATCH)
        for i, label in enumerate(plan.labels or ()):  # before any shift is pending: no K rotation
            if label and slot_one(layout.blocks[i]) != layout.blocks[i]:
                self.label_blob(plan.prefix, plan.blocks[i][:label])
        self._lib.llama_memory_seq_cp(self._mem, SEQ_PREFIX, SEQ_MAIN, -1, -1)
        pos, live = len(plan.prefix), []
        loaded = read_live = swapped = 0
        pkey = prefix_key(self.model, layout.system, self.kv_type)
        for i, tokens in enumerate(plan.blocks):
            use_cache = self.store is not None and not (live_last and i == len(plan.blocks) - 1)
            parts = self._lookup(plan, i, pkey) if use_cache else None
            if parts is None:
                live.extend(tokens)
                continue
            if live:  # a sequence's batch must start right after its last position
                self._decode(live, pos, SEQ_MAIN, logits="none")
                pos += len(live)
                read_live += len(live)
                live = []
            if self._place(parts, pos, len(plan.prefix)):
                pos += len(tokens)
                loaded += 1
                swapped += len(parts) > 1
            else:
                live.extend(tokens)
        live.extend(plan.tail)
        self.last = {
            "prompt_tokens": pos + len(live),
            "live_tokens": read_live + len(live),
            "blocks": len(plan.blocks),
            "blocks_cached": loaded,
            "labels_swapped": swapped,
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
            cut = stop_at(text, stop)
            if cut is not None:
                if cut > shown:
                    yield text[shown:cut]
                return
            safe = len(text) - held_for_stop(text, stop)
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
        cut = stop_at(rest, stop)
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
