"""Write an eval report: the JSON, a markdown summary and a chart of the scores per question category.

``scoring.run_eval`` scores the questions and ``build_report`` puts a header on the result; the rest
of this module only formats it. matplotlib (the ``chart`` extra) is imported when the chart is drawn
(Agg backend, no display needed); without it the report is written without the chart.
Not handled here: running anything, or printing (``cli/eval_cmds.py`` prints what ``format_table`` returns).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from careerqa.evals.failures import failure_kinds
from careerqa.evals.scoring import ANSWER_METRICS, RETRIEVAL_METRICS, EvalItem, Selection, retrieval_query

LATENCY_METRICS = ("latency_ms_p50", "latency_ms_p95")
# Per-category chart: the metrics that mean something for answerable and unanswerable categories.
CHART_METRICS = (
    "hit@5",
    "mrr",
    "context_precision@5",
    "key_fact_recall",
    "citation_recall",
    "citation_precision",
)
CHART_UNANSWERABLE = ("abstention_rate",)
NO_CHART = "matplotlib is not installed; pip install 'careerqa[chart]' to draw the chart"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


def _metrics(summary: dict[str, Any]) -> list[str]:
    keys = list(RETRIEVAL_METRICS)
    if "citation_recall" in summary:
        keys += [*ANSWER_METRICS, *LATENCY_METRICS]
    return keys


def format_table(report: dict[str, Any]) -> str:
    """The overall scores, then one row per category, as aligned plain text."""
    summary = report["summary"]
    lines = [
        f"{k:24} {_fmt(summary.get(k))}"
        for k in ("questions", "answerable", "unanswerable", *_metrics(summary))
    ]
    if "judge" in report:
        j = report["judge"]
        lines.append(
            f"{'judge agreement':24} {_fmt(j['accuracy'])} on {j['pairs']} pairs "
            f"(precision {_fmt(j['precision_supported'])}, recall {_fmt(j['recall_supported'])})"
        )
    cols = [k for k in _metrics(summary) if k not in LATENCY_METRICS]
    short = [
        k.replace("context_precision", "ctx_prec").replace("_rate", "").replace("citation_", "cit_")
        for k in cols
    ]
    lines += ["", f"{'category':12} {'n':>3} " + " ".join(f"{s:>11}" for s in short)]
    for name, cat in report["by_category"].items():
        lines.append(f"{name:12} {cat['questions']:>3} " + " ".join(f"{_fmt(cat.get(k)):>11}" for k in cols))
    failures = summary.get("failures") or {}
    if failures:
        lines += ["", f"{'failure kind':36} questions"]
        lines += [f"{kind:36} {count}" for kind, count in failures.items()]
    return "\n".join(lines)


def _md_header(report: dict[str, Any]) -> list[str]:
    summary, meta = report["summary"], report["meta"]
    return [
        f"# careerqa eval: {meta['name']}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Set: `{meta['set']}` (split: {meta['split']}), {summary['questions']} questions "
        f"({summary['answerable']} answerable, {summary['unanswerable']} unanswerable)  ",
        f"Mode: {meta['mode']}"
        + (f", generator {meta['generator']}" if meta.get("generator") else "")
        + "  ",
        f"Created: {meta['created']}",
        "",
        "## Scores",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(summary.get(k))} |" for k in _metrics(summary)],
    ]


def _md_judge(report: dict[str, Any]) -> list[str]:
    if "judge" not in report:
        return []
    j = report["judge"]
    return [
        "",
        "## Support judge",
        "",
        f"Agreement with {j['pairs']} hand-labelled pairs (`eval/judge_pairs.jsonl`): accuracy "
        f'{_fmt(j["accuracy"])}, precision of "supported" {_fmt(j["precision_supported"])}, recall '
        f"{_fmt(j['recall_supported'])} (confusion {j['confusion']}; disagreements: "
        f"{', '.join(j['disagreements']) or 'none'}). "
        f"Judge calls in this run: {report.get('judge_calls', 0)}.",
    ]


def _md_categories(report: dict[str, Any]) -> list[str]:
    cols = [k for k in _metrics(report["summary"]) if k not in LATENCY_METRICS]
    return [
        "",
        "## By category",
        "",
        "| category | n | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
        *[
            f"| {name} | {cat['questions']} | " + " | ".join(_fmt(cat.get(k)) for k in cols) + " |"
            for name, cat in report["by_category"].items()
        ],
    ]


def _md_failures(report: dict[str, Any]) -> list[str]:
    failures = report["summary"].get("failures") or {}
    if not failures:
        return []
    out = ["", "## Failure kinds", "", "| kind | questions | ids |", "|---|---|---|"]
    for kind, count in failures.items():
        ids = [r["id"] for r in report["records"] if kind in failure_kinds(r)]
        out.append(f"| {kind} | {count} | {', '.join(ids) or '–'} |")
    return out


def _md_misses(report: dict[str, Any]) -> list[str]:
    records = report["records"]
    missed = [r["id"] for r in records if r.get("retrieval") and not r["retrieval"]["hit@5"]]
    out = ["", f"Gold evidence not in the top 5: {', '.join(missed) or 'none'}."]
    if "citation_recall" in report["summary"]:
        false_abst = [r["id"] for r in records if r["answerable"] and r["answer"]["abstained"]]
        answered_unans = [r["id"] for r in records if not r["answerable"] and not r["answer"]["abstained"]]
        out += [
            f"Answerable but abstained: {', '.join(false_abst) or 'none'}.  ",
            f"Unanswerable but answered: {', '.join(answered_unans) or 'none'}.",
        ]
    return out


def _markdown(report: dict[str, Any], chart: str | None) -> str:
    out = _md_header(report) + _md_judge(report) + _md_categories(report) + _md_failures(report)
    out += ["", f"![scores per category]({chart})" if chart else f"No chart: {NO_CHART}."]
    out += _md_misses(report)
    out += [
        "",
        "Metric definitions: `src/careerqa/evals/scoring.py`; "
        "per-question records in the JSON beside this file.",
    ]
    return "\n".join(out) + "\n"


def draw_chart(report: dict[str, Any], path: Path) -> None:
    """A grouped bar chart: one group per category, one bar per metric that category has."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = (*CHART_METRICS, *CHART_UNANSWERABLE)
    cats = {n: c for n, c in report["by_category"].items() if any(c.get(m) is not None for m in shown)}
    metrics = [m for m in shown if any(c.get(m) is not None for c in cats.values())]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(cats)), 4.5))
    width = 0.8 / max(len(metrics), 1)
    for i, metric in enumerate(metrics):
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(cats))]
        ax.bar(xs, [c.get(metric) or 0.0 for c in cats.values()], width, label=metric)
    ax.set_xticks(range(len(cats)), [f"{name}\n(n={c['questions']})" for name, c in cats.items()], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(f"careerqa eval: {report['meta']['name']}")
    ax.legend(fontsize=7, ncol=min(len(metrics), 4), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>.png`` under ``out_dir``; return their paths.
    Without matplotlib (the ``chart`` extra) there is no ``.png``, and the markdown says why."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["meta"]["name"]
    json_path, md_path, png_path = (out_dir / f"{name}.{ext}" for ext in ("json", "md", "png"))
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        draw_chart(report, png_path)
    except ImportError:
        png_path.unlink(missing_ok=True)  # an old chart beside a new report would be misleading
        md_path.write_text(_markdown(report, None), encoding="utf-8")
        return [json_path, md_path]
    md_path.write_text(_markdown(report, png_path.name), encoding="utf-8")
    return [json_path, md_path, png_path]


def build_report(
    results: dict[str, Any],
    selection: Selection,
    items: Sequence[EvalItem],
    *,
    generator: str | None,
    command: str,
    name: str | None = None,
    judge: dict[str, Any] | None = None,
    judge_calls: int | None = None,
) -> dict[str, Any]:
    """The report of one run: ``results`` of ``run_eval`` under a ``meta`` header that says what ran.
    ``generator`` is None for a retrieval-only run."""
    sample = selection.per_category
    suffix = ("" if selection.split == "all" else f"-{selection.split}") + (
        f"-{sample}per-category" if sample else ""
    )
    meta = {
        "name": name or f"{selection.path.stem}{suffix}-{generator or 'retrieval'}",
        "command": command,
        "set": selection.path.as_posix(),
        "split": selection.split,
        "limit": len(items) if sample else selection.limit,  # a per-category sample is a limit too
        "per_category": sample,
        "mode": "retrieval-only" if generator is None else "full",
        "generator": generator,
        "retrieval_queries": {i.id: retrieval_query(i) for i in items if i.history},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return {
        "meta": meta,
        **({"judge": judge} if judge else {}),
        **({"judge_calls": judge_calls} if judge_calls is not None else {}),
        **results,
    }
