"""The ``careerqa`` command: the only module that prints for people.

Library errors (``CareerQAError``) become one line on stderr and a non-zero exit code; anything else
is a bug and keeps its traceback. Heavy modules are imported inside the commands so that
``careerqa --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from careerqa.errors import CareerQAError

if TYPE_CHECKING:
    from careerqa.cli.remote import RemoteClient
    from careerqa.engine.core import Engine
    from careerqa.index.sync import SyncReport
    from careerqa.types import Answer

app = typer.Typer(
    help="Answer questions about AI careers from a local corpus, citing every claim.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CorpusOpt = Annotated[Path | None, typer.Option("--corpus", help="Corpus folder [default: ./corpus].")]
IndexOpt = Annotated[Path | None, typer.Option("--index-dir", help="Index folder [default: ./index].")]
TopKOpt = Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=50, help="Passages to retrieve.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="URL",
        help="Ask a running `careerqa serve` at URL instead of loading the models here "
        "(default: $CAREERQA_SERVER_URL; unset or empty: answer here).",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"careerqa {version('careerqa')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Answer questions about AI careers from a local corpus, citing every claim."""


def _err(message: str) -> None:
    typer.echo(message, err=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except CareerQAError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None


def _engine(corpus: Path | None, index_dir: Path | None, quiet: bool = False, **overrides: Any) -> Engine:
    from careerqa.config import Settings
    from careerqa.engine.core import Engine

    settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir, **overrides)
    return Engine(settings, progress=None if quiet else _progress_printer(), show_model_progress=not quiet)


def _progress_printer() -> Callable[[str, int], None]:
    bar: Any = None

    def progress(event: str, amount: int) -> None:
        nonlocal bar
        from tqdm import tqdm

        if event == "index_missing":
            _err("no index yet: building it from the corpus (first use)")
        elif event == "corpus_changed":
            _err("the corpus changed since the index was built: updating the index")
        elif event == "embedder_export":
            _err("exporting the embedding model to ONNX (once, into the model cache; needs torch)")
        elif event == "embed_total":
            bar = tqdm(
                total=amount,
                desc="embedding passages and their sentences",
                unit="text",
                file=sys.stderr,
                leave=False,
            )
        elif event == "embedded" and bar is not None:
            bar.update(amount)
            if bar.n >= bar.total:
                bar.close()
        elif event == "kv_total" and amount:  # passage KV caches (generate/kv_cache.py)
            bar = tqdm(total=amount, desc="computing passage KV caches", unit="passage", file=sys.stderr)
        elif event == "kv_computed" and bar is not None:
            bar.update(amount)
            if bar.n >= bar.total:
                bar.close()

    return progress


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


@app.command()
def index(
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
        _index_watch(corpus, index_dir, full, as_json)
        return
    with _user_errors():
        engine = _engine(corpus, index_dir, quiet=as_json)
        report = engine.sync(full=full)
        kv = _sync_passage_kv(engine, as_json) if passage_kv else None
    for warning in report.warnings + (kv.warnings if kv else []):
        _err(f"warning: {warning}")
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), **({"passage_kv": kv.to_dict()} if kv else {})}, indent=2))
        return
    typer.echo(_report_line(report))
    if not report.written:
        typer.echo("index is up to date")
    if kv is not None:
        typer.echo(_kv_line(kv))


def _sync_passage_kv(engine: Engine, quiet: bool) -> Any:
    """The passage KV caches of the index just synced (``kv_cache.sync_for_index``)."""
    from careerqa.generate.kv_cache import sync_for_index

    store = engine.view().store  # the version just committed, whatever the index backend
    return sync_for_index(engine.settings, store, lambda: engine.generator, engine.progress)


def _kv_line(kv: Any) -> str:
    if kv.skipped:
        return f"passage KV caches: skipped ({kv.skipped})"
    return (
        f"passage KV caches: {kv.computed} computed, {kv.present} kept, {kv.removed} removed, "
        f"{kv.over_budget} over the budget ({kv.bytes_total / 2**20:.0f} MB in {kv.folder}, "
        f"{kv.seconds:.1f} s)"
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: TopKOpt = None,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    server: ServerOpt = None,
) -> None:
    """Show the passages that best match QUERY (dense + BM25, fused by rank)."""
    from careerqa.types import hit_to_dict

    with _user_errors():
        remote = _remote(server, corpus, index_dir)
        if remote is not None:
            hits = remote.search(query, top_k)
        else:
            engine = _engine(corpus, index_dir, quiet=as_json)
            hits = engine.search(query, top_k)
    if as_json:
        typer.echo(json.dumps({"results": [hit_to_dict(h) for h in hits]}, indent=2, ensure_ascii=False))
        return
    if not hits:
        typer.echo("no passages found")
    for hit in hits:
        c = hit.chunk
        typer.secho(
            f"[{hit.rank}] {c.label()}  (score {hit.score:.4f}, cosine {hit.dense_score:.2f})",
            bold=True,
        )
        typer.echo(_indent(_clip(c.text, 400)) + "\n")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _print_answer(answer: Answer, streamed: bool, revised: bool) -> None:
    """What follows the streamed text (or, not streamed, the answer itself): the checked answer when
    checking changed what was shown, then the sources."""
    if not streamed:
        typer.echo(answer.text)
    elif revised:
        # Verification removed unsupported sentences or fixed citations: show what it kept.
        removed = answer.sentences_total - answer.sentences_supported
        if answer.abstained:
            note = "no sentence is supported by the passages"
        else:
            note = f"{removed} unsupported sentence(s) removed" if removed else "citations checked"
        typer.echo(f"\n\nVerified answer ({note}):")
        typer.echo(answer.text)
    else:
        typer.echo()
    if answer.abstained:
        return
    typer.echo(f"\nSources ({answer.sentences_supported}/{answer.sentences_total} sentences supported):")
    for cite in answer.citations:
        c = cite.hit.chunk
        typer.echo(f"  [{cite.n}] {c.label()}\n      “{_clip(c.text, 160)}”")


def _ask_once(
    engine: Engine, question: str, history: list[tuple[str, str]], top_k: int | None, stream: bool
) -> Answer:
    """Answer ``question``, printing its text as it comes (with ``stream``), then the sources."""
    from careerqa.events import Done, Revised, Text

    answer, revised = None, False
    with closing(engine.events(question, history=history, top_k=top_k)) as events:  # Ctrl-C stops the model
        for event in events:
            if isinstance(event, Text) and stream:
                typer.echo(event.text, nl=False)
            elif isinstance(event, Revised):
                revised = True
            elif isinstance(event, Done):
                answer = event.answer
    assert answer is not None  # the events end with Done
    _print_answer(answer, stream, revised)
    return answer


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    top_k: TopKOpt = None,
    as_json: JsonOpt = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer only when complete.")
    ] = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    server: ServerOpt = None,
) -> None:
    """Answer QUESTION from the corpus, with numbered citations (or say it is not in the corpus)."""
    from careerqa.types import answer_to_dict

    with _user_errors():
        remote = _remote(server, corpus, index_dir)
        if remote is not None:
            _ask_remote(remote, question, top_k, as_json, stream=not no_stream)
            return
        engine = _engine(corpus, index_dir, quiet=as_json)
        if as_json:
            answer = engine.ask(question, top_k=top_k)
            typer.echo(json.dumps(answer_to_dict(answer), indent=2, ensure_ascii=False))
        else:
            answer = _ask_once(engine, question, [], top_k, stream=not no_stream)
        _log_answer(engine, answer)


def _remote(server: str | None, corpus: Path | None, index_dir: Path | None) -> RemoteClient | None:
    """The client for ``--server`` (or ``CAREERQA_SERVER_URL``), or None to answer in this process."""
    from careerqa.config import Settings
    from careerqa.errors import BadInput

    url = server if server is not None else Settings.from_env().server_url
    if not url:
        return None
    if corpus is not None or index_dir is not None:
        raise BadInput("--corpus and --index-dir do not apply with a server: it answers from its own index")
    from careerqa.cli.remote import RemoteClient

    return RemoteClient(url)


def _ask_remote(remote: RemoteClient, question: str, top_k: int | None, as_json: bool, stream: bool) -> None:
    from careerqa.cli.remote import answer_from_dict

    if as_json:
        payload = remote.ask(question, top_k)
        for server_only in ("index_version", "log_id"):  # the shape of a local `ask --json`
            payload.pop(server_only, None)
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    revisions: list[str] = []

    def on_text(piece: str) -> None:
        typer.echo(piece, nl=False)

    payload = remote.ask(question, top_k, on_text if stream else None, revisions.append)
    _print_answer(answer_from_dict(payload), stream, revised=bool(revisions))


@app.command()
def chat(
    top_k: TopKOpt = None,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Talk with careerqa: follow-up questions are understood in the context of the conversation."""
    with _user_errors():
        engine = _engine(corpus, index_dir)
        engine.view().answerer.warm_up()  # load the index and models, read the system prompt, before asking
    typer.echo("careerqa chat — ask about AI careers. Empty line, 'exit' or Ctrl-D to leave.")
    history: list[tuple[str, str]] = []
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if question.lower() in {"", "exit", "quit", ":q"}:
            return
        typer.echo("careerqa> ", nl=False)
        try:
            answer = _ask_once(engine, question, history, top_k, stream=True)
        except CareerQAError as exc:
            _err(f"error: {exc}")
            continue
        _log_answer(engine, answer)
        if answer.standalone_question:
            typer.echo(f"  (understood as: {answer.standalone_question})")
        history.append((question, answer.text))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Sync the index after every change to the corpus.")
    ] = False,
) -> None:
    """Serve the chat page at http://HOST:PORT/ with /chat, /search, /health, /reindex and an
    OpenAI-compatible /v1/chat/completions (API description at /docs). Models load before it listens.
    Set CAREERQA_ADMIN_TOKEN to allow POST /reindex; CAREERQA_LOG_QUESTIONS=1 for `careerqa gaps`."""
    import uvicorn

    from careerqa.config import Settings
    from careerqa.generate.generation import check_generator
    from careerqa.web.app import create_app

    with _user_errors():
        settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir)
        # Fail here with one line rather than serve a process that dies on its first answer.
        check_generator(settings)
    _err("loading the index and models…")
    uvicorn.run(create_app(settings, watch=watch), host=host, port=port, log_level="info")


# --------------------------------------------------------------------------- watching and gaps


def _index_watch(corpus: Path | None, index_dir: Path | None, full: bool, as_json: bool) -> None:
    """``index --watch``: one line (or JSON line) per sync that changed the index."""
    from careerqa.index.watch import sync_line, watch_corpus

    shown_warnings: set[str] = set()
    first = [full]

    def on_sync(result: SyncReport | CareerQAError) -> None:
        if isinstance(result, CareerQAError):
            _err(f"error: {result}")
            return
        for warning in result.warnings:  # each skipped file once, not at every sync
            if warning not in shown_warnings:
                _err(f"warning: {warning}")
        shown_warnings.clear()
        shown_warnings.update(result.warnings)
        if as_json:
            typer.echo(json.dumps(result.to_dict()))
        elif result.written:
            typer.echo(sync_line(result))

    def sync() -> SyncReport:
        full_now, first[0] = first[0], False
        return engine.sync(full=full_now)

    with _user_errors():
        engine = _engine(corpus, index_dir, quiet=as_json)
        settings = engine.settings
        watch_corpus(
            settings.corpus_dir,
            sync,
            on_sync,
            quiet_ms=settings.watch_quiet_ms,
            on_ready=lambda: _err(f"watching {settings.corpus_dir} for changes (Ctrl-C to stop)"),
        )


def _log_answer(engine: Engine, answer: Answer) -> None:
    if not engine.settings.log_questions:
        return
    from careerqa.evals.gaps import log_answer

    try:
        log_answer(
            engine.settings.index_dir, answer, engine.view().version, engine.settings.question_log_max_bytes
        )
    except OSError as exc:  # the answer was given; a log that cannot be written must not hide it
        _err(f"warning: could not write the question log ({exc})")


@app.command()
def gaps(
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

    with _user_errors():
        engine = _engine(corpus, index_dir, quiet=True)
        when = parse_since(since)
        records = list(read_log(engine.settings.index_dir))
        if not records and not engine.settings.log_questions:
            _err(
                f"note: {log_path(engine.settings.index_dir)} is empty; the question log is off "
                "(set CAREERQA_LOG_QUESTIONS=1 for ask, chat and serve)"
            )
        report = gap_report(records, lambda texts: engine.embedder.embed(texts), when)
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


from careerqa.cli.doctor import doctor  # noqa: E402  (its own module; registered here)

app.command()(doctor)
from careerqa.cli.eval_cmds import eval_app  # noqa: E402  (eval retrieval | run | calibrate | judge-agreement)

app.add_typer(eval_app, name="eval")


def main() -> None:
    app()
