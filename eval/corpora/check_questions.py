"""Check the eval corpora's question files against the text careerqa indexes.

For every corpus under ``eval/corpora/<name>/`` (``corpus/`` and ``questions.jsonl``), each
answerable question's evidence quote must occur, exactly as the scorer matches it (a substring of a
chunk's text, ``careerqa.evals.scoring``), in some chunk that careerqa's own loader and chunker make;
and each key fact should occur in a chunk holding the evidence (a warning otherwise: a fact may be
worded differently by the text). Unanswerable questions must have no evidence and no facts.

    python eval/corpora/check_questions.py            # every corpus; exit 1 on a missing quote
    python eval/corpora/check_questions.py pandas-doc
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from careerqa.config import Settings  # noqa: E402
from careerqa.ingest.chunking import chunk_document  # noqa: E402
from careerqa.ingest.corpus import load_corpus  # noqa: E402


def check(folder: Path) -> int:
    settings = Settings()
    docs, _ = load_corpus(folder / "corpus")
    chunks = [
        c.text for d in docs for c in chunk_document(d, settings.chunk_min_words, settings.chunk_max_words)
    ]
    items = [
        json.loads(line) for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    errors = 0
    for item in items:
        if not item["answerable"]:
            if item["evidence"] or item["facts"]:
                print(f"{item['id']}: an unanswerable question has evidence or facts")
                errors += 1
            continue
        holding = [c for c in chunks if any(q in c for q in item["evidence"])]
        if not holding:
            print(f"{item['id']}: no chunk holds {item['evidence']}")
            errors += 1
            continue
        for group in item["facts"]:
            if not any(s.lower() in c.lower() for s in group for c in holding):
                print(f"{item['id']}: warning: fact {group} is not in the evidence chunk")
    counts = Counter((i["split"], i["category"]) for i in items)
    print(f"{folder.name}: {len(items)} questions, {len(chunks)} chunks; {dict(sorted(counts.items()))}")
    return errors


def main() -> None:
    names = sys.argv[1:] or sorted(
        p.name for p in Path(__file__).parent.iterdir() if (p / "questions.jsonl").exists()
    )
    errors = sum(check(Path(__file__).parent / name) for name in names)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
