"""``careerqa eval corpora``: every eval corpus scored side by side, and pooled.

The corpora are the seed (``corpus/`` with ``eval/questions.jsonl``) and each folder of
``eval/corpora/`` holding a ``corpus/`` and a ``questions.jsonl`` (documentation nobody here wrote:
``eval/corpora/README.md``). Each gets its own index under ``--index-root`` (built on first use, kept
for the next run). Retrieval is always scored; with ``--answers`` every question is answered by the
language model too (no judge: key facts, cited evidence, refusals, markers, latency, and how often
each named rule fired). The table has one column per corpus and one for all of them pooled (each
question counts once); the JSON (``--out``) holds every record.

Not handled here: scoring (``evals/scoring.py``), the judged run on one corpus (``eval run``).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from careerqa.cli.context import CliContext, err, user_errors
from careerqa.cli.options import JsonOpt

if TYPE_CHECKING:
    from careerqa.engine.core import Engine
    from careerqa.evals.scoring import EvalItem
    from careerqa.types import Answer

ROWS = (
    ("questions", "questions"),
    ("hit@5", "retrieval hit@5"),
    ("mrr", "retrieval MRR"),
    ("key_fact_recall", "key facts named"),
    ("evidence_cited", "gold passage cited"),
    ("false_abstention_rate", "false refusals"),
    ("abstention_rate", "unanswerable refused"),
    ("dangling_marker_rate", "dangling markers"),
    ("latency_ms_p50", "answer p50 (ms)"),
)


def eval_sets(root: Path) -> dict[str, tuple[Path, Path]]:
    """``name -> (corpus folder, question file)`` for the seed and each corpus of ``eval/corpora/``."""
    found = {"seed": (root / "corpus", root / "eval" / "questions.jsonl")}
    folder = root / "eval" / "corpora"
    for sub in sorted(folder.iterdir()) if folder.is_dir() else []:
        if (sub / "corpus").is_dir() and (sub / "questions.jsonl").is_file():
            found[sub.name] = (sub / "corpus", sub / "questions.jsonl")
    return found


def corpora(
    ctx: typer.Context,
    split: Annotated[str, typer.Option("--split", help="dev, test or all.")] = "dev",
    answers: Annotated[
        bool, typer.Option("--answers", help="Answer with the language model too (long).")
    ] = False,
    index_root: Annotated[
        Path | None,
        typer.Option("--index-root", help="One index per corpus here [default: <cache>/eval-indexes]."),
    ] = None,
    root: Annotated[Path, typer.Option("--root", help="The repository holding corpus/ and eval/.")] = Path(
        "."
    ),
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the scores and records as JSON here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every eval corpus (the seed and eval/corpora/*) side by side, and pooled."""
    from careerqa.config import Settings
    from careerqa.errors import BadInput
    from careerqa.evals.scoring import load_eval_set, run_eval, summarize

    with user_errors():
        if split not in ("dev", "test", "all"):
            raise BadInput(f"--split is dev, test or all, not {split!r}")
        base = index_root or Settings.from_env().cache_dir / "eval-indexes"
        context = CliContext.of(ctx)
        columns: dict[str, dict[str, Any]] = {}
        records: list[dict[str, Any]] = []
        for name, (corpus, questions) in eval_sets(root).items():
            items = load_eval_set(questions, None if split == "all" else split)
            if not as_json:
                err(f"{name}: {len(items)} questions ({corpus})")
            engine = context.engine(corpus, base / name, quiet=as_json)
            result = run_eval(items, engine.search, ask=partial(_ask, engine) if answers else None)
            for record in result["records"]:
                record["corpus"] = name
            records.extend(result["records"])
            columns[name] = summarize(result["records"])
        columns["pooled"] = summarize(records)
    report = {"split": split, "answers": answers, "summary": columns, "records": records}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=2))
        return
    typer.echo(table(columns))


def _ask(engine: Engine, item: EvalItem) -> Answer:
    return engine.ask(item.question, history=list(item.history))


def table(columns: dict[str, dict[str, Any]]) -> str:
    """The scores as a Markdown table: a row per metric, a column per corpus (and pooled)."""
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, label in ROWS:
        cells = [_cell(summary.get(key), key) for summary in columns.values()]
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.0f}" if key.startswith("latency") else f"{value:.3f}"
    return str(value)
