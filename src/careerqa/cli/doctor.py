"""``careerqa doctor``: the report of ``diagnose.diagnose`` for people (or ``--json`` for scripts).

``cli/app.py`` registers ``doctor`` on its app.

Not handled here: gathering the facts and the problems (``cli/diagnose.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from careerqa.errors import CareerQAError


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Run the llama.cpp test decode again, even if it passed before.")
    ] = False,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check", help="Skip the llama.cpp test decode (and joining the model file for it)."
        ),
    ] = False,
    corpus: Annotated[
        Path | None, typer.Option("--corpus", help="Corpus folder [default: ./corpus].")
    ] = None,
    index_dir: Annotated[
        Path | None, typer.Option("--index-dir", help="Index folder [default: ./index].")
    ] = None,
) -> None:
    """Check this installation: CPU features, the llama.cpp build and a test decode in a child process,
    model files, the index and the settings in effect. Exits 1 when something is broken, naming the fix."""
    from careerqa.cli.diagnose import diagnose
    from careerqa.config import Settings

    try:
        settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir)
        report = diagnose(settings, check=not no_check, recheck=recheck, progress=not as_json)
    except CareerQAError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report.as_dict())
    raise typer.Exit(0 if report.ok else 1)


def _print(data: dict[str, Any]) -> None:
    cpu, llama, models, index = data["cpu"], data["llama"], data["models"], data["index"]
    typer.echo(f"cpu       {cpu['model']} ({cpu['machine']})")
    typer.echo(f"          reports: {' '.join(cpu['flags']) or '-'}")
    if llama.get("installed"):
        build = llama.get("build") or {}
        typer.echo(f"llama.cpp llama-cpp-python {llama['version']}, build: {build.get('profile', 'unknown')}")
        check = llama.get("check")
        if check:
            typer.echo(f"          uses: {' '.join(check['uses']) or '-'}")
            state = "passed" if check["ok"] else "FAILED"
            how = "remembered" if check["cached"] else f"ran in {check['seconds']:.1f} s"
            typer.echo(f"          test decode in a child process: {state} ({how})")
        else:
            typer.echo("          test decode: skipped")
    else:
        typer.echo("llama.cpp not installed")
    remote = data.get("generator")
    if remote:
        status = remote.get("models_status")
        typer.echo(f"generator {remote.get('model')} @ {remote['url']} (remote; GET /models: {status})")
    for name, state in models["files"].items():
        mark = "*" if name == models["configured"] else " "
        typer.echo(f"model   {mark} {name}: {state['state']} ({state['path']})")
    if index.get("state") == "ok" or index.get("state") == "stale":
        typer.echo(
            f"index     {index['dir']}: version {index['version']}, {index['chunks']} chunks from "
            f"{index['files']} files, built {index['built_at']}; corpus {index['corpus']}"
        )
    else:
        typer.echo(f"index     {index['dir']}: {index.get('state')}")
    kv = data.get("passage_kv") or {}
    if "chunks" in kv:
        typer.echo(
            f"caches    {kv['cached_chunks']} of {kv['chunks']} passages ({kv['kv_type']}, "
            f"{kv['bytes'] / 2**20:.0f} MB in {kv['folder']})"
        )
    else:
        typer.echo(f"caches    {kv.get('state', 'unknown')}")
    settings = data["settings"]
    typer.echo("settings  " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "admin_token"))
    for note in data["notes"]:
        typer.echo(f"note: {note}")
    for warning in data.get("warnings", []):
        typer.echo(f"WARNING ({warning['part']}): {warning['what']}\n  fix: {warning['fix']}")
    for problem in data["problems"]:
        typer.echo(f"PROBLEM ({problem['part']}): {problem['what']}\n  fix: {problem['fix']}")
    typer.echo("all good" if data["ok"] else f"{len(data['problems'])} problem(s) found")
