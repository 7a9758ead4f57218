"""Chat turns after the first: the model's rewrite of the question, always or only for a follow-up.

Every question after the first in ``careerqa chat`` and the web chat comes with the conversation. The
model used to rewrite each one into a standalone question before retrieval (``Answerer.rewrite``),
about a second on 2 cores; now only a question that may lean on the conversation is rewritten
(``turns.follows_up``). This benchmark asks each answerable, standalone test question (those
without a ``history``) after one earlier turn (the previous question of the list and its answer), in
one process, alternating the two variants question by question so they share the machine's load:
- ``always``: every question with a history is rewritten (the behaviour before);
- ``gated``: only those ``follows_up`` takes for follow-ups (today's default).
It also asks the eval's follow-up questions (with their own history) under ``gated``, which must
rewrite every one of them (``rewritten`` in the output).

    python bench/bench_chat_turns.py                   # all standalone test questions (~5 min)
    python bench/bench_chat_turns.py --questions 8     # a smoke run

Writes bench/results/chat_turns.json (``--out``): the load average before and after, per question
the time to the first text shown and the total, the medians and p95 of each variant, and their ratio.
Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from careerqa.answer import turns  # noqa: E402
from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.scoring import load_eval_set  # noqa: E402
from careerqa.events import Text  # noqa: E402


def _turn(engine: Engine, question: str, history: list[tuple[str, str]]) -> dict[str, Any]:
    answerer = engine.view().answerer  # not Engine.ask: its answer cache would answer the repeats
    started = time.perf_counter()
    first: float | None = None
    answer = None
    for event in answerer.events(question, history):
        if isinstance(event, Text) and first is None:
            first = time.perf_counter() - started
        answer = getattr(event, "answer", answer)
    total = time.perf_counter() - started
    assert answer is not None
    return {
        "ttft_s": round(first if first is not None else total, 3),
        "total_s": round(total, 3),
        "rewrite_s": round(answer.timings_ms.get("rewrite", 0.0) / 1000, 3),
        "standalone": answer.standalone_question,
        "answer": answer.text,
    }


def _stats(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = sorted(r[key] for r in rows)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"p50": round(statistics.median(values), 3), "p95": round(p95, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chat_turns.json")
    args = parser.parse_args()

    settings = Settings.from_env(corpus_dir=REPO / "corpus")
    engine = Engine(settings, show_model_progress=False)
    engine.sync()
    items = load_eval_set(REPO / "eval" / "questions.jsonl", "test")
    standalone = [i for i in items if i.answerable and not i.history][: args.questions]
    follow_ups = [i for i in items if i.history]
    gate = turns.follows_up
    load_before = os.getloadavg()
    engine.view().answerer.warm_up()
    rows: dict[str, list[dict[str, Any]]] = {"always": [], "gated": []}
    previous = ("What skills do AI jobs require?", "Python, maths and statistics, and data skills [1].")
    for n, item in enumerate(standalone):
        order = ("always", "gated") if n % 2 == 0 else ("gated", "always")
        for variant in order:
            turns.follows_up = (lambda q: True) if variant == "always" else gate  # type: ignore[assignment]
            row = _turn(engine, item.question, [previous])
            rows[variant].append({"id": item.id, **row})
        turns.follows_up = gate
        previous = (item.question, rows["gated"][-1]["answer"])
        print(
            item.id, rows["always"][-1]["total_s"], rows["gated"][-1]["total_s"], file=sys.stderr, flush=True
        )
    turns.follows_up = gate
    follow_rows = [
        {"id": i.id, "question": i.question, **_turn(engine, i.question, list(i.history))} for i in follow_ups
    ]
    summary = {
        variant: {
            "ttft_s": _stats(r, "ttft_s"),
            "total_s": _stats(r, "total_s"),
            "rewritten": sum(bool(x["standalone"]) for x in r),
        }
        for variant, r in rows.items()
    }
    summary["ratio_total_p50"] = round(
        summary["always"]["total_s"]["p50"] / summary["gated"]["total_s"]["p50"], 2
    )
    summary["ratio_ttft_p50"] = round(
        summary["always"]["ttft_s"]["p50"] / summary["gated"]["ttft_s"]["p50"], 2
    )
    summary["follow_ups_rewritten"] = (
        f"{sum(bool(r['standalone']) for r in follow_rows)} of {len(follow_rows)}"
    )
    report = {
        "questions": len(standalone),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "summary": summary,
        "standalone": rows,
        "follow_ups": follow_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(summary, indent=1), f"→ {args.out}")


if __name__ == "__main__":
    main()
