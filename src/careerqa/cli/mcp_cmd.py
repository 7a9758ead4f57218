"""``careerqa mcp``: serve ``search``, ``ask`` and the corpus documents to an MCP client (an AI
assistant) over stdio, or with ``--http`` over streamable HTTP at ``http://HOST:PORT/mcp``.

The engine comes from the ``CliContext`` as for ``ask``; the index and the models load in a thread
while the server already answers the client's handshake (a first build can take minutes), and a tool
called before they are ready waits for them. Over stdio, stdout carries the protocol only: progress
and logs go to stderr.

Not handled here: the MCP server itself (``web/mcp_server.py``); registering the command
(``cli/app.py``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from careerqa.cli.context import CliContext, err, user_errors
from careerqa.cli.options import CorpusOpt, IndexOpt
from careerqa.errors import CareerQAError

if TYPE_CHECKING:
    from careerqa.engine.core import Engine


def mcp(
    ctx: typer.Context,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at http://HOST:PORT/mcp, not stdio.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (with --http).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on (with --http).")
    ] = 8000,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Serve careerqa to an AI assistant over the Model Context Protocol: the tools `search` and
    `ask` (with citations) and the corpus documents as resources. Over stdio unless --http."""
    from careerqa.web.mcp_server import build_server
    from careerqa.web.service import GenerationQueue

    with user_errors():
        engine = CliContext.of(ctx).engine(corpus, index_dir, quiet=not http)
        settings = engine.settings
        server = build_server(lambda: engine, GenerationQueue(settings.queue_size, settings.generation_slots))
    threading.Thread(target=_warm_up, args=(engine,), name="careerqa-warm-up", daemon=True).start()
    if http:
        err(f"careerqa MCP server at http://{host}:{port}/mcp (loading the index and models…)")
        server.run("streamable-http", host=host, port=port)
    else:
        server.run("stdio")


def _warm_up(engine: Engine) -> None:
    """Load the index (building it on first use) and the models, so the first answer does not wait;
    a failure is reported here and again by each tool call that meets it."""
    try:
        engine.view().answerer.warm_up()
    except CareerQAError as exc:
        err(f"careerqa is not ready: {exc}")
