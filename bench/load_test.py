"""Load: many clients on /search, /chat (JSON and SSE) and /v1/chat/completions while the corpus
changes and /reindex runs again and again. Nothing may fail but documented back-pressure, and no
response may mix two index versions.

The server is ``careerqa.web.app`` under uvicorn in a subprocess (so its memory is measured alone), over a
copy of the shipped corpus in a temporary folder. By default its models are stand-ins: a hashed
bag-of-words embedder and a generator that streams a fixed cited answer over 0.5-2 s (the real LLM
answers one question per tens of seconds on these CPUs; this measures the server, not the model).
``--embedder real`` and ``--generator real`` put the packaged models in.

While the clients run, a mutator thread changes the corpus every few seconds (adds a file with a
unique marker word, rewrites a section of a file, deletes a file it added), calls ``POST /reindex``
with the admin token, and reads the committed index from disk: the chunk ids of every version. Then:

- every response is 200, or 503 with ``Retry-After`` and a JSON error (the documented queue limit);
- every stream ends (``end`` event, or ``[DONE]``) and carries an ``index_version``;
- every chunk id in a response (results, citations, retrieved passages) belongs to the version the
  response names: a response that holds a chunk of another version only is "mixed";
- after each reindex, a search for the new marker finds it, and a deleted file's marker is gone
  ("lost" data otherwise), and the reindex report names the files changed;
- the server's RSS, sampled every 2 s, stays flat (its slope after warm-up is reported).

    python bench/load_test.py                                    # 20 clients, 120 s
    python bench/load_test.py --clients 8 --duration 10 --out /tmp/load.json   # quick

Writes ``bench/results/load.json``; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOKEN = "load-test-admin-token"
FAKE_EMBEDDER = "fake-bow"
ANSWER = "Employers look for Python, statistics and hands-on work with machine learning frameworks [1]."
MARKER_WORDS = "zorblat quenfix myxoral trivenda plumerix skandor velotrix ombrique fendaxo kilmora".split()
# Share of requests per kind; the rest of the clients' time goes to /search, which does not queue.
MIX = {"search": 0.45, "chat": 0.2, "chat_sse": 0.2, "openai": 0.075, "openai_sse": 0.075}


@dataclass
class Config:
    duration: float = 120.0
    clients: int = 20
    reindex_every: float = 4.0  # seconds between corpus changes, on average
    answer_min: float = 0.5  # seconds one fake answer takes to stream
    answer_max: float = 2.0
    queue_size: int = 4
    embedder: str = "fake"  # or "real"
    generator: str = "sleep"  # or "real"
    corpus: Path = REPO / "corpus"
    out: Path | None = REPO / "bench" / "results" / "load.json"
    seed: int = 7
    rss_every: float = 2.0


# --- the server side (run in a subprocess: ``load_test.py --serve CONFIG.json``) ---------------------


def _serve(spec: dict[str, Any]) -> None:
    import uvicorn

    from careerqa.config import Settings
    from careerqa.embed.embedding import Embedder
    from careerqa.engine.core import Engine, IndexView
    from careerqa.generate.base import Generator
    from careerqa.text.tokens import tokenize
    from careerqa.web.app import create_app

    class HashEmbedder(Embedder):
        """Stemmed words hashed into buckets: texts that share words get similar vectors."""

        name, dim = FAKE_EMBEDDER, 256

        def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            for row, text in enumerate(texts):
                for token in tokenize(text):
                    out[row, int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dim] += 1.0
                norm = np.linalg.norm(out[row])
                out[row] = out[row] / norm if norm else out[row]
                if not norm:
                    out[row, 0] = 1.0
            return out

    class SleepyGenerator(Generator):
        """Streams ``ANSWER`` word by word over a random time between ``low`` and ``high`` seconds."""

        name = "sleepy"

        def __init__(self, low: float, high: float) -> None:
            self.low, self.high = low, high

        def stream(
            self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
        ) -> Iterator[str]:
            words = ANSWER.split()
            pause = random.uniform(self.low, self.high) / len(words)
            for word in words:
                time.sleep(pause)
                yield word + " "

    versions_log = Path(spec["versions_log"])

    class LoggingEngine(Engine):
        """Writes each index version the server loads, with its chunk ids (a cross-check)."""

        seen: set[str] = set()

        def view(self) -> IndexView:
            view = super().view()
            if view.version not in self.seen:
                self.seen.add(view.version)
                line = json.dumps({"version": view.version, "chunk_ids": sorted(view.store.chunks)})
                with versions_log.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
            return view

    overrides: dict[str, Any] = {
        "corpus_dir": Path(spec["corpus_dir"]),
        "index_dir": Path(spec["index_dir"]),
        "cache_dir": Path(spec["cache_dir"]),
        "admin_token": TOKEN,
        "queue_size": spec["queue_size"],
    }
    if spec["embedder"] == "fake":
        overrides.update(embedder=FAKE_EMBEDDER, min_dense_score=0.2)
    settings = Settings.from_env(**overrides)
    embedder = HashEmbedder() if spec["embedder"] == "fake" else None
    generator = (
        SleepyGenerator(spec["answer_min"], spec["answer_max"]) if spec["generator"] == "sleep" else None
    )
    engine = LoggingEngine(settings, embedder=embedder, generator=generator, show_model_progress=False)
    app = create_app(settings, engine=engine)
    uvicorn.run(app, host="127.0.0.1", port=spec["port"], log_level="warning", timeout_keep_alive=30)


# --- the client side ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    status: int
    seconds: float
    version: str | None = None
    chunk_ids: list[str] = field(default_factory=list)
    problem: str | None = None  # a failure: what was wrong


class BadResponse(Exception):
    pass


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    if not value.isdigit() or int(value) < 1:
        raise BadResponse(f"503 without a valid Retry-After: {value!r}")
    body = response.json()
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    if not (isinstance(message, str) and message):
        raise BadResponse(f"503 without an error message: {body!r}")
    return float(value)


def _ids(answer: dict[str, Any]) -> tuple[str, list[str]]:
    version = answer.get("index_version")
    if not isinstance(version, str):
        raise BadResponse("no index_version")
    ids = [h["chunk_id"] for h in answer.get("citations", []) + answer.get("retrieved", [])]
    return version, ids


def _sse_blocks(response: httpx.Response) -> Iterator[dict[str, str]]:
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.strip():
                yield dict(line.split(": ", 1) for line in block.splitlines())
    if buffer.strip():
        raise BadResponse(f"a stream ended mid-event: {buffer[:80]!r}")


def do_search(client: httpx.Client, question: str, rng: random.Random) -> Outcome:
    response = client.post("/search", json={"query": question, "top_k": rng.randint(1, 10)})
    if response.status_code != 200:
        return Outcome("search", response.status_code, 0, problem=response.text[:200])
    body = response.json()
    return Outcome("search", 200, 0, body["index_version"], [r["chunk_id"] for r in body["results"]])


def _not_ok(kind: str, response: httpx.Response) -> Outcome | None:
    """The outcome of a response that is not a 200 (a documented 503 or a failure), else None."""
    if response.status_code == 200:
        return None
    response.read()
    if response.status_code == 503:
        return Outcome(kind, 503, _retry_after(response))
    return Outcome(kind, response.status_code, 0, problem=response.text[:200])


def do_chat(client: httpx.Client, question: str, rng: random.Random, stream: bool) -> Outcome:
    kind = "chat_sse" if stream else "chat"
    payload = {"question": question, "stream": stream}
    with client.stream("POST", "/chat", json=payload) as response:
        refused = _not_ok(kind, response)
        if refused is not None:
            return refused
        if not stream:
            response.read()
            version, ids = _ids(response.json())
            return Outcome(kind, 200, 0, version, ids)
        kinds, citations, end = [], None, None
        for block in _sse_blocks(response):
            kinds.append(block["event"])
            data = json.loads(block["data"])
            if block["event"] == "citations":
                citations = data["citations"]
            elif block["event"] == "end":
                end = data
            elif block["event"] == "error":
                raise BadResponse(f"error event: {data}")
    if end is None or kinds[-1] != "end" or kinds[-2] != "citations":
        raise BadResponse(f"the stream did not end with citations, end: {kinds[-3:]}")
    if citations != end["citations"]:
        raise BadResponse("the citations event and the end event disagree")
    version, ids = _ids(end)
    return Outcome(kind, 200, 0, version, ids)


def do_openai(client: httpx.Client, question: str, rng: random.Random, stream: bool) -> Outcome:
    kind = "openai_sse" if stream else "openai"
    payload = {"model": "careerqa", "messages": [{"role": "user", "content": question}], "stream": stream}
    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        refused = _not_ok(kind, response)
        if refused is not None:
            return refused
        if not stream:
            response.read()
            version, ids = _ids(response.json()["careerqa"])
            return Outcome(kind, 200, 0, version, ids)
        lines = [block["data"] for block in _sse_blocks(response)]
    if not lines or lines[-1] != "[DONE]":
        raise BadResponse("the stream did not end with [DONE]")
    last = json.loads(lines[-2])
    if last["choices"][0]["finish_reason"] != "stop" or "careerqa" not in last:
        raise BadResponse(f"the last chunk is not the final one: {lines[-2][:200]}")
    version, ids = _ids(last["careerqa"])
    return Outcome(kind, 200, 0, version, ids)


@dataclass
class Shared:
    """What the threads record; lists are only appended to (atomic under the GIL)."""

    outcomes: list[Outcome] = field(default_factory=list)
    versions: dict[str, set[str]] = field(default_factory=dict)  # from the index on disk
    reindexes: list[dict[str, Any]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # a change the reindex did not bring in
    stale: list[str] = field(default_factory=list)  # a deleted file still found
    questions: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def client_loop(url: str, shared: Shared, seed: int) -> None:
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    with httpx.Client(base_url=url, timeout=120) as client:
        while not shared.stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            question = rng.choice(shared.questions)
            started = time.perf_counter()
            try:
                if kind == "search":
                    outcome = do_search(client, question, rng)
                elif kind.startswith("chat"):
                    outcome = do_chat(client, question, rng, stream=kind == "chat_sse")
                else:
                    outcome = do_openai(client, question, rng, stream=kind == "openai_sse")
            except (BadResponse, httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
                outcome = Outcome(kind, -1, 0, problem=f"{type(exc).__name__}: {exc}"[:300])
            retry_after = outcome.seconds if outcome.status == 503 else 0.0
            outcome.seconds = time.perf_counter() - started
            shared.outcomes.append(outcome)
            if retry_after:  # back off as told, a little less, so the queue stays under pressure
                shared.stop.wait(min(retry_after, rng.uniform(0.2, 1.0)))


# --- the corpus mutator --------------------------------------------------------------------------------


def load_versions(index_dir: Path, embedder: str, dim: int) -> tuple[str, set[str]]:
    """The committed index on disk: its version id and chunk ids."""
    from careerqa.index.faiss_store import IndexStore

    store = IndexStore.load(index_dir, embedder, dim)
    return store.manifest.version, set(store.chunks)


def mutator_loop(
    url: str, cfg: Config, corpus: Path, index_dir: Path, shared: Shared, dims: tuple[str, int]
) -> None:
    rng = random.Random(cfg.seed + 1000)
    added: dict[str, str] = {}  # file name -> its marker word
    original = sorted(p.name for p in corpus.iterdir() if p.is_file())
    round_ = 0
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while not shared.stop.wait(rng.uniform(0.5, 1.5) * cfg.reindex_every):
            round_ += 1
            marker = f"{rng.choice(MARKER_WORDS)}{round_}"
            action = rng.choice(["add", "add", "rewrite", "delete"] if added else ["add", "rewrite"])
            expect: dict[str, list[str]] = {"files_added": [], "files_changed": [], "files_removed": []}
            gone: str | None = None
            if action == "add":
                name = f"load-{round_:04d}.md"
                (corpus / name).write_text(_doc(marker, rng), encoding="utf-8")
                added[name] = marker
                expect["files_added"] = [name]
            elif action == "rewrite":
                name = rng.choice(original + sorted(added))
                path = corpus / name
                text = path.read_text(encoding="utf-8").split("\n## Load note", 1)[0]
                path.write_text(
                    text.rstrip("\n") + f"\n\n## Load note\n\n{_doc(marker, rng)}", encoding="utf-8"
                )
                if name in added:
                    added[name] = marker
                expect["files_changed"] = [name]
            else:
                name = rng.choice(sorted(added))
                (corpus / name).unlink()
                gone = added.pop(name)
                expect["files_removed"] = [name]
            started = time.perf_counter()
            record: dict[str, Any] = {"round": round_, "action": action, "file": name}
            try:
                response = client.post("/reindex")
                record.update(status=response.status_code, seconds=round(time.perf_counter() - started, 3))
                body = response.json()
                if response.status_code != 200:
                    raise BadResponse(f"/reindex answered {response.status_code}: {body}")
                record["index_version"] = body["index_version"]
                for key, names in expect.items():
                    if body["report"][key] != names:
                        raise BadResponse(f"{key}: {body['report'][key]} != {names}")
                version, ids = load_versions(index_dir, *dims)
                shared.versions[version] = ids
                if version != body["index_version"]:
                    raise BadResponse(f"reindex says {body['index_version']}, the disk holds {version}")
                _check_marker(client, marker if action != "delete" else None, name, version, shared)
                if gone is not None:
                    _check_gone(client, gone, name, shared)
                shared.questions.append(f"{marker} tips")
            except (BadResponse, httpx.HTTPError, ValueError, KeyError, OSError) as exc:
                record["problem"] = f"{type(exc).__name__}: {exc}"[:300]
            shared.reindexes.append(record)


def _doc(marker: str, rng: random.Random) -> str:
    topic = rng.choice(["Python", "statistics", "MLOps", "interviews", "portfolios", "ethics"])
    return (
        f"# {marker.capitalize()} notes on {topic}\n\n"
        f"The {marker} checklist covers {topic} for AI jobs: practise every week, keep notes, and ask "
        f"a mentor about {marker} projects before applying.\n"
    )


def _check_marker(client: httpx.Client, marker: str | None, name: str, version: str, shared: Shared) -> None:
    if marker is None:
        return
    body = client.post("/search", json={"query": f"{marker} checklist", "top_k": 3}).json()
    if body["index_version"] != version:
        raise BadResponse(f"search after reindex answered from {body['index_version']}, not {version}")
    if not any(r["source"] == name and marker in r["text"] for r in body["results"]):
        shared.lost.append(f"{marker} in {name} not found after reindex to {version}")


def _check_gone(client: httpx.Client, marker: str, name: str, shared: Shared) -> None:
    body = client.post("/search", json={"query": f"{marker} checklist", "top_k": 10}).json()
    if any(r["source"] == name for r in body["results"]):
        shared.stale.append(f"deleted {name} still found after reindex")


# --- measuring and reporting -----------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else None


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1] * 1000, 1)}


def slope_per_min(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3:
        return None
    xs, ys = zip(*samples, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return round(60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var, 3) if var else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(cfg: Config) -> dict[str, Any]:
    """Run the load test; return the report (also written to ``cfg.out`` when set)."""
    root = Path(tempfile.mkdtemp(prefix="careerqa-load-"))
    try:
        return _run(cfg, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(cfg: Config, root: Path) -> dict[str, Any]:
    corpus, index_dir = root / "corpus", root / "index"
    shutil.copytree(cfg.corpus, corpus)
    port = free_port()
    spec = {
        "corpus_dir": str(corpus),
        "index_dir": str(index_dir),
        "cache_dir": str(root / "cache"),
        "versions_log": str(root / "versions.jsonl"),
        "queue_size": cfg.queue_size,
        "embedder": cfg.embedder,
        "generator": cfg.generator,
        "answer_min": cfg.answer_min,
        "answer_max": cfg.answer_max,
        "port": port,
    }
    log_path = root / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", json.dumps(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        health = _wait_healthy(url, server, timeout=600 if "real" in (cfg.embedder, cfg.generator) else 120)
        dims = (health["models"]["embedder"], _dim(cfg))
        shared = Shared()
        version, ids = load_versions(index_dir, *dims)
        shared.versions[version] = ids
        shared.questions.extend(_questions(corpus, random.Random(cfg.seed)))
        return _load(cfg, url, server, shared, corpus, index_dir, dims, root, log_path)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _dim(cfg: Config) -> int:
    if cfg.embedder == "fake":
        return 256
    from careerqa.engine.models import EMBEDDER_DIMS

    return EMBEDDER_DIMS["all-MiniLM-L6-v2"]


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before it was ready")
        try:
            response = httpx.get(f"{url}/health", timeout=5)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy in time")


def _questions(corpus: Path, rng: random.Random) -> list[str]:
    words = re.findall(r"[A-Za-z]{4,}", " ".join(p.read_text(encoding="utf-8") for p in corpus.glob("*")))
    out = []
    for _ in range(200):
        start = rng.randrange(max(1, len(words) - 8))
        out.append(" ".join(words[start : start + rng.randint(3, 8)]) + "?")
    return out


def _load(
    cfg: Config,
    url: str,
    server: subprocess.Popen[bytes],
    shared: Shared,
    corpus: Path,
    index_dir: Path,
    dims: tuple[str, int],
    root: Path,
    log_path: Path,
) -> dict[str, Any]:
    rss: list[tuple[float, float]] = []
    started = time.monotonic()
    threads = [
        threading.Thread(target=client_loop, args=(url, shared, cfg.seed + i), daemon=True)
        for i in range(cfg.clients)
    ]
    threads.append(
        threading.Thread(target=mutator_loop, args=(url, cfg, corpus, index_dir, shared, dims), daemon=True)
    )
    for t in threads:
        t.start()
    while time.monotonic() - started < cfg.duration:
        value = rss_mb(server.pid)
        if value is not None:
            rss.append((round(time.monotonic() - started, 1), round(value, 1)))
        time.sleep(min(cfg.rss_every, max(0.0, cfg.duration - (time.monotonic() - started))))
    shared.stop.set()
    for t in threads:
        t.join(timeout=180)
    wall = time.monotonic() - started
    value = rss_mb(server.pid)
    if value is not None:
        rss.append((round(wall, 1), round(value, 1)))
    still_running = sum(t.is_alive() for t in threads)
    return _report(cfg, shared, rss, wall, still_running, root, log_path)


def _report(
    cfg: Config,
    shared: Shared,
    rss: list[tuple[float, float]],
    wall: float,
    still_running: int,
    root: Path,
    log_path: Path,
) -> dict[str, Any]:
    outcomes = list(shared.outcomes)
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.kind].append(o)
    failures = [o for o in outcomes if o.status not in (200, 503)]
    mixed, unknown, versions_seen = [], [], Counter()
    for o in outcomes:
        if o.status != 200:
            continue
        versions_seen[o.version] += 1
        ids = shared.versions.get(o.version or "")
        if ids is None:
            unknown.append(o)
        elif not set(o.chunk_ids) <= ids:
            mixed.append(o)
    server_versions = _server_versions(root / "versions.jsonl")
    disagree = [v for v, ids in server_versions.items() if v in shared.versions and shared.versions[v] != ids]
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    server_errors = [line for line in log_text.splitlines() if "Traceback" in line or " ERROR" in line]
    reindex_failures = [r for r in shared.reindexes if "problem" in r]
    warm = [(t, v) for t, v in rss if t >= 0.2 * wall] or rss
    rss_values = [v for _, v in rss]
    memory = {
        "unit": "MiB",
        "start": rss_values[0] if rss_values else None,
        "after_warm_up": warm[0][1] if warm else None,
        "end": rss_values[-1] if rss_values else None,
        "max": max(rss_values) if rss_values else None,
        "slope_after_warm_up_per_min": slope_per_min(warm),
        "samples": rss,
    }
    growth = (memory["end"] or 0) - (memory["after_warm_up"] or 0)
    memory["growth_after_warm_up"] = round(growth, 1)
    # Flat: after warm-up, RSS grows by less than 10% of its size (and 32 MiB); leaks of a view per
    # reindex or a buffer per request would grow with the count of either, which runs to hundreds here.
    memory["flat"] = bool(rss_values) and growth < max(32.0, 0.1 * (memory["after_warm_up"] or 0))
    served = [o for o in outcomes if o.status == 200]
    checks = {
        "failed_requests": len(failures),
        "mixed_version_responses": len(mixed),
        "unknown_version_responses": len(unknown),
        "lost_data": len(shared.lost),
        "stale_data": len(shared.stale),
        "reindex_failures": len(reindex_failures),
        "server_errors_logged": len(server_errors),
        "server_and_disk_versions_disagree": len(disagree),
        "threads_still_running": still_running,
        "memory_flat": memory["flat"],
        "reindexes_done": len(shared.reindexes) - len(reindex_failures),
    }
    ok = (
        all(checks[k] == 0 for k in checks if k not in ("memory_flat", "reindexes_done"))
        and memory["flat"]
        and checks["reindexes_done"] > 0
        and len(served) > 0
    )
    report = {
        "ok": ok,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "wall_seconds": round(wall, 1),
        "checks": checks,
        "requests": {
            "total": len(outcomes),
            "served": len(served),
            "busy_503": sum(o.status == 503 for o in outcomes),
            "failed": len(failures),
            "per_second": round(len(served) / wall, 1) if wall else None,
        },
        "endpoints": {
            kind: {
                "requests": len(items),
                "status": dict(Counter(str(o.status) for o in items)),
                "latency_ms": percentiles([o.seconds for o in items if o.status == 200]),
                "latency_503_ms": percentiles([o.seconds for o in items if o.status == 503]),
            }
            for kind, items in sorted(by_kind.items())
        },
        "latency_ms_all_served": percentiles([o.seconds for o in served]),
        "index_versions": {
            "committed": len(shared.versions),
            "seen_in_responses": len(versions_seen),
            "loaded_by_server": len(server_versions),
            "responses_per_version": dict(versions_seen.most_common()),
        },
        "reindex": {
            "count": len(shared.reindexes),
            "actions": dict(Counter(r["action"] for r in shared.reindexes)),
            "latency_ms": percentiles([r["seconds"] for r in shared.reindexes if "seconds" in r]),
            "failures": reindex_failures[:20],
        },
        "memory": memory,
        "examples": {
            "failures": [asdict(o) for o in failures[:20]],
            "mixed": [asdict(o) for o in mixed[:10]],
            "unknown_version": [asdict(o) for o in unknown[:10]],
            "lost": shared.lost[:20],
            "stale": shared.stale[:20],
            "server_errors": server_errors[:20],
        },
    }
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _server_versions(path: Path) -> dict[str, set[str]]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        out[entry["version"]] = set(entry["chunk_ids"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run the server with this spec
    parser.add_argument("--duration", type=float, default=Config.duration, help="seconds of load")
    parser.add_argument("--clients", type=int, default=Config.clients, help="concurrent client threads")
    parser.add_argument(
        "--reindex-every", type=float, default=Config.reindex_every, help="seconds, on average"
    )
    parser.add_argument(
        "--answer-seconds", type=float, nargs=2, default=(Config.answer_min, Config.answer_max)
    )
    parser.add_argument("--queue-size", type=int, default=Config.queue_size)
    parser.add_argument("--embedder", choices=["fake", "real"], default="fake")
    parser.add_argument("--generator", choices=["sleep", "real"], default="sleep")
    parser.add_argument("--corpus", type=Path, default=Config.corpus)
    parser.add_argument("--out", type=Path, default=Config.out)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(json.loads(args.serve))
        return 0
    cfg = Config(
        duration=args.duration,
        clients=args.clients,
        reindex_every=args.reindex_every,
        answer_min=args.answer_seconds[0],
        answer_max=args.answer_seconds[1],
        queue_size=args.queue_size,
        embedder=args.embedder,
        generator=args.generator,
        corpus=args.corpus,
        out=args.out,
        seed=args.seed,
    )
    report = run(cfg)
    summary = {k: report[k] for k in ("ok", "wall_seconds", "checks", "requests", "latency_ms_all_served")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {cfg.out}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
