"""The retrieval regression gate: thresholds in ``eval/gate.json`` checked against a run's summary.

A gate file is ``{"set": "eval/questions.jsonl", "split": "all", "min": {metric: value, ...},
"max": {metric: value, ...}}``; ``make test`` runs ``careerqa eval retrieval`` and fails when it fails.
Not handled here: running the eval (``evals/scoring.py``) or printing the verdict (``cli/eval_cmds.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careerqa.errors import BadInput
from careerqa.evals.scoring import Selection

DEFAULT_GATE = Path("eval/gate.json")


@dataclass(frozen=True)
class GateCheck:
    """The gate's verdict on one run: ``result`` is "passed", "failed", "not checked" or
    "skipped: <why>"; ``failures`` names every missed threshold."""

    path: Path
    result: str
    failures: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "failures": list(self.failures)}


def load_gate(path: Path) -> dict[str, Any]:
    try:
        gate = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"gate file {path} does not exist") from None
    except ValueError as exc:
        raise BadInput(f"gate file {path} is not valid JSON ({exc})") from exc
    if not isinstance(gate, dict) or not isinstance(gate.get("min", {}), dict):
        raise BadInput(f'gate file {path} needs a "min" object of metric thresholds')
    return gate


def gate_failures(summary: dict[str, Any], gate: dict[str, Any]) -> list[str]:
    """The thresholds ``summary`` misses; metrics absent from the summary (not measured) are skipped."""
    failures = []
    for metric, low in gate.get("min", {}).items():
        value = summary.get(metric)
        if value is not None and value < low:
            failures.append(f"{metric} {value} < {low}")
    for metric, high in gate.get("max", {}).items():
        value = summary.get(metric)
        if value is not None and value > high:
            failures.append(f"{metric} {value} > {high}")
    return failures


def check_gate(summary: dict[str, Any], selection: Selection, path: Path | None = None) -> GateCheck:
    """Check ``summary`` against the thresholds in ``path`` (default ``DEFAULT_GATE``, not checked when
    that file is absent; a ``path`` given must exist). The thresholds hold for the whole of one set and
    split, so a run of another set or split, or of a subset, is skipped rather than failed."""
    gate_path = path or DEFAULT_GATE
    if path is None and not gate_path.exists():
        return GateCheck(gate_path, "not checked")
    thresholds = load_gate(gate_path)
    same_set = Path(thresholds.get("set", selection.path.name)).name == selection.path.name
    if not (same_set and thresholds.get("split", "all") == selection.split and selection.whole):
        note = f"skipped: {gate_path} holds thresholds for the whole of {thresholds.get('set')}"
        return GateCheck(gate_path, note)
    failures = tuple(gate_failures(summary, thresholds))
    return GateCheck(gate_path, "failed" if failures else "passed", failures)
