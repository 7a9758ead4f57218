"""``careerqa search``, ``ask`` and ``chat``: a question in, the passages or the cited answer out, here
or (``search`` and ``ask`` with ``--server``) from a running ``careerqa serve``.

An answer is printed as it streams, then, when checking changed what was shown, the checked answer,
then its sources; the remote client's answers print the same way. With the question log on, each
answer is logged for ``careerqa gaps``.

Not handled here: retrieving and answering (``engine/core.py``, ``answer/``), the HTTP client
(``cli/remote.py``), registering the commands (``cli/app.py``).
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from careerqa.cli.context import CliContext, err, user_errors
from careerqa.cli.options import CorpusOpt, IndexOpt, JsonOpt, ServerOpt, TopKOpt
from careerqa.errors import CareerQAError

if TYPE_CHECKING:
    from careerqa.cli.remote import RemoteClient
    from careerqa.engine.core import Engine
    from careerqa.types import Answer


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: TopKOpt = None,
    as_json: JsonOpt = False,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    server: ServerOpt = None,
) -> None:
    """Show the passages that best match QUERY (dense + BM25, fused by rank)."""
    from careerqa.types import hit_to_dict

    with user_errors():
        remote = _remote(server, corpus, index_dir)
        if remote is not None:
            hits = remote.search(query, top_k)
        else:
            engine = CliContext.of(ctx).engine(corpus, index_dir, quiet=as_json)
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


def ask(
    ctx: typer.Context,
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

    with user_errors():
        remote = _remote(server, corpus, index_dir)
        if remote is not None:
            _ask_remote(remote, question, top_k, as_json, stream=not no_stream)
            return
        engine = CliContext.of(ctx).engine(corpus, index_dir, quiet=as_json)
        if as_json:
            answer = engine.ask(question, top_k=top_k)
            typer.echo(json.dumps(answer_to_dict(answer), indent=2, ensure_ascii=False))
        else:
            answer = _ask_once(engine, question, [], top_k, stream=not no_stream)
        _log_answer(engine, answer)
        _caches_after(engine, quiet=as_json)


def _caches_after(engine: Engine, quiet: bool) -> None:
    """After a one-shot answer: count its passages, and compute the passage caches that are missing
    in a background process, so the next answers are fast (``engine/caches.py``)."""
    engine.caches.flush_counts()
    pid = engine.caches.build_detached()
    if pid is not None and not quiet:
        err(
            f"computing passage caches for faster answers in the background (pid {pid}, log "
            f"{engine.caches.folder / 'build.log'}; `careerqa doctor` shows how far)"
        )


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


def chat(
    ctx: typer.Context,
    top_k: TopKOpt = None,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Talk with careerqa: follow-up questions are understood in the context of the conversation."""
    with user_errors():
        engine = CliContext.of(ctx).engine(corpus, index_dir)
        engine.view().answerer.warm_up()  # load the index and models, read the system prompt, before asking
        engine.caches.start()  # missing passage caches are computed while you type (engine/caches.py)
    typer.echo("careerqa chat — ask about AI careers. Empty line, 'exit' or Ctrl-D to leave.")
    try:
        _chat_loop(engine, top_k)
    finally:
        engine.caches.stop()


def _chat_loop(engine: Engine, top_k: int | None) -> None:
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
            err(f"error: {exc}")
            continue
        _log_answer(engine, answer)
        if answer.standalone_question:
            typer.echo(f"  (understood as: {answer.standalone_question})")
        history.append((question, answer.text))


def _log_answer(engine: Engine, answer: Answer) -> None:
    if not engine.settings.log_questions:
        return
    from careerqa.evals.gaps import log_answer

    try:
        log_answer(
            engine.settings.index_dir, answer, engine.view().version, engine.settings.question_log_max_bytes
        )
    except OSError as exc:  # the answer was given; a log that cannot be written must not hide it
        err(f"warning: could not write the question log ({exc})")
