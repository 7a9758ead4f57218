"""Benchmark the packaged generators on this machine's CPU.

For each profile: load time, prompt processing of a ~600-token RAG-style prompt on a cold cache,
time to first token, decode speed over 128 greedy tokens (of a reply sure to be that long), and the
prompt time of a second call that shares only the system prompt with the first (llama.cpp reuses the
KV cache for it).
Medians of ``--runs`` runs (a fresh load each run) go to ``bench/results/generator.json``.

    python bench/bench_generator.py [--runs 3] [--profiles qwen2.5-coder-1.5b qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from careerqa.config import Settings
from careerqa.generate.llama import LlamaGenerator
from careerqa.generate.model_files import MODELS, ensure_model

RESULTS = Path(__file__).parent / "results" / "generator.json"

SYSTEM = """You are CareerQA, an assistant that answers questions about careers in artificial \
intelligence, data science and machine learning engineering. You answer only from the numbered \
passages given with the question. Follow these rules:
1. Every sentence of your answer must be supported by at least one passage, and must end with the \
number of that passage in square brackets, for example [2]. Cite several passages as [1][3].
2. Do not use knowledge that is not in the passages, even if you believe it to be true. Do not invent \
salaries, job titles, course names, companies, dates or statistics.
3. If the passages do not contain the answer, reply exactly: "I don't know based on the provided \
sources." and nothing else.
4. Be concise: answer in at most five sentences, in plain prose, without headings.
5. When passages disagree, say so and cite both sides.
6. Address the reader as "you" and keep a neutral, practical tone; do not give legal, medical or \
financial advice beyond what the passages say."""

PASSAGES_A = [
    "Machine learning engineers build, deploy and maintain models in production. Day to day they write "
    "Python, design data pipelines, containerise services and monitor model quality after release. Most "
    "job postings ask for experience with a deep learning framework such as PyTorch, with SQL, and with a "
    "cloud platform; a portfolio of shipped projects often counts for more than a specific degree.",
    "Data scientists spend much of their time on problem framing, exploratory analysis and communicating "
    "results to non-technical colleagues. Statistics, experiment design and clear writing are the skills "
    "hiring managers mention most often. Many people move into data science from analytics, economics, "
    "physics or software engineering after one or two years of self-study and project work.",
    "An entry-level path that works for many career changers: learn Python and SQL, finish two or three "
    "end-to-end projects on real data, publish them with a short write-up, and apply for analyst or junior "
    "roles that let you grow into modelling. Bootcamps can add structure but are not required; employers "
    "look at what you have built and how you explain your choices.",
    "Interviews for machine learning roles usually combine a coding round, a statistics or modelling round, "
    "a system design round about serving models at scale, and a conversation about past projects. "
    "Practising explaining a project end to end, including what went wrong, is the most common advice "
    "from hiring panels.",
    "Certificates from online courses help you structure your learning, but the recruiters interviewed for "
    "this guide said they rarely filter on them. They read the project descriptions on your CV and open your "
    "repositories; a clear README and tests in those repositories make a visible difference.",
]
PASSAGES_B = [
    "Research scientists in AI usually hold a PhD and publish at venues such as NeurIPS or ICML. Their work "
    "is to invent new methods rather than apply existing ones, and industry research labs hire far fewer "
    "of them than they hire engineers. A strong publication record and open-source code matter most.",
    "MLOps engineers specialise in the infrastructure around models: feature stores, training pipelines, "
    "model registries, continuous delivery and monitoring for drift. The role suits software and DevOps "
    "engineers who want to work closer to machine learning without becoming modelling specialists.",
    "Salaries vary widely by country, company size and seniority. The surveys cited in this corpus agree "
    "only that machine learning roles pay more on average than general software roles at the same level, "
    "and that remote roles attract many more applicants per opening.",
    "Applied scientists sit between research and engineering: they adapt published methods to a company's "
    "data and products. Job postings for applied scientists list a master's degree or PhD as preferred "
    "rather than required, and value experience running experiments on real user data.",
    "Many research labs run residency programmes of one or two years for people without a PhD who show "
    "strong mathematical ability and some research output, such as a workshop paper or a well-documented "
    "reproduction of a published result. Residents often go on to PhD programmes or research engineer roles.",
]
QUESTION_A = "How can I move from data analytics into machine learning engineering? Please answer in detail."
QUESTION_B = "Do I need a PhD to become a research scientist?"
# Decode speed is measured on a reply that is sure to be long: a RAG answer may stop after ten tokens.
DECODE = [{"role": "user", "content": "Count from 1 to 200 in words, separated by commas."}]


def messages(passages: list[str], question: str) -> list[dict[str, str]]:
    numbered = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"},
    ]


def timed_call(gen: LlamaGenerator, msgs: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    """One call: wall-clock first-token time and llama.cpp's own prompt/decode counters."""
    import llama_cpp

    ctx = gen._llama._ctx.ctx  # the bench may look inside; the library does not
    llama_cpp.llama_perf_context_reset(ctx)
    start = time.perf_counter()
    first = None
    text = []
    for piece in gen.stream(msgs, max_tokens=max_tokens):
        if first is None:
            first = time.perf_counter()
        text.append(piece)
    end = time.perf_counter()
    perf = llama_cpp.llama_perf_context(ctx)
    return {
        "prompt_tokens_evaluated": perf.n_p_eval,
        "prompt_ms": perf.t_p_eval_ms,
        "ttft_ms": ((first or end) - start) * 1000,
        "gen_tokens": perf.n_eval,
        "gen_tok_per_s": perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms else 0.0,
        "total_ms": (end - start) * 1000,
        "chars_out": float(len("".join(text))),
    }


def bench_profile(name: str, settings: Settings, runs: int) -> dict[str, Any]:
    path = ensure_model(name, settings.cache_dir)
    rows = []
    for _ in range(runs):
        start = time.perf_counter()
        gen = LlamaGenerator(path, settings, name=name)
        load_ms = (time.perf_counter() - start) * 1000
        msgs_a, msgs_b = messages(PASSAGES_A, QUESTION_A), messages(PASSAGES_B, QUESTION_B)
        tokens_a, tokens_b = prompt_tokens(gen, msgs_a), prompt_tokens(gen, msgs_b)
        shared = next(
            (i for i, (x, y) in enumerate(zip(tokens_a, tokens_b, strict=False)) if x != y), len(tokens_b)
        )
        token_counts = {"first": len(tokens_a), "second": len(tokens_b), "shared_prefix": shared}
        first = timed_call(gen, msgs_a, max_tokens=128)
        second = timed_call(gen, msgs_b, max_tokens=8)
        decode = timed_call(gen, DECODE, max_tokens=128)
        rows.append(
            {
                "load_ms": load_ms,
                "prompt_tokens": first["prompt_tokens_evaluated"],
                "prompt_ms": first["prompt_ms"],
                "prompt_tok_per_s": first["prompt_tokens_evaluated"] / (first["prompt_ms"] / 1000),
                "ttft_ms": first["ttft_ms"],
                "answer_tokens": first["gen_tokens"],
                "gen_tokens": decode["gen_tokens"],
                "gen_tok_per_s": decode["gen_tok_per_s"],
                "second_prompt_tokens_evaluated": second["prompt_tokens_evaluated"],
                "second_prompt_ms": second["prompt_ms"],
                "second_ttft_ms": second["ttft_ms"],
            }
        )
        gen.close()
    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    return {"median": median, "prompt_token_counts": token_counts, "runs": rows}


def prompt_tokens(gen: LlamaGenerator, msgs: list[dict[str, str]]) -> list[int]:
    """The tokens of ``msgs`` after the model's chat template, as llama-cpp-python renders it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = gen._llama
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token=""
    )
    text = formatter(messages=msgs).prompt  # type: ignore[arg-type]
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profiles", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    settings = Settings.from_env()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "threads": settings.threads or os.cpu_count(),
        "n_ctx": settings.n_ctx,
        "runs": args.runs,
        "load_average_before": os.getloadavg(),
        "profiles": {},
    }
    for name in args.profiles:
        results["profiles"][name] = bench_profile(name, settings, args.runs)
    results["load_average_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)

    header = (
        f"{'profile':<20} {'load s':>7} {'prompt tok':>10} {'prompt s':>8} {'TTFT s':>7} "
        f"{'gen tok':>7} {'gen tok/s':>9} {'2nd eval/total':>14} {'2nd prompt s':>12}"
    )
    print(
        f"medians of {args.runs} runs, {results['threads']} threads; load average before "
        f"{results['load_average_before'][0]:.2f}, after {results['load_average_after'][0]:.2f}"
    )
    print(header)
    for name, res in results["profiles"].items():
        m = res["median"]
        print(
            f"{name:<20} {m['load_ms'] / 1000:>7.2f} {m['prompt_tokens']:>10.0f} "
            f"{m['prompt_ms'] / 1000:>8.2f} "
            f"{m['ttft_ms'] / 1000:>7.2f} {m['gen_tokens']:>7.0f} {m['gen_tok_per_s']:>9.1f} "
            f"{m['second_prompt_tokens_evaluated']:>6.0f}/{res['prompt_token_counts']['second']:<7} "
            f"{m['second_prompt_ms'] / 1000:>12.2f}"
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
