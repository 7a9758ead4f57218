"""Calibrate the focus and relevance thresholds (issue 14) on the dev split; report them on test.

Retrieval only (no language model), for every question of the split:
- focus coverage of the top passages (``answer/focus.py``): answerable vs unanswerable, for
  ``focus_rescue_coverage``.
With ``--answers FILE`` (a ``bench/replay_answers.py`` report), for every answered question:
- the relevance of the answer's best sentence to the question (``answer/relevance.py``), split by whether the
  answer named a key fact (on target) or none (off target), for ``min_answer_relevance``.

    python bench/calibrate_focus.py --split dev --answers bench/results/replay-dev.json

Writes ``--out`` (default bench/results/calibrate-focus-<split>.json) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from careerqa.answer.focus import FocusIndex  # noqa: E402
from careerqa.answer.grounding import split_sentences  # noqa: E402
from careerqa.answer.relevance import sentence_relevance  # noqa: E402
from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.scoring import load_eval_set, retrieval_query  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="dev")
    parser.add_argument("--answers", type=Path, default=None)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    settings = Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=args.index_dir)
    engine = Engine(settings)
    retriever = engine.view().retriever
    index = FocusIndex(c.embedding_text() for c in retriever.store.chunks.values())
    items = load_eval_set(ROOT / "eval" / "questions.jsonl", args.split)
    focus_rows = []
    for item in items:
        query = retrieval_query(item)
        hits = retriever.search(query, settings.top_k)
        focus = index.check(retriever.prepare(query), [h.chunk.embedding_text() for h in hits[:3]])
        focus_rows.append(
            {
                "id": item.id,
                "answerable": item.answerable,
                "coverage": focus.coverage,
                "missing": focus.missing,
                "best_dense": max((h.dense_score or 0.0) for h in hits),
            }
        )
    answerable = sorted(r["coverage"] for r in focus_rows if r["answerable"])
    unanswerable = sorted(r["coverage"] for r in focus_rows if not r["answerable"])
    result: dict = {
        "split": args.split,
        "focus": {
            "answerable_lowest": answerable[:5],
            "unanswerable": unanswerable,
            "rows": focus_rows,
        },
    }
    if args.answers is not None:
        report = json.loads(args.answers.read_text(encoding="utf-8"))
        by_id = {i.id: i for i in items}
        rows = []
        for record in report["records"]:
            item = by_id.get(record["id"])
            answer = record["answer"]
            if item is None or answer["abstained"] or not item.answerable:
                continue
            sentences = split_sentences(answer["answer"])
            focus = index.check(retriever.prepare(item.question), [])
            scores = sentence_relevance(retriever.embedder, retrieval_query(item), sentences, focus)
            rows.append(
                {
                    "id": item.id,
                    "on_target": (answer.get("key_fact_recall") or 0) > 0,
                    "best": max(scores) if scores else 0.0,
                    "sentences": list(zip(sentences, scores, strict=True)),
                }
            )
        on = sorted(r["best"] for r in rows if r["on_target"])
        off = sorted(r["best"] for r in rows if not r["on_target"])
        result["relevance"] = {"on_target_lowest": on[:5], "off_target": off, "rows": rows}
    out = args.out or ROOT / "bench" / "results" / f"calibrate-focus-{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print("focus coverage, answerable lowest:", answerable[:5])
    print("focus coverage, unanswerable:", unanswerable)
    if "relevance" in result:
        print("answer relevance, on target lowest:", result["relevance"]["on_target_lowest"])
        print("answer relevance, off target:", result["relevance"]["off_target"])
    print("→", out)


if __name__ == "__main__":
    main()
