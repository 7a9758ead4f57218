"""Run an eval set and measure retrieval, and whether answers are grounded in the passages they cite.

An eval set is JSON lines (``eval/questions.jsonl``)::

    {"id", "split": "dev"|"test", "category", "question", "answerable",
     "history": [[question, answer], ...],   # follow-ups only
     "evidence": [quote, ...],               # answerable: a passage holding one of these is gold
     "facts": [[alternative, ...], ...]}     # answerable: each group must be named by the answer

Retrieval (answerable questions): hit@1/3/5 and MRR (depth ``RETRIEVAL_DEPTH``) of the first passage
holding a gold quote, and context precision@5 as RAGAS defines it (mean of precision@k over the ranks
k ≤ 5 that hold gold evidence; 1.0 when every gold passage comes first). A follow-up is retrieved with
its previous question prepended, the answerer's own fallback, so retrieval-only needs no LLM.

Answers, in the manner of ALCE (Gao et al., 2023), over every answer that is not an abstention:
- citation recall: share of answer sentences whose cited passages, joined, support them (a sentence
  without a citation counts as unsupported);
- citation precision: share of citations that support their sentence: a citation of a supported
  sentence counts unless it alone does not support the sentence and the other citations still do;
  a citation of an unsupported sentence never counts;
- key-fact recall: share of an answerable question's fact groups that the answer names (0 if abstained);
- evidence cited: share of answerable questions whose answer cites a passage holding a gold quote (a
  string match, like retrieval's; an abstention counts as a miss). It undercounts an answer that cites
  a passage saying the same as the quote in other words;
- abstention rate (unanswerable questions) and false-abstention rate (answerable ones);
- dangling-marker rate: ``[n]`` markers that name no citation, over all markers; latency p50/p95.
Support is decided by a ``SupportJudge`` (``judge.Judge``: the local LLM asked yes/no).
Not handled here: judging fluency, or completeness beyond the listed facts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from careerqa.answer.grounding import split_sentences
from careerqa.errors import BadInput
from careerqa.evals.failures import failure_counts, form_checks
from careerqa.text.citations import MARKER
from careerqa.types import Answer, Hit

RETRIEVAL_DEPTH = 10
HIT_AT = (1, 3, 5)
PRECISION_AT = 5
RETRIEVAL_METRICS = ("hit@1", "hit@3", "hit@5", "mrr", "context_precision@5")
ANSWER_METRICS = (
    "citation_recall",
    "citation_precision",
    "key_fact_recall",
    "evidence_cited",
    "abstention_rate",
    "false_abstention_rate",
    "dangling_marker_rate",
)

CalibrateFn = Callable[[str], float]
SearchFn = Callable[[str, int], Sequence[Hit]]


class SupportJudge(Protocol):
    def supports(self, passage: str, claim: str) -> bool: ...


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answerable: bool
    split: str = ""
    category: str = ""
    evidence: tuple[str, ...] = ()
    facts: tuple[tuple[str, ...], ...] = ()
    history: tuple[tuple[str, str], ...] = ()


def load_eval_set(path: Path, split: str | None = None) -> list[EvalItem]:
    """The items of ``path`` (only those of ``split`` when given). ``passage`` is read as ``evidence``."""
    if not path.exists():
        raise BadInput(f"eval set {path} does not exist")
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            evidence = raw.get("evidence", raw.get("passage", []))
            items.append(
                EvalItem(
                    id=str(raw["id"]),
                    question=str(raw["question"]),
                    answerable=bool(raw["answerable"]),
                    split=str(raw.get("split", "")),
                    category=str(raw.get("category", "")),
                    evidence=(evidence,) if isinstance(evidence, str) else tuple(map(str, evidence)),
                    facts=tuple(tuple(group) for group in raw.get("facts", [])),
                    history=tuple((str(q), str(a)) for q, a in raw.get("history", [])),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{path}:{line_no}: not a valid eval item ({exc})") from exc
        if items[-1].answerable and not items[-1].evidence:
            raise BadInput(f"{path}:{line_no}: an answerable item needs its gold evidence")
    if split not in (None, "all"):
        items = [i for i in items if i.split == split]
    if not items:
        raise BadInput(f"eval set {path} has no items" + (f" in split {split!r}" if split else ""))
    return items


def per_category(items: Sequence[EvalItem], n: int) -> list[EvalItem]:
    """The first ``n`` items of every category, in file order: a small sample that covers them all."""
    taken: dict[str, int] = {}
    sample = []
    for item in items:
        if taken.get(item.category, 0) < n:
            taken[item.category] = taken.get(item.category, 0) + 1
            sample.append(item)
    return sample


@dataclass(frozen=True)
class Selection:
    """The questions a run takes from the eval set at ``path``: those of ``split``, then only the first
    ``limit`` of them, or only the first ``per_category`` of each category."""

    path: Path
    split: str = "all"
    limit: int | None = None
    per_category: int | None = None

    def items(self) -> list[EvalItem]:
        items = load_eval_set(self.path, self.split)[: self.limit]
        return items if self.per_category is None else per_category(items, self.per_category)

    @property
    def whole(self) -> bool:
        """All of the split: what the gate's thresholds are measured on."""
        return self.limit is None and self.per_category is None


# --------------------------------------------------------------------------- retrieval


def retrieval_query(item: EvalItem) -> str:
    """What retrieval-only search asks: a follow-up gets its previous question in front of it."""
    return f"{item.history[-1][0]} {item.question}" if item.history else item.question


def context_precision(relevant: Sequence[bool], k: int = PRECISION_AT) -> float:
    """RAGAS context precision@k: the mean of precision@i over the ranks i ≤ k that are relevant."""
    top = list(relevant[:k])
    precisions = [sum(top[: i + 1]) / (i + 1) for i, rel in enumerate(top) if rel]
    return sum(precisions) / len(precisions) if precisions else 0.0


def score_retrieval(item: EvalItem, texts: Sequence[str]) -> dict[str, Any]:
    """Retrieval scores of one answerable item, given the ranked passage texts."""
    relevant = [any(quote in text for quote in item.evidence) for text in texts]
    rank = relevant.index(True) + 1 if any(relevant) else None
    record: dict[str, Any] = {"gold_rank": rank}
    for k in HIT_AT:
        record[f"hit@{k}"] = rank is not None and rank <= k
    record["mrr"] = 1 / rank if rank else 0.0
    record["context_precision@5"] = round(context_precision(relevant), 4)
    return record


def run_retrieval(search: SearchFn, items: Sequence[EvalItem]) -> dict[str, dict[str, Any]]:
    """Retrieval scores per answerable item id."""
    return {
        item.id: score_retrieval(item, [h.chunk.text for h in search(retrieval_query(item), RETRIEVAL_DEPTH)])
        for item in items
        if item.answerable
    }


# --------------------------------------------------------------------------- answers


def facts_found(groups: Sequence[Sequence[str]], text: str) -> int:
    """How many groups have one of their strings in ``text`` (case-insensitive)."""
    low = text.lower()
    return sum(1 for group in groups if any(s.lower() in low for s in group))


def cited_numbers(sentence: str) -> list[int]:
    return list(
        dict.fromkeys(int(n) for m in MARKER.finditer(sentence) for n in re.findall(r"\d+", m.group(1)))
    )


def citation_checks(answer: Answer, judge: SupportJudge) -> list[dict[str, Any]]:
    """ALCE citation recall and precision of every sentence of ``answer``."""
    passages = {c.n: c.hit.chunk.text for c in answer.citations}

    def supported(numbers: Sequence[int], claim: str) -> bool:
        texts = [passages[n] for n in numbers if n in passages]
        return bool(texts) and judge.supports("\n\n".join(texts), claim)

    checks = []
    for sentence in split_sentences(answer.text):
        cited = cited_numbers(sentence)
        claim = " ".join(MARKER.sub("", sentence).split())
        ok = supported(cited, claim)
        precise = 0
        if ok:
            for n in cited:
                rest = [m for m in cited if m != n]
                redundant = len(cited) > 1 and not supported([n], claim) and supported(rest, claim)
                precise += n in passages and not redundant
        checks.append({"sentence": sentence, "cited": cited, "supported": ok, "precise_citations": precise})
    return checks


def score_answer(item: EvalItem, answer: Answer) -> dict[str, Any]:
    markers = [n for m in MARKER.finditer(answer.text) for n in re.findall(r"\d+", m.group(1))]
    record: dict[str, Any] = {
        "answer": answer.text,
        "draft": answer.draft,
        "standalone_question": answer.standalone_question,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "cited_sections": [c.hit.chunk.section for c in answer.citations],
        "markers": len(markers),
        "dangling_markers": sum(1 for n in markers if not 1 <= int(n) <= len(answer.citations)),
        "latency_ms": answer.timings_ms.get("total", 0.0),
        "verifier": {"sentences": answer.sentences_total, "supported": answer.sentences_supported},
        "form": form_checks(answer),
        "rules": list(answer.rules),
    }
    if item.answerable:
        found = 0 if answer.abstained else facts_found(item.facts, answer.text)
        record["key_fact_recall"] = round(found / len(item.facts), 4) if item.facts else None
        cited = [c.hit.chunk.text for c in answer.citations]
        record["evidence_cited"] = not answer.abstained and any(q in t for q in item.evidence for t in cited)
    return record


# --------------------------------------------------------------------------- summaries


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 3) if len(values) else None


def _share(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics over ``records`` (one per item, as ``run_eval`` makes them); answer metrics only when
    the records hold answers."""
    answerable = [r for r in records if r["answerable"]]
    summary: dict[str, Any] = {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(records) - len(answerable),
    }
    with_retrieval = [r["retrieval"] for r in answerable if "retrieval" in r]
    for metric in RETRIEVAL_METRICS:
        summary[metric] = _mean([float(r[metric]) for r in with_retrieval])
    summary["failures"] = failure_counts(records)  # failures.py: one row per failure kind
    answered = [r for r in records if "answer" in r]
    if not answered:
        return summary
    sentences = [s for r in answered for s in r.get("sentences", [])]
    unanswerable = [r for r in answered if not r["answerable"]]
    with_answers = [r for r in answered if r["answerable"]]
    latencies = [r["answer"]["latency_ms"] for r in answered]
    summary.update(
        {
            "citation_recall": _share(sum(s["supported"] for s in sentences), len(sentences)),
            "citation_precision": _share(
                sum(s["precise_citations"] for s in sentences), sum(len(s["cited"]) for s in sentences)
            ),
            "key_fact_recall": _mean(
                [
                    r["answer"]["key_fact_recall"]
                    for r in with_answers
                    if r["answer"]["key_fact_recall"] is not None
                ]
            ),
            "evidence_cited": _share(
                sum(bool(r["answer"].get("evidence_cited")) for r in with_answers), len(with_answers)
            ),
            "abstention_rate": _share(sum(r["answer"]["abstained"] for r in unanswerable), len(unanswerable)),
            "false_abstention_rate": _share(
                sum(r["answer"]["abstained"] for r in with_answers), len(with_answers)
            ),
            "dangling_marker_rate": _share(
                sum(r["answer"]["dangling_markers"] for r in answered),
                sum(r["answer"]["markers"] for r in answered),
            ),
            "answer_sentences": len(sentences),
            # how often each named rule (answer/rules.py) changed an answer's course
            "rules_fired": dict(
                sorted(Counter(x for r in answered for x in r["answer"].get("rules", [])).items())
            ),
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1),
        }
    )
    return summary


def by_category(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    categories = sorted({r["category"] for r in records})
    return {c: summarize([r for r in records if r["category"] == c]) for c in categories}


def run_eval(
    items: Sequence[EvalItem],
    search: SearchFn,
    ask: Callable[[EvalItem], Answer] | None = None,
    judge: SupportJudge | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score retrieval for every item, and answers too when ``ask`` is given (judged by ``judge``)."""
    retrieval = run_retrieval(search, items)
    records = []
    answers: dict[str, Answer] = {}
    for item in items:
        record: dict[str, Any] = {
            "id": item.id,
            "split": item.split,
            "category": item.category,
            "question": item.question,
            "answerable": item.answerable,
        }
        if item.id in retrieval:
            record["retrieval"] = retrieval[item.id]
        if ask is not None:
            answers[item.id] = ask(item)
            record["answer"] = score_answer(item, answers[item.id])
        records.append(record)
        if on_record is not None:
            on_record(record)
    # Judged after all answers, not between them: the answering and judge prompts each stay in the
    # model's cache while their turn lasts.
    if judge is not None:
        for item, record in zip(items, records, strict=True):
            answer = answers.get(item.id)
            if answer is not None and not answer.abstained:
                record["sentences"] = citation_checks(answer, judge)
    return {"summary": summarize(records), "by_category": by_category(records), "records": records}


def calibrate(best_score: CalibrateFn, items: Sequence[EvalItem], margin: float = 0.05) -> dict[str, Any]:
    """Suggest ``min_dense_score``: the lowest best-passage cosine of an answerable question, less a
    margin, so that no answerable dev question is refused before generation. Off-topic questions
    above the threshold are left to the model's and the verifier's abstention."""
    answerable = {i.id: round(best_score(retrieval_query(i)), 4) for i in items if i.answerable}
    off_topic = {i.id: round(best_score(i.question), 4) for i in items if not i.answerable}
    if not answerable:
        raise BadInput("calibration needs answerable questions")
    threshold = round(min(answerable.values()) - margin, 2)
    return {
        "suggested_min_dense_score": threshold,
        "answerable_min": min(answerable.values()),
        "off_topic_max": max(off_topic.values()) if off_topic else None,
        "off_topic_below_threshold": sum(1 for s in off_topic.values() if s < threshold),
        "off_topic": len(off_topic),
        "scores": {"answerable": answerable, "off_topic": off_topic},
    }
