#!/usr/bin/env python3
"""Check the package layout: stage packages, no import cycles, small modules and functions.

    python scripts/check_layout.py          # prints each check; exit 1 if one fails
    python scripts/check_layout.py --json   # the same as JSON, for scripts
    python scripts/check_layout.py --graph  # the module import graph, one module a line

Reads ``src/careerqa`` as text (nothing is imported). Every import counts, those inside functions and
under ``TYPE_CHECKING`` too: a cycle hidden in a function is still a cycle of the design. An import
of a package's face (its ``__init__``) is followed to the module that defines the imported name.

Checks: at most 8 top-level modules and at least 6 stage subpackages; no module-level import cycle and
no cycle between the stage packages; no module over 400 lines and no function over 60; no test double
(a class named Fake*, Stub*, Dummy*, Mock*) and no machine path in the package; every ``name.py`` a
docstring or comment names exists; a README of at most 300 lines.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "careerqa"
MAX_TOP_LEVEL = 8
MIN_STAGES = 6
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_README_LINES = 300
DOUBLE = re.compile(r"^(Fake|Stub|Dummy|Mock)[A-Z_]")
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|Users)/")
PY_NAME = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*\w+\.py)\b")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules() -> dict[str, tuple[Path, ast.Module]]:
    return {module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"))) for p in
    sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, tree: ast.Module) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every careerqa import in ``tree``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "careerqa"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "careerqa":
                out += [(target, a.name) for a in node.names]
    return out


def import_graph(modules: dict[str, tuple[Path, ast.Module]]) -> dict[str, set[str]]:
    """Module -> the modules it imports, a package's face followed to the module defining the name."""
    raw = {name: _imports(name, path, tree) for name, (path, tree) in modules.items()}
    faces = {n for n, (p, _) in modules.items() if p.name == "__init__.py"}
    # what each face re-exports: name -> defining module
    exported: dict[str, dict[str, str]] = defaultdict(dict)
    for face in faces:
        for target, imported in raw[face]:
            if imported is not None:
                sub = f"{target}.{imported}"
                exported[face][imported] = sub if sub in modules else target

    def resolve(target: str, imported: str | None, seen: frozenset[str] = frozenset()) -> str | None:
        if imported is not None and f"{target}.{imported}" in modules:
            return f"{target}.{imported}"  # a submodule
        if target in faces and imported in exported[target] and target not in seen:
            return resolve(exported[target][imported], imported, seen | {target})
        if target in faces:
            return None  # a name the face defines itself (its docstring, __version__, ...)
        return target if target in modules else None

    graph: dict[str, set[str]] = {}
    for name, edges in raw.items():
        if name in faces:
            graph[name] = set()  # a face only re-exports: its arrows are its users' arrows
            continue
        graph[name] = {m for t, i in edges if (m := resolve(t, i)) and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else None


def run_checks() -> list[dict[str, object]]:
    modules = read_modules()
    graph = import_graph(modules)
    results: list[dict[str, object]] = []

    def check(name: str, ok: bool, detail: object) -> None:
        results.append({"check": name, "ok": ok, "detail": detail})

    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    check(f"at most {MAX_TOP_LEVEL} top-level modules", len(top) <= MAX_TOP_LEVEL, top)
    stages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    check(f"at least {MIN_STAGES} stage packages", len(stages) >= MIN_STAGES, stages)
    check("no module import cycle", not (found := cycles(graph)), found)
    package_graph: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            a, b = stage_of(source), stage_of(target)
            if a and b and a != b:
                package_graph[a].add(b)
    check("no cycle between stage packages", not (found := cycles(package_graph)), found)
    long_modules, long_functions, doubles, paths, dead = [], [], [], [], []
    for path, tree in modules.values():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PACKAGE)
        if (n := len(text.splitlines())) > MAX_MODULE_LINES:
            long_modules.append(f"{rel}: {n}")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:  # type: ignore[operator]
                    long_functions.append(f"{rel}:{node.lineno} {node.name}: {n}")
            if isinstance(node, ast.ClassDef) and DOUBLE.match(node.name):
                doubles.append(f"{rel}:{node.lineno} {node.name}")
        for lineno, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                paths.append(f"{rel}:{lineno}")
            for named in PY_NAME.findall(line):
                if not _exists(named, path):
                    dead.append(f"{rel}:{lineno} {named}")
    check(f"no module over {MAX_MODULE_LINES} lines", not long_modules, long_modules)
    check(f"no function over {MAX_FUNCTION_LINES} lines", not long_functions, long_functions)
    check("no test double in the package", not doubles, doubles)
    check("no machine path in the package", not paths, paths)
    check("every module a docstring names exists", not dead, dead)
    readme = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    check(f"README at most {MAX_README_LINES} lines", readme <= MAX_README_LINES, readme)
    return results


def _exists(named: str, where: Path) -> bool:
    """A ``name.py`` mentioned in ``where``: a path under the package, its own folder or the repo."""
    bases = [PACKAGE, where.parent, ROOT]
    if "/" not in named:  # a bare file name: anywhere in the package, bench/ or scripts/
        return any(True for _ in PACKAGE.rglob(named)) or any((ROOT / d / named).exists() for d in
        ("bench", "scripts"))
    return any((base / named).exists() for base in bases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--graph", action="store_true", help="print the module import graph and stop")
    args = parser.parse_args()
    if args.graph:
        for source, targets in sorted(import_graph(read_modules()).items()):
            print(source, "->", " ".join(sorted(targets)))
        return 0
    results = run_checks()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            detail = "" if r["ok"] else f": {r['detail']}"
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['check']}{detail}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
