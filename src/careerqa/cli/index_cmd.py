"""``careerqa index``: build or update the index (and the passage KV caches), once or ``--watch``ing
the corpus, and print what changed.

Not handled here: syncing itself (``index/sync.py``, ``index/watch.py``) and the caches
(``engine/caches.py``, ``generate/kv_sync.py``); registering the command (``cli/app.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from careerqa.cli.context import CliContext, err, user_errors
from careerqa.cli.options import CorpusOpt, IndexOpt, JsonOpt
from careerqa.errors import CareerQAError

if TYPE_CHECKING:
    from careerqa.engine.core import Engine
    from careerqa.index.sync import SyncReport


def index(
    ctx: typer.Context,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild from scratch, ignoring the old index.")
    ] = False,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running: sync after each corpus change (Ctrl-C stops).")
    ] = False,
    passage_kv: Annotated[
        bool,
        typer.Option(
            "--passage-kv/--no-passage-kv",
            help="Also compute the passages' KV caches for fast answers (loads the language model).",
        ),
    ] = True,
) -> None:
    """Build or update the index from the corpus, embedding only what changed."""
    if watch:
        _index_watch(CliContext.of(ctx), corpus, index_dir, full, as_json)
        return
    with user_errors():
        engine = CliContext.of(ctx).engine(corpus, index_dir, quiet=as_json)
        report = engine.sync(full=full)
        kv = _sync_passage_kv(engine, as_json) if passage_kv else None
    for warning in report.warnings + (kv.warnings if kv else []):
        err(f"warning: {warning}")
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), **({"passage_kv": kv.to_dict()} if kv else {})}, indent=2))
        return
    typer.echo(_report_line(report))
    for line in flagged_lines(report.flagged):
        typer.echo(line)
    if not report.written:
        typer.echo("index is up to date")
    if kv is not None:
        typer.echo(_kv_line(kv))


def _report_line(report: SyncReport) -> str:
    r = report
    files = (
        f"files: {len(r.files_added)} added, {len(r.files_changed)} changed, "
        f"{len(r.files_removed)} removed, {len(r.files_unchanged)} unchanged"
    )
    chunks = (
        f"chunks: {r.chunks_added} added, {r.chunks_removed} removed, {r.chunks_unchanged} unchanged "
        f"({r.chunks_embedded} embedded; {r.chunk_count} in the index)"
    )
    return f"{files}\n{chunks}"


def flagged_lines(flagged: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One line per file with passages left out of the index as instructions to a model."""
    lines = []
    for path, flags in flagged.items():
        where = ", ".join(f"line {f['line']} ({f['rule']})" for f in flags[:3])
        more = f" and {len(flags) - 3} more" if len(flags) > 3 else ""
        lines.append(f"flagged: {path}: {where}{more}: text addressed to the assistant, left out; review it")
    return lines


def _sync_passage_kv(engine: Engine, quiet: bool) -> Any:
    """The passage KV caches of the index just synced (``engine/caches.py``, ``generate/kv_sync.py``)."""
    return engine.caches.sync(engine.progress)  # the version just committed, whatever the index backend


def _kv_line(kv: Any) -> str:
    if kv.skipped:
        return f"passage KV caches: skipped ({kv.skipped})"
    per_chunk = f", {kv.seconds_per_cache:.1f} s each" if kv.computed else ""
    return (
        f"passage KV caches: {kv.cached_chunks} of {kv.chunks} passages cached ({kv.kv_type}): "
        f"{kv.computed} computed{per_chunk}, {kv.present} kept, {kv.removed} removed, "
        f"{kv.over_budget} over the budget of {kv.budget_bytes / 2**20:.0f} MB "
        f"({kv.bytes_total / 2**20:.0f} MB in {kv.folder}, {kv.seconds:.1f} s)"
    )


def _index_watch(
    context: CliContext, corpus: Path | None, index_dir: Path | None, full: bool, as_json: bool
) -> None:
    """``index --watch``: one line (or JSON line) per sync that changed the index."""
    from careerqa.index.watch import sync_line, watch_corpus

    shown_warnings: set[str] = set()
    first = [full]

    def on_sync(result: SyncReport | CareerQAError) -> None:
        if isinstance(result, CareerQAError):
            err(f"error: {result}")
            return
        for warning in result.warnings:  # each skipped file once, not at every sync
            if warning not in shown_warnings:
                err(f"warning: {warning}")
        shown_warnings.clear()
        shown_warnings.update(result.warnings)
        if as_json:
            typer.echo(json.dumps(result.to_dict()))
        elif result.written:
            typer.echo(sync_line(result))

    def sync() -> SyncReport:
        full_now, first[0] = first[0], False
        report = engine.sync(full=full_now)
        engine.caches.start()  # passage caches follow each sync, in the background (engine/caches.py)
        return report

    with user_errors():
        engine = context.engine(corpus, index_dir, quiet=as_json)
        settings = engine.settings
        try:
            watch_corpus(
                settings.corpus_dir,
                sync,
                on_sync,
                quiet_ms=settings.watch_quiet_ms,
                on_ready=lambda: err(f"watching {settings.corpus_dir} for changes (Ctrl-C to stop)"),
            )
        finally:
            engine.caches.stop()
