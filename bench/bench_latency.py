"""Answer latency and grounding, side by side in one process: the naive pipeline against careerqa.

Pipelines (same embedder, same generator object, same system prompt, greedy decoding):
- ``naive``: fixed 1,000-character chunks, dense top-5 only, the five whole chunks in the prompt,
  no verification.
- ``careerqa``: the defaults (structural chunks, hybrid retrieval, whole passages under a
  600-token budget, verification, FAQ fast path).
- ``careerqa-sentences``: as ``careerqa`` with ``context_mode=sentences`` (only the passages'
  sentences closest to the question, under ``sentence_tokens``).
- ``careerqa-nofaq``: as ``careerqa`` without the FAQ fast path (what generation alone costs).

Questions: answerable, non-follow-up items of the held-out ``test`` split of eval/questions.jsonl,
taken in file order, interleaved so every pipeline sees the same machine load. The answer cache is off
(every answer is computed). TTFT is the time from the call to the first text shown to the user.
Grounding is scored afterwards with the eval's metrics: key-fact recall, the gold evidence among the
cited passages, and ALCE citation recall / precision judged by the local LLM (``careerqa.evals.judge``).

    python bench/bench_latency.py [--questions 12] [--pipelines naive,careerqa,...] [--no-judge]

Writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
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

from careerqa.config import Settings  # noqa: E402
from careerqa.engine.core import Engine  # noqa: E402
from careerqa.evals.judge import Judge  # noqa: E402
from careerqa.evals.scoring import EvalItem, citation_checks, facts_found, load_eval_set  # noqa: E402
from careerqa.generate.prompts import SYSTEM_PROMPT, build_messages, is_abstention  # noqa: E402
from careerqa.ingest.corpus import load_corpus  # noqa: E402
from careerqa.text.citations import MARKER  # noqa: E402
from careerqa.types import Answer, Chunk, Citation, Hit  # noqa: E402

NAIVE_CHUNK_CHARS = 1000
PIPELINES = ("naive", "careerqa", "careerqa-sentences", "careerqa-nofaq")


class Naive:
    """Fixed 1,000-character chunks, dense top-5, whole chunks stuffed into the prompt."""

    def __init__(self, settings: Settings, embedder: Any, generator: Any) -> None:
        import faiss

        docs, _warnings = load_corpus(settings.corpus_dir)
        self.chunks = []
        for doc in docs:
            for start in range(0, len(doc.text), NAIVE_CHUNK_CHARS):
                text = doc.text[start : start + NAIVE_CHUNK_CHARS]
                cid = hashlib.sha256(f"{doc.path}:{start}".encode()).hexdigest()
                self.chunks.append(Chunk(cid, doc.path, "", text, start, start + len(text)))
        self.embedder, self.generator, self.settings = embedder, generator, settings
        self.index = faiss.IndexFlatIP(embedder.dim)
        self.index.add(embedder.embed([c.text for c in self.chunks]))

    def ask(self, question: str, on_text: Any) -> Answer:
        t0 = time.perf_counter()
        scores, rows = self.index.search(self.embedder.embed_batch([question]), 5)
        hits = [
            Hit(self.chunks[r], float(s), float(s), rank=i + 1)
            for i, (s, r) in enumerate(zip(scores[0], rows[0], strict=True))
        ]
        messages, used = build_messages(question, hits, self.generator.count_tokens, budget=10**9)
        text = ""
        for piece in self.generator.stream(messages, max_tokens=self.settings.max_answer_tokens):
            if piece and not text.strip():
                on_text(piece)
            text += piece
        text = text.strip()
        numbers = sorted(
            {int(n) for m in MARKER.finditer(text) for n in m.group(1).replace(" ", "").split(",")}
        )
        citations = tuple(Citation(n, used[n - 1]) for n in numbers if 1 <= n <= len(used))
        abstained = is_abstention(text[:120])
        total = (time.perf_counter() - t0) * 1000
        return Answer(
            question, text, abstained, () if abstained else citations, tuple(hits), {"total": total}
        )


def pick_questions(n: int) -> list[EvalItem]:
    items = load_eval_set(REPO / "eval" / "questions.jsonl", split="test")
    return [i for i in items if i.answerable and not i.history][:n]


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--no-judge", action="store_true", help="skip the LLM citation judge")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latency.json")
    args = parser.parse_args()
    names = [p for p in args.pipelines.split(",") if p]
    questions = pick_questions(args.questions)

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "corpus", Path(tmp) / "corpus")
        base = Settings.from_env(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index")
        base = base.replace(answer_cache_size=0)
        loader = Engine(base, show_model_progress=False)
        embedder, generator = loader.embedder, loader.generator
        variants = {
            "careerqa": base,
            "careerqa-sentences": base.replace(context_mode="sentences"),
            "careerqa-nofaq": base.replace(faq_min_score=2.0),
        }
        runners: dict[str, Any] = {}
        for name in names:
            if name == "naive":
                naive = Naive(base, embedder, generator)
                runners[name] = naive.ask
            else:
                engine = Engine(variants[name], embedder=embedder, generator=generator)
                engine.view()
                runners[name] = lambda q, cb, e=engine: e.ask(q, on_text=cb)
        generator.prefill([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ""}])
        for run in runners.values():  # one untimed question each: caches, lazy parts
            run("What is machine learning?", lambda _piece: None)

        results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        answers: dict[str, list[Answer]] = {name: [] for name in names}
        for i, item in enumerate(questions, 1):
            for name, run in runners.items():
                first: list[float] = []
                started = time.perf_counter()
                answer = run(
                    item.question, lambda _p, f=first, s=started: f or f.append(time.perf_counter() - s)
                )
                total = time.perf_counter() - started
                cited_text = " ".join(c.hit.chunk.text for c in answer.citations)
                results[name].append(
                    {
                        "id": item.id,
                        "ttft_ms": round((first[0] if first else total) * 1000, 1),
                        "total_ms": round(total * 1000, 1),
                        "route": getattr(answer, "route", "generated"),
                        "abstained": answer.abstained,
                        "evidence_cited": any(e in cited_text for e in item.evidence),
                        "key_fact_recall": 0.0
                        if answer.abstained
                        else facts_found(item.facts, answer.text) / max(1, len(item.facts)),
                        "answer": answer.text,
                    }
                )
                answers[name].append(answer)
                print(f"[{i}/{len(questions)}] {name:20} {total:5.1f}s  {answer.text[:70]!r}", flush=True)

        if not args.no_judge:
            judge = Judge(generator)
            for name in names:
                for row, answer in zip(results[name], answers[name], strict=True):
                    row["sentences"] = [] if answer.abstained else citation_checks(answer, judge)

    summary = {}
    for name in names:
        rows = results[name]
        sentences = [s for r in rows for s in r.get("sentences", [])]
        cited = sum(len(s["cited"]) for s in sentences)
        summary[name] = {
            "ttft_ms_p50": percentile([r["ttft_ms"] for r in rows], 50),
            "ttft_ms_p95": percentile([r["ttft_ms"] for r in rows], 95),
            "total_ms_p50": percentile([r["total_ms"] for r in rows], 50),
            "total_ms_p95": percentile([r["total_ms"] for r in rows], 95),
            "answered": round(sum(not r["abstained"] for r in rows) / len(rows), 3),
            "key_fact_recall": round(statistics.mean(r["key_fact_recall"] for r in rows), 3),
            "evidence_cited": round(sum(r["evidence_cited"] for r in rows) / len(rows), 3),
            "citation_recall": round(sum(s["supported"] for s in sentences) / len(sentences), 3)
            if sentences
            else None,
            "citation_precision": round(sum(s["precise_citations"] for s in sentences) / cited, 3)
            if cited
            else None,
            "faq_answers": sum(r["route"] == "faq" for r in rows),
        }
    if "naive" in summary:
        for name in names:
            for key in ("ttft_ms_p50", "total_ms_p50"):
                summary[name][key.replace("_ms_p50", "_speedup_vs_naive")] = round(
                    summary["naive"][key] / summary[name][key], 2
                )
    report = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "generator": base.generator,
        "questions": [q.id for q in questions],
        "summary": summary,
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
