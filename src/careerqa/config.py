"""Settings: one object, built when needed and passed in (never a module-level singleton).

Every field can be set from the environment as ``CAREERQA_<FIELD>`` (for example
``CAREERQA_INDEX_DIR=~/careerqa-index``); command-line options override the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from careerqa.errors import BadInput

ENV_PREFIX = "CAREERQA_"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "careerqa"


# Settings that take one of a few words: anything else is a typo, refused with the choices (a silent
# fallback once made CAREERQA_CONTEXT_MODE=sentence mean "passages").
CHOICES: dict[str, tuple[str, ...]] = {
    "context_mode": ("passages", "sentences"),
    "kv_cache": ("stitch-last-live", "stitch", "off"),  # passage KV caches (generate/kv_stitch.py)
    "kv_layout": ("passage", "slot"),
    "kv_type": ("f16", "q8_0", "q4_0"),
}


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # The assembled GGUF lives here, outside the repository.
    cache_dir: Path = field(default_factory=_default_cache_dir)

    embedder: str = "all-MiniLM-L6-v2"
    embed_batch_size: int = 32
    # "onnx": ONNX Runtime on a file exported once into cache_dir/onnx (no torch on the query path);
    # "torch": sentence-transformers. Same vectors (bench/bench_onnx.py); torch is the slower fallback.
    embedder_backend: str = "onnx"
    # When set (e.g. http://127.0.0.1:8000), `careerqa ask` and `search` send the question to that
    # running `careerqa serve` instead of loading the index and models (same as --server URL).
    server_url: str = ""

    # Chunking, in words.
    chunk_min_words: int = 60
    chunk_max_words: int = 180  # all-MiniLM-L6-v2 reads 256 word pieces at most

    # Retrieval.
    top_k: int = 5
    candidates: int = 30  # per retriever, before fusion
    rrf_k: int = 60

    # Answering.
    generator: str = "qwen2.5-coder-1.5b"  # or "qwen2.5-coder-0.5b" (the fast profile)
    # Abstain before generating when the best passage's cosine similarity is below this.
    # Set just under the lowest answerable question of the dev split of eval/questions.jsonl
    # (`careerqa eval calibrate --split dev`: 0.200); the off-topic questions above it are refused later,
    # by the model, the focus check or verification (14 of 14 on dev; 0.25 refused 2 answerable ones).
    min_dense_score: float = 0.19
    context_tokens: int = 600  # budget for the numbered passages in the prompt (~3 passages)
    # "passages": whole passages under context_tokens; "sentences" (the fast profile): only the
    # passages' sentences closest to the question, under sentence_tokens, while citations still name
    # whole passages. bench/bench_latency.py: sentences 2.4x faster with the same citation recall but
    # fewer key facts (0.58 vs 0.75 on 12 held-out questions), so passages stay the default.
    context_mode: str = "passages"
    sentence_tokens: int = 240
    # The first passage's sentences closest to the question (at most 3, under this many tokens) shown
    # again right before the question, when the prompt holds two passages or more (0: never). With
    # passage KV caches they are the passage text read live, and the one that sees all the others:
    # on the test split (bench/replay_answers.py, eval/results/issue14/README.md) "stitch" went from key
    # facts 0.745 to 0.898 with them, above "stitch-last-live" (0.847), which reads a whole passage
    # (~230 tokens) live instead of ~85; 48 tokens gave 0.878.
    excerpt_tokens: int = 64
    # Answer from a corpus FAQ entry, without generating, when the question's cosine with the entry's
    # question reaches this (bench/calibrate_faq.py sets it from the eval set); above 1 turns it off.
    faq_min_score: float = 0.77  # eval: 9 of 14 right matches fire, 0 wrong (highest wrong 0.74)
    answer_cache_size: int = 256  # answers kept per index version
    max_answer_tokens: int = 160
    n_ctx: int = 4096
    threads: int = 0  # 0: all cores

    # Verification: a sentence is supported when its support score reaches this.
    support_threshold: float = 0.5
    # A supported sentence is re-cited to a passage whose support score beats its cited passage's by
    # this much (grounding.Verifier): clearly better, not noise between near-equal scores. No dev answer
    # changes for any margin from 0 to 0.3; on test, 0.05-0.15 move two copied lists to the passage
    # they come from (eval/results/issue14/README.md, fourth round).
    recite_margin: float = 0.1

    # Focus, relevance and form of answers (issue 14; calibrated on the dev split, see docs/design.md,
    # "Answer focus, form and typo-tolerant retrieval"). An answer keeps at most this many sentences
    # (the prompt asks for 1-3).
    max_answer_sentences: int = 4
    # An answer whose best sentence is less similar to the question than this is off target and
    # refused; sentences under the second are dropped.
    # Dev (bench/calibrate_focus.py): on-target answers' best sentence 0.29 and up, off-target 0.25.
    min_answer_relevance: float = 0.27
    min_sentence_relevance: float = 0.1
    # A model refusal is retried with the closest passage (rule refusal_retry) when the prompt's
    # passages hold this IDF-weighted share of the question's terms. Chosen on the
    # dev splits pooled over the seed, pandas-doc and r-manuals (bench/results/issue25/
    # sweep-focus-rescue-dev.json): 0.5 false refusals 0.095; 0.25 0.084, unanswerable refused 1.0;
    # 0 0.084 and 0.955.
    focus_rescue_coverage: float = 0.25
    # When a first draft is refused (and its retry too) while the passages hold that share of the
    # question's terms, the passage sentence closest to the question is quoted, with the next ones up
    # to quote_sentences, if its cosine reaches this (rule quote_fallback; answer/pipeline.py).
    quote_min_similarity: float = 0.57
    quote_sentences: int = 2

    # Passage KV caches (generate/kv_cache.py, kv_sync.py, kv_stitch.py; docs/design.md, "Passage KV
    # caches"). "stitch": retrieved passages are read from their caches (computed wherever the index is
    # built: `careerqa index`, and in the background by `serve`, the watchers and a first-use `ask`);
    # only the excerpt (excerpt_tokens) and the question are read live; "stitch-last-live": the last
    # passage is read live too (it sees the others; ~230 more tokens, ~2 s on 2 cores); "off": every
    # prompt is read whole and no cache is computed.
    kv_cache: str = "stitch"
    # "passage": one cache per passage, its slot label swapped in at question time; "slot": one per
    # (passage, slot) for the slots [1]..[kv_slots] (4x the compute and bytes; kept to compare).
    kv_layout: str = "passage"
    kv_slots: int = 4
    # llama.cpp KV cache type of the stitched context and its caches. q8_0 takes 0.53 of f16's bytes
    # (2.7 against 5.2 MB per seed passage) with answers as good, but a quantized V cache runs with
    # flash attention, slower on a CPU: first text p50 1.60 s against 1.15 s, compute 2.5 against
    # 2.2 s per passage (bench/bench_kv_types.py, bench/results/kv-layouts/). f16 for speed; q8_0 where
    # disk is short (a budget too small for the corpus in f16 keeps twice the passages in q8_0).
    kv_type: str = "f16"
    # MB of passage caches kept on disk (the most-retrieved passages first; the rest are read live).
    # 0: a quarter of the free disk, so all of the corpus whenever it fits there (kv_sync.py).
    kv_budget_mb: int = 0
    # Compute a missing passage's cache while answering (benchmarks that measure stitched answers
    # without computing every cache first); off: a passage without a cache is read live.
    kv_fill_on_miss: int = 0
    # 1: a CLI `ask` or `chat` that finds caches missing starts `careerqa index` in the background
    # (nice 10, log in the cache folder) to compute them; 0: only `careerqa index` and `serve` do.
    kv_background: int = 1
    kv_cache_dir: str = ""  # default: <cache_dir>/passage-kv/<hash of the index folder>
    kv_n_ctx: int = 1536  # the stitched context (~1,300 tokens at most by default): a RoPE shift costs
    # in proportion to it; a prompt that does not fit is read by the normal path
    # Prompt-lookup draft tokens per decode step on the stitched path (0: plain greedy decoding). The
    # drafts are n-grams of the passages, verified greedily in one batch: bench/bench_kv.py, 45 held-out
    # answers, total p50 2.96 -> 2.50 s, p95 5.84 -> 4.34 s, 38% of drafted tokens accepted.
    kv_lookup: int = 4
    # Answer-path rules turned off, comma-separated names of ``answer/rules.py`` (ablations).
    rules_off: str = ""

    # Web service. Without an admin token, POST /reindex is refused.
    admin_token: str = field(default="", repr=False)
    # API keys for /chat, /search, /feedback and /v1 (web/auth.py): comma-separated [name:]sha256:<hex>
    # entries from `careerqa keys new`; empty: no key needed (a loopback server). Requests a minute
    # per key (a token bucket; 0: no limit); past it, 429 with Retry-After.
    api_keys: str = field(default="", repr=False)
    api_rate_per_minute: int = 60
    queue_size: int = 4  # questions that may wait while one is answered; more get 503

    # Watching the corpus and the question log (content-gap report).
    watch_quiet_ms: int = 400  # `index --watch` / `serve --watch` sync when nothing changed for this long
    # 1: record each answer's question and outcome (no client address) in <index_dir>/questions.jsonl,
    # for `careerqa gaps`; off by default.
    log_questions: int = 0
    question_log_max_bytes: int = 5 * 2**20  # then the log is rotated to questions.1.jsonl (one kept)

    # Past one machine (docs/manual.md, "Scaling out"). A remote OpenAI-compatible generator replaces the
    # local llama.cpp model when generator_url is set; generator_model defaults to the generator's name.
    generator_url: str = ""
    generator_model: str = ""
    generator_api_key: str = field(default="", repr=False)
    generator_timeout: float = 60.0  # seconds to wait for each piece of a reply
    generator_connect_timeout: float = 5.0
    generator_retries: int = 3  # on refused connections, timeouts, 429 and 5xx, with backoff
    # Answers generated at once by one replica (the rest wait in its queue): 1 for the local model,
    # which runs one context on all cores; a remote server that batches can take more.
    generation_slots: int = 1
    # Retrieval in Qdrant instead of FAISS files: an http(s):// URL for a server or cluster, or a
    # folder for qdrant-client's embedded local mode (one process at a time).
    qdrant_url: str = ""
    qdrant_api_key: str = field(default="", repr=False)
    qdrant_collection: str = "careerqa"
    qdrant_shards: int = 1  # used when the collection is created on a server
    qdrant_replicas: int = 1

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise BadInput(
                    f"{ENV_PREFIX}{name.upper()}={value!r} is not a valid value; choose one of: "
                    + ", ".join(allowed)
                )

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then ``CAREERQA_*`` variables, then ``overrides`` that are not None."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if "Path" in kind:
            return Path(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise BadInput(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
