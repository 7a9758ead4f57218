"""Print the Markdown tables of bench/RESULTS.md ("Index at scale") from bench_scale.py's JSON files.

python bench/scale_tables.py bench/results/scale.json bench/results/scale-1m.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from careerqa.index.vector_index import nprobe_for


def best(sweep: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The cheapest sweep point with recall@10 >= 0.95."""
    ok = [p for p in sweep if p["recall_at_10"] >= 0.95]
    return min(ok, key=lambda p: p[key]) if ok else None


SEARCH_VARIANTS = {
    "embed_baseline": "embed the query, as before (encode, 2 threads) — **baseline**",
    "embed_cold_all_threads": "embed, new path, 2 threads, not cached",
    "embed_cold": "embed, new path, 1 thread, not cached",
    "dense_baseline": "dense-only search, as before (the old README figure)",
    "hybrid_cold": "**`Retriever.search`, 3 rankings, query not cached**",
    "hybrid_warm": "`Retriever.search`, query vector cached",
}


def search_table(files: list[tuple[str, dict[str, Any]]]) -> None:
    """bench_index.py's search variants, one column group per file."""
    head = " | ".join(f"{Path(p).stem}: p50 ms | p95 ms | CPU p50 ms | p50 / baseline" for p, _ in files)
    print(f"| variant | {head} |")
    print("|---|" + "---|" * 4 * len(files))
    for key, label in SEARCH_VARIANTS.items():
        cells = []
        for _, d in files:
            p50, base = d[f"search_{key}_ms_p50"], d["search_embed_baseline_ms_p50"]
            cells.append(
                f"{p50} | {d[f'search_{key}_ms_p95']} | {d[f'search_{key}_cpu_ms_p50']} | {p50 / base:.3f}"
            )
        print(f"| {label} | {' | '.join(cells)} |")
    loads = ", ".join(f"{Path(p).stem} {d['load_average_1m_before_after_search']}" for p, d in files)
    print(f"\nLoad average (1 min) before and after the search passes: {loads}.")


def main(paths: list[str]) -> None:
    vectors, bm25 = [], []
    searches = [(p, json.loads(Path(p).read_text())) for p in paths]
    searches = [(p, d) for p, d in searches if "search_embed_baseline_ms_p50" in d]
    if searches:
        search_table(searches)
        return
    for path in paths:
        data = json.loads(Path(path).read_text())
        vectors += [{**v, "file": Path(path).stem} for v in data["vectors"]]
        bm25 += data["bm25"]

    print(
        "| vectors | kind | index | params | build s (CPU s) | memory MB | p50 ms (CPU) | p95 ms (CPU) "
        "| recall@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    vectors.sort(key=lambda v: v["vectors"])  # stable: the files' order within a size
    for v in vectors:
        n, kind = f"{v['vectors']:,}", f"{v['kind']} ({v['file']})"
        e = v["exact"]
        print(
            f"| {n} | {kind} | exact | FlatIP | {e['build_s']} ({e['build_cpu_s']}) | {e['memory_mb']} "
            f"| {e['p50_ms']} ({e['cpu_p50_ms']}) | {e['p95_ms']} ({e['cpu_p95_ms']}) | 1 |"
        )
        ivf = v["ivf"]
        for p in ivf["sweep"]:
            chosen = p["nprobe"] == nprobe_for(ivf["nlist"])  # the default of the code as it is now
            ok = best(ivf["sweep"], "cpu_p50_ms")
            mark = " **≥0.95, cheapest**" if ok is p else ""
            if not (chosen or ok is p or p["nprobe"] in (16, 64, 128, 256)):
                continue
            print(
                f"| {n} | {kind} | IVF-Flat | nlist {ivf['nlist']}, nprobe {p['nprobe']}"
                f"{' (default)' if chosen else ''} | {ivf['build_s']} ({ivf['build_cpu_s']}) "
                f"| {ivf['memory_mb']} | {p['p50_ms']} ({p['cpu_p50_ms']}) "
                f"| {p['p95_ms']} ({p['cpu_p95_ms']}) | {p['recall_at_10']}{mark} |"
            )
        if "hnsw" in v:
            h = v["hnsw"]
            ok = best(h["sweep"], "cpu_p50_ms")
            for p in h["sweep"]:
                if not (ok is p or p["efSearch"] in (16, 64, 256)):
                    continue
                mark = " **≥0.95, cheapest**" if ok is p else ""
                print(
                    f"| {n} | {kind} | HNSW-Flat | M 32, efC 40, efSearch {p['efSearch']} "
                    f"| {h['build_s']} ({h['build_cpu_s']}) | {h['memory_mb']} | {p['p50_ms']} "
                    f"({p['cpu_p50_ms']}) | {p['p95_ms']} ({p['cpu_p95_ms']}) | {p['recall_at_10']}{mark} |"
                )
    print()
    print(
        "| chunks | words | BM25 | build s (CPU s) | memory MB | p50 ms (CPU) | p95 ms (CPU) | top-30 same |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for b in bm25:
        for name, label in (("dict_baseline", "dict postings (baseline)"), ("numpy", "numpy postings")):
            r = b[name]
            same = b["same_top30_rankings"] if name == "numpy" else ""
            print(
                f"| {b['chunks']:,} | {b['words']:,} | {label} | {r['build_s']} ({r['build_cpu_s']}) "
                f"| {r['memory_mb']} | {r['p50_ms']} ({r['cpu_p50_ms']}) | {r['p95_ms']} ({r['cpu_p95_ms']}) "
                f"| {same} |"
            )
        print(
            f"| | | ratio numpy / baseline | | | {b['p50_ratio_numpy_vs_baseline']} "
            f"({b['cpu_p50_ratio_numpy_vs_baseline']}) | | |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
