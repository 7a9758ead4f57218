"""The warm server as users meet it: ``careerqa serve`` with the real models, measured over HTTP.

1. ``/search``: latency of 60 queries (after 10 untimed), one at a time.
2. ``/chat`` with streaming: time to the first ``delta`` event and to ``end`` for in-corpus questions
   (answerable, non-follow-up items of the held-out split of eval/questions.jsonl), one at a time,
   each asked for the first time; then the same questions again (answered from the cache); then the
   eval set's FAQ-style questions (some answered by the FAQ fast path).
3. Load: 4 clients asking and 4 searching at once for ``--load-seconds``; the server's resident
   memory is sampled from /proc every 0.5 s throughout (peak = VmHWM, the kernel's high-water mark).

    python bench/bench_serve.py [--questions 12] [--load-seconds 60] [--no-index]

It runs ``careerqa index`` first (passage KV caches included, in the run's temporary folder), as a user
would before ``careerqa serve``; ``--no-index`` leaves the index to the server's first use.

Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from careerqa.evals.scoring import load_eval_set  # noqa: E402

SEARCHES = [
    "which cloud platforms should I learn",
    "do I need a PhD",
    "pandas for data analysis",
    "what is reinforcement learning",
    "soft skills for AI engineers",
    "linear algebra and calculus",
]


def mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def stream_chat(client: httpx.Client, question: str) -> dict[str, Any]:
    started = time.perf_counter()
    first = None
    answer: dict[str, Any] = {}
    with client.stream("POST", "/chat", json={"question": question, "stream": True}) as response:
        response.raise_for_status()
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "delta" and first is None:
                    first = time.perf_counter() - started
                if event == "end":
                    answer = json.loads(line[6:])
    total = time.perf_counter() - started
    return {
        "question": question,
        "ttft_ms": round((first if first is not None else total) * 1000, 1),
        "total_ms": round(total * 1000, 1),
        "route": answer.get("route"),
        "abstained": answer.get("abstained"),
        "answer": answer.get("answer"),
        "prompt_tokens": (answer.get("tokens") or {}).get("prompt_tokens"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "serve.json")
    parser.add_argument(
        "--no-index", action="store_true", help="skip `careerqa index` (no passage KV caches)"
    )
    args = parser.parse_args()
    items = load_eval_set(REPO / "eval" / "questions.jsonl", split="test")
    questions = [i.question for i in items if i.answerable and not i.history][: args.questions]
    faq_questions = [
        i.question for i in load_eval_set(REPO / "eval" / "questions.jsonl") if i.category == "faq"
    ]

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as sock:
        shutil.copytree(REPO / "corpus", Path(tmp) / "corpus")
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "CAREERQA_KV_CACHE_DIR": str(Path(tmp) / "kv")}
        index_s = None
        if not args.no_index:  # as users do: `careerqa index` (passage KV caches included), then serve
            t0 = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "careerqa", "index", "--json"],
                cwd=tmp,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            index_s = round(time.monotonic() - t0, 1)
        proc = subprocess.Popen(
            [sys.executable, "-m", "careerqa", "serve", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        try:
            started = time.monotonic()
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() - started > 900:
                    raise SystemExit("the server did not start")
                time.sleep(0.5)
            startup_s = round(time.monotonic() - started, 1)

            def sample() -> None:
                t0 = time.monotonic()
                while not stop.is_set():
                    samples.append((round(time.monotonic() - t0, 1), round(mib(proc.pid, "VmRSS"), 1)))
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with httpx.Client(base_url=url, timeout=600) as client:
                for q in SEARCHES + SEARCHES[:4]:
                    client.post("/search", json={"query": q})
                search_ms = []
                for i in range(60):
                    t0 = time.perf_counter()
                    client.post(
                        "/search", json={"query": SEARCHES[i % len(SEARCHES)] + f" {i}"}
                    ).raise_for_status()
                    search_ms.append((time.perf_counter() - t0) * 1000)
                first_pass = []
                for q in questions:
                    first_pass.append(stream_chat(client, q))
                    print(first_pass[-1], flush=True)
                cached_pass = [stream_chat(client, q) for q in questions]
                faq_pass = [stream_chat(client, q) for q in faq_questions]

                load: dict[str, list[Any]] = {"chat": [], "search": [], "errors": []}
                deadline = time.monotonic() + args.load_seconds

                def asker(k: int) -> None:
                    with httpx.Client(base_url=url, timeout=600) as c:
                        j = 0
                        while time.monotonic() < deadline:
                            q = f"{questions[(k + j) % len(questions)]} (client {k}, {j})"
                            r = c.post("/chat", json={"question": q})
                            (load["chat"] if r.status_code == 200 else load["errors"]).append(r.status_code)
                            j += 1
                            if r.status_code == 503:
                                time.sleep(min(5, int(r.headers.get("Retry-After", "1"))))

                def searcher(k: int) -> None:
                    with httpx.Client(base_url=url, timeout=60) as c:
                        j = 0
                        while time.monotonic() < deadline:
                            t0 = time.perf_counter()
                            r = c.post("/search", json={"query": f"{SEARCHES[(k + j) % len(SEARCHES)]} {j}"})
                            if r.status_code == 200:
                                load["search"].append((time.perf_counter() - t0) * 1000)
                            else:
                                load["errors"].append(r.status_code)
                            j += 1

                workers = [threading.Thread(target=asker, args=(k,)) for k in range(4)]
                workers += [threading.Thread(target=searcher, args=(k,)) for k in range(4)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
            peak = mib(proc.pid, "VmHWM")
        finally:
            stop.set()
            proc.terminate()
            proc.wait(30)

    computed = [r for r in first_pass if r["route"] == "generated"]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_end": os.getloadavg(),
        "index_s": index_s,
        "startup_s": startup_s,
        "search_ms": {"p50": pct(search_ms, 50), "p95": pct(search_ms, 95), "n": len(search_ms)},
        "chat_first_time": {
            "ttft_ms_p50": pct([r["ttft_ms"] for r in first_pass], 50),
            "ttft_ms_p95": pct([r["ttft_ms"] for r in first_pass], 95),
            "total_ms_p50": pct([r["total_ms"] for r in first_pass], 50),
            "total_ms_p95": pct([r["total_ms"] for r in first_pass], 95),
            "generated_ttft_ms_p50": pct([r["ttft_ms"] for r in computed], 50),
            "generated_ttft_ms_p95": pct([r["ttft_ms"] for r in computed], 95),
            "generated_total_ms_p50": pct([r["total_ms"] for r in computed], 50),
            "generated_total_ms_p95": pct([r["total_ms"] for r in computed], 95),
            "routes": {k: sum(r["route"] == k for r in first_pass) for k in ("generated", "faq", "cache")},
            "n": len(first_pass),
        },
        "chat_faq_category": {
            "ttft_ms_p50": pct([r["ttft_ms"] for r in faq_pass], 50),
            "total_ms_p50": pct([r["total_ms"] for r in faq_pass], 50),
            "faq_route_total_ms_p50": pct([r["total_ms"] for r in faq_pass if r["route"] == "faq"], 50),
            "routes": {k: sum(r["route"] == k for r in faq_pass) for k in ("generated", "faq", "cache")},
            "n": len(faq_pass),
        },
        "chat_cached": {
            "total_ms_p50": pct([r["total_ms"] for r in cached_pass], 50),
            "routes": {k: sum(r["route"] == k for r in cached_pass) for k in ("generated", "faq", "cache")},
        },
        "load": {
            "seconds": args.load_seconds,
            "chat_ok": len(load["chat"]),
            "search_ok": len(load["search"]),
            "search_ms_p50": pct(load["search"], 50),
            "search_ms_p95": pct(load["search"], 95),
            "non_200": {str(s): load["errors"].count(s) for s in set(load["errors"])},
        },
        "memory_mib": {
            "peak_vmhwm": round(peak, 1),
            "rss_first": samples[0][1] if samples else None,
            "rss_last": samples[-1][1] if samples else None,
            "rss_max_sampled": max(s[1] for s in samples) if samples else None,
        },
        "first_pass": first_pass,
        "faq_pass": faq_pass,
        "rss_samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k not in ("first_pass", "rss_samples")}, indent=2))


if __name__ == "__main__":
    main()
