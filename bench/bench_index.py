"""Benchmark indexing and search with the real embedder; writes bench/results/index.json.

Measures, on the shipped corpus copied to a temporary folder:
- embedder load time (separate from the build),
- a full index build (median of --runs), and chunks per second,
- an incremental rebuild after editing one file (median of --runs),
- a no-op sync (nothing changed),
- search latency p50/p95 over a few hundred queries (one query at a time, as users search),
  with the embedding as before this commit (``SentenceTransformer.encode`` on all threads) and the
  dense-only search timed in the same process as the baselines (see ``measure_search``).

    python bench/bench_index.py [--runs 5] [--build-runs N] [--queries 300]  # --out to write elsewhere
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.config import Settings
from careerqa.embed import embedding
from careerqa.embed.loader import load_embedder
from careerqa.engine.core import Engine
from careerqa.index.faiss_store import IndexStore

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


def encode_baseline(embedder: Any, texts: list[str]) -> np.ndarray:
    """How ``embed_batch`` embedded before this commit: ``SentenceTransformer.encode`` on all threads."""
    vectors = embedder._model.encode(
        texts, batch_size=len(texts), normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def measure_search(engine: Engine, embedder: Any, queries: list[str], runs: int) -> dict[str, Any]:
    """Search latency, one query at a time, each variant timed in turn over the same queries.

    - ``embed_baseline``: the query embedded as before this commit (``encode``, all threads);
    - ``embed_cold``: ``embed_batch`` now, its query cache emptied before every query;
    - ``embed_cold_all_threads``: the same on all threads (what the one-thread setting is worth);
    - ``dense_baseline``: ``embed_baseline`` plus the FAISS chunk search, the old dense-only figure;
    - ``hybrid_cold``: ``Retriever.search`` (three rankings, fusion), query cache emptied each time;
    - ``hybrid_warm``: the same with the query's vector cached (a question asked again).
    Wall time and the process's CPU time are both kept. Each pass runs every variant over all queries
    in turn (so load changes hit all alike, and torch's thread count is switched once per variant,
    outside the timing); the p50/p95 reported are the medians over ``runs`` passes.
    """
    retriever = engine.view().retriever
    store: IndexStore = retriever.store
    cache = getattr(embedder, "_cache", {})
    threads = getattr(embedder, "_threads", torch_threads())  # all cores, as loaded

    def cold(fn: Callable[[str], object]) -> Callable[[str], object]:
        def run(q: str) -> object:
            cache.clear()
            return fn(q)

        return run

    def baseline(q: str) -> object:
        return encode_baseline(embedder, [q])

    def dense_baseline(q: str) -> object:
        return store.search(baseline(q), 5)

    variants: dict[str, Callable[[str], object]] = {
        "embed_baseline": baseline,
        "embed_cold": cold(lambda q: embedder.embed_batch([q])),
        "embed_cold_all_threads": cold(lambda q: embedder.embed_batch([q])),
        "dense_baseline": dense_baseline,
        "hybrid_cold": cold(lambda q: retriever.search(q, 5)),
        "hybrid_warm": lambda q: retriever.search(q, 5),
    }
    for fn in variants.values():
        fn(queries[0])  # warm-up
    load_before = os.getloadavg()[0]
    passes: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            ms, cpu_ms = [], []
            # as before this commit, the baseline runs on all threads; the rest as embed_batch sets
            query_threads = threads if name == "embed_cold_all_threads" else embedding.QUERY_THREADS
            with (
                torch_threads_set(threads) if "baseline" in name else contextlib.nullcontext(),
                patched(embedding, "QUERY_THREADS", query_threads),
            ):
                fn(queries[0])
                for q in queries:
                    if name == "hybrid_warm":
                        retriever.search(q, 5)  # cached now
                    t, c = time.perf_counter(), time.process_time()
                    fn(q)
                    cpu_ms.append((time.process_time() - c) * 1000)
                    ms.append((time.perf_counter() - t) * 1000)
            passes[name].append((percentile(ms, 50), percentile(ms, 95), percentile(cpu_ms, 50)))
    out: dict[str, Any] = {"load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    for name, values in passes.items():
        out[f"search_{name}_ms_p50"] = round(statistics.median(v[0] for v in values), 2)
        out[f"search_{name}_ms_p95"] = round(statistics.median(v[1] for v in values), 2)
        out[f"search_{name}_ms_p50_runs"] = [round(v[0], 2) for v in values]
        # CPU time of the whole process (all its threads): the work, without the time other
        # processes on a shared machine held the cores
        out[f"search_{name}_cpu_ms_p50"] = round(statistics.median(v[2] for v in values), 2)
    base = out["search_embed_baseline_ms_p50"]
    out["embed_cold_vs_baseline_p50_ratio"] = round(out["search_embed_cold_ms_p50"] / base, 3)
    out["hybrid_cold_vs_dense_baseline_p50_ratio"] = round(
        out["search_hybrid_cold_ms_p50"] / out["search_dense_baseline_ms_p50"], 3
    )
    return out


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


@contextlib.contextmanager
def patched(module: Any, name: str, value: Any) -> Iterator[None]:
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


@contextlib.contextmanager
def torch_threads_set(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--build-runs", type=int, help="runs of each build (default: --runs)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "index.json")
    args = parser.parse_args()
    build_runs = args.build_runs or args.runs

    t = time.perf_counter()
    embedder = load_embedder("all-MiniLM-L6-v2")
    load_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "corpus", corpus)
        settings = Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index")
        engine = Engine(settings, embedder=embedder)

        full, chunks = [], 0
        for _ in range(build_runs):
            report = engine.sync(full=True)
            full.append(report.seconds["total"])
            chunks = report.chunk_count

        noop = []
        for _ in range(build_runs):
            t = time.perf_counter()
            engine.sync()
            noop.append(time.perf_counter() - t)

        target = sorted(corpus.rglob("*.txt"))[0]
        original = target.read_text(encoding="utf-8")
        incremental, embedded = [], []
        for i in range(build_runs):
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
        search = measure_search(engine, embedder, queries, args.runs)

    results = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
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
        "search_runs": args.runs,
        "load_average_1m_before_after_search": search.pop("load_average"),
        **search,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:34} {value}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
