"""Compare PDF and Word readers on generated layouts; writes bench/results/readers.json.

PDF: pypdf (plain and layout mode) against pdfminer.six, each library's raw text, on the layouts of
``tests/docfixtures.py``: a four-page guide with running headers and footers and words hyphenated at
line ends; one two-column page written column by column, and one written row by row (the content stream
interleaves the columns, as many generators do). Quality is the word sequence against the text that was
written (difflib ratio, 1.0 = every word in order), plus how many header/footer lines and hyphen
fragments are left. Then careerqa's own reader (pdfminer.six + header/footer removal + de-hyphenation).
Word: careerqa's reader (python-docx → Markdown) against mammoth (→ HTML, when installed): headings,
list items and table rows found. Times are medians of ``--runs``, interleaved, with ratios to pypdf
(PDF) or careerqa's reader (Word) measured in the same process, and the load average recorded.

    python bench/bench_pdf_readers.py [--runs 5] [--pages 40]   # --out to write elsewhere
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the layouts are the tests' own

from careerqa.ingest import corpus  # noqa: E402
from careerqa.ingest.corpus import load_document  # noqa: E402
from tests import docfixtures as fx  # noqa: E402


def pypdf_plain(data: bytes) -> str:
    import pypdf

    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def pypdf_layout(data: bytes) -> str:
    import pypdf

    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return "\n".join(p.extract_text(extraction_mode="layout") for p in pages)


def pdfminer_six(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(io.BytesIO(data))


def careerqa_reader(data: bytes) -> str:
    corpus._BINARY_CACHE.clear()  # time the reading, not the cache of a long-running process
    return load_document("x.pdf", data).text.replace("# ", "")


PDF_READERS: dict[str, Callable[[bytes], str]] = {
    "pypdf": pypdf_plain,
    "pypdf-layout": pypdf_layout,
    "pdfminer.six": pdfminer_six,
    "careerqa (pdfminer.six + cleanup)": careerqa_reader,
}


def word_score(text: str, expected: list[str]) -> float:
    got = re.findall(r"[\w'’é-]+", text.lower())
    want = [w for w in re.findall(r"[\w'’é-]+", " ".join(expected).lower())]
    return round(difflib.SequenceMatcher(None, got, want, autojunk=False).ratio(), 4)


def pdf_layouts(folder: Path, pages: int) -> dict[str, tuple[bytes, list[str]]]:
    guide_words = [w for heading, body in fx.GUIDE for w in [heading, *body]]
    long_guide = fx.GUIDE * max(1, pages // len(fx.GUIDE))
    saved = fx.GUIDE
    fx.GUIDE = long_guide
    try:
        long = fx.guide_pdf(folder / "long.pdf").read_bytes()
    finally:
        fx.GUIDE = saved
    columns = fx.two_column_pdf(folder / "c.pdf", "columns").read_bytes()
    rows = fx.two_column_pdf(folder / "r.pdf", "rows").read_bytes()
    return {
        "guide (headers, footers, hyphenation)": (fx.guide_pdf(folder / "g.pdf").read_bytes(), guide_words),
        "two columns, column order": (columns, fx.TWO_COLUMNS),
        "two columns, row order": (rows, fx.TWO_COLUMNS),
        f"long guide ({len(long_guide)} pages)": (long, [w for h, b in long_guide for w in [h, *b]]),
    }


def docx_mammoth(data: bytes) -> dict[str, int]:
    """mammoth → HTML (the alternative: the corpus's HTML path would read it)."""
    import mammoth

    html = mammoth.convert_to_html(io.BytesIO(data)).value
    return {
        "headings": len(re.findall(r"<h\d", html)) + html.count("<p>" + fx.HANDBOOK_DOCX["title"]),
        "list_items": html.count("<li>"),
        "table_rows": html.count("<tr>"),
    }


def docx_careerqa(data: bytes) -> dict[str, int]:
    """careerqa's reader (python-docx → Markdown); the Title paragraph counts as the document's title."""
    corpus._BINARY_CACHE.clear()
    doc = load_document("x.docx", data)
    return {
        "headings": len(re.findall(r"(?m)^#+ ", doc.text)) + (doc.title is not None),
        "list_items": len(re.findall(r"(?m)^- ", doc.text)),
        "table_rows": len(re.findall(r"(?m)^\|.*\|$", doc.text)),
    }


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pages", type=int, default=40, help="pages of the long guide (timing)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "readers.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results: dict[str, Any] = {"pdf": {}, "docx": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for layout, (data, expected) in pdf_layouts(folder, args.pages).items():
            row: dict[str, Any] = {}
            times: dict[str, list[float]] = {name: [] for name in PDF_READERS}
            for reader in PDF_READERS.values():
                reader(data)  # imports and first-call set-up are not timed
            for _ in range(args.runs):  # interleaved, so a busy moment hits every reader alike
                for name, reader in PDF_READERS.items():
                    times[name].extend(timed(lambda r=reader, d=data: r(d), 1))
            base = statistics.median(times["pypdf"])
            for name, reader in PDF_READERS.items():
                text = reader(data)
                median = statistics.median(times[name])
                row[name] = {
                    "word_order": word_score(text, expected),
                    "header_footer_lines_left": len(re.findall(re.escape(fx.HEADER) + r"|Page \d+ of", text)),
                    "hyphen_fragments_left": len(re.findall(r"[a-z]-[ \t]*\n\s*[a-z]", text)),
                    "median_s": round(median, 4),
                    "vs_pypdf": round(median / base, 2),
                }
            results["pdf"][layout] = row
            print(layout)
            for name, r in row.items():
                print(f"  {name:36} {r}")
        data = fx.handbook_docx(folder / "h.docx").read_bytes()
        expected = {
            "headings": 1 + len(fx.HANDBOOK_DOCX["sections"]),
            "list_items": sum(len(items) for _, _, items in fx.HANDBOOK_DOCX["sections"]),
            "table_rows": len(fx.HANDBOOK_DOCX["table"]),
        }
        readers: dict[str, Callable[[bytes], dict[str, int]]] = {"careerqa (python-docx)": docx_careerqa}
        try:
            import mammoth  # noqa: F401 - only for the comparison
        except ImportError:
            print("mammoth is not installed: pip install mammoth==1.13.0 to compare it")
        else:
            readers["mammoth"] = docx_mammoth
        t_docx: dict[str, list[float]] = {name: [] for name in readers}
        for reader in readers.values():
            reader(data)  # imports are not timed
        for _ in range(args.runs):
            for name, reader in readers.items():
                t_docx[name].extend(timed(lambda r=reader: r(data), 1))
        base = statistics.median(t_docx["careerqa (python-docx)"])
        results["docx"] = {"expected": expected}
        for name, reader in readers.items():
            median = statistics.median(t_docx[name])
            results["docx"][name] = {
                **reader(data),
                "median_s": round(median, 4),
                "vs_careerqa": round(median / base, 2),
            }
        print("docx", json.dumps(results["docx"]))
    results["meta"] = {
        "runs": args.runs,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "command": " ".join(["python", "bench/bench_pdf_readers.py", *sys.argv[1:]]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
