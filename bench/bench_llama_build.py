"""Prompt and output tokens/s of llama-cpp-python builds with different CPU flags, on this machine.

Each build (a wheel made by ``scripts/install_llama.sh --wheel-only`` with ``CAREERQA_LLAMA_CPU`` =
avx2, avx512 or native) is installed into its own folder under /tmp and run in child processes,
round-robin so that a change in machine load hits every build alike. Each child first runs the same
one-token check as ``careerqa.generate.llama_check`` would (a build that dies of a signal is recorded as such,
not timed), then reads a fixed ~300-token prompt from the seed corpus and decodes 64 tokens greedily,
``--reps`` times after one warm-up. Results (medians, every sample, load averages, system info) go to
``bench/results/llama_build.json``; ratios are against the first build named (the portable default).

    python bench/bench_llama_build.py                       # avx2, avx512, native; 3 rounds x 3 reps
    python bench/bench_llama_build.py --builds avx2 avx512 --rounds 5

Run it on a quiet machine: nothing else running (2 cores), and the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from careerqa.config import Settings  # noqa: E402
from careerqa.generate.llama_check import cpu_info  # noqa: E402
from careerqa.generate.model_files import ensure_model  # noqa: E402

CHILD = r"""
import json, sys, time
import llama_cpp
model = sys.argv[1]
n_prompt, n_out, reps, threads = (int(a) for a in sys.argv[2:6])
text = open(sys.argv[6], encoding="utf-8").read()
info = llama_cpp.llama_print_system_info()
info = (info.decode() if isinstance(info, bytes) else str(info)).strip()
print(json.dumps({"system_info": info}), flush=True)
llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads,
                      verbose=False)
tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)[:n_prompt]
for rep in range(reps + 1):  # the first is a warm-up
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(tokens)
    t1 = time.perf_counter()
    for _ in range(n_out):
        tok = llm.sample(top_k=1)
        llm.eval([tok])
    t2 = time.perf_counter()
    if rep:
        sample = {"prompt_tps": len(tokens) / (t1 - t0), "output_tps": n_out / (t2 - t1)}
        print(json.dumps(sample), flush=True)
"""


def wheel_for(profile: str) -> Path:
    out = subprocess.run(
        [str(REPO / "scripts" / "install_llama.sh"), "--wheel-only"],
        env={**os.environ, "CAREERQA_LLAMA_CPU": profile},
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def install(profile: str) -> Path:
    wheel = wheel_for(profile)
    target = Path("/tmp") / f"careerqa-bench-llama-{profile}-{wheel.parent.name}"
    if not (target / "llama_cpp").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
            check=True,
        )
    return target


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--builds", nargs="+", default=["avx2", "avx512", "native"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "llama_build.json")
    args = parser.parse_args()

    settings = Settings.from_env()
    model = ensure_model(settings.generator, settings.cache_dir, progress=True)
    threads = os.cpu_count() or 1
    prompt_file = REPO / "corpus" / "skills-required-for-ai-jobs.txt"
    targets = {b: install(b) for b in args.builds}
    samples: dict[str, list[dict[str, float]]] = {b: [] for b in args.builds}
    info: dict[str, str] = {}
    failures: dict[str, str] = {}
    load_before = os.getloadavg()
    for round_no in range(args.rounds):
        for build in args.builds:
            if build in failures:
                continue
            env = {**os.environ, "PYTHONPATH": str(targets[build])}
            cmd = [sys.executable, "-c", CHILD, str(model), str(args.prompt_tokens), str(args.output_tokens),
                   str(args.reps), str(threads), str(prompt_file)]  # fmt: skip
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
            if lines and "system_info" in lines[0]:
                info[build] = lines.pop(0)["system_info"]
            if proc.returncode != 0:
                how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
                failures[build] = f"died ({how}): {proc.stderr.strip()[-300:]}"
                print(f"{build}: {failures[build]}", file=sys.stderr)
                continue
            samples[build].extend(lines)
            print(f"round {round_no + 1} {build}: " + ", ".join(
                f"{s['prompt_tps']:.1f}/{s['output_tps']:.1f}" for s in lines), file=sys.stderr)  # fmt: skip
    load_after = os.getloadavg()

    base = args.builds[0]
    results = {}
    for build in args.builds:
        if not samples[build]:
            results[build] = {"error": failures.get(build, "no samples"), "system_info": info.get(build)}
            continue
        p = statistics.median(s["prompt_tps"] for s in samples[build])
        o = statistics.median(s["output_tps"] for s in samples[build])
        results[build] = {"prompt_tps_median": round(p, 2), "output_tps_median": round(o, 2),
                          "samples": samples[build], "system_info": info.get(build),
                          "error": failures.get(build)}  # fmt: skip
    if samples[base]:
        bp = results[base]["prompt_tps_median"]
        bo = results[base]["output_tps_median"]
        for r in results.values():
            if "prompt_tps_median" in r:
                r["prompt_ratio_vs_" + base] = round(r["prompt_tps_median"] / bp, 3)
                r["output_ratio_vs_" + base] = round(r["output_tps_median"] / bo, 3)
    out = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_info().as_dict(),
        "threads": threads,
        "model": settings.generator,
        "prompt_tokens": args.prompt_tokens,
        "output_tokens": args.output_tokens,
        "rounds": args.rounds,
        "reps_per_round": args.reps,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "builds": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for build, r in results.items():
        if "prompt_tps_median" in r:
            pr, orr = r["prompt_ratio_vs_" + base], r["output_ratio_vs_" + base]
            print(f"{build:8s} prompt {r['prompt_tps_median']:7.1f} tok/s ({pr:.2f}x)  "
                  f"output {r['output_tps_median']:6.1f} tok/s ({orr:.2f}x)")  # fmt: skip
        else:
            print(f"{build:8s} {r['error']}")
    print(f"load average before {load_before}, after {load_after}; results in {args.out}")


if __name__ == "__main__":
    main()
