"""``careerqa eval retrieval | run | calibrate | judge-agreement`` end to end with the fake embedder and a
scripted generator."""

from __future__ import annotations

import json
import re
import sys

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.cli.context import CliContext
from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.evals.judge import JUDGE_PROMPT

from .conftest import FakeEmbedder
from .fakes import FakeGenerator

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
def eval_obj(settings) -> CliContext:
    """Run the commands with ``obj=eval_obj``: the fake embedder, and a generator that judges "yes"."""

    def reply(messages):
        if messages[0]["content"] == JUDGE_PROMPT:
            return "yes"
        if "Rewrite" in messages[0]["content"]:
            return "what packages a model with its dependencies?"
        return "Khan Academy has free maths courses [1]."

    def make(corpus, index_dir, quiet=False, **overrides):
        return Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(reply))

    return CliContext(engine_factory=make)


@pytest.fixture
def eval_cli(tmp_path):
    """A folder with the eval set (qs.jsonl) and the judge pairs (pairs.jsonl)."""
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


def test_retrieval_only_json_passes_its_gate_and_writes_the_report(eval_cli, eval_obj):
    out = eval_cli / "results"
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--json", "--out", str(out)]
    result = runner.invoke(cli.app, [*args, "--gate", _gate(eval_cli, **{"hit@5": 0.5})], obj=eval_obj)
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


def test_gate_failure_exits_non_zero_with_the_missed_threshold(eval_cli, eval_obj):
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--out", str(eval_cli / "r")]
    result = runner.invoke(cli.app, [*args, "--gate", _gate(eval_cli, mrr=1.01)], obj=eval_obj)
    assert result.exit_code == 1
    assert "eval gate failed" in result.stderr and "mrr 1.0 < 1.01" in result.stderr


def test_gate_is_skipped_for_a_subset(eval_cli, eval_obj):
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--split", "test", "--json"]
    result = runner.invoke(
        cli.app, [*args, "--out", str(eval_cli / "r"), "--gate", _gate(eval_cli, mrr=1.01)], obj=eval_obj
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gate"]["result"].startswith("skipped")


def test_full_eval_judges_answers_and_reports_agreement(eval_cli, eval_obj):
    out = eval_cli / "full"
    args = [
        "eval",
        "run",
        "--set",
        str(eval_cli / "qs.jsonl"),
        "--judge-pairs",
        str(eval_cli / "pairs.jsonl"),
    ]
    result = runner.invoke(cli.app, [*args, "--out", str(out), "--name", "run", "--no-gate"], obj=eval_obj)
    assert result.exit_code == 0, result.output
    assert "citation_recall" in result.stdout and "judge agreement" in result.stdout
    report = json.loads((out / "run.json").read_text())
    assert report["judge"]["accuracy"] == 1.0 and report["meta"]["mode"] == "full"
    assert report["summary"]["key_fact_recall"] is not None
    assert "## Support judge" in (out / "run.md").read_text()


def test_per_category_sample_without_agreement_skips_the_gate(eval_cli, eval_obj):
    args = ["eval", "run", "--set", str(eval_cli / "qs.jsonl"), "--per-category", "1", "--skip-agreement"]
    args.append("--json")
    result = runner.invoke(
        cli.app, [*args, "--out", str(eval_cli / "s"), "--gate", _gate(eval_cli, mrr=1.01)], obj=eval_obj
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["meta"]["name"] == "qs-1per-category-qwen2.5-coder-1.5b" and "judge" not in data
    assert data["summary"]["questions"] == 3 and data["gate"]["result"].startswith("skipped")


@pytest.mark.parametrize("command", ["retrieval", "run", "calibrate"])
def test_bad_split_is_a_usage_error(eval_cli, eval_obj, command):
    result = runner.invoke(
        cli.app, ["eval", command, "--set", str(eval_cli / "qs.jsonl"), "--split", "train"], obj=eval_obj
    )
    assert result.exit_code == 2 and "--split" in result.stderr


def test_gate_failure_names_every_missed_metric(eval_cli, eval_obj):
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--json", "--out", str(eval_cli / "r")]
    result = runner.invoke(
        cli.app, [*args, "--gate", _gate(eval_cli, mrr=1.01, **{"hit@1": 1.5})], obj=eval_obj
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["gate"] == {
        "result": "failed",
        "failures": ["mrr 1.0 < 1.01", "hit@1 1.0 < 1.5"],
    }
    assert "mrr 1.0 < 1.01; hit@1 1.0 < 1.5" in result.stderr


def test_no_gate_does_not_check_the_thresholds(eval_cli, eval_obj):
    args = [
        "eval",
        "retrieval",
        "--set",
        str(eval_cli / "qs.jsonl"),
        "--out",
        str(eval_cli / "r"),
        "--no-gate",
    ]
    result = runner.invoke(cli.app, [*args, "--gate", _gate(eval_cli, mrr=1.01)], obj=eval_obj)
    assert result.exit_code == 0, result.output
    assert "): not checked" in result.stdout


def test_calibrate_suggests_a_threshold(eval_cli, eval_obj):
    args = ["eval", "calibrate", "--set", str(eval_cli / "qs.jsonl")]
    data = json.loads(runner.invoke(cli.app, [*args, "--json"], obj=eval_obj).stdout)
    assert data["off_topic"] == 1 and set(data["scores"]["answerable"]) == {"a1", "a2"}
    assert data["suggested_min_dense_score"] == round(data["answerable_min"] - 0.05, 2)
    text = runner.invoke(cli.app, args, obj=eval_obj)
    assert text.exit_code == 0 and "suggested_min_dense_score" in text.stdout and "a1" not in text.stdout


def test_judge_agreement_alone(eval_cli, eval_obj):
    args = ["eval", "judge-agreement", "--judge-pairs", str(eval_cli / "pairs.jsonl")]
    data = json.loads(runner.invoke(cli.app, [*args, "--json"], obj=eval_obj).stdout)
    assert data["pairs"] == 1 and data["accuracy"] == 1.0
    missing = runner.invoke(
        cli.app, ["eval", "judge-agreement", "--judge-pairs", str(eval_cli / "none")], obj=eval_obj
    )
    assert missing.exit_code == 2 and "do not exist" in missing.stderr


SCORED = {"--set", "--split", "--limit", "--per-category", "--out", "--name", "--gate", "--no-gate"}
OPTIONS = {
    "retrieval": SCORED,
    "run": SCORED | {"--judge-pairs", "--skip-agreement"},
    "calibrate": {"--set", "--split", "--limit", "--per-category"},
    "judge-agreement": {"--judge-pairs"},
}
EVERY_OPTION = set().union(*OPTIONS.values())


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_each_subcommand_has_help_json_and_only_its_options(command):
    result = runner.invoke(cli.app, ["eval", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    shown = set(re.findall(r"(--[a-z-]+)", result.output))
    assert "--json" in shown and OPTIONS[command] <= shown
    assert not (EVERY_OPTION - OPTIONS[command]) & shown
    assert "--retrieval-only" not in shown and "--judge-agreement" not in shown


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["--retrieval-only", "--out", "x"], "careerqa eval retrieval"),
        (["--split", "test", "--calibrate"], "careerqa eval calibrate"),
        (["--judge-agreement", "--json"], "careerqa eval judge-agreement"),
        (["--split", "test", "--skip-agreement"], "careerqa eval run"),
    ],
)
def test_the_old_single_command_names_its_subcommand(eval_cli, eval_obj, old, new):
    result = runner.invoke(cli.app, ["eval", *old], obj=eval_obj)
    assert result.exit_code == 2
    assert f"is now `{new}`" in result.stderr


def test_without_matplotlib_the_report_has_no_chart_and_says_so(eval_cli, eval_obj, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = eval_cli / "nochart"
    args = ["eval", "retrieval", "--set", str(eval_cli / "qs.jsonl"), "--out", str(out), "--json"]
    result = runner.invoke(cli.app, [*args, "--gate", _gate(eval_cli, **{"hit@5": 0.5})], obj=eval_obj)
    assert result.exit_code == 0, result.output
    assert [f.rsplit("/", 1)[1] for f in json.loads(result.stdout)["files"]] == [
        "qs-retrieval.json",
        "qs-retrieval.md",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["qs-retrieval.json", "qs-retrieval.md"]
    markdown = (out / "qs-retrieval.md").read_text()
    assert "No chart: matplotlib is not installed; pip install 'careerqa[chart]'" in markdown
    assert ".png" not in markdown
    assert "careerqa[chart]" in result.stderr


def test_eval_corpora_scores_every_corpus_side_by_side(tmp_path):
    """The seed and each eval/corpora/* folder get their own index; the table has a column each and
    one pooled; the JSON keeps every record with its corpus."""
    from .conftest import DOCS

    root = tmp_path / "repo"
    (root / "corpus").mkdir(parents=True)
    (root / "corpus" / "maths.md").write_text(DOCS["maths.md"], encoding="utf-8")
    (root / "eval").mkdir()
    (root / "eval" / "questions.jsonl").write_text(json.dumps(QUESTIONS[0]) + "\n", encoding="utf-8")
    other = root / "eval" / "corpora" / "cloud"
    (other / "corpus").mkdir(parents=True)
    (other / "corpus" / "cloud.md").write_text(DOCS["cloud.md"], encoding="utf-8")
    cloud_q = {
        **QUESTIONS[0],
        "id": "c1",
        "question": "what schedules containers?",
        "evidence": ["Kubernetes"],
    }
    (other / "questions.jsonl").write_text(json.dumps(cloud_q | {"facts": [["Kubernetes"]]}) + "\n")
    (root / "eval" / "corpora" / "empty").mkdir()  # no questions: not a corpus
    built = []

    def factory(corpus, index_dir, quiet=False, **kw):
        built.append((corpus.name if corpus else None, index_dir.name))
        settings = Settings(corpus_dir=corpus, index_dir=index_dir, cache_dir=tmp_path / "cache")
        return Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: "unused"))

    out = tmp_path / "corpora.json"
    args = ["eval", "corpora", "--root", str(root), "--index-root", str(tmp_path / "idx"), "--out", str(out)]
    result = runner.invoke(cli.app, args, obj=CliContext(engine_factory=factory))
    assert result.exit_code == 0, result.output
    assert built == [("corpus", "seed"), ("corpus", "cloud")]
    header = next(line for line in result.stdout.splitlines() if line.startswith("| |"))
    assert header == "| | seed | cloud | pooled |"
    assert "| retrieval hit@5 | 1.000 | 1.000 | 1.000 |" in result.stdout
    report = json.loads(out.read_text())
    assert [(r["corpus"], r["id"]) for r in report["records"]] == [("seed", "a1"), ("cloud", "c1")]
    assert report["summary"]["pooled"]["questions"] == 2
    bad = runner.invoke(
        cli.app, ["eval", "corpora", "--split", "both", "--root", str(root)], obj=CliContext(factory)
    )
    assert bad.exit_code == 2 and "dev, test or all" in bad.output
