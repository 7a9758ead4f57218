"""The question log and ``careerqa gaps``: what is recorded (and what never is), the bound on its size,
feedback from the chat API, the grouping, the CLI; and the grouping with the real embedder on
questions written for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.cli.context import CliContext
from careerqa.engine.core import Engine
from careerqa.errors import BadInput
from careerqa.evals.gaps import (
    OLD_LOG_NAME,
    gap_report,
    group_by_meaning,
    log_answer,
    log_feedback,
    log_path,
    parse_since,
    read_log,
)
from careerqa.types import Answer
from careerqa.web.app import create_app

from .conftest import REPO, FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import QUESTION, live_server
from .test_cli import fake_cli  # noqa: F401 - a fixture

runner = CliRunner()

# Off-corpus questions written for this test, in three topics, with the wording varied.
OFF_TOPIC = {
    "visa": [
        "How do I get a work visa to join an AI company in Canada?",
        "Which visa do I need to work as a machine learning engineer in Canada?",
        "Can a Canadian AI employer sponsor my work permit?",
    ],
    "pension": [
        "How much pension do AI researchers get when they retire?",
        "What retirement pension plans do AI companies offer?",
    ],
    "quantum": [
        "What does a quantum computing researcher do all day?",
        "How do I become a quantum computing researcher?",
        "Is quantum computing research a good career?",
    ],
}


def answer(question: str, abstained: bool, supported: int = 2, total: int = 2) -> Answer:
    return Answer(
        question=question,
        text="x",
        abstained=abstained,
        citations=(),
        retrieved=(),
        timings_ms={},
        abstain_reason="retrieval: best passage similarity 0.10 < 0.25" if abstained else None,
        sentences_total=total,
        sentences_supported=supported,
    )


def test_the_log_holds_question_and_outcome_only_and_is_bounded(tmp_path):
    for i in range(40):
        log_answer(tmp_path, answer(f"question number {i}?", abstained=i % 2 == 0), "v1", max_bytes=4000)
    current, old = log_path(tmp_path), tmp_path / OLD_LOG_NAME
    assert current.stat().st_size <= 4000 and old.stat().st_size <= 4000  # one older file, no more
    records = list(read_log(tmp_path))
    assert records[-1]["question"] == "question number 39?"
    assert [r["question"] for r in records] == [f"question number {i}?" for i in range(40 - len(records), 40)]
    assert set(records[-1]) == {
        "kind", "id", "at", "question", "standalone_question", "outcome", "abstain_reason", "sentences",
        "route", "index_version", "nearest",
    }  # fmt: skip
    assert records[-2]["outcome"] == "refused" and records[-1]["outcome"] == "answered"


def test_a_damaged_last_line_is_skipped(tmp_path):
    log_answer(tmp_path, answer("first?", True), None, 10_000)
    with open(log_path(tmp_path), "a") as fh:
        fh.write('{"kind": "answer", "question": "cut off')
    assert [r["question"] for r in read_log(tmp_path)] == ["first?"]


def test_feedback_is_checked(tmp_path):
    with pytest.raises(BadInput):
        log_feedback(tmp_path, "../../etc/passwd", "down", 10_000)
    with pytest.raises(BadInput):
        log_feedback(tmp_path, "0123456789abcdef", "meh", 10_000)


def test_since_accepts_durations_and_dates():
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(BadInput, match="duration"):
        parse_since("last week", now)


def test_grouping_keeps_apart_what_is_apart():
    vectors = np.array([[1, 0, 0], [0.95, 0.3, 0], [0, 1, 0], [0, 0, 1], [0, 0.1, 0.99]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert group_by_meaning(vectors, 0.8) == [[0, 1], [3, 4], [2]]
    assert group_by_meaning(np.zeros((0, 3), dtype=np.float32)) == []


def test_report_counts_refused_weak_and_thumbs_down_not_good_answers(tmp_path):
    fake = FakeEmbedder()
    ids = {}
    for q in ["kubernetes pay scale?", "kubernetes pay scale?", "docker salary range?"]:
        log_answer(tmp_path, answer(q, True), "v1", 100_000)
    ids["weak"] = log_answer(tmp_path, answer("what is MLOps tooling?", False, 1, 3), "v1", 100_000)
    ids["good"] = log_answer(tmp_path, answer("what is python used for?", False), "v1", 100_000)
    ids["down"] = log_answer(tmp_path, answer("what does a data engineer earn?", False), "v1", 100_000)
    log_feedback(tmp_path, ids["down"], "down", 100_000)
    log_feedback(tmp_path, ids["good"], "up", 100_000)
    report = gap_report(list(read_log(tmp_path)), fake.embed)
    assert report["questions"] == 5 and report["distinct_questions"] == 4
    asked = {q for g in report["groups"] for q in g["questions"]}
    assert "what is python used for?" not in asked
    assert {"kubernetes pay scale?", "what is MLOps tooling?", "what does a data engineer earn?"} <= asked
    top = report["groups"][0]
    assert top["count"] >= 2 and top["outcomes"]["refused"] >= 2
    future = datetime.now(UTC) + timedelta(days=1)
    assert gap_report(list(read_log(tmp_path)), fake.embed, since=future)["groups"] == []


# --------------------------------------------------------------------------- CLI and API


def test_cli_logs_when_asked_to_and_gaps_reports(fake_cli, settings):  # noqa: F811
    result = runner.invoke(
        cli.app, ["ask", "--json", "what is the capital of Mongolia?"], obj=fake_cli["obj"]
    )
    assert result.exit_code == 0
    assert not log_path(settings.index_dir).exists()  # off by default

    real_make = fake_cli["obj"].engine_factory  # the fake engine, with the log on (CAREERQA_LOG_QUESTIONS=1)

    def make(corpus, index_dir, quiet=False, **overrides):
        engine = real_make(corpus, index_dir, quiet, **overrides)
        engine.settings = engine.settings.replace(log_questions=1)
        return engine

    logged = CliContext(engine_factory=make)
    asked = ["what is the capital of Mongolia?", "what is the capital city of Mongolia?", "how tall is K2?"]
    for q in asked:
        assert runner.invoke(cli.app, ["ask", "--json", q], obj=logged).exit_code == 0
    fake_cli["replies"][:] = ["Khan Academy has free maths courses [1]."]
    answered = runner.invoke(cli.app, ["ask", "--no-stream", "where are free maths courses?"], obj=logged)
    assert answered.exit_code == 0
    records = list(read_log(settings.index_dir))
    assert [r["outcome"] for r in records] == ["refused", "refused", "refused", "answered"]

    out = runner.invoke(cli.app, ["gaps", "--json"], obj=logged)
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["questions"] == 3
    assert sum(g["count"] for g in report["groups"]) == 3
    mongolia = next(g for g in report["groups"] if "Mongolia" in g["example"])
    assert mongolia["count"] == 2 and mongolia["outcomes"]["refused"] == 2
    text = runner.invoke(cli.app, ["gaps"], obj=logged)
    assert text.exit_code == 0 and "3 unanswered or weakly answered questions" in text.stdout
    assert runner.invoke(cli.app, ["gaps", "--since", "yesterday-ish"], obj=logged).exit_code == 2


def test_api_returns_a_log_id_and_takes_feedback(tmp_path):
    settings = make_settings(tmp_path).replace(log_questions=1, answer_cache_size=0)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(["Khan Academy is free [1]."]))
    with live_server(create_app(settings, engine=engine)) as url, httpx.Client(base_url=url) as client:
        reply = client.post("/chat", json={"question": QUESTION}, headers={"X-Forwarded-For": "203.0.113.9"})
        log_id = reply.json()["log_id"]
        assert client.post("/feedback", json={"id": log_id, "vote": "down"}).json() == {"status": "ok"}
        assert client.post("/feedback", json={"id": "nope", "vote": "down"}).status_code == 422
        assert client.post("/feedback", json={"id": log_id, "vote": "sideways"}).status_code == 422
    raw = log_path(settings.index_dir).read_text()
    assert "127.0.0.1" not in raw and "203.0.113.9" not in raw  # no client address, ever
    records = list(read_log(settings.index_dir))
    assert [r["kind"] for r in records] == ["answer", "feedback"]
    assert records[1] == {**records[1], "id": log_id, "vote": "down"}
    report = gap_report(records, FakeEmbedder().embed)
    assert report["groups"][0]["outcomes"] == {"refused": 0, "weak": 0, "down": 1}


def test_feedback_when_the_log_is_off_is_409(tmp_path):
    settings = make_settings(tmp_path)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(["Khan Academy is free [1]."]))
    with live_server(create_app(settings, engine=engine)) as url:
        reply = httpx.post(f"{url}/feedback", json={"id": "0123456789abcdef", "vote": "up"})
        assert reply.status_code == 409 and "CAREERQA_LOG_QUESTIONS" in reply.json()["error"]
        assert httpx.post(f"{url}/chat", json={"question": QUESTION}).json()["log_id"] is None


# --------------------------------------------------------------------------- the real embedder


@pytest.mark.real
def test_real_embedder_groups_off_corpus_questions_by_topic(tmp_path):
    """``careerqa gaps --json`` in its own process, with the packaged embedder, after a batch of
    off-corpus questions: one group per topic, with its count."""
    questions = [(topic, q) for topic, qs in OFF_TOPIC.items() for q in qs]
    # Asked in an interleaved order, some twice, as a day of questions would come.
    order = [questions[i] for i in (0, 3, 5, 1, 6, 4, 2, 7, 0, 5)]
    index_dir = tmp_path / "index"
    for _, q in order:
        log_answer(index_dir, answer(q, True), "v1", 100_000)
    out = subprocess.run(
        [sys.executable, "-m", "careerqa", "gaps", "--json", "--index-dir", str(index_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")},
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    groups = [set(g["questions"]) for g in report["groups"]]
    assert sorted(map(sorted, groups)) == sorted(sorted(qs) for qs in OFF_TOPIC.values()), report
    topic = {q: t for t, qs in OFF_TOPIC.items() for q in qs}
    counts = {topic[g["example"]]: g["count"] for g in report["groups"]}
    assert counts == {"visa": 4, "quantum": 4, "pension": 2}
    assert report["groups"][-1]["count"] == 2  # largest first


@pytest.mark.parametrize("args", [["gaps", "--help"], ["index", "--help"], ["serve", "--help"]])
def test_help_names_the_new_options(args):
    out = runner.invoke(cli.app, args)
    assert out.exit_code == 0
    assert {"gaps": "--since", "index": "--watch", "serve": "--watch"}[args[0]] in out.output
