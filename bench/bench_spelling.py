"""Spelling correction against the corpus vocabulary: careerqa's rapidfuzz corrector vs symspellpy.

Synthetic misspellings of corpus words (one random edit for words of 4-5 letters, one or two from
6: a deletion, insertion, substitution or transposition; fixed seed) are corrected by both, with the
same vocabulary and frequencies and the same distance limits. Reports accuracy (the original word
back), how often a correct word was changed (on the unmisspelt words), and the median time per word
over ``--runs`` runs, each library timed in the same process, interleaved; plus the load average.

    python bench/bench_spelling.py                    # → bench/results/spelling.json
    python bench/bench_spelling.py --words 200 --runs 1   # smoke run

symspellpy is optional (``pip install symspellpy==6.10.1``); without it only careerqa's is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from careerqa.ingest.corpus import load_corpus  # noqa: E402
from careerqa.text.spelling import SpellingCorrector, max_distance  # noqa: E402
from careerqa.text.tokens import surface_words  # noqa: E402


def misspell(word: str, rng: random.Random) -> str:
    for _ in range(max(1, min(2, max_distance(word)) if len(word) >= 8 else 1)):
        i = rng.randrange(len(word))
        kind = rng.choice("disx")
        letter = rng.choice(string.ascii_lowercase)
        if kind == "d" and len(word) > 3:
            word = word[:i] + word[i + 1 :]
        elif kind == "i":
            word = word[:i] + letter + word[i:]
        elif kind == "s":
            word = word[:i] + letter + word[i + 1 :]
        elif i + 1 < len(word):
            word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "spelling.json")
    args = parser.parse_args()

    documents, _ = load_corpus(args.corpus)
    counts: Counter[str] = Counter()
    for doc in documents:
        counts.update(surface_words(doc.text))
    vocab = [w for w in counts if w.isalpha() and len(w) >= 4]
    rng = random.Random(14)
    targets = [rng.choice(vocab) for _ in range(args.words)]
    typos = [misspell(w, rng) for w in targets]
    clean = [rng.choice(vocab) for _ in range(args.words)]

    ours = SpellingCorrector(counts)
    variants = {"careerqa (rapidfuzz)": lambda w: ours.correct_word(w) or w}
    try:
        from symspellpy import SymSpell, Verbosity

        sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for word, n in counts.items():
            sym.create_dictionary_entry(word, n)

        def symspell(word: str) -> str:
            limit = max_distance(word)
            if not limit or word in counts:
                return word
            found = sym.lookup(word, Verbosity.TOP, max_edit_distance=limit)
            return found[0].term if found else word

        variants["symspellpy"] = symspell
    except ImportError:
        print("symspellpy is not installed: measuring careerqa's corrector only", file=sys.stderr)

    results: dict[str, dict[str, float]] = {}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, fix in variants.items():  # interleaved, same process
            if name.startswith("careerqa"):
                ours._cache.clear()
            t0 = time.perf_counter()
            fixed = [fix(w) for w in typos]
            times[name].append((time.perf_counter() - t0) / len(typos) * 1e6)
            results[name] = {
                "accuracy": round(sum(f == t for f, t in zip(fixed, targets, strict=True)) / len(targets), 3),
                "changed_correct_words": sum(fix(w) != w for w in clean),
            }
    for name in variants:
        results[name]["median_us_per_word"] = round(statistics.median(times[name]), 1)
    report = {
        "words": args.words,
        "runs": args.runs,
        "vocabulary": len(counts),
        "load_average": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
