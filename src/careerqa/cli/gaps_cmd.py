"""``careerqa gaps``: the questions the corpus failed to answer, from the question log, grouped by
meaning, as a list for people or ``--json``.

Not handled here: the log and the grouping (``evals/gaps.py``); registering the command (``cli/app.py``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from careerqa.cli.context import CliContext, err, user_errors
from careerqa.cli.options import CorpusOpt, IndexOpt, JsonOpt
from careerqa.config import Settings
from careerqa.errors import CareerQAError


def gaps(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Only questions asked since: 7d, 12h, 30m or a date.")
    ] = None,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Questions the corpus failed to answer (refused, weakly supported, voted down), grouped by meaning.
    Needs the question log: CAREERQA_LOG_QUESTIONS=1 while asking or serving."""
    from careerqa.evals.gaps import gap_report, log_path, parse_since, read_log

    with user_errors():
        engine = CliContext.of(ctx).engine(corpus, index_dir, quiet=True)
        when = parse_since(since)
        records = list(read_log(engine.settings.index_dir))
        if not records and not engine.settings.log_questions:
            err(
                f"note: {log_path(engine.settings.index_dir)} is empty; the question log is off "
                "(set CAREERQA_LOG_QUESTIONS=1 for ask, chat and serve)"
            )
        report = gap_report(
            records, lambda texts: engine.embedder.embed(texts), when, flagged=_flagged(engine.settings)
        )
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"{report['questions']} unanswered or weakly answered questions "
        f"({report['distinct_questions']} distinct) in {len(report['groups'])} groups"
    )
    for n, group in enumerate(report["groups"], start=1):
        o = group["outcomes"]
        typer.secho(
            f"\n[{n}] {group['count']}× “{group['example']}”  "
            f"(refused {o['refused']}, weak {o['weak']}, thumbs down {o['down']})",
            bold=True,
        )
        for question in group["questions"][1:4]:
            typer.echo(f"    also: {question}")
        nearest = group["nearest_passage"]
        if nearest:
            typer.echo(f"    nearest passage: {nearest['label']} (cosine {nearest['cosine']:.2f})")
    if report["flagged_files"]:
        count = len(report["flagged_files"])
        typer.secho(f"\n{count} file(s) with text addressed to the assistant, not indexed:", bold=True)
    for item in report["flagged_files"]:
        for f in item["flags"]:
            typer.echo(f"    {item['path']} line {f['line']} ({f['rule']}): “{f['excerpt']}” (review it)")


def _flagged(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The flagged files of the committed index (none when there is no readable index)."""
    from careerqa.index.backends import backend_for

    try:
        return backend_for(settings).read_manifest().flagged
    except CareerQAError:
        return {}
