"""The README's quick start and command list stay in step with the Makefile, CI and the CLI, and its
examples print what it shows."""

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
import careerqa.cli.main as cli
from careerqa.cli.main import app
from careerqa.engine.core import Engine
from careerqa.generate.generation import FakeGenerator

from .conftest import REPO, FakeEmbedder

README = (REPO / "README.md").read_text(encoding="utf-8")


def _block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
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


def test_every_documented_command_exists():
    documented = set(re.findall(r"^careerqa (\w+)", _block_after("## Using it"), re.M))
    assert documented >= {"index", "search", "ask", "chat", "eval", "serve"}
    for command in documented:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, command


def test_every_documented_eval_subcommand_exists():
    documented = set(re.findall(r"^careerqa eval ([\w-]+)", _block_after("## Evaluation"), re.M))
    assert documented == {"retrieval", "run", "calibrate", "judge-agreement"}
    for command in documented:
        result = CliRunner().invoke(app, ["eval", command, "--help"])
        assert result.exit_code == 0 and "--json" in result.output, command
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^\t\$\(BIN\)/careerqa eval retrieval ", makefile, re.M)  # the gate of `make test`


# --------------------------------------------------------------------------- the README's examples


def _examples(command: str) -> list[tuple[list[str], str]]:
    """The README's example blocks that start with ``$ careerqa COMMAND``: its arguments, and the output
    shown under it."""
    examples = []
    for block in README.split("```")[1::2]:
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


def test_readme_search_json_example_prints_the_shape_it_shows(settings, monkeypatch):
    (args, shown), *others = _examples("search")
    assert not others and "--json" in args
    monkeypatch.setattr(
        cli, "_engine", lambda *a, **k: Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]))
    )
    result = CliRunner().invoke(app, args)  # the README's command, on the small test corpus
    assert result.exit_code == 0, result.output
    printed, example = json.loads(result.stdout), json.loads(shown)
    assert len(printed["results"]) == len(example["results"]) == 1
    assert _shape(printed) == _shape(example)


# The tail of `careerqa ask` (cli._print_answer_tail): the sources of a supported answer.
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
