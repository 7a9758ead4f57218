"""Set the FAQ fast path's threshold from the eval set: it must never fire where the FAQ entry does not
answer the question.

For every eval question (follow-ups by their own words, as the worst case), the cosine between the
question and the closest FAQ question of the corpus is computed with the real embedder. A match is
*right* when the question is answerable, the entry holds its gold evidence, and the entry's answer
(as the fast path would show it) names at least one of its key facts; anything else is *wrong*.
The threshold is the highest wrong score plus a margin; the report says how many right matches still
fire at it, per split.

    python bench/calibrate_faq.py [--set eval/questions.jsonl] [--margin 0.03]

Writes bench/results/faq_threshold.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from careerqa.answer.shortcuts import FaqMatcher, faq_answer  # noqa: E402
from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.scoring import facts_found, load_eval_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", type=Path, default=REPO / "eval" / "questions.jsonl")
    parser.add_argument("--margin", type=float, default=0.03)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "faq_threshold.json")
    args = parser.parse_args()

    items = load_eval_set(args.set)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "corpus", Path(tmp) / "corpus")
        settings = Settings.from_env(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index")
        engine = Engine(settings, show_model_progress=False)
        matcher = FaqMatcher(engine.view().store, engine.embedder)
        vectors = engine.embedder.embed([i.question for i in items])
        rows = []
        for item, vector in zip(items, vectors, strict=True):
            match = matcher.best(vector)
            if match is None:
                raise SystemExit("the corpus has no FAQ entries: nothing to calibrate")
            chunk, score = match
            right = (
                item.answerable
                and any(e in chunk.text for e in item.evidence)
                and (not item.facts or facts_found(item.facts, faq_answer(chunk)) > 0)
            )
            rows.append(
                {
                    "id": item.id,
                    "split": item.split,
                    "category": item.category,
                    "question": item.question,
                    "faq": chunk.section,
                    "score": round(score, 4),
                    "right": right,
                }
            )

    wrong_max = max((r["score"] for r in rows if not r["right"]), default=0.0)
    threshold = math.ceil((wrong_max + args.margin) * 100) / 100
    summary: dict[str, object] = {"threshold": threshold, "highest_wrong_score": wrong_max}
    for split in sorted({r["split"] for r in rows}):
        part = [r for r in rows if r["split"] == split]
        summary[split] = {
            "questions": len(part),
            "right_matches": sum(r["right"] for r in part),
            "fire_right": sum(r["right"] and r["score"] >= threshold for r in part),
            "fire_wrong": sum(not r["right"] and r["score"] >= threshold for r in part),
        }
    rows.sort(key=lambda r: -r["score"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    for r in rows[:15]:
        mark = "right" if r["right"] else "WRONG"
        print(f"{r['score']:.3f} {mark:5} {r['id']:10} {r['question'][:60]!r} -> {r['faq'][:50]!r}")


if __name__ == "__main__":
    main()
