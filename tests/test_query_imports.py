"""Each command imports what it needs and no more: the CLI runs in a subprocess that writes the names
in ``sys.modules`` when it exits, and heavy modules that the command has no use for must be absent."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import careerqa

from .conftest import REPO

# The subprocess imports the careerqa under test, wherever the current directory is.
SRC = str(Path(careerqa.__file__).resolve().parents[1])

# Run the CLI as `python -m careerqa ARGS`, and write sys.modules to OUT at exit (also after sys.exit).
HOOK = """
import atexit, json, runpy, sys
out = sys.argv[1]
sys.argv = ["careerqa", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
runpy.run_module("careerqa", run_name="__main__", alter_sys=True)
"""

TORCH = {"torch", "transformers", "sentence_transformers"}
NEVER_ON_QUERIES = TORCH | {"llama_cpp", "matplotlib", "fastapi", "uvicorn", "starlette", "pandas", "onnx"}
SEARCH_NEEDS = {"onnxruntime", "tokenizers", "faiss", "numpy"}


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[set[str], str, str]:
    """The top-level modules the command imported, its stdout and its stderr."""
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", HOOK, str(out), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p),
            **(env or {}),
        },
    )
    return {m.split(".")[0] for m in json.loads(out.read_text())}, proc.stdout, proc.stderr


def test_help_imports_no_model_library(tmp_path):
    modules, output, _ = run_cli(tmp_path, "--help")
    assert "search" in output
    assert not modules & (NEVER_ON_QUERIES | SEARCH_NEEDS - {"numpy"})


def test_a_question_sent_to_a_server_loads_no_model(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    modules, _, errors = run_cli(tmp_path, "search", "maths", "--server", f"http://127.0.0.1:{port}")
    assert "no careerqa server answers" in errors
    assert not modules & (NEVER_ON_QUERIES | SEARCH_NEEDS)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Path:
    """A copy of the corpus, indexed by `careerqa index` (the ONNX embedder, from the model cache)."""
    root = tmp_path_factory.mktemp("imports")
    shutil.copytree(REPO / "corpus", root / "corpus")
    modules, output, errors = run_cli(root, "index", "--json")
    assert json.loads(output)["written"], errors
    return root


@pytest.mark.real
def test_search_imports_only_what_search_needs(indexed):
    modules, output, errors = run_cli(indexed, "search", "do I need a PhD for an AI job?", "--json")
    assert json.loads(output)["results"], errors
    assert SEARCH_NEEDS <= modules
    assert not modules & NEVER_ON_QUERIES, modules & NEVER_ON_QUERIES


@pytest.mark.real
def test_an_faq_answer_imports_neither_torch_nor_llama_cpp(indexed):
    modules, output, errors = run_cli(
        indexed, "ask", "Do I really need a PhD to land a good AI role?", "--json"
    )
    assert json.loads(output)["route"] == "faq", errors
    assert not modules & NEVER_ON_QUERIES, modules & NEVER_ON_QUERIES


@pytest.mark.real
def test_a_generated_answer_imports_llama_cpp_but_not_torch(indexed):
    # A short prompt and a few tokens: this checks the imports, not the answer.
    env = {"CAREERQA_CONTEXT_TOKENS": "40", "CAREERQA_MAX_ANSWER_TOKENS": "4"}
    modules, output, errors = run_cli(
        indexed, "ask", "Which cloud platforms should I learn?", "--json", env=env
    )
    assert json.loads(output)["route"] == "generated", errors
    assert "llama_cpp" in modules
    assert not modules & TORCH, modules & TORCH


@pytest.mark.real
def test_the_torch_backend_is_still_there_when_asked_for(indexed):
    modules, output, errors = run_cli(
        indexed, "search", "pandas", "--json", env={"CAREERQA_EMBEDDER_BACKEND": "torch"}
    )
    assert json.loads(output)["results"], errors
    assert "torch" in modules and "onnxruntime" not in modules


def test_the_language_model_loads_only_when_an_answer_is_generated(tmp_path, monkeypatch):
    """In-process, with fakes: the engine's generator is made on the first generation, not before."""
    import careerqa.engine.models
    from careerqa.engine.core import Engine

    from .conftest import FakeEmbedder, make_settings
    from .fakes import FakeGenerator
    from .test_shortcuts import FAQ_DOC

    loads: list[str] = []

    def load_generator(settings, progress=True):
        loads.append(settings.generator)
        return FakeGenerator(lambda messages: "Linear algebra is the foundation of machine learning [1].")

    monkeypatch.setattr(careerqa.engine.models, "load_generator", load_generator)
    settings = make_settings(tmp_path, {"faq.md": FAQ_DOC}).replace(faq_min_score=0.9)
    engine = Engine(settings, embedder=FakeEmbedder())
    assert engine.ask("Do I need a PhD for an AI engineering job?").route == "faq"
    assert engine.ask("Do I need a PhD for an AI engineering job?").route == "cache"
    assert engine.search("cloud certification")
    assert loads == []
    assert engine.ask("which maths is the foundation of machine learning?").route == "generated"
    assert engine.ask("what does kubernetes schedule across a cluster?").route == "generated"
    assert loads == [settings.generator]  # once
