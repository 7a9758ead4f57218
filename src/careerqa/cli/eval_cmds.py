"""``careerqa eval``: one subcommand per kind of run, each with only the options that apply to it.

- ``eval retrieval``: retrieval scores, no language model; writes a report and checks the gate;
- ``eval run``: the full answer eval, judged by the local model; writes a report and checks the gate;
- ``eval calibrate``: suggests the retrieval abstention threshold;
- ``eval judge-agreement``: the support judge against hand-labelled pairs;
- ``eval corpora``: every eval corpus side by side (``cli/eval_corpora.py``).

The commands parse options, call ``evals/scoring.py`` / ``evals/report.py`` / ``evals/gate.py`` /
``evals/judge.py``, print and set the exit code; ``cli/app.py`` registers ``eval_app``. The engine comes
from the ``CliContext`` (``cli/context.py``). The single command of before (``careerqa eval
--retrieval-only`` and its other modes) ends with a usage error naming the subcommand to use.

Not handled here: scoring, judging and writing the reports (``evals/``).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from careerqa.cli.context import CliContext, user_errors
from careerqa.cli.eval_corpora import corpora
from careerqa.cli.options import CorpusOpt, IndexOpt, JsonOpt

if TYPE_CHECKING:
    from careerqa.evals.gate import GateCheck
    from careerqa.evals.scoring import Selection


class Split(StrEnum):
    all = "all"
    dev = "dev"
    test = "test"


# The modes of the old single `careerqa eval` and the subcommands that replace them.
OLD_MODES = {
    "--retrieval-only": "retrieval",
    "--calibrate": "calibrate",
    "--judge-agreement": "judge-agreement",
}


class _EvalGroup(TyperGroup):
    """Says which subcommand replaces the old spelling instead of "No such option"."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0].startswith("-") and args[0] != "--help":
            old = next((a for a in args if a in OLD_MODES), None)
            new = OLD_MODES[old] if old else "run"
            was = f"`careerqa eval {old}`" if old else "`careerqa eval` with options"
            typer.echo(
                f"error: {was} is now `careerqa eval {new}` (subcommands: retrieval, run, calibrate, "
                "judge-agreement, corpora; their options follow the subcommand)",
                err=True,
            )
            raise typer.Exit(2)  # a usage error, as an unknown option was
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_EvalGroup,
    help="Score retrieval and grounded answers on an eval set (see docs/evaluation.md).",
    no_args_is_help=True,
)

eval_app.command("corpora")(corpora)

SetOpt = Annotated[Path, typer.Option("--set", help="Eval set (JSON lines).")]
SplitOpt = Annotated[Split, typer.Option("--split", help="Which questions of the set.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions.")]
SampleOpt = Annotated[
    int | None, typer.Option("--per-category", min=1, help="Only the first N questions of each category.")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Write <name>.json, .md and .png here.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Report file name [default: from the run].")]
GateOpt = Annotated[
    Path | None, typer.Option("--gate", help="Regression thresholds [default: eval/gate.json].")
]
NoGateOpt = Annotated[bool, typer.Option("--no-gate", help="Do not check the thresholds.")]
PairsOpt = Annotated[
    Path, typer.Option("--judge-pairs", help="Hand-labelled (passage, claim, supported) pairs.")
]
DEFAULT_SET = Path("eval/questions.jsonl")
DEFAULT_OUT = Path("eval/results")
DEFAULT_PAIRS = Path("eval/judge_pairs.jsonl")


def _selection(eval_set: Path, split: Split, limit: int | None, sample: int | None) -> Selection:
    from careerqa.evals.scoring import Selection

    return Selection(eval_set, split.value, limit, sample)


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@eval_app.command("retrieval")
def retrieval(
    ctx: typer.Context,
    eval_set: SetOpt = DEFAULT_SET,
    split: SplitOpt = Split.all,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    out: OutOpt = DEFAULT_OUT,
    name: NameOpt = None,
    gate: GateOpt = None,
    no_gate: NoGateOpt = False,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Score retrieval only (no language model is loaded); write a report and check the gate."""
    selection = _selection(eval_set, split, limit, sample)
    _scored_run(CliContext.of(ctx), selection, out, name, gate, no_gate, as_json, corpus, index_dir)


@eval_app.command("run")
def run(
    ctx: typer.Context,
    eval_set: SetOpt = DEFAULT_SET,
    split: SplitOpt = Split.all,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    judge_pairs: PairsOpt = DEFAULT_PAIRS,
    skip_agreement: Annotated[
        bool, typer.Option("--skip-agreement", help="Do not measure the judge on the pairs first.")
    ] = False,
    out: OutOpt = DEFAULT_OUT,
    name: NameOpt = None,
    gate: GateOpt = None,
    no_gate: NoGateOpt = False,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """The full eval: retrieval, then every question answered by the language model and each answer
    sentence judged against the passages it cites; write a report and check the gate (long)."""
    selection = _selection(eval_set, split, limit, sample)
    pairs = None if skip_agreement else judge_pairs
    context = CliContext.of(ctx)
    _scored_run(
        context, selection, out, name, gate, no_gate, as_json, corpus, index_dir, full=True, pairs=pairs
    )


def _scored_run(
    context: CliContext,
    selection: Selection,
    out: Path,
    name: str | None,
    gate: Path | None,
    no_gate: bool,
    as_json: bool,
    corpus: Path | None,
    index_dir: Path | None,
    full: bool = False,
    pairs: Path | None = None,
) -> None:
    """``eval retrieval`` and ``eval run``: score, write the report, check the gate, print."""
    import shlex

    from careerqa.evals.gate import DEFAULT_GATE, GateCheck, check_gate
    from careerqa.evals.judge import Judge, judge_agreement, load_judge_pairs
    from careerqa.evals.report import build_report, write_report
    from careerqa.evals.scoring import run_eval

    with user_errors():
        items = selection.items()
        engine = context.engine(corpus, index_dir, quiet=as_json)
        judge = Judge(engine.generator) if full else None
        agreement = judge_agreement(judge, load_judge_pairs(pairs)) if judge and pairs else None
        results = run_eval(
            items,
            lambda q, k: engine.search(q, k),
            ask=(lambda i: engine.ask(i.question, history=list(i.history))) if full else None,
            judge=judge,
            on_record=None if as_json else _show_record,
        )
        report = build_report(
            results,
            selection,
            items,
            generator=engine.settings.generator if full else None,
            command=shlex.join(["careerqa", *sys.argv[1:]]),
            name=name,
            judge=agreement,
            judge_calls=judge.calls if judge else None,
        )
        files = write_report(report, out)
        if no_gate:
            verdict = GateCheck(gate or DEFAULT_GATE, "not checked")
        else:
            verdict = check_gate(report["summary"], selection, gate)
    _print_run(report, files, verdict, as_json)


def _show_record(record: dict[str, Any]) -> None:
    """One progress line on stderr per answered question."""
    if "answer" in record:
        a = record["answer"]
        mark = "abstained" if a["abstained"] else f"facts {a.get('key_fact_recall', '-')}"
        seconds = a["latency_ms"] / 1000
        typer.echo(f"{record['id']:9} {mark:11} {seconds:5.1f}s {record['question']}", err=True)


def _print_run(report: dict[str, Any], files: list[Path], verdict: GateCheck, as_json: bool) -> None:
    """The scores (table or JSON), where the report went, and the gate's verdict: exit 1 if it failed."""
    from careerqa.evals.report import NO_CHART, format_table

    if as_json:
        shown = {k: report[k] for k in ("meta", "judge", "summary", "by_category") if k in report}
        _dump({**shown, "gate": verdict.to_dict(), "files": [f.as_posix() for f in files]})
    else:
        typer.echo(format_table(report))
        typer.echo(f"\nreport: {', '.join(f.as_posix() for f in files)}")
        typer.echo(f"gate ({verdict.path}): {verdict.result}")
    if not any(f.suffix == ".png" for f in files):
        typer.echo(f"note: no chart: {NO_CHART}", err=True)
    if verdict.failures:
        typer.echo(f"error: eval gate failed ({verdict.path}): " + "; ".join(verdict.failures), err=True)
        raise typer.Exit(1)


@eval_app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    eval_set: SetOpt = DEFAULT_SET,
    split: SplitOpt = Split.all,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Suggest the retrieval abstention threshold (min_dense_score) from the best passage cosines of
    the answerable and off-topic questions. No language model is loaded."""
    from careerqa.evals.scoring import calibrate as suggest_threshold

    with user_errors():
        items = _selection(eval_set, split, limit, sample).items()
        engine = CliContext.of(ctx).engine(corpus, index_dir, quiet=as_json)
        scores = suggest_threshold(lambda q: max(h.dense_score or 0.0 for h in engine.search(q)), items)
    if as_json:
        _dump(scores)
        return
    for key, value in scores.items():
        if key != "scores":
            typer.echo(f"{key:28} {value}")


@eval_app.command("judge-agreement")
def judge_agreement(
    ctx: typer.Context, judge_pairs: PairsOpt = DEFAULT_PAIRS, as_json: JsonOpt = False
) -> None:
    """Measure the support judge (the language model asked yes/no) against hand-labelled pairs."""
    from careerqa.evals.judge import Judge, load_judge_pairs
    from careerqa.evals.judge import judge_agreement as measure

    with user_errors():
        pairs = load_judge_pairs(judge_pairs)
        engine = CliContext.of(ctx).engine(None, None, quiet=as_json)
        measured = measure(Judge(engine.generator), pairs)
    if as_json:
        _dump(measured)
        return
    for key, value in measured.items():
        typer.echo(f"{key:22} {value}")
