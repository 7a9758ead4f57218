"""``careerqa eval retrieval | run | calibrate | judge-agreement`` end to end with the fake embedder and a
scripted generator."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.engine import Engine
from careerqa.generation import FakeGenerator
from careerqa.judge import JUDGE_PROMPT

from .conftest import FakeEmbedder

runner = CliRunner()
QUESTIONS = [
    {
        "id": "a1",
        "split": "dev",
        "category": "direct",
        "question": "where can I learn maths for free?",
        "answerable": True,
        "evidence": ["Khan Academy"],
        "facts": [["Khan Academy"]],
    },
    {
        "id": "a2",
        "split": "test",
        "category": "follow-up",
        "question": "and what packages a model?",
        "answerable": True,
        "history": [["what schedules containers?", "Kubernetes [1]."]],
        "evidence": ["Docker packages"],
        "facts": [["Docker"]],
    },
    {
        "id": "u1",
        "split": "test",
        "category": "off-topic",
        "question": "capital of Australia?",
        "answerable": False,
    },
]


@pytest.fixture
def eval_cli(settings, monkeypatch, tmp_path):
    def reply(messages):
        if messages[0]["content"] == JUDGE_PROMPT:
            return "yes"
        if "Rewrite" in messages[0]["content"]:
            return "what packages a model with its dependencies?"
        return "Khan Academy has free maths courses [1]."

    def make(corpus, index_dir, quiet=False, **overrides):
        return Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(reply))

    monkeypatch.setattr(cli, "_engine", make)
    qs = tmp_path / "qs.jsonl"
    qs.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    pairs = tmp_path / "pairs.jsonl"
    text = "Docker packages apps."
    pair = {"id": "j1", "passage": text, "claim": text, "supported": True}
    pairs.write_text(json.dumps(pair) + "\n")
    return tmp_path


def _gate(root, **thresholds):
    path = root / "gate.json"
    path.write_text(json.dumps({"set": "x/qs.jsonl", "split": "all", "min": thresholds}))
    return str(path)


def test_retrieval_only_json_passes_its_gate_and_writes_the_report(eval_cli):
    out = eval_cli / "results"
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--json", "--out", str(out)]
    result = runner.invoke(cli.app, [*args, "--gate", _gate(eval_cli, **{"hit@5": 0.5})])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["gate"] == {"result": "passed", "failures": []}
    assert data["summary"]["hit@5"] == 1.0 and "citation_recall" not in data["summary"]
    assert data["meta"]["retrieval_queries"] == {
        "a2": "what schedules containers? and what packages a model?"
    }
    assert sorted(p.name for p in out.iterdir()) == [
        "qs-retrieval.json",
        "qs-retrieval.md",
        "qs-retrieval.png",
    ]


def test_gate_failure_exits_non_zero_with_the_missed_threshold(eval_cli):
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--out", str(eval_cli / "r")]
    result = runner.invoke(cli.app, [*args, "--gate", _gate(eval_cli, mrr=1.01)])
    assert result.exit_code == 1
    assert "eval gate failed" in result.stderr and "mrr 1.0 < 1.01" in result.stderr


def test_gate_is_skipped_for_a_subset(eval_cli):
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--split", "test", "--json"]
    result = runner.invoke(
        cli.app, [*args, "--out", str(eval_cli / "r"), "--gate", _gate(eval_cli, mrr=1.01)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gate"]["result"].startswith("skipped")


def test_full_eval_judges_answers_and_reports_agreement(eval_cli):
    out = eval_cli / "full"
    args = ["eval", "run", "--set", str(eval_cli / "qs.jsonl"), "--judge-pairs", str(eval_cli / "pairs.jsonl")]
    result = runner.invoke(cli.app, [*args, "--out", str(out), "--name", "run", "--no-gate"])
    assert result.exit_code == 0, result.output
    assert "citation_recall" in result.stdout and "judge agreement" in result.stdout
    report = json.loads((out / "run.json").read_text())
    assert report["judge"]["accuracy"] == 1.0 and report["meta"]["mode"] == "full"
    assert report["summary"]["key_fact_recall"] is not None
    assert "## Support judge" in (out / "run.md").read_text()


def test_per_category_sample_without_agreement_skips_the_gate(eval_cli):
    args = ["eval", "run", "--set", str(eval_cli / "qs.jsonl"), "--per-category", "1", "--skip-agreement"]
    args.append("--json")
    result = runner.invoke(
        cli.app, [*args, "--out", str(eval_cli / "s"), "--gate", _gate(eval_cli, mrr=1.01)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["meta"]["name"] == "qs-1per-category-qwen2.5-coder-1.5b" and "judge" not in data
    assert data["summary"]["questions"] == 3 and data["gate"]["result"].startswith("skipped")


@pytest.mark.parametrize("command", ["retrieval", "run", "calibrate"])
def test_bad_split_is_a_usage_error(eval_cli, command):
    result = runner.invoke(cli.app, ["eval", command, "--set", str(eval_cli / "qs.jsonl"), "--split", "train"])
    assert result.exit_code == 2 and "--split" in result.stderr
