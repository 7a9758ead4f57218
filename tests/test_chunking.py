import re
from pathlib import Path

import pytest

from careerqa.ingest.chunking import (
    CHUNKER_VERSION,
    chunk_document,
    chunk_id,
    chunk_spans,
)
from careerqa.ingest.clean import clean_text
from careerqa.ingest.corpus import load_corpus
from careerqa.text.lines import is_title_like
from careerqa.types import Document

SEED_DIR = Path(__file__).resolve().parents[1] / "corpus"
SEED_NAME = "skills-required-for-ai-jobs.txt"

HEADINGS = [
    "The Foundation: Strong Mathematical and Statistical Acumen",
    "Programming Proficiency: The Language of AI",
    "Machine Learning Fundamentals: From Theory to Practice",
    "Deep Learning and Neural Networks: The AI Revolution",
    "Comparison of Deep Learning Frameworks: TensorFlow vs. PyTorch",
    "Data Expertise: Collection, Preprocessing. Management",
    "Cloud Platforms and MLOps: Scaling AI",
    "Soft Skills and Ethical AI: Beyond the Code",
    "Conclusion",
    "More Articles",
    "FAQs",
]
SENTENCE_END = re.compile(r"[.!?:][\"'”’)\]|]*$")


def make_doc(text: str, kind: str = "text", path: str = "doc.txt") -> Document:
    cleaned, offsets = clean_text(text, kind)
    return Document(path=path, sha256="0" * 64, kind=kind, text=cleaned, offsets=tuple(offsets))


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def seed() -> Document:
    docs, _ = load_corpus(SEED_DIR)
    return next(d for d in docs if d.path == SEED_NAME)


@pytest.fixture(scope="module")
def seed_chunks(seed):
    return chunk_document(seed)


# --------------------------------------------------------------------------- the seed


def test_faq_pairs_are_one_chunk_each(seed, seed_chunks):
    lines = seed.text.split("\n")
    questions = lines[lines.index("FAQs") + 1 :: 2]
    answers = lines[lines.index("FAQs") + 2 :: 2]
    assert len(questions) == 7 and all(q.endswith("?") for q in questions)
    faq = [c for c in seed_chunks if c.kind == "faq"]
    assert [c.section for c in faq] == questions
    for chunk, question, answer in zip(faq, questions, answers, strict=True):
        assert chunk.text == f"{question}\n{answer}"


def test_no_chunk_starts_or_ends_mid_sentence(seed):
    text = seed.text
    for span in chunk_spans(seed):
        before = text[: span.start]
        assert before == "" or before.endswith("\n") or re.search(r"[.!?][\"'”’)]*\s$", before), span
        after = text[span.end :]
        chunk = text[span.start : span.end]
        assert after == "" or after.startswith("\n") or SENTENCE_END.search(chunk), span


def test_chunks_cover_the_whole_text(seed):
    covered = [False] * len(seed.text)
    for span in chunk_spans(seed):
        for i in range(span.start, span.end):
            covered[i] = True
    missing = [i for i, ch in enumerate(seed.text) if not ch.isspace() and not covered[i]]
    assert missing == []


def test_chunks_do_not_overlap_and_keep_order(seed):
    spans = chunk_spans(seed)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


def test_chunk_sizes(seed_chunks):
    # Every seed chunk fits the size limit (none is a single over-long sentence), and a typical chunk
    # is passage-sized, not a fragment.
    sizes = sorted(words(c.text) for c in seed_chunks)
    assert sizes[-1] <= 250, sizes
    assert 60 <= sizes[len(sizes) // 2] <= 250, sizes


def test_a_long_section_is_split_at_sentence_ends_within_the_limit():
    body = " ".join(f"Sentence {i} says that careers in machine learning need practice." for i in range(90))
    chunks = chunk_document(make_doc(f"{body}\n"), min_words=60, max_words=180)
    assert len(chunks) >= 4
    for chunk in chunks:
        assert words(chunk.text) <= 180, words(chunk.text)
        assert SENTENCE_END.search(chunk.text), chunk.text[-40:]


def test_one_sentence_longer_than_the_limit_stays_whole():
    sentence = "An endless sentence " + " ".join(["about data"] * 150) + " ends here."
    chunks = chunk_document(make_doc(f"{sentence}\n"), min_words=60, max_words=180)
    assert any(sentence in c.text for c in chunks)


def test_chunk_text_and_raw_spans(seed, seed_chunks):
    raw = (SEED_DIR / SEED_NAME).read_text(encoding="utf-8-sig")
    alnum = re.compile(r"[^\W_]+")
    for chunk in seed_chunks:
        assert chunk.text == chunk.text.strip() and chunk.text in seed.text
        assert chunk.source == SEED_NAME
        original = raw[chunk.start : chunk.end]
        assert "".join(alnum.findall(chunk.text)).lower() == "".join(alnum.findall(original)).lower()


def test_chunk_ids_unique_and_derived(seed_chunks):
    ids = [c.chunk_id for c in seed_chunks]
    assert len(set(ids)) == len(ids)
    for c in seed_chunks:
        assert c.chunk_id == chunk_id(c.source, c.section, c.text)
        assert re.fullmatch(r"[0-9a-f]{16}", c.chunk_id)


def test_sections_follow_headings(seed_chunks):
    sections = {c.section for c in seed_chunks}
    for heading in HEADINGS:
        assert heading in sections
    assert seed_chunks[0].section == "skills required for ai jobs"
    first = {}
    for c in seed_chunks:
        first.setdefault(c.section, c)
    for heading in HEADINGS:
        assert first[heading].text.startswith(heading)  # the heading line is in its first chunk


def test_lists_and_tables(seed_chunks):
    table = next(c for c in seed_chunks if "---|---|---|" in c.text)
    assert table.kind == "table"
    assert table.section.startswith("Comparison of Deep Learning Frameworks")
    assert "they have distinct characteristics:\nFeature | TensorFlow" in table.text  # intro kept
    more = next(c for c in seed_chunks if c.section == "More Articles")
    assert "Boost Your AI Results With Essential Prompt Engineering Secrets" in more.text
    python = next(c for c in seed_chunks if "- NumPy: For numerical" in c.text)
    assert "- Python\n- NumPy" in python.text and "- Software Engineering Principles" in python.text


def test_deterministic(seed):
    assert chunk_document(seed) == chunk_document(seed)
    assert CHUNKER_VERSION == "1"


# --------------------------------------------------------------------------- headings


@pytest.mark.parametrize("line", HEADINGS + ["Your Pathway to AI Learning Without a Technical Background"])
def test_headings_are_title_like(line):
    assert is_title_like(line)


@pytest.mark.parametrize(
    "line",
    [
        "- Linear Algebra",
        "Tracking different versions of models and datasets.",
        "Key services include:",
        "Feature | TensorFlow | PyTorch |",
        "import pandas as pd # Load a hypothetical dataset",
        "the lowercase start of a line",
        "Proficiency in SQL is often a must-have for interacting with relational databases now",
    ],
)
def test_other_lines_are_not_headings(line):
    assert not is_title_like(line)


# --------------------------------------------------------------------------- other formats

MARKDOWN = """# Guide to ML Jobs

Intro paragraph that is long enough to stand on its own as a small passage about jobs.

## Skills

You need these:

- Python
- Statistics
  with a continuation line
- SQL

```python
def train(model):

    return model.fit()
```

## How long does it take to learn?

About a year of steady practice.

It depends on your background.

## Tables

| Tool | Use |
|---|---|
| Torch | Deep learning |
"""


def test_markdown_document():
    doc = make_doc(MARKDOWN, "markdown", "guides/ml-jobs.md")
    chunks = chunk_document(doc, min_words=5, max_words=40)
    by_section = {c.section: c for c in chunks}
    assert list(by_section) == ["Guide to ML Jobs", "Skills", "How long does it take to learn?", "Tables"]
    skills = [c for c in chunks if c.section == "Skills"]
    assert any("You need these:\n\n- Python" in c.text for c in skills)  # intro kept with its list
    code = next(c for c in skills if "```python" in c.text)
    assert "def train(model):\n\n    return model.fit()\n```" in code.text  # fence never split
    faq = by_section["How long does it take to learn?"]
    assert faq.kind == "faq"
    assert faq.text.endswith("It depends on your background.")
    assert by_section["Tables"].kind == "table"


def test_html_document():
    page = """<html><head><title>t</title></head><body>
    <h1>Data Skills</h1><p>Cleaning data takes most of the time.</p>
    <h2>Tools</h2><ul><li>Pandas</li><li>SQL</li></ul>
    <h2>Is SQL still needed?</h2><p>Yes, for relational databases.</p>
    </body></html>"""
    doc = make_doc(page, "html", "page.html")
    chunks = chunk_document(doc, min_words=3, max_words=50)
    assert [(c.section, c.kind) for c in chunks] == [
        ("Data Skills", "text"),
        ("Tools", "list"),
        ("Is SQL still needed?", "faq"),
    ]
    assert chunks[1].text == "## Tools\n\n- Pandas\n- SQL"
    assert page[chunks[2].start : chunks[2].end].startswith("<h2>Is SQL still needed?</h2>")


def test_plain_text_lone_question_takes_one_answer():
    text = (
        "Careers Overview\n"
        "Some opening words about careers in AI.\n"
        "Why learn Python first?\n"
        "Because most libraries use it.\n"
        "Then a later paragraph in the same section.\n"
    )
    chunks = chunk_document(make_doc(text), min_words=3, max_words=50)
    assert [(c.section, c.kind) for c in chunks] == [
        ("Careers Overview", "text"),
        ("Why learn Python first?", "faq"),
        ("Careers Overview", "text"),
    ]
    assert chunks[1].text == "Why learn Python first?\nBecause most libraries use it."


# --------------------------------------------------------------------------- packing


def sentences(n: int, length: int = 10) -> str:
    return " ".join(f"Sentence {i} " + " ".join(["word"] * (length - 3)) + " end." for i in range(n))


def test_long_section_split_at_sentences():
    text = "Long Section\n" + sentences(30) + "\n"
    doc = make_doc(text)
    chunks = chunk_document(doc, min_words=20, max_words=100)
    assert len(chunks) == 4
    assert all(words(c.text) <= 100 for c in chunks)
    assert all(c.section == "Long Section" for c in chunks)
    assert chunks[0].text.startswith("Long Section\nSentence 0 ")
    for c in chunks:
        assert c.text.endswith("end.")
        assert re.match(r"(Long Section\n)?Sentence \d+ ", c.text)
    assert sum(words(c.text) for c in chunks) == words(doc.text)


def test_single_long_sentence_is_kept_whole():
    text = "Topic\n" + " ".join(["word"] * 150) + ".\n"
    chunks = chunk_document(make_doc(text), min_words=10, max_words=100)
    assert len(chunks) == 1 and words(chunks[0].text) == 151


def test_small_chunks_merged_within_a_section():
    paragraphs = "\n".join(sentences(2) for _ in range(4))  # four 20-word paragraphs
    text = f"First Part\n{paragraphs}\nSecond Part\nA short tail.\n"
    chunks = chunk_document(make_doc(text), min_words=60, max_words=100)
    assert [c.section for c in chunks] == ["First Part", "Second Part"]
    assert words(chunks[0].text) == 82
    assert chunks[1].text == "Second Part\nA short tail."  # small, but never merged across a heading


def test_small_tail_merged_with_neighbour():
    paragraphs = "\n".join(sentences(4) for _ in range(3)) + "\nA short closing line."
    chunks = chunk_document(make_doc("Section\n" + paragraphs), min_words=30, max_words=90)
    assert all(words(c.text) >= 30 for c in chunks)
    assert chunks[-1].text.endswith("A short closing line.")


def test_bad_sizes_rejected(seed):
    with pytest.raises(ValueError):
        chunk_document(seed, min_words=100, max_words=50)
