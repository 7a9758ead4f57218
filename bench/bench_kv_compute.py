"""Computing one passage's KV cache per KV type: seconds per chunk, tokens per second, bytes per token.

One model, one stitched context per variant (f16 as llama.cpp runs it by default; f16 with flash
attention, to tell its cost from quantization's; q8_0 and q4_0, which need flash attention), the same
``--chunks`` passages of an index, after one untimed warm-up passage, on a quiet machine.

    python bench/bench_kv_compute.py --index-dir /tmp/evalidx/seed   # an index built with --no-passage-kv

Writes bench/results/kv-layouts/compute.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import llama_cpp  # noqa: E402

from careerqa.config import Settings  # noqa: E402
from careerqa.generate.kv_stitch import Stitcher  # noqa: E402
from careerqa.generate.llama import load_generator  # noqa: E402
from careerqa.generate.prompts import SYSTEM_PROMPT, passage_block  # noqa: E402
from careerqa.index.faiss_store import IndexStore  # noqa: E402

VARIANTS = [
    ("f16", "f16", False),
    ("f16+flash-attn", "f16", True),
    ("q8_0", "q8_0", True),
    ("q4_0", "q4_0", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "kv-layouts" / "compute.json"
    )
    args = parser.parse_args()
    store = IndexStore.load(args.index_dir, "all-MiniLM-L6-v2", 384)
    chunks = list(store.chunks.values())[: args.chunks]
    settings = Settings.from_env(kv_cache="stitch")
    generator = load_generator(settings, progress=False)
    report = {"load_before": os.getloadavg(), "chunks": len(chunks), "variants": {}}
    for name, kv_type, flash in VARIANTS:
        disabled = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        if flash:  # the Stitcher turns flash attention on for quantized types only
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        try:
            stitcher = Stitcher(
                generator._llama, None, "m", n_ctx=settings.kv_n_ctx, threads=2, kv_type=kv_type
            )
        finally:
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED = disabled
        stitcher.compute(SYSTEM_PROMPT, passage_block(chunks[0], 1) + "\n\n")  # warm-up
        times, tokens, sizes = [], [], []
        for chunk in chunks:
            t0 = time.perf_counter()
            n, blob = stitcher.compute(SYSTEM_PROMPT, passage_block(chunk, 1) + "\n\n")
            times.append(time.perf_counter() - t0)
            tokens.append(n)
            sizes.append(len(blob))
        report["variants"][name] = {
            "seconds_per_chunk_p50": round(statistics.median(times), 3),
            "tokens_per_second": round(sum(tokens) / sum(times), 1),
            "mean_tokens": round(sum(tokens) / len(tokens), 1),
            "bytes_per_token": round(sum(sizes) / sum(tokens)),
            "bytes_per_chunk": round(sum(sizes) / len(sizes)),
        }
        print(name, report["variants"][name], flush=True)
        stitcher.close()
    report["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
