"""Ablation of the answer path's named rules (``careerqa/answer/rules.py``) on the pooled dev splits.

For the baseline (every rule on) and for each rule turned off alone (``CAREERQA_RULES_OFF``), every
dev question of every corpus is answered through ``bench/replay_answers.py``: model replies already
recorded are replayed (greedy decoding: the same prompt gives the same reply), new prompts (a retry
that did not happen before, a question the FAQ route answered) go to the real model and are
recorded. The corpora: the seed (``eval/questions.jsonl``) and those of ``eval/corpora/``. Scores are
pooled over all of them (each question counts once) and given per corpus.

A rule earns its place when turning it off costs something on the pooled dev splits: fewer key facts
or cited evidence, more false refusals, fewer refused unanswerable questions. Test splits are never
read here.

    python bench/ablate_rules.py                        # all rules; bench/results/ablation-dev.json
    python bench/ablate_rules.py --rules answering_line,cited_entry
    python bench/ablate_rules.py --setting focus_rescue_coverage=0.5,0.25,0   # a threshold instead

Each corpus needs an index first (``careerqa index --corpus … --index-dir …``); ``--index-root``
names the folder holding one per corpus (``seed``, ``pandas-doc``, ``r-manuals``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from careerqa.answer.rules import RULES  # noqa: E402
from careerqa.evals.scoring import summarize  # noqa: E402

METRICS = ("key_fact_recall", "evidence_cited", "false_abstention_rate", "abstention_rate")


def corpora(index_root: Path) -> dict[str, dict[str, Path]]:
    found = {"seed": {"set": ROOT / "eval" / "questions.jsonl", "corpus": ROOT / "corpus"}}
    for folder in sorted((ROOT / "eval" / "corpora").iterdir()):
        if (folder / "questions.jsonl").exists():
            found[folder.name] = {"set": folder / "questions.jsonl", "corpus": folder / "corpus"}
    for name, paths in found.items():
        paths["index"] = index_root / name
    return found


def run(name: str, paths: dict[str, Path], extra: dict[str, str], out: Path) -> dict:
    env = {**os.environ, "CAREERQA_KV_CACHE": "off", "HF_HUB_OFFLINE": "1", **extra}
    cmd = [
        sys.executable, str(ROOT / "bench" / "replay_answers.py"), "--split", "dev",
        "--set", str(paths["set"]), "--corpus", str(paths["corpus"]), "--index-dir", str(paths["index"]),
        "--out", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text(encoding="utf-8"))


def configs(rules: str, setting: str | None) -> list[tuple[str, dict[str, str]]]:
    """(label, environment) of each run: the first is the baseline the others are compared with."""
    if setting is None:
        return [("baseline", {"CAREERQA_RULES_OFF": ""})] + [
            (r, {"CAREERQA_RULES_OFF": r}) for r in rules.split(",")
        ]
    name, values = setting.split("=", 1)
    variable = "CAREERQA_" + name.upper()
    return [(f"{name}={v}" if i else "baseline", {variable: v}) for i, v in enumerate(values.split(","))]


def scores(records: list[dict]) -> dict:
    summary = summarize(records)
    return {m: summary.get(m) for m in METRICS} | {"rules_fired": summary.get("rules_fired", {})}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", default=",".join(RULES), help="rules to ablate, comma-separated")
    parser.add_argument("--setting", default=None, help="NAME=V1,V2,...: compare values of one setting")
    parser.add_argument("--index-root", type=Path, default=Path("/tmp/careerqa-eval-indexes"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ablation-dev.json")
    args = parser.parse_args()
    sets = corpora(args.index_root)
    scratch = args.out.parent / "ablation-runs"
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: dict[str, dict] = {}
    answers: dict[str, dict[str, str]] = {}
    for label, extra in configs(args.rules, args.setting):
        pooled: list[dict] = []
        per_corpus = {}
        for name, paths in sets.items():
            report = run(name, paths, extra, scratch / f"{label}-{name}.json")
            pooled.extend(report["records"])
            per_corpus[name] = scores(report["records"])
            per_corpus[name]["generated"] = report["generated"]
        answers[label] = {r["id"]: r["answer"]["answer"] for r in pooled}
        changed = sum(answers[label][k] != v for k, v in answers["baseline"].items())
        rows[label] = {"pooled": scores(pooled), "corpora": per_corpus, "answers_changed": changed}
        print(label, json.dumps(rows[label]["pooled"] | {"changed": changed}), file=sys.stderr, flush=True)
    report = {
        "split": "dev",
        "questions": len(answers["baseline"]),
        "corpora": list(sets),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(table(report))


def table(report: dict) -> str:
    """The ablation as Markdown: pooled scores, and the change against the baseline."""
    base = report["rows"]["baseline"]["pooled"]
    lines = [
        "| rule off | key facts | evidence cited | false refusals | unanswerable refused | answers changed |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in report["rows"].items():
        p = row["pooled"]
        cells = []
        for m in METRICS:
            delta = "" if label == "baseline" or p[m] is None else f" ({p[m] - base[m]:+.3f})"
            cells.append(f"{p[m]:.3f}{delta}" if p[m] is not None else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {row['answers_changed']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
