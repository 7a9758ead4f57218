"""Replicas behind a round-robin balancer, one remote generator: 1 replica against 2, side by side.

Each replica is a real ``careerqa serve`` process (the packaged embedder, one shared index folder)
whose generator is ``CAREERQA_GENERATOR_URL``: a scripted OpenAI-compatible server in this process
(``tests/fake_openai.py``) that streams, for every request, the first sentence of passage [1] with a
``[1]`` citation over a random 0.5-2 s, any number at once, as a GPU server with batching would.
So what is measured is careerqa's side: retrieval, verification, queueing and the per-replica limit
(one answer generating and ``--queue-size`` waiting per replica; more get 503 with Retry-After).

Clients post ``/chat`` questions from eval/questions.jsonl (each made unique, so the answer cache
never answers), spreading requests over the replicas in turn; after a 503 a client waits 0.5 s.
Everything is on 127.0.0.1; each configuration runs ``--duration`` seconds.

    python bench/load_replicas.py                               # 1 and 2 replicas, 12 clients, 60 s each
    python bench/load_replicas.py --duration 8 --clients 6 --out /tmp/replicas.json   # smoke

Writes bench/results/replicas.json: per configuration the requests, answers (200), refusals (503),
failures (anything else), answers per second, answer latency p50/p95, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.fake_openai import FakeOpenAI  # noqa: E402 - the scripted server the tests use

PASSAGE_ONE = re.compile(r'<passage n="1"[^>]*>\n(.*?)\n</passage>', re.DOTALL)


def scripted_answer(low: float, high: float, seed: int) -> Any:
    rng = random.Random(seed)
    lock = threading.Lock()

    def step(request: dict[str, Any]) -> tuple[Any, ...]:
        user = request["messages"][-1]["content"]
        match = PASSAGE_ONE.search(user)
        if match is None:  # a rewrite or another prompt: a short plain reply
            return ("stream", ["careers in AI"], 0.01)
        first = re.split(r"(?<=[.!?])\s", " ".join(match.group(1).split()), maxsplit=1)[0].rstrip(".")
        words = (first + " [1].").split()
        with lock:
            total = rng.uniform(low, high)
        return ("stream", [w if i == 0 else " " + w for i, w in enumerate(words)], total / len(words))

    return step


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_replicas(n: int, root: Path, env: dict[str, str]) -> list[tuple[subprocess.Popen[bytes], str]]:
    replicas = []
    for i in range(n):
        port = free_port()
        log = open(root / f"replica-{n}-{i}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "careerqa", "serve", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        replicas.append((proc, f"http://127.0.0.1:{port}"))
    for proc, url in replicas:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"replica {url} exited; see {root}")
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {url} did not start")
            time.sleep(0.5)
    return replicas


def stop(replicas: list[tuple[subprocess.Popen[bytes], str]]) -> None:
    for proc, _ in replicas:
        proc.terminate()
    for proc, _ in replicas:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_clients(urls: list[str], questions: list[str], args: argparse.Namespace) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop_at = time.monotonic() + args.duration

    def client(i: int) -> None:
        turn = i
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < stop_at:
                url = urls[turn % len(urls)]
                turn += 1
                with lock:
                    k = next(counter)
                question = f"{questions[k % len(questions)]} (#{k})"
                started = time.monotonic()
                try:
                    response = http.post(f"{url}/chat", json={"question": question})
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = "transport"
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                elapsed = time.monotonic() - started
                with lock:
                    statuses[status] += 1
                    if status == "200":
                        latencies.append(elapsed)
                    elif status not in ("503",) and len(errors) < 5:
                        errors.append(f"{status}: {response.text[:200]}")
                if status == "503":
                    time.sleep(0.5)

    load_before = round(os.getloadavg()[0], 2)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    answers = statuses.get("200", 0)
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) if latencies else None

    return {
        "replicas": len(urls),
        "seconds": round(wall, 1),
        "requests": sum(statuses.values()),
        "answers": answers,
        "refused_503": statuses.get("503", 0),
        "failed": sum(v for k, v in statuses.items() if k not in ("200", "503")),
        "statuses": dict(statuses),
        "answers_per_s": round(answers / wall, 3),
        "answer_latency_s": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "mean": round(statistics.fmean(latencies), 3) if latencies else None,
        },
        "load_average_1m": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--answer-min", type=float, default=0.5)
    parser.add_argument("--answer-max", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "replicas.json")
    args = parser.parse_args()

    questions = [
        json.loads(line)["question"]
        for line in (REPO / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip() and not json.loads(line).get("history")
    ]
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "command": "python bench/load_replicas.py " + " ".join(sys.argv[1:]),
        "clients": args.clients,
        "duration_s": args.duration,
        "queue_size_per_replica": args.queue_size,
        "generator": f"scripted OpenAI-compatible server, {args.answer_min}-{args.answer_max} s per answer",
        "runs": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="careerqa-replicas-") as tmp,
        FakeOpenAI([scripted_answer(args.answer_min, args.answer_max, seed=7)]) as generator,
    ):
        root = Path(tmp)
        shutil.copytree(REPO / "corpus", root / "corpus")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1",
            "CAREERQA_GENERATOR_URL": generator.url,
            "CAREERQA_GENERATOR_MODEL": "shared",
            "CAREERQA_QUEUE_SIZE": str(args.queue_size),
        }
        subprocess.run([sys.executable, "-m", "careerqa", "index"], cwd=root, env=env, check=True)
        for n in args.replicas:
            print(f"{n} replica(s)", flush=True)
            replicas = start_replicas(n, root, env)
            try:
                row = run_clients([url for _, url in replicas], questions, args)
            finally:
                stop(replicas)
            row["generator_requests_so_far"] = len(generator.requests)
            results["runs"].append(row)
            print(f"  {row}", flush=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    runs = {r["replicas"]: r for r in results["runs"]}
    if 1 in runs and 2 in runs and runs[1]["answers_per_s"]:
        results["throughput_ratio_2_vs_1"] = round(runs[2]["answers_per_s"] / runs[1]["answers_per_s"], 2)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
