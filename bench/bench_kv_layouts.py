"""Passage KV caches per (passage, slot), per passage, and quantized: their cost and their speed over HTTP.

One run, one corpus, on a quiet machine:
1. The index is built once (``careerqa index --no-passage-kv``).
2. For each variant (``LAYOUT-TYPE``: ``slot-f16`` = one cache per passage and slot, f16, the layout
   before this benchmark; ``passage-f16``, the default; ``passage-q8_0``; ``passage-q4_0``), ``careerqa
   index`` computes the caches into a folder of its own: seconds and bytes per chunk from ``index --json``.
3. Loading a cache into the stitched context (read from disk, ``llama_state_seq_set_data``, shift,
   copy): ms per passage, measured in this process for 20 passages per variant.
4. With ``--fresh``: ``careerqa serve`` on a fresh index and no caches (what a new user runs, nothing
   by hand first): seconds until ``/health`` answers and until ``/health`` reports every passage cached,
   and three questions asked while its builder computes (each may wait for one passage's compute).
5. One server per variant (and the fresh one), all up at once; each question is asked of every server
   in turn (the order rotates), streaming ``/chat``: time to the first text and to the end, p50 / p95.

    python bench/bench_kv_layouts.py --corpus corpus --questions eval/questions.jsonl --fresh
    python bench/bench_kv_layouts.py --corpus /tmp/pandas-1000/corpus --fresh --skip-index-variants \\
        --questions eval/corpora/pandas-doc/questions.jsonl --split all   # scripts/pandas_1000.sh

Writes ``--out`` (JSON): the load average before and after each phase, every timing, the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

import bench_serve  # noqa: E402

from careerqa.config import Settings  # noqa: E402
from careerqa.evals.scoring import load_eval_set  # noqa: E402

VARIANTS = ("slot-f16", "passage-f16", "passage-q8_0")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def variant_env(base: dict[str, str], variant: str, kv_dir: Path) -> dict[str, str]:
    layout, kv_type = variant.split("-", 1)
    return {
        **base,
        "CAREERQA_KV_CACHE": "stitch",
        "CAREERQA_KV_LAYOUT": layout,
        "CAREERQA_KV_TYPE": kv_type,
        "CAREERQA_KV_CACHE_DIR": str(kv_dir),
        "CAREERQA_KV_BACKGROUND": "0",
    }


def careerqa(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "careerqa", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"careerqa {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "careerqa", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def health(self) -> dict[str, Any] | None:
        if self.proc.poll() is not None:
            raise SystemExit(f"the {self.name} server exited; see its log")
        try:
            response = httpx.get(f"{self.url}/health", timeout=5)
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait(self, cached: bool, timeout: float) -> tuple[float, dict[str, Any]]:
        """Seconds from the start until /health answers (and, with ``cached``, every passage is)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            health = self.health()
            caches = (health or {}).get("passage_caches", {})
            done = caches.get("state") == "ready" and caches.get("cached_chunks") == health["index"]["chunks"]
            if health is not None and (done or not cached):
                return round(time.perf_counter() - self.started, 1), health
            time.sleep(1)
        raise SystemExit(f"the {self.name} server was not ready in {timeout:.0f} s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


def stream_chat(url: str, question: str) -> dict[str, Any]:
    """One streamed ``/chat`` answer (``bench_serve.stream_chat``), its times in seconds."""
    with httpx.Client(base_url=url, timeout=300) as client:
        timed = bench_serve.stream_chat(client, question)
    first, total = timed.pop("ttft_ms"), timed.pop("total_ms")
    return {"question": question, "first_text_s": first / 1000, "total_s": total / 1000, **timed}


def pstats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 3), "p95": round(p95, 3)}


def load_ms(env: dict[str, str], passages: int = 20) -> dict[str, Any]:
    """ms to put one cached passage into the stitched context, in a child (its own settings)."""
    code = f"""
import json, os, time
from careerqa.config import Settings
from careerqa.generate.llama import load_generator
from careerqa.generate.kv_cache import KVStore, cache_folder
s = Settings.from_env()
g = load_generator(s, progress=False)
st = g.passage_kv().stitcher()
prefix = st.prefix_tokens(__import__("careerqa.generate.prompts", fromlist=["x"]).SYSTEM_PROMPT)
st.ensure_prefix(prefix)
store = KVStore(cache_folder(s))
times = []
for key in sorted(store.keys())[:{passages}]:
    tokens = store.tokens(key)
    t0 = time.perf_counter()
    cached = store.get(key, tokens)
    st._rm(1)
    ok = st._insert(cached.blob, cached.tokens, len(prefix) + 300, len(prefix))
    times.append((time.perf_counter() - t0) * 1000)
    assert ok
st._rm(1)
print(json.dumps(times))
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-1500:]}
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return {"n": len(times), "p50_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus")
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "questions.jsonl")
    parser.add_argument("--split", default="test", help="dev, test or all")
    parser.add_argument("--limit", type=int, default=24, help="questions asked of each server")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--fresh", action="store_true", help="also serve a fresh index with no caches")
    parser.add_argument(
        "--skip-index-variants", action="store_true", help="no `careerqa index` variants (only --fresh)"
    )
    parser.add_argument("--fresh-timeout", type=float, default=4 * 3600)
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp one)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kv-layouts.json")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="kv-layouts-"))
    work.mkdir(parents=True, exist_ok=True)
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "CAREERQA_CORPUS_DIR": str(args.corpus.resolve())}
    base["CAREERQA_INDEX_DIR"] = str(work / "index")
    variants = [] if args.skip_index_variants else [v for v in args.variants.split(",") if v]
    items = load_eval_set(args.questions, None if args.split == "all" else args.split)
    questions = [i.question for i in items if i.answerable and not i.history][: args.limit]
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load()},
        "corpus": str(args.corpus),
        "questions": len(questions),
        "caches": {},
        "load": {},
    }

    def write() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")

    if variants:
        index = careerqa(["index", "--no-passage-kv", "--json"], {**base, "CAREERQA_KV_CACHE": "off"})
        report["chunks"] = index["chunk_count"]
    for variant in variants:
        env = variant_env(base, variant, work / f"kv-{variant}")
        before = load()
        kv = careerqa(["index", "--json"], env)["passage_kv"]
        kv["load_before"], kv["load_after"] = before, load()
        kv["seconds_per_chunk"] = round(kv["compute_seconds"] / max(1, kv["chunks"]), 3)
        kv["bytes_per_chunk_all_slots"] = round(kv["bytes_total"] / max(1, kv["chunks"]))
        report["caches"][variant] = kv
        report["load"][variant] = load_ms(env)
        print(variant, {k: kv[k] for k in ("computed", "seconds_per_chunk", "bytes_per_chunk")}, flush=True)
        write()

    servers: list[Server] = []
    try:
        if args.fresh:
            default = f"{Settings().kv_layout}-{Settings().kv_type}"  # what a new user runs
            fresh_env = variant_env(base, default, work / "kv-fresh")
            fresh_env["CAREERQA_INDEX_DIR"] = str(work / "index-fresh")
            before = load()
            server = Server("fresh", fresh_env, work / "server-fresh.log")
            servers.append(server)
            up, _ = server.wait(cached=False, timeout=900)
            during = []  # answers while the builder computes: each waits for one passage at most
            for question in questions[-3:]:
                state = (server.health() or {}).get("passage_caches", {})
                during.append({**stream_chat(server.url, question), "builder": state.get("state")})
            cached, health = server.wait(cached=True, timeout=args.fresh_timeout)
            report["fresh"] = {
                "health_s": up,
                "answers_while_building": during,
                "all_cached_s": cached,
                "passage_caches": health["passage_caches"],
                "chunks": health["index"]["chunks"],
                "load_before": before,
                "load_after": load(),
            }
            print("fresh", report["fresh"], flush=True)
            write()
        for variant in variants:
            server = Server(
                variant, variant_env(base, variant, work / f"kv-{variant}"), work / f"server-{variant}.log"
            )
            servers.append(server)
        for server in servers:
            server.wait(cached=True, timeout=900)
        rows: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
        report["http_load_before"] = load()
        for i, question in enumerate(questions):
            order = servers[i % len(servers) :] + servers[: i % len(servers)]
            for server in order:
                rows[server.name].append(stream_chat(server.url, question))
        report["http_load_after"] = load()
        generated = {name: [r for r in got if r["route"] == "generated"] for name, got in rows.items()}
        report["http"] = {
            name: {
                "first_text_s": pstats([r["first_text_s"] for r in got]),
                "total_s": pstats([r["total_s"] for r in got]),
                "answers": rows[name],
            }
            for name, got in generated.items()
        }
        reference = rows.get(variants[0]) if variants else None
        if reference is not None:
            for name, got in rows.items():
                same = sum(a["answer"] == b["answer"] for a, b in zip(got, reference, strict=True))
                report["http"][name]["same_answer_as_" + variants[0]] = same
    finally:
        for server in servers:
            server.stop()
        report["machine"]["load_after"] = load()
        write()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in report.items() if k != "http"}, indent=1))
    for name, got in report.get("http", {}).items():
        print(name, got["first_text_s"], got["total_s"])


if __name__ == "__main__":
    main()
