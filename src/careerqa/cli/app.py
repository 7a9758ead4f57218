"""The ``careerqa`` typer app: the root options (``--version``), the ``CliContext`` every command
shares, and the commands, registered in the order ``--help`` lists them.

Heavy modules are imported inside the commands, so that ``careerqa --help`` answers at once.

Not handled here: the commands themselves (``cli/index_cmd.py``, ``cli/ask_cmd.py``,
``cli/serve_cmd.py``, ``cli/mcp_cmd.py``, ``cli/gaps_cmd.py``, ``cli/doctor.py``, ``cli/eval_cmds.py``,
``cli/keys_cmd.py``) and the
context's parts (``cli/context.py``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from careerqa.cli.ask_cmd import ask, chat, search
from careerqa.cli.context import CliContext
from careerqa.cli.doctor import doctor
from careerqa.cli.eval_cmds import eval_app
from careerqa.cli.gaps_cmd import gaps
from careerqa.cli.index_cmd import index
from careerqa.cli.keys_cmd import keys_app
from careerqa.cli.mcp_cmd import mcp
from careerqa.cli.serve_cmd import serve

app = typer.Typer(
    help="Answer questions about AI careers from a local corpus, citing every claim.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"careerqa {version('careerqa')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Answer questions about AI careers from a local corpus, citing every claim."""
    CliContext.of(ctx)  # the caller's (``obj=``) or a default one, shared by the command that follows


app.command()(index)
app.command()(search)
app.command()(ask)
app.command()(chat)
app.command()(serve)
app.command()(mcp)
app.command()(gaps)
app.command()(doctor)
app.add_typer(eval_app, name="eval")  # eval retrieval | run | calibrate | judge-agreement
app.add_typer(keys_app, name="keys")  # keys new


def main() -> None:
    """The ``careerqa`` console script (and ``python -m careerqa``)."""
    app()
