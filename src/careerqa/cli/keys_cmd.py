"""``careerqa keys new``: make an API key for a server reachable beyond loopback.

The key is printed once, for its holder; the server keeps only the ``CAREERQA_API_KEYS`` entry printed
beside it (the key's SHA-256), so a leaked configuration does not leak a key.

Not handled here: checking keys and rate limits (``web/auth.py``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from careerqa.cli.context import user_errors
from careerqa.cli.options import JsonOpt

keys_app = typer.Typer(help="API keys for `careerqa serve` (CAREERQA_API_KEYS).", no_args_is_help=True)


@keys_app.command("new")
def new(
    name: Annotated[
        str, typer.Option("--name", help="Who holds the key (letters, digits, . @ - _); names it in limits")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Make a new random API key: print it (once) and the entry to add to CAREERQA_API_KEYS."""
    from careerqa.web.auth import new_key

    with user_errors():
        key, entry = new_key(name)
    if as_json:
        typer.echo(json.dumps({"key": key, "entry": entry}))
        return
    typer.echo(f"key:   {key}")
    typer.echo(f"entry: {entry}")
    typer.echo(
        "Give the key to its holder (it is not stored anywhere). Add the entry to CAREERQA_API_KEYS\n"
        "(comma-separated) where `careerqa serve` runs; clients send `Authorization: Bearer <key>`."
    )
