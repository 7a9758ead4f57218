"""Cold CLI processes and the warm server's /search, before and after the torch-free query path.

Variants, each a fresh `python -m careerqa` process per run, all interleaved run by run:
- ``before``: the code of the commit before the ONNX embedder was added (``git archive`` of
  ``--baseline-rev``, by default the parent of the commit that added src/careerqa/onnx_embedding.py),
  with an index it builds itself;
- ``torch``: this code with ``CAREERQA_EMBEDDER_BACKEND=torch`` (the torch path kept as a fallback);
- ``after``: this code as it ships (ONNX Runtime embedder);
- ``server``: this code with ``--server URL`` to a warm ``careerqa serve`` of this code.
Commands: ``--help``, ``search``, ``ask`` on an FAQ question (answered without the language model) and
``ask`` on a question that is generated (timed separately, ``--generated-runs``). For a generated
answer the JSON's ``timings_ms.generate`` is its generation time (prompt reading included) and the
overhead is wall time minus that. Then ``/search`` of a warm server of ``before`` and of ``after``:
``--queries`` new queries one at a time after 10 untimed, p50/p95 over HTTP (keep-alive).

    python bench/bench_cold.py [--runs 5] [--generated-runs 5] [--queries 60]

Writes bench/results/cold.json (medians, ratios to ``before``, routes, load averages). "Cold" is a new
process; the files are in the page cache (every run reads the same ones). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAQ_QUESTION = "Do I really need a PhD to land a good AI role?"
GENERATED_QUESTION = "Which cloud platforms should I learn?"
SEARCH_QUERY = "which python library is used for data analysis"


def baseline_rev() -> str:
    added = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "log",
            "--diff-filter=A",
            "--format=%H",
            "--",
            "src/careerqa/onnx_embedding.py",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("cannot find the commit that added onnx_embedding.py; pass --baseline-rev")
    return added[-1] + "^"


def export_src(rev: str, dest: Path) -> Path:
    """``src/`` of ``rev`` under ``dest`` (git archive: nothing of the work tree)."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


class Variant:
    def __init__(self, name: str, src: Path, root: Path, env: dict[str, str], extra: list[str]) -> None:
        self.name, self.src, self.root, self.extra = name, src, root, extra
        self.env = {
            **os.environ,
            "PYTHONPATH": str(src),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **env,
        }
        self.env.pop("CAREERQA_SERVER_URL", None)

    def run(self, *args: str, options: bool = True) -> tuple[float, str]:
        cmd = [sys.executable, "-m", "careerqa", *args, *(self.extra if options else [])]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(
                f"{self.name}: {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        return wall, proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> dict[str, Any]:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {data[:300]!r}")
    result: dict[str, Any] = json.loads(data)
    return result


class Server:
    def __init__(self, variant: Variant) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(variant.root / f"serve-{self.port}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "careerqa", "serve", "--port", str(self.port)],
            cwd=variant.root,
            env=variant.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 600
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server of {variant.name} exited; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def warm_search(server: Server, queries: list[str]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    for i in range(10):
        post(conn, "/search", {"query": f"warm-up query number {i} about AI careers"})
    times = []
    for query in queries:
        t = time.perf_counter()
        post(conn, "/search", {"query": query})
        times.append((time.perf_counter() - t) * 1000)
    conn.close()
    times.sort()
    return {
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, int(round(0.95 * len(times))) - 1)], 2),
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each fast command per variant")
    parser.add_argument("--generated-runs", type=int, default=5, help="0 skips the generated answer")
    parser.add_argument("--queries", type=int, default=60, help="timed /search queries per server")
    parser.add_argument("--baseline-rev", default=None, help="git revision of 'before'")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cold.json")
    args = parser.parse_args()
    rev = args.baseline_rev or baseline_rev()
    started = time.perf_counter()
    meta: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "baseline_rev": rev, "load": {}}
    meta["load"]["start"] = load()

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        base = Path(tmp)
        old_src = export_src(rev, base / "before")
        roots = {}
        for name in ("before", "after"):
            roots[name] = base / f"root-{name}"
            shutil.copytree(REPO / "corpus", roots[name] / "corpus")
        here = REPO / "src"
        variants = {
            "before": Variant("before", old_src, roots["before"], {}, []),
            "torch": Variant("torch", here, roots["after"], {"CAREERQA_EMBEDDER_BACKEND": "torch"}, []),
            "after": Variant("after", here, roots["after"], {}, []),
        }
        for name in ("before", "after"):  # each code builds its own index (and the ONNX file, once)
            print(f"indexing with {name} …", flush=True)
            variants[name].run("index")

        server = Server(variants["after"])
        variants["server"] = Variant("server", here, roots["after"], {}, ["--server", server.url])
        commands = {
            "help": ["--help"],
            "search": ["search", SEARCH_QUERY, "--json"],
            "ask_faq": ["ask", FAQ_QUESTION, "--json"],
        }
        walls: dict[str, dict[str, list[float]]] = {v: {c: [] for c in commands} for v in variants}
        routes: dict[str, set[str]] = {v: set() for v in variants}
        for run in range(args.runs):
            for vname, variant in variants.items():
                for cname, cargs in commands.items():
                    if vname == "server" and cname == "help":
                        continue
                    wall, out = variant.run(*cargs, options=cname != "help")
                    walls[vname][cname].append(wall)
                    if cname == "ask_faq":
                        routes[vname].add(json.loads(out)["route"])
            print(f"run {run + 1}/{args.runs} done (load {load()})", flush=True)
        meta["load"]["after_fast_commands"] = load()

        generated: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for _ in range(args.generated_runs):
            for vname, variant in variants.items():
                wall, out = variant.run("ask", GENERATED_QUESTION, "--json")
                answer = json.loads(out)
                gen = answer["timings_ms"].get("generate", 0.0) / 1000
                generated[vname].append(
                    {"wall": wall, "generate": gen, "overhead": wall - gen, "route": answer["route"]}
                )
        meta["load"]["after_generated"] = load()

        warm = {"after": warm_search(server, questions(args.queries))}
        server.stop()
        old_server = Server(variants["before"])
        warm["before"] = warm_search(old_server, questions(args.queries))
        old_server.stop()
        meta["load"]["end"] = load()

    def med(values: list[float]) -> float | None:
        return round(statistics.median(values), 3) if values else None

    cold: dict[str, Any] = {}
    for vname in variants:
        row: dict[str, Any] = {c: med(walls[vname][c]) for c in commands if walls[vname][c]}
        runs = generated[vname]
        if runs:
            row["ask_generated"] = med([r["wall"] for r in runs])
            row["ask_generated_generate_s"] = med([r["generate"] for r in runs])
            row["ask_generated_overhead_s"] = med([r["overhead"] for r in runs])
            row["generated_routes"] = sorted({str(r["route"]) for r in runs})
        row["faq_routes"] = sorted(routes[vname])
        cold[vname] = row
    for row in cold.values():
        row["vs_before"] = {
            c: round(row[c] / cold["before"][c], 3)
            for c in ("help", "search", "ask_faq", "ask_generated")
            if row.get(c) and cold["before"].get(c)
        }
    meta["runs"], meta["generated_runs"] = args.runs, args.generated_runs
    meta["cpu_count"] = os.cpu_count()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    result = {"cold_seconds_median": cold, "warm_search": warm, "raw": {"walls": walls}, "meta": meta}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"cold_seconds_median": cold, "warm_search": warm, "load": meta["load"]}, indent=1))
    print(f"wrote {args.out}")


def questions(n: int) -> list[str]:
    """``n`` different eval questions, new to a fresh server (its query cache is cold)."""
    lines = (REPO / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["question"] for line in lines if line.strip()))[:n]


if __name__ == "__main__":
    main()
