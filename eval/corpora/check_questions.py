"""Check the eval corpora's question files against the text careerqa indexes.

For every corpus under ``eval/corpora/<name>/`` (``corpus/`` and ``questions.jsonl``), each
answerable question's evidence quote must occur, exactly as the scorer matches it (a substring of a
chunk's text, case and whitespace as they are: ``careerqa.evals.scoring.score_retrieval``), in some
chunk that careerqa indexes: by default the chunks careerqa's own loader and chunker make, less the
page chrome the index leaves out (``careerqa.index.sync.index_chunks``, without the embedder's heading
repair); with ``--index-root DIR``, the chunks of the index built in ``DIR/<name>`` (``careerqa index
--corpus eval/corpora/<name>/corpus --index-dir DIR/<name> --no-passage-kv``), exactly as searched.

Also errors: a duplicate id, a split other than dev/test, an unknown category, an unanswerable
question with evidence or facts, an answerable one without facts. Warnings (exit 0): a key fact that
is not in any chunk holding the evidence (the text may word it otherwise), and a dev and a test
question answered by the same chunk (tuning on the one would help the other).

    python eval/corpora/check_questions.py                      # every corpus; exit 1 on an error
    python eval/corpora/check_questions.py pandas-doc
    python eval/corpora/check_questions.py --index-root /tmp/evalidx
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from careerqa.config import Settings  # noqa: E402
from careerqa.index.sync import index_chunks  # noqa: E402
from careerqa.ingest.corpus import load_corpus  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "test")
CATEGORIES = ("direct", "paraphrase", "informal", "multi_fact", "yes_no_caveat", "criteria", "unanswerable")


def corpus_chunks(folder: Path, index_root: Path | None) -> list[str]:
    """The chunk texts of ``folder``'s corpus: from a built index when ``index_root`` is given."""
    if index_root is not None:
        index_dir = index_root / folder.name
        manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
        table = (index_dir / manifest["chunks_file"]).read_text(encoding="utf-8")
        return [json.loads(line)["text"] for line in table.splitlines() if line.strip()]
    settings = Settings()
    docs, _ = load_corpus(folder / "corpus")
    return [c.text for d in docs for c in index_chunks(d, settings)]


def check(folder: Path, index_root: Path | None = None) -> int:
    chunks = corpus_chunks(folder, index_root)
    lines = (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    errors = 0

    def error(message: str) -> None:
        nonlocal errors
        print(f"{folder.name}: {message}")
        errors += 1

    for item_id, n in Counter(i["id"] for i in items).items():
        if n > 1:
            error(f"{item_id}: id used {n} times")
    split_of_chunk: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        if item.get("split") not in SPLITS:
            error(f"{item['id']}: split {item.get('split')!r} is not one of {SPLITS}")
        if item.get("category") not in CATEGORIES:
            error(f"{item['id']}: category {item.get('category')!r} is not one of {CATEGORIES}")
        if not item["answerable"]:
            if item["evidence"] or item["facts"]:
                error(f"{item['id']}: an unanswerable question has evidence or facts")
            continue
        if not item["facts"]:
            error(f"{item['id']}: an answerable question has no key facts")
        holding = [n for n, c in enumerate(chunks) if any(q in c for q in item["evidence"])]
        if not holding:
            error(f"{item['id']}: no chunk holds {item['evidence']}")
            continue
        for n in holding:
            split_of_chunk[n][item["split"]].append(item["id"])
        for group in item["facts"]:
            if not any(s.lower() in chunks[n].lower() for s in group for n in holding):
                print(f"{folder.name}: {item['id']}: warning: fact {group} is not in the evidence chunk")
    for by_split in split_of_chunk.values():
        if len(by_split) > 1:
            print(f"{folder.name}: warning: dev {by_split['dev']} and test {by_split['test']} share a chunk")

    counts = Counter((i["split"], i["category"]) for i in items)
    source = f"index {index_root / folder.name}" if index_root else "loader"
    print(f"{folder.name}: {len(items)} questions, {len(chunks)} chunks ({source})")
    for split in SPLITS:
        row = {c: counts[(split, c)] for c in CATEGORIES if counts[(split, c)]}
        print(f"  {split}: {sum(row.values())}  {row}")
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="corpora to check (default: every one)")
    parser.add_argument("--index-root", type=Path, help="check the chunks of the index in DIR/<name>")
    args = parser.parse_args()
    names = args.names or sorted(p.name for p in HERE.iterdir() if (p / "questions.jsonl").exists())
    errors = sum(check(HERE / name, args.index_root) for name in names)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
