"""Passage KV caches: naive, today's default and the stitched paths in one process, on held-out questions.

Variants (one embedder, one generator object, greedy decoding; every variant sees every question
before the next question starts, so they share the machine's load):
- ``naive``: the issue's baseline pipeline (``bench_latency.Naive``: 1,000-character chunks, dense
  top-5, everything in the prompt, no verification).
- ``default``: careerqa with ``kv_cache=off`` and no excerpt: the whole prompt read live (llama.cpp
  keeps the system prompt cached), the way answers were made before passage caches: full prefill, the
  reference for answer quality.
- ``stitch-last-live``: the previous default: passages from the caches ``careerqa index`` computes (one
  per passage and slot), the last passage read live (it sees the passages before it), no excerpt.
- ``stitch``: every passage from its cache, then the first passage's key sentences (the excerpt,
  ``excerpt_tokens``) and the question read live in one decode: today's default.
- ``stitch-noexcerpt``: ``stitch`` without the excerpt (only the question read live).
- ``stitch-lookup``: ``stitch`` with prompt-lookup (n-gram) speculative decoding, ``LOOKUP_TOKENS``
  draft tokens per step.

Before timing, the index is built and the passage caches computed (both timed: ``index``). Then, per
question: time to the first text shown (``ttft``), to the model's first token (``first_token``), total;
after all questions, grounding as ``careerqa eval run`` scores it: citation recall / precision judged by
the local LLM (``--no-judge`` skips it), key-fact recall, false abstention, and how often each
variant's final (verified) answer equals the default's. Summaries are given for generated answers
(the FAQ fast path answers some questions without the model; they are listed apart).

    python bench/bench_kv.py                              # all answerable test questions (~1 h on 2 cores)
    python bench/bench_kv.py --questions 6 --no-judge    # a smoke run

Writes bench/results/kv.json (``--out``): the load average before, during and after, every answer,
and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from bench_latency import Naive  # noqa: E402
from bench_latency import percentile as _percentile  # noqa: E402

from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.judge import Judge  # noqa: E402
from careerqa.evals.scoring import EvalItem, citation_checks, facts_found, load_eval_set  # noqa: E402
from careerqa.generate.kv_sync import sync_for_index  # noqa: E402
from careerqa.index.faiss_store import IndexStore  # noqa: E402
from careerqa.types import Answer  # noqa: E402

VARIANTS = ("naive", "default", "stitch-last-live", "stitch", "stitch-noexcerpt", "stitch-lookup")
LOOKUP_TOKENS = 4
# variant: (kv_cache, excerpt_tokens (None: the setting), prompt-lookup draft tokens)
MODES: dict[str, tuple[str, int | None, int]] = {
    "default": ("off", 0, 0),
    "stitch-last-live": ("stitch-last-live", 0, 0),
    "stitch": ("stitch", None, 0),
    "stitch-noexcerpt": ("stitch", 0, 0),
    "stitch-lookup": ("stitch", None, LOOKUP_TOKENS),
}


def pick_questions(n: int | None) -> list[EvalItem]:
    items = load_eval_set(REPO / "eval" / "questions.jsonl", split="test")
    answerable = [i for i in items if i.answerable]
    return answerable if n is None else answerable[:n]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=None, help="the first N (default: all)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-judge", action="store_true", help="skip the LLM citation judge")
    parser.add_argument(
        "--fill-on-miss",
        action="store_true",
        help="compute passage caches while answering instead of at index time (quality runs: the "
        "answers are the stitched ones, the first use of a passage costs a live read)",
    )
    parser.add_argument(
        "--no-warm-up", dest="warm_up", action="store_false", help="skip the untimed question"
    )
    parser.add_argument("--slots", type=int, default=None, help="kv_slots (default: the setting)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kv.json")
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    questions = pick_questions(args.questions)
    loads = {"start": os.getloadavg()}

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "corpus", Path(tmp) / "corpus")
        base = Settings.from_env(
            corpus_dir=Path(tmp) / "corpus",
            index_dir=Path(tmp) / "index",
            kv_cache_dir=str(Path(tmp) / "kv"),
            kv_cache="stitch",
            answer_cache_size=0,
            kv_slots=args.slots,
        )
        engine = Engine(base, show_model_progress=False)
        embedder, generator = engine.embedder, engine.generator
        t0 = time.perf_counter()
        sync = engine.sync(full=True)
        index_s = time.perf_counter() - t0
        store = IndexStore.load(base.index_dir, engine.embedder_name, engine.dim)
        stitcher = generator.passage_kv().stitcher()  # type: ignore[attr-defined,union-attr]
        if args.fill_on_miss:
            stitcher.fill_on_miss = True
            kv = sync_for_index(base.replace(kv_cache="off"), store, lambda: generator)
        else:
            kv = sync_for_index(base, store, lambda: generator)
        index = {
            "chunks": sync.chunk_count,
            "index_seconds": round(index_s, 2),
            "kv": kv.to_dict(),
            "kv_seconds_per_chunk_slot": round(kv.seconds / max(1, kv.computed), 2),
        }
        print(
            f"index: {index_s:.1f} s; passage caches: {kv.computed} in {kv.seconds:.1f} s, "
            f"{kv.bytes_total / 2**20:.0f} MB",
            flush=True,
        )

        runners: dict[str, Any] = {}
        for name in names:
            if name == "naive":
                naive = Naive(base, embedder, generator)
                runners[name] = lambda item, cb, ask=naive.ask: ask(item.question, cb)
            else:
                runners[name] = _runner(engine, generator, stitcher, name)
        engine.view().answerer.warm_up()
        for run in runners.values() if args.warm_up else ():  # one untimed question each: lazy parts
            run(EvalItem("warm", "What is machine learning?", True), lambda _p: None)

        rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        answers: dict[str, list[Answer]] = {n: [] for n in names}
        loads["during"] = []
        for i, item in enumerate(questions, 1):
            loads["during"].append(os.getloadavg()[0])
            for name, run in runners.items():
                seen = _Seen()
                answer = run(item, seen)
                total = time.perf_counter() - seen.started
                row = _row(item, answer, seen.first or total, total, stitcher, name)
                # When the stream showed more than 60 characters: where the old hold-back released text.
                row["ttft_60_chars_ms"] = round((seen.at_60 or total) * 1000, 1)
                rows[name].append(row)
                answers[name].append(answer)
                print(f"[{i}/{len(questions)}] {name:17} {total:5.1f}s  {answer.text[:60]!r}", flush=True)
            _write(args.out, {"partial": True, "index": index, "runs": rows, "loadavg": loads})
        if not args.no_judge:
            judge = Judge(generator)
            for name in names:
                for row, answer in zip(rows[name], answers[name], strict=True):
                    row["sentences"] = [] if answer.abstained else citation_checks(answer, judge)
    loads["end"] = os.getloadavg()

    summary = {name: _summary(rows[name], rows.get("default")) for name in names}
    if "naive" in summary:
        for name in names:
            for key in ("ttft_ms_p50", "total_ms_p50"):
                ratio = summary["naive"]["all"][key] / max(1e-9, summary[name]["all"][key])
                summary[name]["all"][key.replace("_ms_p50", "_speedup_vs_naive")] = round(ratio, 2)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": loads},
        "generator": base.generator,
        "settings": {
            "kv_slots": base.kv_slots,
            "kv_n_ctx": base.kv_n_ctx,
            "context_tokens": base.context_tokens,
        },
        "index": index,
        "questions": [q.id for q in questions],
        "summary": summary,
        "runs": rows,
    }
    _write(args.out, report)
    print(json.dumps({"index": index, "summary": summary, "loadavg": loads}, indent=2))


class _Seen:
    """The on_text callback: when the first text and the 61st character reached the user."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.at_60: float | None = None
        self.chars = 0

    def __call__(self, piece: str) -> None:
        now = time.perf_counter() - self.started
        self.first = now if self.first is None else self.first
        self.chars += len(piece)
        if self.at_60 is None and self.chars > 60:
            self.at_60 = now


def percentile(values: list[float], q: float) -> float | None:
    return _percentile(values, q) if values else None  # None, not NaN: the report stays strict JSON


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _runner(engine: Engine, generator: Any, stitcher: Any, name: str) -> Any:
    mode, excerpt, lookup = MODES[name]
    answerer = engine.view().answerer
    settings = answerer.settings
    if excerpt is not None:
        settings = settings.replace(excerpt_tokens=excerpt)

    def run(item: EvalItem, on_text: Any) -> Answer:
        generator.kv_mode = mode
        answerer.settings = settings
        if stitcher is not None:
            stitcher.lookup = lookup
        return engine.ask(item.question, history=list(item.history), on_text=on_text)

    return run


def _row(
    item: EvalItem, answer: Answer, ttft: float, total: float, stitcher: Any, name: str
) -> dict[str, Any]:
    cited_text = " ".join(c.hit.chunk.text for c in answer.citations)
    stitched = name.startswith("stitch") and answer.route == "generated" and stitcher is not None
    return {
        "id": item.id,
        "ttft_ms": round(ttft * 1000, 1),
        "first_token_ms": answer.timings_ms.get("first_token"),
        # the stream's hold-back: from the model's first token to the first text shown
        "holdback_ms": round(answer.timings_ms["first_text"] - answer.timings_ms["first_token"], 1)
        if "first_text" in answer.timings_ms
        else None,
        "total_ms": round(total * 1000, 1),
        "route": answer.route,
        "abstained": answer.abstained,
        "evidence_cited": any(e in cited_text for e in item.evidence),
        "key_fact_recall": 0.0
        if answer.abstained
        else facts_found(item.facts, answer.text) / max(1, len(item.facts)),
        "answer": answer.text,
        "tokens": dict(stitcher.last) if stitched else {},
    }


def _summary(rows: list[dict[str, Any]], default: list[dict[str, Any]] | None) -> dict[str, Any]:
    out = {"all": _stats(rows), "generated": _stats([r for r in rows if r["route"] == "generated"])}
    if default is not None:
        same = [a["answer"] == b["answer"] for a, b in zip(rows, default, strict=True)]
        out["all"]["same_answer_as_default"] = round(sum(same) / max(1, len(same)), 3)
    return out


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n": 0}
    sentences = [s for r in rows for s in r.get("sentences", [])]
    cited = sum(len(s["cited"]) for s in sentences)
    return {
        "n": len(rows),
        "ttft_ms_p50": percentile([r["ttft_ms"] for r in rows], 50),
        "ttft_ms_p95": percentile([r["ttft_ms"] for r in rows], 95),
        "first_token_ms_p50": percentile([r["first_token_ms"] for r in rows if r["first_token_ms"]], 50),
        "ttft_60_chars_ms_p50": percentile([r["ttft_60_chars_ms"] for r in rows], 50),
        "holdback_ms_p50": percentile([r["holdback_ms"] for r in rows if r["holdback_ms"] is not None], 50),
        "holdback_ms_p95": percentile([r["holdback_ms"] for r in rows if r["holdback_ms"] is not None], 95),
        "total_ms_p50": percentile([r["total_ms"] for r in rows], 50),
        "total_ms_p95": percentile([r["total_ms"] for r in rows], 95),
        "false_abstention": round(sum(r["abstained"] for r in rows) / len(rows), 3),
        "key_fact_recall": round(statistics.mean(r["key_fact_recall"] for r in rows), 3),
        "evidence_cited": round(sum(r["evidence_cited"] for r in rows) / len(rows), 3),
        "citation_recall": round(sum(s["supported"] for s in sentences) / len(sentences), 3)
        if sentences
        else None,
        "citation_precision": round(sum(s["precise_citations"] for s in sentences) / cited, 3)
        if cited
        else None,
    }


if __name__ == "__main__":
    main()
