"""Crash safety: kill `careerqa index` with SIGKILL at random points and check that nothing is lost.

On a copy of the shipped corpus in a temporary folder: build the index, then, round after round,
change the corpus (append to a file, add one, rewrite one, delete one), start `careerqa index` as a
subprocess and SIGKILL it. Half the kills fall at a random time in the run (import, model load,
reading, embedding, saving); the other half right after the run writes its first new file into the
index folder, so the save and its commit by rename are hit too. After every kill:

- the write lock is free (flock is released when its holder dies);
- the index loads (``IndexStore.load``, which checks every file), and holds exactly one whole corpus
  state: the one before the run or the one after it, every file with all its chunks, every chunk's
  text found in that version of its file (so nothing is lost and nothing is mixed);
- a search and an answer (with a scripted generator) work on it.

Every ``--complete-every`` rounds, and at the end, `careerqa index` runs to completion: it must exit 0,
hold the current corpus and leave no temporary or orphaned data files.

    python bench/crash_index.py                         # 24 kills, real embedder (~10 s per start)
    python bench/crash_index.py --embedder fake --kills 3 --out /tmp/crash.json   # quick, no model

Writes ``bench/results/crash.json``; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from careerqa.embed.embedding import Embedder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scripted generator is the tests' own (tests/fakes.py)
FAKE_NAME, FAKE_DIM = "fake-bow", 256
WORDS = (
    "python statistics portfolio kubernetes gradient interview mentor research pipeline dataset "
    "cloud docker ethics fairness transformer tokenizer recruiter salary internship notebook "
    "regression classifier clustering embedding vector database latency deployment monitoring"
).split()


class HashEmbedder(Embedder):
    """Bag of hashed words, unit length: a deterministic stand-in for the real model (``--embedder fake``)."""

    name = FAKE_NAME
    dim = FAKE_DIM

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out


def run_child(argv: list[str]) -> None:
    """`careerqa index` with the fake embedder (the child process of ``--embedder fake``)."""
    from careerqa import cli
    from careerqa.embed import loader
    from careerqa.engine import models as lazy_models

    def load(name: str, *args: Any, **kwargs: Any) -> Embedder:
        return HashEmbedder()

    loader.load_embedder = load  # type: ignore[assignment]
    lazy_models.load_embedder = load  # type: ignore[attr-defined]
    os.environ["CAREERQA_EMBEDDER"] = FAKE_NAME
    cli.app(["index", *argv], prog_name="careerqa")


# --------------------------------------------------------------------------- the corpus


class Corpus:
    """The corpus copy, changed a little each round; every version of every file is remembered."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.versions: dict[str, bytes] = {}  # sha256 -> raw bytes
        self.added: list[str] = []
        self.serial = 0
        self.remember()

    def remember(self) -> dict[str, str]:
        state: dict[str, str] = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                raw = path.read_bytes()
                sha = hashlib.sha256(raw).hexdigest()
                self.versions[sha] = raw
                state[path.relative_to(self.root).as_posix()] = sha
        return state

    def paragraph(self) -> str:
        self.serial += 1
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(25, 60))]
        return f"Note {self.serial}: " + " ".join(words).capitalize() + ". It matters for an AI career."

    def change(self) -> str:
        """Change the corpus in one of four ways; return what was done."""
        kinds = ["append", "add"] + (["rewrite", "delete"] if self.added else [])
        kind = self.rng.choice(kinds)
        if kind == "append":
            path = self.rng.choice(sorted(self.root.rglob("*.txt")) + sorted(self.root.rglob("*.md")))
            path.chmod(0o644)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(f"\n\nExtra Section {self.serial}\n\n{self.paragraph()}\n")
        elif kind == "add":
            name = f"notes/added-{self.serial}.md"
            (self.root / "notes").mkdir(exist_ok=True)
            body = "\n\n".join(self.paragraph() for _ in range(self.rng.randint(1, 4)))
            (self.root / name).write_text(f"# Added {self.serial}\n\n{body}\n", encoding="utf-8")
            self.added.append(name)
        elif kind == "rewrite":
            name = self.rng.choice(self.added)
            (self.root / name).write_text(f"# Rewritten\n\n{self.paragraph()}\n", encoding="utf-8")
        else:
            name = self.added.pop(self.rng.randrange(len(self.added)))
            (self.root / name).unlink()
        return kind


# --------------------------------------------------------------------------- checks


def lock_is_free(index_dir: Path) -> bool:
    lock = index_dir / ".lock"
    if not lock.exists():
        return True
    with open(lock) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
    return True


def check_index(
    settings: Any, embedder: Any, corpus: Corpus, allowed: dict[str, dict[str, str]]
) -> tuple[str, dict[str, str]]:
    """Load, verify and query the index; return which allowed state it holds and that state.

    Raises AssertionError (or any error of careerqa) when something is wrong.
    """
    from careerqa.engine.core import Engine
    from careerqa.index.faiss_store import IndexStore
    from careerqa.ingest.corpus import load_document
    from careerqa.ingest.headings import by_embedder, restore_headings
    from tests.fakes import FakeGenerator

    store = IndexStore.load(settings.index_dir, embedder.name, embedder.dim)
    manifest = store.manifest
    held = {rel: entry.sha256 for rel, entry in manifest.files.items()}
    which = next((name for name, state in allowed.items() if state == held), None)
    assert which is not None, f"the index holds a corpus state that never existed: {sorted(held)}"
    assert list(manifest.chunk_ids or ()) == sorted(store.chunks), "manifest and chunk table disagree"
    listed = {cid for entry in manifest.files.values() for cid in entry.chunk_ids}
    assert listed == set(store.chunks), "the files' chunks are not the index's chunks"
    for rel, entry in manifest.files.items():
        # the document as the index chunked it: with the flattened list titles put back (ingest/headings.py)
        doc = restore_headings(load_document(rel, corpus.versions[entry.sha256]), by_embedder(embedder))
        for cid in entry.chunk_ids:
            chunk = store.chunks[cid]
            assert chunk.source == rel and chunk.text in doc.text, f"chunk {cid} is not in {rel}"

    def echo(messages: list[dict[str, str]]) -> str:
        found = re.search(r"<passage[^>]*>\n(.*?)\n</passage>", messages[-1]["content"], re.S)
        first = re.split(r"(?<=[.!?])\s", found.group(1))[0] if found else "Nothing."
        return first.rstrip(".") + " [1]."

    engine = Engine(settings, embedder=embedder, generator=FakeGenerator(echo), auto_sync=False)
    hits = engine.search("what skills do I need for an AI career")
    assert hits and all(h.chunk.chunk_id in store.chunks for h in hits), "search found nothing"
    answer = engine.ask("which maths should I learn for machine learning?")
    assert all(c.hit.chunk.chunk_id in store.chunks for c in answer.citations)
    return which, held


def leftovers(index_dir: Path) -> list[str]:
    """Temporary files and data files the manifest does not name."""
    manifest = json.loads((index_dir / "manifest.json").read_text())
    named = {manifest[k] for k in ("vectors_file", "sentences_file", "chunks_file")}
    return sorted(
        p.name
        for p in index_dir.iterdir()
        if p.name.endswith(".tmp")
        or (p.name.startswith(("vectors-", "sentences-", "chunks-")) and p.name not in named)
    )


# --------------------------------------------------------------------------- the runs


class Runner:
    def __init__(self, args: argparse.Namespace, corpus_dir: Path, index_dir: Path, logs: Path) -> None:
        self.args = args
        self.corpus_dir, self.index_dir, self.logs = corpus_dir, index_dir, logs
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        # The index's own commit is under test; passage KV caches (minutes with the LLM) only when asked.
        self.env.setdefault("CAREERQA_KV_CACHE", "off")
        self.runs = 0

    def command(self) -> list[str]:
        where = ["--corpus", str(self.corpus_dir), "--index-dir", str(self.index_dir)]
        if self.args.embedder == "fake":
            return [sys.executable, str(Path(__file__).resolve()), "--child", *where]
        return [sys.executable, "-m", "careerqa", "index", *where]

    def start(self) -> tuple[subprocess.Popen[bytes], Path]:
        self.runs += 1
        log = self.logs / f"run-{self.runs:03d}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=self.env)
        return proc, log

    def complete(self) -> tuple[int, float, str]:
        t = time.perf_counter()
        proc, log = self.start()
        rc = proc.wait(timeout=900)
        return rc, time.perf_counter() - t, log.read_text(errors="replace")[-2000:]

    def kill(self, mode: str, duration: float, rng: random.Random) -> tuple[bool, float]:
        """Start a run and SIGKILL it; return (killed while running, seconds after start)."""
        before = set(os.listdir(self.index_dir))
        proc, _ = self.start()
        t = time.perf_counter()
        if mode == "random":
            deadline = t + rng.uniform(0.05, duration)
            while time.perf_counter() < deadline and proc.poll() is None:
                time.sleep(0.002)
        else:  # "save": right after the run writes its first new file into the index folder
            while proc.poll() is None and not (set(os.listdir(self.index_dir)) - before - {".lock"}):
                time.sleep(0.001)
            time.sleep(rng.uniform(0, self.args.save_window))
        at = time.perf_counter() - t
        running = proc.poll() is None
        if running:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        return running, at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs that must land on a running index")
    parser.add_argument("--embedder", choices=["real", "fake"], default="real")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--complete-every", type=int, default=3, help="a full run after every N kills")
    parser.add_argument(
        "--save-window", type=float, default=0.03, help="seconds after the first new file to kill within"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "crash.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        run_child(rest)
        return 0

    from careerqa.config import Settings
    from careerqa.embed.loader import load_embedder

    rng = random.Random(args.seed)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="careerqa-crash-"))
    corpus_dir, index_dir, logs = tmp / "corpus", tmp / "index", tmp / "logs"
    shutil.copytree(REPO / "corpus", corpus_dir)
    logs.mkdir()
    for path in corpus_dir.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    corpus = Corpus(corpus_dir, rng)
    embedder: Any = HashEmbedder() if args.embedder == "fake" else load_embedder("all-MiniLM-L6-v2")
    settings = Settings.from_env(
        corpus_dir=corpus_dir, index_dir=index_dir, embedder=embedder.name, cache_dir=tmp / "cache"
    )
    runner = Runner(args, corpus_dir, index_dir, logs)
    result: dict[str, Any] = {
        "embedder": embedder.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "seed": args.seed,
        "kills_wanted": args.kills,
        "kills": 0,
        "kills_by_mode": {"random": 0, "save": 0},
        "runs_finished_before_the_kill": 0,
        "after_kill": {"lock_free": 0, "loads_ok": 0, "searches_and_answers_ok": 0},
        "index_held": {"previous_state": 0, "new_state": 0},
        "kills_leaving_orphan_files": 0,
        "completed_runs": 0,
        "completed_runs_ok": 0,
        "lost_data": 0,
        "failures": [],
        "unexpected_errors": [],
    }
    failures: list[str] = result["failures"]

    rc, duration, out = runner.complete()
    assert rc == 0, f"the first build failed:\n{out}"
    result["first_build_seconds"] = round(duration, 2)
    held = corpus.remember()
    check_index(settings, embedder, corpus, {"new": held})
    corpus.change()
    rc, duration, out = runner.complete()  # an incremental run: how long a killed run would take
    assert rc == 0, f"the incremental build failed:\n{out}"
    result["incremental_run_seconds"] = round(duration, 2)
    held = corpus.remember()

    rounds = 0
    kill_log: list[dict[str, Any]] = []
    while result["kills"] < args.kills and rounds < 4 * args.kills:
        rounds += 1
        change = corpus.change()
        new_state = corpus.remember()
        mode = "save" if rounds % 2 == 0 else "random"
        running, at = runner.kill(mode, duration * 1.1, rng)
        entry: dict[str, Any] = {"round": rounds, "change": change, "mode": mode, "at_s": round(at, 3)}
        kill_log.append(entry)
        if not running:
            result["runs_finished_before_the_kill"] += 1
            entry["killed"] = False
        else:
            result["kills"] += 1
            result["kills_by_mode"][mode] += 1
            entry["killed"] = True
        if lock_is_free(index_dir):
            result["after_kill"]["lock_free"] += 1
        else:
            failures.append(f"round {rounds}: the write lock is still held after the kill")
        try:
            which, loaded = check_index(settings, embedder, corpus, {"previous": held, "new": new_state})
        except AssertionError as exc:
            failures.append(f"round {rounds}: {exc}")
            result["lost_data"] += 1
            continue
        except Exception as exc:  # a careerqa error or a bug: either way the index did not serve
            result["unexpected_errors"].append(f"round {rounds}: {type(exc).__name__}: {exc}")
            entry["traceback"] = traceback.format_exc(limit=5)
            continue
        entry["index_holds"] = which
        result["after_kill"]["loads_ok"] += 1
        result["after_kill"]["searches_and_answers_ok"] += 1
        result["index_held"]["previous_state" if which == "previous" else "new_state"] += 1
        if running and leftovers(index_dir):
            result["kills_leaving_orphan_files"] += 1
            entry["orphans"] = len(leftovers(index_dir))
        held = loaded
        if running and result["kills"] % args.complete_every == 0:
            rc, _, out = runner.complete()
            result["completed_runs"] += 1
            state = corpus.remember()
            try:
                assert rc == 0, f"exit {rc}: {out[-500:]}"
                which, held = check_index(settings, embedder, corpus, {"current": state})
                assert not leftovers(index_dir), f"left behind: {leftovers(index_dir)}"
                result["completed_runs_ok"] += 1
            except Exception as exc:
                failures.append(f"round {rounds}: the run after the kill did not complete: {exc}")

    rc, seconds, out = runner.complete()
    final: dict[str, Any] = {"exit_code": rc, "seconds": round(seconds, 2)}
    try:
        assert rc == 0, out[-500:]
        check_index(settings, embedder, corpus, {"current": corpus.remember()})
        final["leftover_files"] = leftovers(index_dir)
        assert not final["leftover_files"], "temporary or orphaned files were left behind"
        final["ok"] = True
    except Exception as exc:
        final["ok"] = False
        failures.append(f"final run: {type(exc).__name__}: {exc}")
    result["final_run"] = final
    result["rounds"] = rounds
    result["files_in_final_corpus"] = len(corpus.remember())
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["kill_log"] = kill_log
    ok = (
        not failures
        and not result["unexpected_errors"]
        and result["kills"] >= args.kills
        and result["after_kill"]["loads_ok"] == rounds
    )
    result["ok"] = ok
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "kill_log"}
    print(json.dumps(summary, indent=2))
    if ok:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    else:
        print(f"logs kept in {tmp}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
