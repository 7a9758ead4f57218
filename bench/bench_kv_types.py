"""Answers per passage-KV type in one process: time to the first text and to the end, f16 vs q8_0.

Quantized KV caches halve the bytes per passage, but llama.cpp reads a quantized cache only with flash
attention, which on a CPU is slower than its f16 path; what that costs an answer is measured here. One
engine per type (its own model context: the loaded caches must match the context's types), each with
its caches computed first into a scratch folder; then every answerable question is asked of every
engine in turn (the order rotates, so the types share the machine's load); each engine sees a question
once, so none comes from its answer cache.

    python bench/bench_kv_types.py --corpus corpus --questions eval/questions.jsonl   # ~6 min, seed

Writes bench/results/kv-layouts/types.json (``--out``): load averages, per-type p50/p95, every answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from bench_kv_layouts import pstats  # noqa: E402

from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.scoring import load_eval_set  # noqa: E402


def timed(engine: Engine, question: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    first: list[float] = []

    def on_text(_piece: str) -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    answer = engine.ask(question, on_text=on_text)
    total = time.perf_counter() - t0
    return {
        "question": question,
        "first_text_s": round(first[0] if first else total, 3),
        "total_s": round(total, 3),
        "route": answer.route,
        "abstained": answer.abstained,
        "answer": answer.text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus")
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "questions.jsonl")
    parser.add_argument("--split", default="test", help="dev, test or all")
    parser.add_argument("--types", default="f16,q8_0")
    parser.add_argument("--limit", type=int, default=24, help="questions at most")
    parser.add_argument("--scratch", type=Path, help="index and caches kept here (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kv-layouts" / "types.json")
    args = parser.parse_args()
    items = load_eval_set(args.questions, None if args.split == "all" else args.split)
    questions = [item.question for item in items if item.answerable][: args.limit]
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="kv-types-"))
    report: dict[str, Any] = {"load_before": os.getloadavg(), "questions": len(questions), "types": {}}
    engines: dict[str, Engine] = {}
    index_dir = scratch / "index"
    for kv_type in [t for t in args.types.split(",") if t]:
        settings = Settings.from_env(
            corpus_dir=args.corpus,
            index_dir=index_dir,
            kv_cache="stitch",
            kv_type=kv_type,
            kv_cache_dir=str(scratch / f"kv-{kv_type}"),
            kv_background=0,
        )
        engine = Engine(settings, show_model_progress=False)
        engine.sync()
        t0 = time.perf_counter()
        kv = engine.caches.sync()
        report["types"][kv_type] = {
            "cache_seconds": round(time.perf_counter() - t0, 1),
            "cached_chunks": kv.cached_chunks,
            "bytes_per_chunk": round(kv.bytes_total / max(1, kv.cached_chunks)),
        }
        engine.ask("What is this corpus about?")  # warm-up, not timed (not one of the questions)
        engines[kv_type] = engine
        print(kv_type, report["types"][kv_type], flush=True)
    answers: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
    names = list(engines)
    report["load_during"] = os.getloadavg()
    for i, question in enumerate(questions):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            answers[name].append(timed(engines[name], question))
        print(i + 1, {n: answers[n][-1]["first_text_s"] for n in names}, flush=True)
    reference = answers[names[0]]
    for name in names:
        generated = [a for a in answers[name] if a["route"] == "generated" and not a["abstained"]]
        same = sum(a["answer"] == r["answer"] for a, r in zip(answers[name], reference, strict=True))
        report["types"][name].update(
            generated=len(generated),
            first_text_s=pstats([a["first_text_s"] for a in generated]),
            total_s=pstats([a["total_s"] for a in generated]),
            same_answer_as_first_type=same,
            answers=answers[name],
        )
    report["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    for name in names:
        summary = {k: v for k, v in report["types"][name].items() if k != "answers"}
        print(name, summary)


if __name__ == "__main__":
    main()
