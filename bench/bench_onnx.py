"""The ONNX embedder against the torch one: same vectors, same rankings, and how much faster.

On the shipped corpus and every question of eval/questions.jsonl:
1. Word pieces: the ids the ONNX backend feeds the model against sentence-transformers' own.
2. Vectors: the cosine between each backend's vector and torch's for every text the index holds (each
   passage whole and each of its sentences), every FAQ question and every eval question (its retrieval
   query), in bulk batches and one query at a time. The bar: cosine ≥ 0.999 for every text.
3. Rankings: top-5 chunk ids of every eval question, searched over the torch-built index with the
   torch query vector and with each variant's (and over an index built by the ONNX backend); the
   retrieval eval's scores for each.
4. Speed, each variant interleaved with the torch baseline in this process: one query at a time on one
   thread (the query cache bypassed), bulk embedding of the corpus (all threads), session load time.

    python bench/bench_onnx.py [--variants fp32,int8] [--passes 5] [--queries 60]

Writes bench/results/onnx.json (with the load average before and after). Exports missing ONNX files
into the model cache (~/.cache/careerqa/onnx) first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from careerqa.config import Settings  # noqa: E402
from careerqa.embed.embedding import Embedder, SentenceTransformerEmbedder  # noqa: E402
from careerqa.embed.loader import load_embedder  # noqa: E402
from careerqa.embed.onnx import OnnxEmbedder, ensure_onnx, model_dir, tokenize_ids  # noqa: E402
from careerqa.evals.scoring import load_eval_set, retrieval_query, run_eval  # noqa: E402
from careerqa.index.faiss_store import IndexStore  # noqa: E402
from careerqa.index.sync import sync_index  # noqa: E402
from careerqa.retrieve.hybrid import Retriever  # noqa: E402
from careerqa.text.sentences import passage_sentences  # noqa: E402

MIN_COSINE = 0.999
RETRIEVAL_KEYS = ("hit@1", "hit@3", "hit@5", "mrr", "context_precision@5")


def build_index(root: Path, embedder: Embedder, name: str) -> tuple[Settings, IndexStore]:
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / f"index-{name}", cache_dir=root / "c")
    sync_index(settings, lambda: embedder, embedder_name=embedder.name, dim=embedder.dim, full=True)
    return settings, IndexStore.load(settings.index_dir, embedder.name, embedder.dim)


def corpus_texts(store: IndexStore) -> list[str]:
    """Every text the index and the FAQ matcher embed: passages, their sentences, FAQ questions."""
    chunks = list(store.chunks.values())
    texts = [c.embedding_text() for c in chunks] + [s for c in chunks for s in passage_sentences(c.text)]
    return texts + [c.section for c in chunks if c.kind == "faq"]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def compare_vectors(
    reference: Embedder, embedder: Embedder, texts: list[str], questions: list[str]
) -> dict[str, Any]:
    """Cosine with the reference of every text (bulk batches) and every question (one at a time)."""
    bulk = cosines(reference.embed(texts), embedder.embed(texts))
    single = np.array(
        [float(reference.embed_batch([q])[0] @ embedder.embed_batch([q])[0]) for q in questions]
    )
    both = np.concatenate([bulk, single])
    return {
        "texts": len(texts),
        "questions": len(questions),
        "min_cosine": round(float(both.min()), 6),
        "p01_cosine": round(float(np.percentile(both, 1)), 6),
        "mean_cosine": round(float(both.mean()), 6),
        "below_min": int((both < MIN_COSINE).sum()),
        "worst_text": ([*texts, *questions][int(both.argmin())])[:120],
    }


def compare_rankings(reference: Retriever, other: Retriever, queries: list[str]) -> dict[str, Any]:
    same_order = same_set = 0
    differing: list[dict[str, Any]] = []
    for query in queries:
        a = [h.chunk.chunk_id for h in reference.search(query, 5)]
        b = [h.chunk.chunk_id for h in other.search(query, 5)]
        same_order += a == b
        same_set += set(a) == set(b)
        if a != b:
            differing.append({"query": query, "reference": a, "other": b})
    return {
        "queries": len(queries),
        "identical_top5": same_order,
        "same_top5_set": same_set,
        "differing": differing[:10],
    }


def retrieval_scores(retriever: Retriever, items: list[Any]) -> dict[str, Any]:
    summary = run_eval(items, lambda q, k: retriever.search(q, k))["summary"]
    return {k: summary.get(k) for k in RETRIEVAL_KEYS}


def tokenizer_agreement(reference: SentenceTransformerEmbedder, texts: list[str]) -> dict[str, Any]:
    model = reference._model
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    ours = tokenize_ids(texts)
    mismatched = []
    for start in range(0, len(texts), 64):
        batch = texts[start : start + 64]
        features = preprocess(batch)
        for row, text in enumerate(batch):
            mask = features["attention_mask"][row].bool()
            theirs = features["input_ids"][row][mask].tolist()
            if theirs != ours[start + row]:
                mismatched.append(text[:120])
    return {"texts": len(texts), "mismatched": len(mismatched), "examples": mismatched[:5]}


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def speed(
    embedders: dict[str, Any], queries: list[str], texts: list[str], passes: int, store: IndexStore
) -> dict[str, Any]:
    """Per-query ms (one thread, cache bypassed): the query vector alone and the whole search (what
    /search does, less HTTP); bulk texts/s. Every variant in each pass."""
    per_query: dict[str, list[float]] = {name: [] for name in embedders}
    per_search: dict[str, list[float]] = {name: [] for name in embedders}
    bulk: dict[str, list[float]] = {name: [] for name in embedders}
    retrievers = {name: Retriever(store, emb) for name, emb in embedders.items()}
    for _ in range(passes):
        for name, emb in embedders.items():
            times = [timed(lambda q=q, e=emb: e._encode([q], 1)) for q in queries]
            per_query[name].append(statistics.median(times))
            per_query.setdefault(f"{name}:p95", []).append(float(np.percentile(times, 95)))
            searches = []
            for q in queries:
                emb._cache.clear()  # a new query each time, as a server sees it
                searches.append(timed(lambda q=q, r=retrievers[name]: r.search(q, 5)))
            per_search[name].append(statistics.median(searches))
            per_search.setdefault(f"{name}:p95", []).append(float(np.percentile(searches, 95)))
            bulk[name].append(len(texts) / (timed(lambda e=emb: e.embed(texts)) / 1000))
    loads: dict[str, float] = {}
    for name, emb in embedders.items():
        if isinstance(emb, OnnxEmbedder):
            model = model_dir()
            loads[name] = statistics.median(
                timed(lambda e=emb, m=model: OnnxEmbedder(e.path, m)) for _ in range(3)
            )
    base = statistics.median(per_query["torch"])
    out: dict[str, Any] = {}
    for name in embedders:
        p50 = statistics.median(per_query[name])
        out[name] = {
            "query_p50_ms": round(p50, 2),
            "query_p95_ms": round(statistics.median(per_query[f"{name}:p95"]), 2),
            "query_p50_vs_torch": round(p50 / base, 3),
            "search_p50_ms": round(statistics.median(per_search[name]), 2),
            "search_p95_ms": round(statistics.median(per_search[f"{name}:p95"]), 2),
            "bulk_texts_per_s": round(statistics.median(bulk[name]), 1),
            "session_load_ms": round(loads[name], 1) if name in loads else None,
            "file_mb": round(embedders[name].path.stat().st_size / 2**20, 1) if name in loads else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="fp32,int8")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--queries", type=int, default=60, help="eval questions timed per pass")
    parser.add_argument("--cache-dir", type=Path, default=Settings().cache_dir)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "onnx.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()

    variants = [v for v in args.variants.split(",") if v]
    torch_emb = load_embedder("all-MiniLM-L6-v2", backend="torch")
    assert isinstance(torch_emb, SentenceTransformerEmbedder)
    # Every variant is built and measured as it is, whatever its cosine: that is what is measured here.
    onnx = {v: OnnxEmbedder(ensure_onnx(args.cache_dir, v, min_cosine=-1.0), model_dir()) for v in variants}
    items = load_eval_set(REPO / "eval" / "questions.jsonl")
    questions = list(dict.fromkeys(retrieval_query(i) for i in items))

    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "corpus", root / "corpus")
        _, torch_store = build_index(root, torch_emb, "torch")
        texts = corpus_texts(torch_store)
        torch_retriever = Retriever(torch_store, torch_emb)
        result: dict[str, Any] = {
            "tokenizer": tokenizer_agreement(torch_emb, texts + questions),
            "retrieval": {"torch": retrieval_scores(torch_retriever, items)},
            "variants": {},
        }
        for name, emb in onnx.items():
            entry: dict[str, Any] = {
                "vectors": compare_vectors(torch_emb, emb, texts, questions),
                "top5_torch_index": compare_rankings(torch_retriever, Retriever(torch_store, emb), questions),
            }
            _, own_store = build_index(root, emb, f"onnx-{name}")
            own = Retriever(own_store, emb)
            entry["top5_own_index"] = compare_rankings(torch_retriever, own, questions)
            result["retrieval"][f"onnx-{name} query, torch index"] = retrieval_scores(
                Retriever(torch_store, emb), items
            )
            result["retrieval"][f"onnx-{name} query, onnx-{name} index"] = retrieval_scores(own, items)
            result["variants"][name] = entry
        timed_queries = questions[: args.queries]
        result["speed"] = speed({"torch": torch_emb, **onnx}, timed_queries, texts, args.passes, torch_store)

    result["meta"] = {
        "command": " ".join(["python", *sys.argv]),
        "passes": args.passes,
        "timed_queries": len(timed_queries),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, entry in result["variants"].items():
        v, r = entry["vectors"], entry["top5_torch_index"]
        print(
            f"{name}: min cosine {v['min_cosine']}, {v['below_min']} below {MIN_COSINE}; "
            f"identical top-5 {r['identical_top5']}/{r['queries']}; {result['speed'][name]}"
        )
    print(f"torch: {result['speed']['torch']}")
    print(json.dumps(result["retrieval"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
