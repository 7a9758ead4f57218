"""What an OpenAI-style client waits for: the same questions streamed over ``/chat`` and over
``/v1/chat/completions``, alternating, against one warm ``careerqa serve``.

Per question and route: the time to the first text (``/chat``: the first ``delta``; ``/v1``: the first
``reasoning_content`` delta, which is the draft, and the first ``content`` delta, which is the checked
answer) and to the end of the stream. ``/v1`` sends its content once, when the answer is checked, so
its first content is its whole answer's time: this measures what that design costs.

    CAREERQA_ANSWER_CACHE_SIZE=0 careerqa serve --port 8000 &
    python bench/bench_openai_stream.py --url http://127.0.0.1:8000 [--questions 10] [--rounds 2]

The server must run with ``CAREERQA_ANSWER_CACHE_SIZE=0``: otherwise the second route asked a
question gets the cached answer. Questions: the answerable, non-follow-up items of the test split of
eval/questions.jsonl. Writes bench/results/openai-stream.json (``--out``) with the load average.
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

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from careerqa.evals.scoring import load_eval_set  # noqa: E402


def chat_times(client: httpx.Client, question: str) -> dict[str, float | None]:
    start, first = time.perf_counter(), None
    body = {"question": question, "stream": True}
    with client.stream("POST", "/chat", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("event: delta"):
                first = time.perf_counter() - start
    return {"first_text_s": first, "total_s": time.perf_counter() - start}


def openai_times(client: httpx.Client, question: str) -> dict[str, float | None]:
    start, reasoning, content = time.perf_counter(), None, None
    body = {"model": "careerqa", "stream": True, "messages": [{"role": "user", "content": question}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            delta = choices[0].get("delta", {})
            now = time.perf_counter() - start
            if reasoning is None and delta.get("reasoning_content"):
                reasoning = now
            if content is None and delta.get("content"):
                content = now
    total = time.perf_counter() - start
    return {"first_reasoning_s": reasoning, "first_content_s": content, "total_s": total}


def summary(rows: list[dict[str, Any]], key: str) -> dict[str, float | int]:
    values = sorted(r[key] for r in rows if r.get(key) is not None)
    if not values:
        return {"n": 0}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"n": len(values), "p50": round(statistics.median(values), 3), "p95": round(p95, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="a running careerqa serve")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="each question asked this often per route")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "openai-stream.json")
    args = parser.parse_args()
    test = load_eval_set(REPO / "eval" / "questions.jsonl", split="test")
    items = [i for i in test if i.answerable and not i.history][: args.questions]
    load_before = os.getloadavg()
    rows: dict[str, list[dict[str, Any]]] = {"chat": [], "openai": []}
    with httpx.Client(base_url=args.url, timeout=300) as client:
        client.post("/chat", json={"question": "warm-up: what is MLOps?"})
        for rnd in range(args.rounds):
            for n, item in enumerate(items):
                order = ["chat", "openai"] if (n + rnd) % 2 == 0 else ["openai", "chat"]
                for route in order:
                    timed = chat_times if route == "chat" else openai_times
                    row = {"id": item.id, "round": rnd, **timed(client, item.question)}
                    rows[route].append(row)
                    print(route, json.dumps(row), flush=True)
    result = {
        "url": args.url,
        "questions": len(items),
        "rounds": args.rounds,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "chat": {k: summary(rows["chat"], k) for k in ("first_text_s", "total_s")},
        "openai": {
            k: summary(rows["openai"], k) for k in ("first_reasoning_s", "first_content_s", "total_s")
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("loadavg_before", "chat", "openai")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
