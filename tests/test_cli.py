"""The command line, with fakes behind it (CliRunner), and its help and error handling."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.cli.context import CliContext
from careerqa.engine.core import Engine

from .conftest import FakeEmbedder
from .fakes import FakeGenerator

runner = CliRunner()


@pytest.fixture
def fake_cli(settings):
    """Every command run with ``obj=fake_cli["obj"]`` gets an engine with the fake embedder and a
    scripted generator."""
    state: dict = {"replies": ["Khan Academy has free maths courses [1]."] * 10}

    def make(corpus, index_dir, quiet=False, **overrides):
        s = settings.replace(
            **{k: v for k, v in {"corpus_dir": corpus, "index_dir": index_dir, **overrides}.items() if v}
        )
        state["engine"] = Engine(s, embedder=FakeEmbedder(), generator=FakeGenerator(state["replies"]))
        return state["engine"]

    state["obj"] = CliContext(engine_factory=make)
    return state


def test_help_is_instant_and_lists_commands():
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "careerqa", "--help"], capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - t
    assert out.returncode == 0
    for command in ("index", "search", "ask", "chat", "eval", "serve"):
        assert command in out.stdout
    assert elapsed < 5, f"--help took {elapsed:.1f}s: a heavy import is not lazy"
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, careerqa.cli; print(sorted(m for m in sys.modules if m in "
            "{'torch','faiss','sentence_transformers','llama_cpp','transformers'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["index", "search", "ask", "chat", "eval", "serve"])
def test_every_command_has_help(command):
    result = runner.invoke(cli.app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_index_json_then_up_to_date(fake_cli):
    result = runner.invoke(cli.app, ["index", "--json"], obj=fake_cli["obj"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["chunks_embedded"] == report["chunk_count"] > 0
    again = runner.invoke(cli.app, ["index"], obj=fake_cli["obj"])
    assert "index is up to date" in again.stdout and "0 embedded" in again.stdout


def test_search_json_shape(fake_cli):
    result = runner.invoke(
        cli.app, ["search", "Khan Academy maths", "--json", "--top-k", "2"], obj=fake_cli["obj"]
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert len(results) == 2
    assert {"chunk_id", "source", "section", "text", "score"} <= set(results[0])
    assert results[0]["source"] == "maths.md"


def test_ask_streams_then_lists_sources(fake_cli):
    result = runner.invoke(cli.app, ["ask", "free maths courses Khan Academy?"], obj=fake_cli["obj"])
    assert result.exit_code == 0, result.output
    assert "Khan Academy has free maths courses [1]." in result.stdout
    assert "Sources (1/1 sentences supported)" in result.stdout and "[1] maths.md" in result.stdout


def test_ask_json_shape(fake_cli):
    result = runner.invoke(
        cli.app, ["ask", "free maths courses Khan Academy?", "--json"], obj=fake_cli["obj"]
    )
    payload = json.loads(result.stdout)
    assert set(payload) >= {"answer", "abstained", "citations", "retrieved", "timings_ms"}
    assert payload["citations"][0]["n"] == 1 and payload["citations"][0]["source"] == "maths.md"
    assert {"n", "chunk_id", "source", "section", "text", "score"} <= set(payload["retrieved"][0])
    assert payload["timings_ms"]["total"] >= payload["timings_ms"]["generate"]


def test_ask_off_topic_abstains(fake_cli):
    result = runner.invoke(cli.app, ["ask", "zebra quasar marmalade", "--no-stream"], obj=fake_cli["obj"])
    assert result.exit_code == 0
    assert "does not contain the answer" in result.stdout and "Sources" not in result.stdout


@pytest.mark.parametrize("args", [["ask", "   "], ["search", ""], ["search", "x", "--top-k", "0"]])
def test_bad_input_exits_non_zero_with_message(fake_cli, args):
    result = runner.invoke(cli.app, args, obj=fake_cli["obj"])
    assert result.exit_code == 2
    assert "error" in result.output.lower() or "invalid" in result.output.lower()


def test_missing_corpus_is_a_clear_error(fake_cli, tmp_path):
    result = runner.invoke(cli.app, ["index", "--corpus", str(tmp_path / "nope")], obj=fake_cli["obj"])
    assert result.exit_code == 1
    assert "error:" in result.stderr and "nope" in result.stderr


def test_chat_rewrites_follow_up(fake_cli):
    fake_cli["replies"] = [
        "Kubernetes schedules containers across a cluster [1].",
        "What free courses help with maths?",  # the rewrite of the follow-up
        "Khan Academy has free maths courses [1].",
    ]
    result = runner.invoke(
        cli.app,
        ["chat"],
        input="what does kubernetes schedule?\nand what about the maths?\n\n",
        obj=fake_cli["obj"],
    )
    assert result.exit_code == 0, result.output
    assert "Kubernetes schedules containers" in result.stdout
    assert "understood as: What free courses help with maths?" in result.stdout
    assert "Khan Academy" in result.stdout


def test_ask_shows_verified_answer_when_citations_were_fixed(fake_cli):
    fake_cli["replies"] = ["Khan Academy and MIT OpenCourseWare have free maths courses."] * 2
    result = runner.invoke(cli.app, ["ask", "free maths courses Khan Academy?"], obj=fake_cli["obj"])
    assert result.exit_code == 0, result.output
    assert "Verified answer (citations checked):" in result.stdout
    assert "have free maths courses [1]." in result.stdout


def test_ask_says_when_verification_rejects_a_streamed_answer(fake_cli):
    fake_cli["replies"] = ["Bananas are yellow and grow on tall plants in warm tropical countries [1]."] * 2
    make = fake_cli["obj"].engine_factory  # without the quote, which would answer from the Khan Academy line
    obj = CliContext(engine_factory=lambda *args, **kw: make(*args, **kw, rules_off="quote_fallback"))
    result = runner.invoke(cli.app, ["ask", "free maths courses Khan Academy?"], obj=obj)
    assert result.exit_code == 0, result.output
    assert "Verified answer (no sentence is supported by the passages):" in result.stdout
    assert result.stdout.rstrip().endswith("does not contain the answer to this question.")


def test_version():
    from importlib.metadata import version

    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"careerqa {version('careerqa')}"


def test_an_unknown_choice_setting_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("CAREERQA_CONTEXT_MODE", "sentence")  # a typo of "sentences"
    result = CliRunner().invoke(cli.app, ["search", "maths"])
    assert result.exit_code == 2
    assert "CAREERQA_CONTEXT_MODE='sentence'" in result.output and "passages, sentences" in result.output
