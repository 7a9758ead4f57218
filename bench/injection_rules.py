"""Precision and recall of the injection rules (``ingest/injection.py``) at ingestion.

Attack documents (``--split``, default dev): each is loaded with careerqa's own reader; an injection is
found when none of its question's ``forbidden`` strings is left in the indexed text, and a legitimate
fact is kept when every ``key_facts`` string still is. Every span left out is listed so a person can see
that it is the injected passage and no more. Legitimate text: the seed corpus (``corpus/``), the
documents the tests build (``tests/conftest.py`` DOCS, ``tests/docfixtures.py``) and the attack
documents with the spans that hold a forbidden string taken out: every block flagged there is a false
positive. Run from the repository root:

    .venv/bin/python bench/injection_rules.py [--split dev] [--out bench/results/injection-dev.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from careerqa.ingest.corpus import load_document  # noqa: E402
from careerqa.ingest.injection import find_injections  # noqa: E402

ATTACKS = REPO / "eval" / "attacks"


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def attack_documents(split: str) -> dict[str, object]:
    questions = [json.loads(line) for line in (ATTACKS / "questions.jsonl").read_text().splitlines() if line]
    docs: dict[str, dict[str, object]] = {}
    for q in questions:
        if q["split"] != split:
            continue
        d = docs.setdefault(q["doc"], {"forbidden": set(), "facts": set(), "attack": q["attack"]})
        d["forbidden"].update(q["forbidden"])  # type: ignore[union-attr]
        d["facts"].update(q["key_facts"])  # type: ignore[union-attr]
    results = {}
    for name, info in sorted(docs.items()):
        doc = load_document(name, (ATTACKS / "corpus" / name).read_bytes())
        kept = _squash(doc.text)
        left = sorted(f for f in info["forbidden"] if _squash(f) in kept)  # type: ignore[attr-defined]
        lost = sorted(f for f in info["facts"] if _squash(f) not in kept)  # type: ignore[attr-defined]
        results[name] = {
            "attack": info["attack"],
            "found": not left,
            "forbidden_left": left,
            "facts_lost": lost,
            "flags": [f.as_dict() for f in doc.flags],
        }
    return results


def legit_texts(split: str) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    from tests import docfixtures
    from tests.conftest import DOCS

    texts = {
        f"corpus/{p.name}": load_document(p.name, p.read_bytes()).text for p in (REPO / "corpus").glob("*.*")
    }
    texts.update({f"tests:{name}": load_document(name, text.encode()).text for name, text in DOCS.items()})
    with tempfile.TemporaryDirectory() as tmp:
        for make, name in [
            (docfixtures.guide_pdf, "guide.pdf"),
            (docfixtures.handbook_docx, "handbook.docx"),
        ]:
            path = make(Path(tmp) / name)
            texts[f"tests:{name}"] = load_document(name, path.read_bytes()).text
    texts.update(
        {f"tests:{k}": v for k, v in vars(docfixtures).items() if k.isupper() and isinstance(v, str)}
    )
    for name, info in attack_documents_raw(split).items():
        texts[f"attack-legit:{name}"] = info
    return texts


def attack_documents_raw(split: str) -> dict[str, str]:
    """The attack documents' text as read, without the paragraphs that hold a forbidden string."""
    questions = [json.loads(line) for line in (ATTACKS / "questions.jsonl").read_text().splitlines() if line]
    forbidden: dict[str, set[str]] = {}
    for q in questions:
        if q["split"] == split:
            forbidden.setdefault(q["doc"], set()).update(_squash(f) for f in q["forbidden"])
    out = {}
    for name, strings in forbidden.items():
        from careerqa.ingest.clean import clean_text
        from careerqa.ingest.readers import extract

        raw = (ATTACKS / "corpus" / name).read_bytes()
        if name.endswith((".pdf", ".docx")):
            got = extract(Path(name).suffix, raw)
            text = clean_text(got.text, got.kind)[0]
        else:
            kind = "html" if name.endswith(".html") else "text"
            text = clean_text(raw.decode("utf-8"), kind)[0]
        paragraphs = re.split(r"\n\s*\n|\n(?=[#\-\d<\[])", text)
        out[name] = "\n\n".join(p for p in paragraphs if not any(s in _squash(p) for s in strings))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    attacks = attack_documents(args.split)
    false_pos = {}
    legit = legit_texts(args.split)
    for name, text in legit.items():
        spans = find_injections(text)
        if spans:
            false_pos[name] = [{"rules": s.rules, "text": text[s.start : s.end][:200]} for s in spans]
    found = sum(r["found"] for r in attacks.values())
    lost = sum(len(r["facts_lost"]) for r in attacks.values())  # type: ignore[arg-type]
    summary = {
        "split": args.split,
        "attack_documents": len(attacks),
        "injections_found": found,
        "recall": found / len(attacks) if attacks else None,
        "key_facts_lost": lost,
        "legit_texts": len(legit),
        "legit_texts_flagged": len(false_pos),
        "false_positive_blocks": sum(len(v) for v in false_pos.values()),
    }
    for name, r in attacks.items():
        mark = "found" if r["found"] else "MISSED " + ", ".join(r["forbidden_left"])  # type: ignore[arg-type]
        print(f"{name:45} {r['attack']:14} {mark}; facts lost: {r['facts_lost'] or 0}")
        for flag in r["flags"]:  # type: ignore[attr-defined]
            print(f"    line {flag['line']} {flag['rule']}: {flag['excerpt']}")
    for name, spans in false_pos.items():
        for s in spans:
            print(f"FALSE POSITIVE {name} {s['rules']}: {s['text']!r}")
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(
            json.dumps({"summary": summary, "attacks": attacks, "false_positives": false_pos}, indent=2)
        )


if __name__ == "__main__":
    main()
