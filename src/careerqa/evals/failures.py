"""Failure kinds of eval records: each way an answer can go wrong gets its own row in the report.

A record (``scoring.run_eval``) is tagged with every kind it shows, so a regression in one kind
shows even when the averages hold:
- ``retrieval-miss``: an answerable question whose gold evidence is not in the top 5;
- ``refused-answerable`` (and ``refused-answerable:<stage>``: retrieval, model, verification, focus,
  relevance, from the answer's ``abstain_reason``): a false abstention;
- ``answered-unanswerable``: a question the corpus does not answer was answered;
- ``off-target``: an answerable question answered without naming any of its key facts;
- ``copy-dump``: more sentences than ``MAX_SENTENCES`` or more than ``form.MAX_COPIED`` sentences
  copied verbatim from the cited passages (not counted for the FAQ fast path, which quotes an entry);
- ``markup``: prompt markup (tags, "Passage:", role labels) in the answer;
- ``marker-in-bracket``: a citation marker inside an open parenthesis or quotation.
Not handled here: scoring (``evals/scoring.py``) and formatting (``evals/report.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from careerqa.answer.form import MAX_COPIED, has_markup, is_copy, marker_in_open_bracket
from careerqa.answer.grounding import split_sentences
from careerqa.types import Answer

FAILURE_KINDS = (
    "retrieval-miss",
    "refused-answerable",
    "answered-unanswerable",
    "off-target",
    "copy-dump",
    "markup",
    "marker-in-bracket",
)
MAX_SENTENCES = 4  # Settings.max_answer_sentences by default


def form_checks(answer: Answer) -> dict[str, Any]:
    """The form facts of one answer that the failure kinds read (stored in the eval record)."""
    sentences = split_sentences(answer.text) if not answer.abstained else []
    passages = [c.hit.chunk.text for c in answer.citations]
    return {
        "route": answer.route,
        "sentences": len(sentences),
        "copied_sentences": sum(any(is_copy(s, p) for p in passages) for s in sentences),
        "markup": has_markup(answer.text),
        "marker_in_bracket": marker_in_open_bracket(answer.text),
    }


def failure_kinds(record: dict[str, Any]) -> list[str]:
    """Every failure kind ``record`` shows (``FAILURE_KINDS`` order, plus the refusal's stage)."""
    kinds = []
    retrieval = record.get("retrieval")
    if retrieval is not None and not retrieval["hit@5"]:
        kinds.append("retrieval-miss")
    answer = record.get("answer")
    if answer is None:
        return kinds
    if record["answerable"] and answer["abstained"]:
        stage = (answer.get("abstain_reason") or "unknown").split(":")[0]
        kinds += ["refused-answerable", f"refused-answerable:{stage}"]
    if not record["answerable"] and not answer["abstained"]:
        kinds.append("answered-unanswerable")
    if record["answerable"] and not answer["abstained"] and answer.get("key_fact_recall") == 0:
        kinds.append("off-target")
    form = answer.get("form", {})
    too_long = form.get("sentences", 0) > MAX_SENTENCES or form.get("copied_sentences", 0) > MAX_COPIED
    if too_long and form.get("route") != "faq":  # a corpus FAQ entry is quoted whole by design
        kinds.append("copy-dump")
    if form.get("markup"):
        kinds.append("markup")
    if form.get("marker_in_bracket"):
        kinds.append("marker-in-bracket")
    return kinds


def failure_counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many records show each kind (every kind of ``FAILURE_KINDS`` listed, zeros included)."""
    counts: Counter[str] = Counter(k for r in records for k in failure_kinds(r))
    applicable = FAILURE_KINDS if any("answer" in r for r in records) else FAILURE_KINDS[:1]
    out = {k: counts.get(k, 0) for k in applicable}
    out.update(sorted((k, v) for k, v in counts.items() if k not in out))
    return out
