"""The package layout stays readable: scripts/check_layout.py's checks hold, and the checker itself
finds what it is meant to find."""

from __future__ import annotations

import ast
import importlib.util
import sys

import pytest

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("check_layout", REPO / "scripts" / "check_layout.py")
assert _spec and _spec.loader
check_layout = importlib.util.module_from_spec(_spec)
sys.modules["check_layout"] = check_layout
_spec.loader.exec_module(check_layout)


@pytest.mark.parametrize("result", check_layout.run_checks(), ids=lambda r: str(r["check"]))
def test_layout_check(result):
    assert result["ok"], result["detail"]


def test_cycles_are_found_through_function_level_imports_and_faces():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert check_layout.cycles(graph) == [["a", "b", "c"]]
    assert check_layout.cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_reads_lazy_imports_and_follows_faces(tmp_path, monkeypatch):
    package = tmp_path / "src" / "careerqa"
    (package / "stage").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "stage" / "__init__.py").write_text("from careerqa.stage.inner import Thing\n")
    inner = "def f():\n    from careerqa import top\n\nclass Thing: ...\n"
    (package / "stage" / "inner.py").write_text(inner)
    (package / "top.py").write_text("from careerqa.stage import Thing\n")
    monkeypatch.setattr(check_layout, "PACKAGE", package)
    graph = check_layout.import_graph(check_layout.read_modules())
    assert graph["careerqa.top"] == {"careerqa.stage.inner"}  # through the face
    assert graph["careerqa.stage.inner"] == {"careerqa.top"}  # the import inside a function
    assert check_layout.cycles(graph) == [["careerqa.stage.inner", "careerqa.top"]]


def test_long_functions_and_test_doubles_are_reported(tmp_path, monkeypatch):
    package = tmp_path / "src" / "careerqa"
    package.mkdir(parents=True)
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (package / "__init__.py").write_text("")
    source = f'"""See ``missing.py``."""\n\ndef long():\n{body}\n\nclass FakeThing: ...\n'
    (package / "big.py").write_text(source)
    monkeypatch.setattr(check_layout, "PACKAGE", package)
    monkeypatch.setattr(check_layout, "ROOT", tmp_path)
    (tmp_path / "README.md").write_text("front page\n")
    failed = {r["check"]: r["detail"] for r in check_layout.run_checks() if not r["ok"]}
    assert failed["no function over 60 lines"] == ["big.py:3 long: 62"]
    assert failed["no test double in the package"] == ["big.py:66 FakeThing"]
    assert failed["every module a docstring names exists"] == ["big.py:1 missing.py"]
    assert ast.parse((package / "big.py").read_text())  # the fixture itself is valid Python
