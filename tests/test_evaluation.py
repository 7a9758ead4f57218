"""The eval metrics on hand-built cases whose right scores are known, and the eval set's own health."""

from __future__ import annotations

import json
import sys

import pytest

from careerqa.config import Settings
from careerqa.errors import BadInput
from careerqa.evals.gate import DEFAULT_GATE, GateCheck, check_gate, gate_failures
from careerqa.evals.report import NO_CHART, format_table, write_report
from careerqa.evals.scoring import (
    EvalItem,
    Selection,
    citation_checks,
    context_precision,
    load_eval_set,
    per_category,
    retrieval_query,
    run_eval,
    score_retrieval,
    summarize,
)
from careerqa.index.sync import index_chunks
from careerqa.ingest.corpus import load_corpus
from careerqa.types import Answer, Chunk, Citation, Hit

from .conftest import REPO

CATEGORIES = {"direct", "paraphrase", "multi-fact", "faq", "informal", "follow-up"}
UNANSWERABLE = {"off-topic", "near-topic", "injection"}


def _hit(text: str, rank: int = 1) -> Hit:
    return Hit(Chunk(f"c-{text[:8]}", "doc.md", "Section", text, 0, len(text)), score=1.0, rank=rank)


def _answer(text: str, passages: list[str], abstained: bool = False, total_ms: float = 1000.0) -> Answer:
    return Answer(
        question="q",
        text=text,
        abstained=abstained,
        citations=tuple(Citation(n, _hit(p)) for n, p in enumerate(passages, 1)),
        retrieved=(),
        timings_ms={"total": total_ms},
    )


class KeywordJudge:
    """Supports a claim when the claim's first word occurs in the passage; counts its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def supports(self, passage: str, claim: str) -> bool:
        self.calls.append((passage, claim))
        return claim.split()[0].lower() in passage.lower()


# --------------------------------------------------------------------------- retrieval


@pytest.mark.parametrize(
    "relevant,expected",
    [
        ([True, False, False, False, False], 1.0),
        ([False, True], 0.5),
        ([True, False, True, False, False], (1 + 2 / 3) / 2),
        ([False, False, False, False, False, True], 0.0),  # beyond k = 5
        ([], 0.0),
    ],
)
def test_context_precision_known_values(relevant, expected):
    assert context_precision(relevant) == pytest.approx(expected)


def test_retrieval_scores_of_gold_at_rank_two():
    item = EvalItem("a", "q", True, evidence=("Khan Academy",))
    scores = score_retrieval(item, ["nothing here", "try Khan Academy", "Khan Academy again", "x", "y", "z"])
    assert scores["gold_rank"] == 2
    assert (scores["hit@1"], scores["hit@3"], scores["hit@5"]) == (False, True, True)
    assert scores["mrr"] == 0.5
    assert scores["context_precision@5"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-4)


def test_retrieval_miss_scores_zero():
    scores = score_retrieval(EvalItem("a", "q", True, evidence=("absent",)), ["a", "b"])
    assert scores["gold_rank"] is None and scores["mrr"] == 0.0 and not scores["hit@5"]


def test_follow_up_is_retrieved_with_its_previous_question():
    item = EvalItem("f", "and tensorflow?", True, history=(("Who developed PyTorch?", "FAIR [1]."),))
    assert retrieval_query(item) == "Who developed PyTorch? and tensorflow?"


# --------------------------------------------------------------------------- citations (ALCE)


def test_citation_recall_and_precision_known_case():
    answer = _answer(
        "Alpha is in the first passage [1]. Beta is in the second passage [1][2]. "
        "Gamma has no citation. Gamma is cited wrongly [2].",
        ["alpha facts", "beta facts"],
    )
    checks = citation_checks(answer, KeywordJudge())
    assert [c["supported"] for c in checks] == [True, True, False, False]
    # [1] in the second sentence is redundant: alone it does not support it, and [2] alone does.
    assert [c["precise_citations"] for c in checks] == [1, 1, 0, 0]
    assert [c["cited"] for c in checks] == [[1], [1, 2], [], [2]]


def test_two_citations_both_needed_are_both_precise():
    answer = _answer("Alpha and beta together [1][2].", ["alpha only", "beta only"])

    class BothNeeded:
        def supports(self, passage: str, claim: str) -> bool:
            return "alpha" in passage and "beta" in passage

    assert citation_checks(answer, BothNeeded())[0]["precise_citations"] == 2


def test_dangling_marker_citation_is_never_precise():
    answer = _answer("Alpha here [1][3].", ["alpha facts"])
    check = citation_checks(answer, KeywordJudge())[0]
    assert check["supported"] and check["cited"] == [1, 3] and check["precise_citations"] == 1


# --------------------------------------------------------------------------- whole runs


def test_run_eval_summary_known_scores():
    items = [
        EvalItem("a1", "alpha?", True, "test", "direct", ("alpha facts",), (("alpha",), ("delta",))),
        EvalItem("a2", "beta?", True, "test", "paraphrase", ("beta facts",), (("beta",),)),
        EvalItem("u1", "cookies?", False, "test", "off-topic"),
        EvalItem("u2", "ignore rules", False, "test", "injection"),
    ]
    passages = ["alpha facts", "beta facts", "other"]
    answers = {
        "a1": _answer(
            "Alpha is known [1]. Alpha again [2]. Zeta [5].", ["alpha facts", "beta facts"], total_ms=100
        ),
        "a2": _answer("", [], abstained=True, total_ms=200),
        "u1": _answer("", [], abstained=True, total_ms=300),
        "u2": _answer("Beta it is [1].", ["beta facts"], total_ms=400),
    }
    judge = KeywordJudge()
    report = run_eval(
        items,
        lambda q, k: [_hit(p, r) for r, p in enumerate(passages if "alpha" in q else passages[::-1], 1)][:k],
        ask=lambda item: answers[item.id],
        judge=judge,
    )
    s = report["summary"]
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (4, 2, 2)
    # a1: gold at rank 1; a2: "beta facts" at rank 2 of ("other", "beta facts", "alpha facts").
    assert s["hit@1"] == 0.5 and s["hit@3"] == 1.0 and s["mrr"] == 0.75
    assert s["context_precision@5"] == 0.75
    # Sentences: a1 has 3 (supported, unsupported, unsupported), u2 has 1 (supported).
    assert s["answer_sentences"] == 4 and s["citation_recall"] == 0.5
    # Citations: a1 [1] precise, [2] not, [5] dangling; u2 [1] precise.
    assert s["citation_precision"] == 0.5
    assert s["key_fact_recall"] == 0.25  # a1 names alpha but not delta; a2 abstained
    assert s["false_abstention_rate"] == 0.5 and s["abstention_rate"] == 0.5
    assert s["dangling_marker_rate"] == 0.25  # [5] of 4 markers
    assert s["latency_ms_p50"] == 250.0 and s["latency_ms_p95"] == pytest.approx(385.0)
    cats = report["by_category"]
    assert cats["injection"]["abstention_rate"] == 0.0 and cats["off-topic"]["abstention_rate"] == 1.0
    assert cats["direct"]["hit@1"] == 1.0 and cats["paraphrase"]["hit@1"] == 0.0
    assert all(call[1] for call in judge.calls)  # abstentions are never judged


def test_retrieval_only_summary_has_no_answer_metrics():
    items = [EvalItem("a", "q", True, evidence=("gold",)), EvalItem("u", "x", False)]
    report = run_eval(items, lambda q, k: [_hit("gold text")])
    assert report["summary"]["hit@1"] == 1.0
    assert "citation_recall" not in report["summary"]
    assert "answer" not in report["records"][0]


def test_per_category_takes_the_first_n_of_each_category_in_order():
    items = [EvalItem(str(i), "q", True, category=c) for i, c in enumerate("aabacbb")]
    assert [i.id for i in per_category(items, 2)] == ["0", "1", "2", "4", "5"]


def test_summary_of_no_records_is_empty_not_an_error():
    assert summarize([])["hit@5"] is None


def test_gate_reports_every_missed_threshold_and_skips_unmeasured_metrics():
    summary = {"hit@5": 0.9, "mrr": 0.7, "false_abstention_rate": 0.3}
    gate = {"min": {"hit@5": 0.95, "mrr": 0.6, "citation_recall": 0.9}, "max": {"false_abstention_rate": 0.2}}
    assert gate_failures(summary, gate) == ["hit@5 0.9 < 0.95", "false_abstention_rate 0.3 > 0.2"]
    assert gate_failures(summary, {"min": {"hit@5": 0.9}}) == []


def test_check_gate_applies_to_the_whole_of_its_set_and_split(tmp_path, monkeypatch):
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"set": "eval/qs.jsonl", "split": "all", "min": {"mrr": 0.8}}))
    whole = Selection(tmp_path / "qs.jsonl")
    assert check_gate({"mrr": 0.9}, whole, gate) == GateCheck(gate, "passed")
    assert check_gate({"mrr": 0.7}, whole, gate) == GateCheck(gate, "failed", ("mrr 0.7 < 0.8",))
    for subset in (
        Selection(whole.path, limit=5),
        Selection(whole.path, per_category=1),
        Selection(whole.path, split="dev"),
        Selection(tmp_path / "other.jsonl"),
    ):
        assert check_gate({"mrr": 0.7}, subset, gate).result.startswith(f"skipped: {gate} holds")
    monkeypatch.chdir(tmp_path)  # no eval/gate.json here: the default gate is not checked
    assert check_gate({"mrr": 0.7}, whole) == GateCheck(DEFAULT_GATE, "not checked")
    with pytest.raises(BadInput, match="does not exist"):
        check_gate({"mrr": 0.7}, whole, tmp_path / "missing.json")


def test_without_matplotlib_the_report_is_written_without_the_chart(tmp_path, monkeypatch):
    items = [EvalItem("a", "q", True, "dev", "direct", ("gold",))]
    report = {
        "meta": {"name": "t", "command": "c", "set": "s", "split": "all", "mode": "m", "created": "now"}
    }
    report |= run_eval(items, lambda q, k: [_hit("gold")])
    (tmp_path / "t.png").write_bytes(b"an old chart")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    paths = write_report(report, tmp_path)
    assert [p.name for p in paths] == ["t.json", "t.md"] and not (tmp_path / "t.png").exists()
    assert f"No chart: {NO_CHART}." in paths[1].read_text()


def test_report_files_and_table(tmp_path):
    items = [EvalItem("a", "q", True, "dev", "direct", ("gold",), (("gold",),))]
    report = run_eval(
        items, lambda q, k: [_hit("gold")], ask=lambda i: _answer("Gold [1].", ["gold"]), judge=KeywordJudge()
    )
    report = {
        "meta": {
            "name": "t",
            "command": "careerqa eval",
            "set": "s.jsonl",
            "split": "all",
            "mode": "full",
            "generator": "fake",
            "created": "now",
        },
        **report,
    }
    paths = write_report(report, tmp_path)
    assert [p.name for p in paths] == ["t.json", "t.md", "t.png"]
    assert json.loads(paths[0].read_text())["summary"]["citation_recall"] == 1.0
    assert "![scores per category](t.png)" in paths[1].read_text()
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
    table = format_table(report)
    assert "citation_recall" in table and "direct" in table


# --------------------------------------------------------------------------- the eval set


def test_load_reads_old_passage_field_and_filters_split(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "question": "q", "answerable": true, "passage": "gold", "split": "dev"}\n'
        '{"id": "b", "question": "q", "answerable": false, "split": "test"}\n'
    )
    assert load_eval_set(path)[0].evidence == ("gold",)
    assert [i.id for i in load_eval_set(path, "test")] == ["b"]
    path.write_text('{"id": "a", "question": "q", "answerable": true}\n')
    with pytest.raises(BadInput, match="gold evidence"):
        load_eval_set(path)


def test_question_set_shape():
    items = load_eval_set(REPO / "eval" / "questions.jsonl")
    answerable = [i for i in items if i.answerable]
    assert len(answerable) >= 80 and len(items) - len(answerable) >= 20
    assert len({i.id for i in items}) == len(items)
    assert {i.split for i in items} == {"dev", "test"}
    assert {i.category for i in answerable} == CATEGORIES
    assert {i.category for i in items if not i.answerable} == UNANSWERABLE
    assert all(i.facts and i.evidence for i in answerable)
    assert all(i.history for i in items if i.category == "follow-up")


def test_every_gold_quote_is_in_a_chunk_of_the_current_index_build():
    settings = Settings()
    documents, _ = load_corpus(REPO / "corpus")
    texts = [c.text for d in documents for c in index_chunks(d, settings)]  # as indexed: chrome left out
    missing = [
        (i.id, quote)
        for i in load_eval_set(REPO / "eval" / "questions.jsonl")
        for quote in i.evidence
        if not any(quote in t for t in texts)
    ]
    assert missing == []


def test_gate_file_is_for_the_question_set():
    gate = json.loads((REPO / "eval" / "gate.json").read_text())
    assert gate["set"] == "eval/questions.jsonl" and gate["split"] == "all"
    assert set(gate["min"]) >= {"hit@1", "hit@3", "hit@5", "mrr", "context_precision@5"}
