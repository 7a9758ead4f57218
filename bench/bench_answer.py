"""Benchmark answering end to end with the real models; writes bench/results/answer.json.

For each generator profile (the default 1.5B first, then the 0.5B fast profile as the comparison, both in
this one process over the same index and questions): model load time, the first question's time to
first token (the system prompt is not cached yet), then over the answerable questions of the eval set:
total latency p50/p95, time to first token p50, and how many were answered. Ratios are 0.5B / 1.5B.

    python bench/bench_answer.py [--set eval/questions.jsonl] [--limit 10]   # its dev split
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from careerqa.config import Settings
from careerqa.embed.loader import load_embedder
from careerqa.engine.core import Engine
from careerqa.evals.scoring import load_eval_set
from careerqa.generate.llama import load_generator

REPO = Path(__file__).resolve().parents[1]
PROFILES = ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]


def run_profile(settings: Settings, embedder, questions: list[str]) -> dict:
    t = time.perf_counter()
    generator = load_generator(settings, progress=False)
    load_s = time.perf_counter() - t
    engine = Engine(settings, embedder=embedder, generator=generator)
    cold = engine.ask(questions[0])  # warms the KV cache with the system prompt
    totals, first, answered = [], [], 0
    for q in questions[1:]:
        answer = engine.ask(q)
        totals.append(answer.timings_ms["total"])
        first.append(answer.timings_ms.get("first_token", answer.timings_ms["total"]))
        answered += not answer.abstained
    return {
        "load_s": round(load_s, 2),
        "cold_first_token_ms": cold.timings_ms.get("first_token"),
        "questions": len(totals),
        "answered": answered,
        "latency_ms_p50": round(statistics.median(totals), 1),
        "latency_ms_p95": round(float(np.percentile(totals, 95)), 1),
        "first_token_ms_p50": round(statistics.median(first), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "questions.jsonl")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "answer.json")
    args = parser.parse_args()
    items = load_eval_set(args.set, "dev")
    questions = [i.question for i in items if i.answerable and not i.history][: args.limit + 1]

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "corpus", Path(tmp) / "corpus")
        base = Settings.from_env(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index")
        embedder = load_embedder(base.embedder)
        Engine(base, embedder=embedder).sync()
        results = {p: run_profile(base.replace(generator=p), embedder, questions) for p in PROFILES}

    slow, fast = results[PROFILES[0]], results[PROFILES[1]]
    report = {
        "settings": {
            "context_tokens": base.context_tokens,
            "max_answer_tokens": base.max_answer_tokens,
            "top_k": base.top_k,
            "threads": base.threads or "all",
        },
        "profiles": results,
        "ratio_fast_over_default": {
            k: round(fast[k] / slow[k], 2) for k in ("latency_ms_p50", "first_token_ms_p50") if slow[k]
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
