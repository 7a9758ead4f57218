"""FAISS HNSW at up to 1M chunk vectors, and Qdrant in qdrant-client's local mode at the largest size
that fits this machine: the same vectors, queries and recall@10 as bench/bench_scale.py.

Vectors: ``sentence-mix`` (each the normalised sum of 3-8 real all-MiniLM-L6-v2 embeddings of corpus
sentences plus noise; queries mix 1-2 sentences), made by ``bench_scale.make_vectors`` with its seeds,
so the queries are the very ones bench_scale.py times. Ground truth: the exact inner-product top 10
(``IndexFlatIP``); recall@10 is ``bench_scale.recall_at_10``.

For each size:
- FAISS ``IndexHNSWFlat`` (M=32, efConstruction=40 by default, as bench_scale.py): build time and
  memory (RSS growth), then an efSearch sweep of p50/p95 one query at a time and recall@10; the sweep
  stops once recall@10 reaches 0.99.
- Qdrant local mode (``QdrantClient(":memory:")``, one dense vector per point, dot product): upload
  time and memory, p50/p95 of ``query_points`` one query at a time, recall@10. Local mode scans every
  vector with numpy (it has no HNSW; a Qdrant server does), so its recall is 1.0 and its latency grows
  with the size; a size whose projected memory (the per-vector memory measured at the previous size)
  exceeds --memory-budget-mb is skipped and says so.

Latencies are medians over --runs passes of each pass's p50/p95 (``bench_scale.latencies``, wall and
thread CPU time); the 1-minute load average is recorded before each measurement.

    python bench/bench_scale_backends.py                                  # 100k and 1M, ~1 h on 2 cores
    python bench/bench_scale_backends.py --sizes 5000 --queries 50 --runs 1 --out /tmp/scale.json  # smoke

Writes bench/results/scale-backends.json after every step.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from bench_scale import (  # noqa: E402 - bench/ is not a package
    DIM,
    corpus_sentences,
    ids_of,
    latencies,
    make_vectors,
    peak_rss_mb,
    recall_at_10,
    rss_mb,
    sentence_vectors,
    timed,
)

TARGET_RECALL = 0.99  # stop the efSearch sweep here


def load() -> float:
    return round(os.getloadavg()[0], 2)


def exact_truth(x: np.ndarray, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(DIM)
    index.add(x)
    _, rows = index.search(queries, 10)
    return ids_of(rows, ids)


def bench_hnsw(x: np.ndarray, queries: np.ndarray, ids: np.ndarray, truth: np.ndarray, args: Any) -> dict:
    import faiss

    def make() -> Any:
        index = faiss.IndexHNSWFlat(DIM, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.ef_construction
        index.add(x)
        return index

    gc.collect()
    before, load_before = rss_mb(), load()
    seconds, cpu, index = timed(make)
    row: dict[str, Any] = {
        "M": args.hnsw_m,
        "efConstruction": args.ef_construction,
        "build_s": round(seconds, 2),
        "build_cpu_s": round(cpu, 2),
        "memory_mb": round(rss_mb() - before, 1),  # RSS growth: low when freed pages are reused
        # vectors plus level-0 links (2M neighbours of 4 bytes): the bulk of an HNSW index
        "memory_mb_estimate": round(len(x) * (DIM * 4 + 2 * args.hnsw_m * 4) / 2**20, 1),
        "load_average_1m_before_build": load_before,
        "sweep": [],
    }
    print(f"  hnsw build {row}", flush=True)
    for ef in (16, 32, 64, 128, 256, 512):
        index.hnsw.efSearch = ef
        point: dict[str, Any] = {"efSearch": ef, "load_average_1m": load()}
        point.update(latencies(lambda q: index.search(q[None], 10), queries, args.runs))
        point["recall_at_10"] = recall_at_10(ids_of(index.search(queries, 10)[1], ids), truth)
        row["sweep"].append(point)
        print(f"  hnsw ef={ef}: {point}", flush=True)
        if point["recall_at_10"] >= TARGET_RECALL:
            break
    return row


def bench_qdrant(x: np.ndarray, queries: np.ndarray, ids: np.ndarray, truth: np.ndarray, args: Any) -> dict:
    from qdrant_client import QdrantClient, models

    gc.collect()
    before, load_before = rss_mb(), load()
    client = QdrantClient(location=":memory:")

    def upload() -> None:
        client.create_collection(
            "bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
        )
        client.upload_collection("bench", vectors=x, ids=[int(i) for i in ids], batch_size=1024)

    seconds, cpu, _ = timed(upload)
    row: dict[str, Any] = {
        "mode": "local (:memory:)",
        "upload_s": round(seconds, 2),
        "upload_cpu_s": round(cpu, 2),
        "memory_mb": round(rss_mb() - before, 1),
        "load_average_1m_before_upload": load_before,
        "load_average_1m_before_search": load(),
    }

    def search(q: np.ndarray) -> list[int]:
        points = client.query_points("bench", query=q.tolist(), limit=10).points
        return [int(p.id) for p in points]

    row.update(latencies(search, queries, args.runs))
    found = np.array([(search(q) + [-1] * 10)[:10] for q in queries[: args.recall_queries]])
    row["recall_at_10"] = recall_at_10(found, truth[: args.recall_queries])
    row["recall_queries"] = min(args.recall_queries, len(queries))
    client.close()
    print(f"  qdrant local: {row}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--skip-hnsw", action="store_true")
    parser.add_argument("--skip-qdrant", action="store_true")
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    parser.add_argument("--memory-budget-mb", type=float, default=round(0.6 * available))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale-backends.json")
    args = parser.parse_args()

    base = sentence_vectors(corpus_sentences())
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "load_average_1m_at_start": load(),
            "memory_budget_mb": args.memory_budget_mb,
        },
        "command": "python bench/bench_scale_backends.py " + " ".join(sys.argv[1:]),
        "kind": "sentence-mix",
        "queries": args.queries,
        "runs": args.runs,
        "sizes": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    qdrant_mb_per_vector: float | None = None
    for n in args.sizes:
        print(f"{n} vectors", flush=True)
        # bench_scale.bench_vectors's seeds: the same vectors, ids and queries
        x = make_vectors("sentence-mix", n, base, seed=n, mix=(3, 8))
        queries = make_vectors("sentence-mix", args.queries, base, seed=n + 1, mix=(1, 2))
        ids = np.random.default_rng(n + 2).integers(0, 2**60, n, dtype=np.int64)
        truth = exact_truth(x, queries, ids)
        entry: dict[str, Any] = {"vectors": n}
        results["sizes"].append(entry)
        if not args.skip_hnsw:
            entry["faiss_hnsw"] = bench_hnsw(x, queries, ids, truth, args)
            gc.collect()
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        if not args.skip_qdrant:
            projected = qdrant_mb_per_vector * n if qdrant_mb_per_vector else None
            if projected is not None and projected > args.memory_budget_mb:
                entry["qdrant_local"] = {
                    "skipped": f"projected {projected:.0f} MB over the {args.memory_budget_mb:.0f} MB budget"
                }
            else:
                entry["qdrant_local"] = bench_qdrant(x, queries, ids, truth, args)
                qdrant_mb_per_vector = max(entry["qdrant_local"]["memory_mb"], 1.0) / n
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        x = np.zeros((0, DIM), np.float32)
        gc.collect()
    print(f"peak RSS {results['peak_rss_mb']} MB; written to {args.out}")


if __name__ == "__main__":
    main()
