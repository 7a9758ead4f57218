"""The question log and the content-gap report: what the corpus fails to answer, grouped by meaning.

When ``log_questions`` is on, every answer the CLI (``ask``, ``chat``) or the web service gives is
appended to ``<index_dir>/questions.jsonl``: the question, the outcome (answered or refused and why,
how many sentences were supported, the route) and the passage that came closest. Nothing about who
asked (no address, no history). The chat page's thumbs up/down add ``feedback`` records that point at
an answer by its ``id``. The file is bounded: past ``question_log_max_bytes`` it is renamed to
``questions.1.jsonl`` (replacing the older one) and a new one is started.

``gap_report`` takes the refused, weakly supported (under ``WEAK_SUPPORT`` of the sentences kept) and
thumbs-down questions, embeds them with the index's embedder and groups them by cosine similarity
(``GROUP_MIN_COSINE``), largest group first, each with its count, the question nearest its centre and
the closest passage any of its questions found. ``flagged`` (from the index manifest) adds the files
with passages left out as instructions to a model (``ingest/injection.py``): a question about them may
have gone unanswered because that text is not indexed, and their owner should review them.

Not handled here: printing (``cli/gaps_cmd.py``), HTTP (``web/app.py``), who may read the log (it is a local
file).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.errors import BadInput
from careerqa.locks import file_lock
from careerqa.types import Answer

LOG_NAME = "questions.jsonl"
OLD_LOG_NAME = "questions.1.jsonl"
# An answer with fewer of its sentences supported than this is weakly supported (verification removed
# the rest); with the default support threshold that is one sentence of two, or two of four.
WEAK_SUPPORT = 0.67
# Two questions share a group when their cosine with the group's centre reaches this
# (all-MiniLM-L6-v2 on the questions of tests/test_gaps.py: two of one topic 0.56-0.9, mean 0.71;
# of different topics 0.36 at most, mean 0.23).
GROUP_MIN_COSINE = 0.55
MAX_REPORT_QUESTIONS = 5_000  # the newest ones, when the log holds more

_write_lock = threading.Lock()


def log_path(index_dir: Path) -> Path:
    return index_dir / LOG_NAME


def _append(path: Path, record: dict[str, Any], max_bytes: int) -> None:
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _write_lock, file_lock(path.parent / ".questions.lock"):  # the CLI and a server may share the log
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size + len(line) > max_bytes:
                os.replace(path, path.with_name(OLD_LOG_NAME))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def outcome(answer: Answer) -> str:
    """``refused``, ``weak`` (answered, but under ``WEAK_SUPPORT`` of its sentences supported) or
    ``answered``."""
    if answer.abstained:
        return "refused"
    total = answer.sentences_total
    if total and answer.sentences_supported / total < WEAK_SUPPORT:
        return "weak"
    return "answered"


def log_answer(index_dir: Path, answer: Answer, index_version: str | None, max_bytes: int) -> str:
    """Append one answer's record; return its id (for feedback)."""
    record_id = uuid.uuid4().hex[:16]
    best = max(answer.retrieved, key=lambda h: h.dense_score or 0.0, default=None)
    record = {
        "kind": "answer",
        "id": record_id,
        "at": _now(),
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "outcome": outcome(answer),
        "abstain_reason": answer.abstain_reason,
        "sentences": {"total": answer.sentences_total, "supported": answer.sentences_supported},
        "route": answer.route,
        "index_version": index_version,
        "nearest": None
        if best is None
        else {"chunk_id": best.chunk.chunk_id, "label": best.chunk.label(), "cosine": best.dense_score},
    }
    _append(log_path(index_dir), record, max_bytes)
    return record_id


_ID = re.compile(r"[0-9a-f]{16}")


def log_feedback(index_dir: Path, record_id: str, vote: str, max_bytes: int) -> None:
    """Thumbs up or down for the answer logged as ``record_id``."""
    if not _ID.fullmatch(record_id):
        raise BadInput("the answer id must be 16 hexadecimal digits")
    if vote not in ("up", "down"):
        raise BadInput(f"vote must be 'up' or 'down', not {vote!r}")
    _append(log_path(index_dir), {"kind": "feedback", "id": record_id, "at": _now(), "vote": vote}, max_bytes)


def read_log(index_dir: Path) -> Iterator[dict[str, Any]]:
    """Records, oldest first (the rotated file, then the current one); damaged lines are skipped."""
    for path in (index_dir / OLD_LOG_NAME, log_path(index_dir)):
        try:
            data = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a partial last line of a killed writer
            if isinstance(record, dict):
                yield record


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``12h``, ``30m`` before now, or an ISO date or time (UTC when it names no zone)."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", value)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadInput(f"--since {value!r}: give a duration (7d, 12h, 30m) or a date (2026-01-31)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class _Gap:
    question: str
    outcome: str  # "refused", "weak" or "down" (a thumbs down)
    nearest: dict[str, Any] | None
    at: str


def gap_questions(records: Sequence[dict[str, Any]], since: datetime | None = None) -> list[_Gap]:
    """The logged answers that were refused, weakly supported or voted down (the last vote counts)."""
    votes = {r["id"]: r.get("vote") for r in records if r.get("kind") == "feedback" and "id" in r}
    gaps: list[_Gap] = []
    for r in records:
        if r.get("kind") != "answer" or not isinstance(r.get("question"), str):
            continue
        try:
            at = datetime.fromisoformat(str(r.get("at")))
        except ValueError:
            continue
        if since is not None and at < since:
            continue
        kind = r.get("outcome")
        if votes.get(r.get("id")) == "down" and kind == "answered":
            kind = "down"
        if kind in ("refused", "weak", "down"):
            question = r.get("standalone_question") or r["question"]
            gaps.append(_Gap(question, kind, r.get("nearest"), str(r.get("at"))))
    return gaps[-MAX_REPORT_QUESTIONS:]


def group_by_meaning(vectors: np.ndarray, min_cosine: float = GROUP_MIN_COSINE) -> list[list[int]]:
    """Rows of unit ``vectors`` grouped: each joins the group whose centre is nearest when the cosine
    reaches ``min_cosine``, else starts one; then every row is placed again against the final centres
    (so the order of the rows matters less). Groups are returned largest first."""
    if len(vectors) == 0:
        return []
    centres: list[np.ndarray] = []
    members: list[list[int]] = []
    for _ in range(2):
        if centres:
            fixed = np.stack(centres)
            members = [[] for _ in centres]
            for row, vector in enumerate(vectors):
                members[int(np.argmax(fixed @ vector))].append(row)
        else:
            for row, vector in enumerate(vectors):
                scores = np.stack(centres) @ vector if centres else np.array([])
                best = int(np.argmax(scores)) if len(scores) else -1
                if best >= 0 and scores[best] >= min_cosine:
                    members[best].append(row)
                    centre = vectors[members[best]].mean(axis=0)
                    centres[best] = centre / (np.linalg.norm(centre) or 1.0)
                else:
                    members.append([row])
                    centres.append(vector)
        members = [m for m in members if m]
        centres = [_unit(vectors[m].mean(axis=0)) for m in members]
    return sorted(members, key=lambda m: (-len(m), m[0]))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def gap_report(
    records: Sequence[dict[str, Any]],
    embed: Callable[[list[str]], np.ndarray],
    since: datetime | None = None,
    min_cosine: float = GROUP_MIN_COSINE,
    flagged: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Groups of unanswered questions, largest first (see the module docstring). ``embed`` gives unit
    vectors (``Embedder.embed``); it is not called when there is nothing to group."""
    gaps = gap_questions(records, since)
    distinct = sorted({g.question for g in gaps})
    groups_out: list[dict[str, Any]] = []
    if distinct:
        vectors = np.asarray(embed(distinct), dtype=np.float32)
        index = {q: i for i, q in enumerate(distinct)}
        for rows in group_by_meaning(vectors, min_cosine):
            questions = {distinct[r] for r in rows}
            members = [g for g in gaps if g.question in questions]
            centre = _unit(vectors[rows].mean(axis=0))
            example = max(questions, key=lambda q: (float(vectors[index[q]] @ centre), q))
            nearest = max(
                (g.nearest for g in members if g.nearest),
                key=lambda n: n.get("cosine") or 0.0,
                default=None,
            )
            counts = {k: sum(g.outcome == k for g in members) for k in ("refused", "weak", "down")}
            groups_out.append(
                {
                    "count": len(members),
                    "example": example,
                    "questions": sorted(questions, key=lambda q: -float(vectors[index[q]] @ centre)),
                    "outcomes": counts,
                    "last_asked": max(g.at for g in members),
                    "nearest_passage": nearest,
                }
            )
        groups_out.sort(key=lambda g: (-g["count"], g["example"]))
    return {
        "since": since.isoformat() if since else None,
        "questions": len(gaps),
        "distinct_questions": len(distinct),
        "groups": groups_out,
        "flagged_files": [{"path": path, "flags": flags} for path, flags in (flagged or {}).items()],
    }
