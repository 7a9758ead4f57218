"""The README's quick start and command list stay in step with the Makefile, CI and the CLI."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from careerqa.cli import app

from .conftest import REPO

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
