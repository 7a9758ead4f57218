"""What every ``careerqa`` command shares: the ``CliContext`` (how to build the ``Engine``), the
translation of library errors into one line and an exit code, and the progress lines of a first build.

The context travels as typer's ``ctx.obj``: the root callback (``cli/app.py``) makes the default one
unless the caller passed its own, and each command reads it with ``CliContext.of(ctx)``. That is the
hook for tests and for programs that embed the CLI: ``CliRunner().invoke(app, args,
obj=CliContext(engine_factory=make))`` runs the real commands over an engine built by ``make``.

Not handled here: the commands and what they print (the other modules of ``cli/``), and
building the engine's parts (``engine/core.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import typer

from careerqa.errors import CareerQAError

if TYPE_CHECKING:
    from careerqa.engine.core import Engine


class EngineFactory(Protocol):
    """Builds the engine a command runs on: ``corpus`` and ``index_dir`` as given on the command line
    (None: the setting's default), ``quiet`` for no progress output (``--json``), and settings overrides."""

    def __call__(
        self, corpus: Path | None, index_dir: Path | None, quiet: bool = False, **overrides: Any
    ) -> Engine: ...


def build_engine(
    corpus: Path | None, index_dir: Path | None, quiet: bool = False, **overrides: Any
) -> Engine:
    """The default ``EngineFactory``: the settings from the environment, the real models, progress on
    stderr unless ``quiet``."""
    from careerqa.config import Settings
    from careerqa.engine.core import Engine

    settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir, **overrides)
    return Engine(settings, progress=None if quiet else progress_printer(), show_model_progress=not quiet)


@dataclass
class CliContext:
    """What the commands of one ``careerqa`` run share (typer's ``ctx.obj``)."""

    engine_factory: EngineFactory = build_engine

    @classmethod
    def of(cls, ctx: typer.Context) -> CliContext:
        """The context of the running command: the one given as ``obj=``, else a default one."""
        return ctx.ensure_object(cls)

    def engine(self, corpus: Path | None, index_dir: Path | None, quiet: bool = False) -> Engine:
        return self.engine_factory(corpus, index_dir, quiet=quiet)


def err(message: str) -> None:
    """One line on stderr."""
    typer.echo(message, err=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """A library error becomes ``error: ...`` and its exit code; Ctrl-C becomes exit 130. Anything else
    is a bug and keeps its traceback."""
    try:
        yield
    except CareerQAError as exc:
        err(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err("interrupted")
        raise typer.Exit(130) from None


def progress_printer() -> Callable[[str, int], None]:
    """The engine's progress events as lines and bars on stderr (first build, re-index, KV caches)."""
    bar: Any = None

    def progress(event: str, amount: int) -> None:
        nonlocal bar
        from tqdm import tqdm

        if event == "index_missing":
            err("no index yet: building it from the corpus (first use)")
        elif event == "corpus_changed":
            err("the corpus changed since the index was built: updating the index")
        elif event == "embedder_export":
            err("exporting the embedding model to ONNX (once, into the model cache; needs torch)")
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
        elif event == "kv_total" and amount:  # passage KV caches (generate/kv_sync.py)
            bar = tqdm(total=amount, desc="computing passage KV caches", unit="passage", file=sys.stderr)
        elif event == "kv_computed" and bar is not None:
            bar.update(amount)
            if bar.n >= bar.total:
                bar.close()

    return progress
