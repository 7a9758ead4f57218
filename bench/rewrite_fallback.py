"""Would a model rewrite of a low-confidence question retrieve better, and what would it cost?

Issue 14 asks for a fallback that lets the model rewrite a low-confidence question (informal,
misspelled, chatty) before retrieval. This measures it before building it: every eval question without
history is searched as asked and as the 1.5B model rewrites it (one short generation, greedy), and for
each confidence threshold (the best passage cosine of the question as asked) the fallback "search the
rewrite instead when the question is under the threshold and the rewrite's best cosine is higher" is
scored by hit@1 and hit@5 of the gold evidence, per split. Also: how many unanswerable questions fall
under each threshold (each would pay the rewrite too), and the rewrite's time, median and p95.

    python bench/rewrite_fallback.py          # → bench/results/rewrite_fallback.json (~4 min on 2 cores)

Retrieval is careerqa's own (spelling correction, BM25 and dense fused) on the index in ``index/``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.scoring import load_eval_set, score_retrieval  # noqa: E402

PROMPT = (
    "Rewrite the user's question as one clear, correctly spelled question in plain English. Keep its "
    "meaning and every name in it; expand slang and abbreviations. Output only the question."
)
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 1.0)


def main() -> None:
    load_start = os.getloadavg()
    engine = Engine(Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=ROOT / "index"))
    view = engine.view()
    generator = view.answerer.generator
    items = [i for i in load_eval_set(ROOT / "eval" / "questions.jsonl") if not i.history]
    generator.generate([{"role": "user", "content": "warm up"}], max_tokens=4)
    rows = []
    for item in items:
        hits = view.retriever.search(item.question, 10)
        started = time.perf_counter()
        messages = [{"role": "system", "content": PROMPT}, {"role": "user", "content": item.question}]
        rewrite = generator.generate(messages, max_tokens=40, stop=["\n"]).strip().strip('"')
        ms = (time.perf_counter() - started) * 1000
        rewritten = view.retriever.search(rewrite or item.question, 10)
        row = {
            "id": item.id,
            "split": item.split,
            "category": item.category,
            "answerable": item.answerable,
            "question": item.question,
            "rewrite": rewrite,
            "best": round(max((h.dense_score or 0.0) for h in hits), 4),
            "best_rewrite": round(max((h.dense_score or 0.0) for h in rewritten), 4),
            "rewrite_ms": round(ms, 1),
        }
        if item.answerable:
            row["as_asked"] = score_retrieval(item, [h.chunk.text for h in hits])
            row["rewritten"] = score_retrieval(item, [h.chunk.text for h in rewritten])
        rows.append(row)
        print(item.id, row["best"], row["best_rewrite"], f"{ms:.0f} ms", repr(rewrite), file=sys.stderr)

    by_threshold = {}
    for threshold in THRESHOLDS:
        for split in ("dev", "test"):
            answerable = [r for r in rows if r["split"] == split and r["answerable"]]

            def hits_at(k: int, fallback: bool, answerable: list = answerable, t: float = threshold) -> int:
                total = 0
                for r in answerable:
                    use = fallback and r["best"] < t and r["best_rewrite"] > r["best"]
                    total += bool((r["rewritten"] if use else r["as_asked"])[f"hit@{k}"])
                return total

            by_threshold[f"{threshold} {split}"] = {
                "answerable": len(answerable),
                "answerable_rewritten": sum(r["best"] < threshold for r in answerable),
                "unanswerable_rewritten": sum(
                    r["best"] < threshold for r in rows if r["split"] == split and not r["answerable"]
                ),
                "hit@1": [hits_at(1, False), hits_at(1, True)],
                "hit@5": [hits_at(5, False), hits_at(5, True)],
            }
    times = sorted(r["rewrite_ms"] for r in rows)
    report = {
        "questions": len(rows),
        "rewrite_ms_p50": round(statistics.median(times), 1),
        "rewrite_ms_p95": round(times[int(0.95 * (len(times) - 1))], 1),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "by_threshold": by_threshold,  # hit@k: [as asked, with the fallback]
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "rewrite_fallback.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
