"""``careerqa serve``: check that the language model can be used, then run the web app under uvicorn.

Not handled here: the app, its routes and queue (``web/``); registering the command (``cli/app.py``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from careerqa.cli.context import err, user_errors
from careerqa.cli.options import CorpusOpt, IndexOpt


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
    from careerqa.generate.llama import check_generator
    from careerqa.web.app import create_app

    with user_errors():
        settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir)
        # Fail here with one line rather than serve a process that dies on its first answer.
        check_generator(settings)
    err("loading the index and models…")
    uvicorn.run(create_app(settings, watch=watch), host=host, port=port, log_level="info")
