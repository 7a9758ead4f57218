"""Run an eval set and measure whether answers are right and grounded in the passages they cite.

An eval set is JSON lines: ``{"id", "question", "answerable", "passage", "facts"}``. ``passage`` is a
string that the passage holding the answer contains; ``facts`` is a list of groups of acceptable
strings (the answer must contain one string of every group). The metrics are string checks made
here, independent of the verifier that answering uses, so the verifier is measured, not trusted:

- ``answered``: answerable questions that got an answer (not an abstention);
- ``fact_recall``: answerable questions whose answer states the expected facts;
- ``grounded``: ... and where a passage the answer cites contains those same fact strings;
- ``retrieval_hit``: the passage holding the answer was among those retrieved;
- ``abstained_off_topic``: unanswerable questions that got an abstention;
- ``dangling_markers``: ``[n]`` markers without a citation (must be 0);
- ``verifier_supported``: the verifier's own share of supported sentences, reported for reference.
Not handled here: judging fluency or completeness beyond the listed facts.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput
from .types import Answer

CalibrateFn = Callable[[str], float]


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answerable: bool
    passage: str = ""
    facts: tuple[tuple[str, ...], ...] = ()


def load_eval_set(path: Path) -> list[EvalItem]:
    if not path.exists():
        raise BadInput(f"eval set {path} does not exist")
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                EvalItem(
                    id=str(raw["id"]),
                    question=str(raw["question"]),
                    answerable=bool(raw["answerable"]),
                    passage=str(raw.get("passage", "")),
                    facts=tuple(tuple(group) for group in raw.get("facts", [])),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{path}:{line_no}: not a valid eval item ({exc})") from exc
    if not items:
        raise BadInput(f"eval set {path} is empty")
    return items


def _found(groups: Sequence[Sequence[str]], text: str) -> list[str] | None:
    """One matching string per group, or None if some group has no match in ``text``."""
    low = text.lower()
    hits = []
    for group in groups:
        match = next((s for s in group if s.lower() in low), None)
        if match is None:
            return None
        hits.append(match)
    return hits


def score_answer(item: EvalItem, answer: Answer) -> dict[str, Any]:
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    record: dict[str, Any] = {
        "id": item.id,
        "question": item.question,
        "answerable": item.answerable,
        "answer": answer.text,
        "draft": answer.draft,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "cited_sources": [f"{c.hit.chunk.source} › {c.hit.chunk.section}" for c in answer.citations],
        "dangling_markers": sum(1 for n in markers if not 1 <= n <= len(answer.citations)),
        "sentences_total": answer.sentences_total,
        "sentences_supported": answer.sentences_supported,
        "timings_ms": answer.timings_ms,
    }
    if item.answerable:
        facts = _found(item.facts, answer.text) if not answer.abstained else None
        cited_text = "\n".join(c.hit.chunk.text for c in answer.citations)
        record["retrieval_hit"] = any(item.passage in h.chunk.text for h in answer.retrieved)
        record["fact_recall"] = facts is not None
        record["grounded"] = facts is not None and _found([[f] for f in facts], cited_text) is not None
    return record


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in records if r["answerable"]]
    off_topic = [r for r in records if not r["answerable"]]
    answered = [r for r in records if not r["abstained"]]

    def share(rows: list[dict[str, Any]], key: str) -> float | None:
        return round(sum(1 for r in rows if r[key]) / len(rows), 3) if rows else None

    totals = [r["timings_ms"].get("total", 0.0) for r in records]
    first = [r["timings_ms"]["first_token"] for r in records if "first_token" in r["timings_ms"]]
    sentences = sum(r["sentences_total"] for r in answered)
    return {
        "questions": len(records),
        "answerable": len(answerable),
        "off_topic": len(off_topic),
        "answered": round(sum(1 for r in answerable if not r["abstained"]) / len(answerable), 3)
        if answerable
        else None,
        "fact_recall": share(answerable, "fact_recall"),
        "grounded": share(answerable, "grounded"),
        "retrieval_hit": share(answerable, "retrieval_hit"),
        "abstained_off_topic": share(off_topic, "abstained"),
        "dangling_markers": sum(r["dangling_markers"] for r in records),
        "verifier_supported": round(sum(r["sentences_supported"] for r in answered) / sentences, 3)
        if sentences
        else None,
        "latency_ms_p50": round(statistics.median(totals), 1) if totals else None,
        "latency_ms_max": round(max(totals), 1) if totals else None,
        "first_token_ms_p50": round(statistics.median(first), 1) if first else None,
    }


def run_eval(
    ask: Callable[[str], Answer],
    items: Sequence[EvalItem],
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    records = []
    for item in items:
        record = score_answer(item, ask(item.question))
        records.append(record)
        if on_record is not None:
            on_record(record)
    return {"summary": summarize(records), "records": records}


def calibrate(best_score: CalibrateFn, items: Sequence[EvalItem], margin: float = 0.05) -> dict[str, Any]:
    """Suggest ``min_dense_score``: the lowest best-passage cosine of an answerable question, less a
    margin, so that no answerable dev question is refused before generation. Off-topic questions
    above the threshold are left to the model's and the verifier's abstention."""
    answerable = {i.id: round(best_score(i.question), 4) for i in items if i.answerable}
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
