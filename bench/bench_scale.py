"""Benchmark the index at scale on synthetic corpora; writes bench/results/scale.json.

Vector side, for each size and two kinds of 384-dim unit vectors:
- ``uniform``: random unit vectors (the worst case: in 384 dims they are all about equally far apart,
  so "nearest" neighbours are barely nearer than the rest and no approximate index finds them cheaply);
- ``sentence-mix``: each vector the normalised sum of 3-8 real all-MiniLM-L6-v2 embeddings of the
  corpus's sentences plus noise, as a passage of shuffled corpus sentences would embed; queries mix
  1-2 sentences. This is the structure real embeddings have (neighbours share content).
For each: the exact index (``IndexIDMap2(IndexFlatIP)``), the IVF index ``vector_index`` picks for
that size (with an nprobe sweep) and, up to --hnsw-max, HNSW (M=32, efConstruction=40, efSearch
sweep): build time, memory (RSS growth while building), search p50/p95 one query at a time, and
recall@10 against the exact search.

Lexical side, up to --bm25-max chunks of real text (corpus sentences shuffled into 60-180-word
chunks): the BM25 of this commit against the dict-of-tuples BM25 it replaced (``DictBM25`` below,
copied from the previous commit), built from the same texts in the same process: build time and
query p50/p95, and whether their top-30 rankings agree.

    python bench/bench_scale.py --sizes 10000 100000 1000000 [--queries 200] [--runs 3]

Builds are repeated --runs times (once from 1M vectors on) and the median kept; latencies are the
median over --runs passes of each pass's p50/p95. Results are written after every size.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.index.bm25 import BM25
from careerqa.index.vector_index import build, index_spec
from careerqa.ingest.chunking import chunk_document
from careerqa.ingest.corpus import load_corpus
from careerqa.text.sentences import passage_sentences
from careerqa.text.tokens import tokenize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from bench_index import QUERY_STEMS  # noqa: E402

DIM = 384
CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "careerqa-bench"


class DictBM25:
    """The BM25 of the previous commit (dict postings, a Python loop per posting): the baseline."""

    def __init__(self, texts: Iterable[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for doc_index, text in enumerate(texts):
            tokens = tokenize(text)
            self.lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                self.postings[term].append((doc_index, tf))
        n = len(self.lengths)
        self.avg_length = (sum(self.lengths) / n) if n else 0.0
        self.idf = {
            term: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for term, p in self.postings.items()
        }

    def scores(self, query: str) -> dict[int, float]:
        out: dict[int, float] = defaultdict(float)
        for term in set(tokenize(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for doc_index, tf in self.postings[term]:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[doc_index] / (self.avg_length or 1))
                out[doc_index] += idf * tf * (self.k1 + 1) / (tf + norm)
        return out

    def top(self, query: str, k: int) -> list[tuple[int, float]]:  # as the old Retriever sorted
        return sorted(self.scores(query).items(), key=lambda kv: -kv[1])[:k]


# --- measuring -------------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process, and the result of ``fn()``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def latencies(search: Callable[[Any], Any], queries: Any, runs: int) -> dict[str, float]:
    """Median over ``runs`` passes of the p50 and p95 of one-query-at-a-time latency, in ms: wall
    time, and the CPU time of the searching thread (with OMP_NUM_THREADS=1 all the work; unlike wall
    time it does not count the time other processes on a shared machine hold the cores)."""
    stats: dict[str, list[float]] = defaultdict(list)
    search(queries[0])  # warm-up
    for _ in range(runs):
        wall, cpu = [], []
        for q in queries:
            t, c = time.perf_counter(), time.thread_time()
            search(q)
            cpu.append((time.thread_time() - c) * 1000)
            wall.append((time.perf_counter() - t) * 1000)
        for name, ms in (("", wall), ("cpu_", cpu)):
            stats[f"{name}p50_ms"].append(float(np.percentile(ms, 50)))
            stats[f"{name}p95_ms"].append(float(np.percentile(ms, 95)))
    return {name: round(statistics.median(values), 3) for name, values in stats.items()}


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])), 4)


# --- data ------------------------------------------------------------------------------------------


def corpus_sentences() -> list[str]:
    documents, _ = load_corpus(REPO / "corpus")
    return [s for d in documents for c in chunk_document(d, 60, 180) for s in passage_sentences(c.text)]


def sentence_vectors(sentences: list[str]) -> np.ndarray:
    """Real all-MiniLM-L6-v2 vectors of the corpus sentences (cached under $TMPDIR/careerqa-bench)."""
    path = CACHE / f"sentences-{len(sentences)}.npy"
    if path.exists():
        return np.load(path)
    from careerqa.embed.loader import load_embedder

    vectors = load_embedder("all-MiniLM-L6-v2").embed(sentences, batch_size=64)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_vectors(kind: str, n: int, base: np.ndarray, seed: int, mix: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 50_000):  # in blocks: a 1M x 8 x 384 gather would not fit
        m = min(50_000, n - start)
        if kind == "uniform":
            out[start : start + m] = unit(rng.standard_normal((m, DIM), dtype=np.float32))
            continue
        picks = base[rng.integers(0, len(base), (m, mix[1]))]  # (m, mix[1], DIM)
        keep = np.arange(mix[1])[None, :] < rng.integers(mix[0], mix[1] + 1, m)[:, None]
        block = (picks * keep[:, :, None]).sum(axis=1)
        block = unit(block) + rng.standard_normal((m, DIM), dtype=np.float32) * (0.3 / math.sqrt(DIM))
        out[start : start + m] = unit(block)
    return out


def synthetic_texts(sentences: list[str], n: int, seed: int) -> list[str]:
    """``n`` passages of 60-180 words made of randomly drawn corpus sentences."""
    rng = np.random.default_rng(seed)
    words = [len(s.split()) for s in sentences]
    texts = []
    for target in rng.integers(60, 181, n):
        picked, count = [], 0
        while count < target:
            i = int(rng.integers(len(sentences)))
            picked.append(sentences[i])
            count += words[i]
        texts.append(" ".join(picked))
    return texts


# --- the two sides ---------------------------------------------------------------------------------


def bench_vectors(kind: str, n: int, base: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    runs = args.runs if n < 1_000_000 else 1
    x = make_vectors(kind, n, base, seed=n, mix=(3, 8))
    queries = make_vectors(kind, args.queries, base, seed=n + 1, mix=(1, 2))
    ids = np.random.default_rng(n + 2).integers(0, 2**60, n, dtype=np.int64)  # like chunk hashes
    out: dict[str, Any] = {"kind": kind, "vectors": n}

    def one_build(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        times, cpu_times, index, grown = [], [], None, 0.0
        for _ in range(runs):
            index = None
            gc.collect()
            before = rss_mb()
            seconds, cpu, index = timed(lambda: build(spec, DIM, ids, x))
            times.append(seconds)
            cpu_times.append(cpu)
            grown = rss_mb() - before
        return index, {
            "build_s": round(statistics.median(times), 3),
            "build_cpu_s": round(statistics.median(cpu_times), 3),
            "memory_mb": round(grown, 1),
        }

    exact, row = one_build({"type": "flat"})
    row.update(latencies(lambda q: exact.search(q[None], 10), queries, args.runs))
    _, truth = exact.search(queries, 10)
    out["exact"] = row
    exact = None  # free it before the next build
    gc.collect()

    spec = index_spec(n, exact_below=1)  # the IVF parameters vector_index picks for this many vectors
    ivf, row = one_build(spec)
    row["nlist"] = spec["nlist"]
    row["default_nprobe"] = spec["nprobe"]
    row["sweep"] = []
    for nprobe in sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, spec["nprobe"]}):
        if nprobe > spec["nlist"]:
            continue
        ivf.nprobe = nprobe
        point = {"nprobe": nprobe, **latencies(lambda q: ivf.search(q[None], 10), queries, args.runs)}
        point["recall_at_10"] = recall_at_10(ivf.search(queries, 10)[1], truth)
        row["sweep"].append(point)
        print(f"  {kind} {n} ivf nprobe={nprobe}: {point}", flush=True)
    out["ivf"] = row
    ivf = None
    gc.collect()

    if n <= args.hnsw_max:
        import faiss

        def make_hnsw() -> Any:
            index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 40
            index.add(x)
            return index

        gc.collect()
        before = rss_mb()
        seconds, cpu, hnsw = timed(make_hnsw)  # once: minutes on 2 cores from 100k vectors
        row = {"M": 32, "efConstruction": 40, "build_s": round(seconds, 3), "build_cpu_s": round(cpu, 3)}
        row["memory_mb"] = round(rss_mb() - before, 1)
        row["sweep"] = []
        for ef in (16, 32, 64, 128, 256, 512):
            hnsw.hnsw.efSearch = ef
            point = {"efSearch": ef, **latencies(lambda q: hnsw.search(q[None], 10), queries, args.runs)}
            point["recall_at_10"] = recall_at_10(ids_of(hnsw.search(queries, 10)[1], ids), truth)
            row["sweep"].append(point)
            print(f"  {kind} {n} hnsw ef={ef}: {point}", flush=True)
        out["hnsw"] = row
        hnsw = None
    x = np.zeros((0, DIM), np.float32)
    gc.collect()
    return out


def ids_of(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """HNSW numbers vectors by insertion order; map its rows to the ids the other indexes return."""
    return np.where(rows >= 0, ids[np.clip(rows, 0, None)], -1)


def bench_bm25(n: int, sentences: list[str], args: argparse.Namespace) -> dict[str, Any]:
    texts = synthetic_texts(sentences, n, seed=n)
    queries = [QUERY_STEMS[i % len(QUERY_STEMS)] for i in range(args.queries)]
    out: dict[str, Any] = {"chunks": n, "words": sum(len(t.split()) for t in texts)}
    built = {}
    for name, cls in (("dict_baseline", DictBM25), ("numpy", BM25)):
        gc.collect()
        before = rss_mb()
        seconds, cpu, index = timed(lambda cls=cls: cls(texts))
        built[name] = index
        row = {"build_s": round(seconds, 3), "build_cpu_s": round(cpu, 3)}
        row["memory_mb"] = round(rss_mb() - before, 1)
        row.update(latencies(lambda q, index=index: index.top(q, 30), queries, args.runs))
        out[name] = row
        print(f"  bm25 {n} {name}: {row}", flush=True)
    same = 0
    for q in QUERY_STEMS:
        old, new = built["dict_baseline"].top(q, 30), built["numpy"].top(q, 30)
        # the old order among equal scores followed set iteration; compare scores rank by rank, and ids
        # wherever the score is not tied
        scores_match = all(math.isclose(a[1], b[1], rel_tol=1e-9) for a, b in zip(old, new, strict=True))
        old_scores = Counter(round(s, 9) for _, s in old)
        ids_match = all(
            a[0] == b[0] for a, b in zip(old, new, strict=True) if old_scores[round(a[1], 9)] == 1
        )
        same += len(old) == len(new) and scores_match and ids_match
    out["same_top30_rankings"] = f"{same}/{len(QUERY_STEMS)}"
    for key in ("p50_ms", "cpu_p50_ms"):
        ratio = out["numpy"][key] / out["dict_baseline"][key]
        out[f"{key[:-3]}_ratio_numpy_vs_baseline"] = round(ratio, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["sentence-mix", "uniform"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hnsw-max", type=int, default=100_000)
    parser.add_argument("--bm25-max", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    args = parser.parse_args()

    sentences = corpus_sentences()
    base = sentence_vectors(sentences)
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "command": "python bench/bench_scale.py " + " ".join(sys.argv[1:]),
        "corpus_sentences": len(sentences),
        "queries": args.queries,
        "runs": args.runs,
        "vectors": [],
        "bm25": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        for kind in args.kinds:
            print(f"vectors: {kind} x {n}", flush=True)
            results["vectors"].append(bench_vectors(kind, n, base, args))
            results["peak_rss_mb"] = round(peak_rss_mb(), 1)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        if n <= args.bm25_max:
            print(f"bm25: {n} chunks", flush=True)
            results["bm25"].append(bench_bm25(n, sentences, args))
            results["peak_rss_mb"] = round(peak_rss_mb(), 1)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"peak RSS {results['peak_rss_mb']} MB; written to {args.out}")


if __name__ == "__main__":
    main()
