"""The README's quick start and command list, and the manual's and the evaluation's, stay in step with
the Makefile, CI and the CLI; the examples of README.md and docs/*.md print what they show; and every
relative link in them leads to a file that exists."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import careerqa
from careerqa.cli import app
from careerqa.cli.context import CliContext
from careerqa.engine.core import Engine

from .conftest import REPO, FakeEmbedder
from .fakes import FakeGenerator

README = (REPO / "README.md").read_text(encoding="utf-8")
MANUAL = (REPO / "docs" / "manual.md").read_text(encoding="utf-8")
EVALUATION = (REPO / "docs" / "evaluation.md").read_text(encoding="utf-8")
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _block_after(heading: str, text: str = README) -> str:
    """The first code block after the line ``heading`` in ``text``."""
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split("```", 2)[1]


def test_quick_start_is_two_commands_that_the_makefile_defines():
    commands = [line.split("#")[0].strip() for line in _block_after("## Quick start").splitlines()]
    commands = [c for c in commands if c]
    assert commands == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), target


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


@pytest.mark.parametrize(
    ("text", "heading"), [(README, "## Using it"), (MANUAL, "## Commands")], ids=["README", "manual"]
)
def test_every_documented_command_exists(text, heading):
    documented = set(re.findall(r"^careerqa (\w+)", _block_after(heading, text), re.M))
    assert documented >= {"index", "search", "ask", "chat", "eval", "serve"}
    for command in documented:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, command


def test_every_documented_eval_subcommand_exists():
    block = _block_after("## Running the evals", EVALUATION)
    documented = set(re.findall(r"^careerqa eval ([\w-]+)", block, re.M))
    assert documented == {"retrieval", "run", "calibrate", "judge-agreement"}
    for command in documented:
        result = CliRunner().invoke(app, ["eval", command, "--help"])
        assert result.exit_code == 0 and "--json" in result.output, command
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^\t\$\(BIN\)/careerqa eval retrieval ", makefile, re.M)  # the gate of `make test`


# --------------------------------------------------------------------------- the documents' examples


def _examples(command: str) -> list[tuple[list[str], str]]:
    """The example blocks of README.md and docs/*.md that start with ``$ careerqa COMMAND``: its
    arguments, and the output shown under it."""
    examples = []
    for document in DOCUMENTS:
        for block in document.read_text(encoding="utf-8").split("```")[1::2]:
            first, _, output = block.strip("\n").partition("\n")
            if first.startswith(f"$ careerqa {command} "):
                examples.append((shlex.split(first[2:])[1:], output))
    return examples


def _shape(value: object) -> object:
    """What a JSON value looks like, not what it holds: the keys, in order, and the kinds of values."""
    if isinstance(value, dict):
        return [(key, _shape(v)) for key, v in value.items()]
    if isinstance(value, list):
        return ["list", *sorted({repr(_shape(v)) for v in value})]
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_manual_search_json_example_prints_the_shape_it_shows(settings):
    (args, shown), *others = _examples("search")
    assert not others and "--json" in args

    def make(*_, **__):
        return Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]))

    obj = CliContext(engine_factory=make)
    result = CliRunner().invoke(app, args, obj=obj)  # the manual's command, on the small test corpus
    assert result.exit_code == 0, result.output
    printed, example = json.loads(result.stdout), json.loads(shown)
    assert len(printed["results"]) == len(example["results"]) == 1
    assert _shape(printed) == _shape(example)


# The tail of `careerqa ask` (cli/ask_cmd.py, _print_answer): the sources of a supported answer.
SOURCES = re.compile(
    r"\n\nSources \((?P<supported>\d+)/(?P<total>\d+) sentences supported\):\n"
    r"(?P<cited>(?:  \[\d+\] \S.*\n      “.+”\n)+)$"
)


def _ask_shape(output: str) -> list[int]:
    """The citation numbers of an ``ask`` output shaped as the README shows it (answer, then sources)."""
    match = SOURCES.search(output.rstrip("\n") + "\n")
    assert match is not None, output
    answer = output[: match.start()].strip()
    assert answer and int(match["supported"]) <= int(match["total"])
    return [int(n) for n in re.findall(r"^  \[(\d+)\]", match["cited"], re.M)]


def test_readme_ask_example_has_the_shape_of_an_answer_with_sources():
    (args, shown), *others = _examples("ask")
    assert not others and args[0] == "ask" and args[-1].endswith("?")
    numbers = _ask_shape(shown)
    assert numbers == list(range(1, len(numbers) + 1)) and numbers


@pytest.mark.real
def test_readme_ask_example_runs_with_the_packaged_models(tmp_path):
    ((args, _),) = _examples("ask")
    shutil.copytree(REPO / "corpus", tmp_path / "corpus")  # the README's command, in a copy of the repo
    src = str(Path(careerqa.__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-m", "careerqa", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": src},
    )
    assert proc.returncode == 0, proc.stderr
    numbers = _ask_shape(proc.stdout)
    assert numbers == list(range(1, len(numbers) + 1)) and numbers


# --------------------------------------------------------------------------- links between the documents

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without its code blocks and code spans, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text (lower case, punctuation dropped, spaces
    to hyphens, a number after a repeated one)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _prose(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n, anchor = 0, slug
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_anchors_follow_github_rules():
    text = "# A title\n## Scaling out: Qdrant, replicas\n## llama.cpp is built (once)\n## A title\n"
    assert _anchors(text) == {"a-title", "scaling-out-qdrant-replicas", "llamacpp-is-built-once", "a-title-1"}
    assert _anchors("```\n# a comment in a code block\n```\n") == set()


PY_NAME = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*\w+\.py)\b")


def test_every_python_file_the_documents_name_exists():
    """A ``name.py`` is a module of the package (``ingest/corpus.py``) or a file of the repository
    (``bench/bench_kv.py``); a bare name is looked for in the package, bench/, scripts/ and tests/."""
    package = REPO / "src" / "careerqa"
    missing = []
    for document in DOCUMENTS:
        for named in PY_NAME.findall(document.read_text(encoding="utf-8")):
            if "/" in named:
                found = (package / named).exists() or (REPO / named).exists()
            else:
                folders = [REPO / d for d in ("bench", "scripts", "tests")]
                found = any(package.rglob(named)) or any((f / named).exists() for f in folders)
            if not found:
                missing.append(f"{document.name}: {named}")
    assert not missing, missing


def test_every_relative_link_leads_to_a_file_that_exists():
    assert {p.name for p in DOCUMENTS} >= {"README.md", "index.md", "manual.md", "design.md", "evaluation.md"}
    broken = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        links = LINK.findall(_prose(text))
        assert links, f"{document.name} links to nothing"
        for link in links:
            if re.match(r"^[a-z][a-z+.-]*:", link):
                continue  # http:, https:, mailto:
            path, _, anchor = link.partition("#")
            target = (document.parent / path).resolve() if path else document
            if not target.exists():
                broken.append(f"{document.name}: {link} (no such file)")
            elif target.suffix == ".md" and anchor and anchor not in _anchors(target.read_text("utf-8")):
                broken.append(f"{document.name}: {link} (no such heading)")
    assert not broken, broken
