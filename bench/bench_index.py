"""Benchmark indexing and search with the real embedder; writes bench/results/index.json.

Measures, on the shipped corpus copied to a temporary folder:
- embedder load time (separate from the build),
- a full index build (median of --runs), and chunks per second,
- an incremental rebuild after editing one file (median of --runs),
- a no-op sync (nothing changed),
- search latency p50/p95 over a few hundred queries (one query at a time, as users search),
  with the dense-only FAISS search timed in the same process as the baseline it adds to.

    python bench/bench_index.py [--runs 5] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from careerqa.config import Settings
from careerqa.embedding import load_embedder
from careerqa.engine import Engine
from careerqa.index_store import IndexStore

REPO = Path(__file__).resolve().parents[1]
QUERY_STEMS = [
    "what maths do I need for AI",
    "where can I learn linear algebra",
    "is python required",
    "which deep learning framework should I learn",
    "do I need a PhD",
    "what is MLOps",
    "how do I deploy a model",
    "what soft skills matter",
    "how to handle missing values",
    "what is feature engineering",
    "which cloud platform for machine learning",
    "what is docker for",
    "how important is data cleaning",
    "are prompt engineering skills in demand",
    "what are CNNs used for",
    "tensorflow vs pytorch debugging",
    "how to evaluate a classifier",
    "what is reinforcement learning",
    "should I learn SQL",
    "how to get hands-on experience",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "index.json")
    args = parser.parse_args()

    t = time.perf_counter()
    embedder = load_embedder("all-MiniLM-L6-v2")
    load_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "corpus", corpus)
        settings = Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index")
        engine = Engine(settings, embedder=embedder)

        full, chunks = [], 0
        for _ in range(args.runs):
            report = engine.sync(full=True)
            full.append(report.seconds["total"])
            chunks = report.chunk_count

        noop = []
        for _ in range(args.runs):
            t = time.perf_counter()
            engine.sync()
            noop.append(time.perf_counter() - t)

        target = sorted(corpus.rglob("*.txt"))[0]
        original = target.read_text(encoding="utf-8")
        incremental, embedded = [], []
        for i in range(args.runs):
            edited = original.replace("Khan Academy", f"Khan Academy (edit {i})", 1)
            target.write_text(edited, encoding="utf-8")
            t = time.perf_counter()
            report = engine.sync()
            incremental.append(time.perf_counter() - t)
            embedded.append(report.chunks_embedded)

        queries = [
            QUERY_STEMS[i % len(QUERY_STEMS)] + ("?" * (i // len(QUERY_STEMS) % 3))
            for i in range(args.queries)
        ]
        retriever = engine.retriever
        retriever.search(queries[0])  # warm-up
        hybrid, dense = [], []
        store: IndexStore = retriever.store
        for q in queries:
            t = time.perf_counter()
            retriever.search(q, 5)
            hybrid.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.search(embedder.embed_batch([q]), 5)
            dense.append((time.perf_counter() - t) * 1000)

    results = {
        "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version()},
        "corpus_chunks": chunks,
        "embedder_load_s": round(load_s, 3),
        "full_build_s_median": round(statistics.median(full), 3),
        "full_build_runs_s": [round(x, 3) for x in full],
        "chunks_per_s": round(chunks / statistics.median(full), 1),
        "incremental_one_edit_s_median": round(statistics.median(incremental), 3),
        "incremental_chunks_embedded": embedded,
        "incremental_vs_full_ratio": round(statistics.median(incremental) / statistics.median(full), 3),
        "noop_sync_s_median": round(statistics.median(noop), 4),
        "search_queries": len(queries),
        "search_hybrid_ms_p50": round(percentile(hybrid, 50), 2),
        "search_hybrid_ms_p95": round(percentile(hybrid, 95), 2),
        "search_dense_only_ms_p50": round(percentile(dense, 50), 2),
        "search_dense_only_ms_p95": round(percentile(dense, 95), 2),
        "hybrid_vs_dense_p50_ratio": round(percentile(hybrid, 50) / percentile(dense, 50), 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:34} {value}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
