"""The options several ``careerqa`` commands take, spelled once: ``--corpus``, ``--index-dir``,
``--top-k``, ``--json`` and ``--server``.

Not handled here: options of one command only (beside that command), and reading the settings they
override (``config.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
