import random
import re
from collections import Counter
from pathlib import Path

import pytest

from careerqa.errors import CorpusEmpty
from careerqa.ingest.clean import clean_text
from careerqa.ingest.corpus import file_hashes, load_corpus
from careerqa.ingest.tracked import tsub
from careerqa.text.lines import looks_like_code

SEED_DIR = Path(__file__).resolve().parents[1] / "corpus"
SEED = SEED_DIR / "skills-required-for-ai-jobs.txt"


def tokens(text: str) -> Counter[str]:
    return Counter(t.lower() for t in re.findall(r"[^\W_]+", text))


@pytest.fixture(scope="module")
def seed():
    docs, warnings = load_corpus(SEED_DIR)
    doc = next(d for d in docs if d.path == SEED.name)
    return doc, SEED.read_text(encoding="utf-8-sig")


# --------------------------------------------------------------------------- the seed


def test_seed_loads_as_one_text_document(seed):
    doc, raw = seed
    assert doc.kind == "text"
    assert doc.path == "skills-required-for-ai-jobs.txt"
    assert len(doc.sha256) == 64
    assert len(doc.offsets) == len(doc.text) + 1
    assert doc.offsets[-1] == len(raw)


def test_cleaning_keeps_every_word(seed):
    doc, raw = seed
    # The only word cleaning splits is the glued "andPyTorch".
    expected = tokens(raw.replace("andPyTorch", "and PyTorch"))
    assert tokens(doc.text) == expected


def test_e_g_repaired(seed):
    doc, _ = seed
    assert "e. G." not in doc.text
    assert "(e.g., fill with median)" in doc.text
    assert "(e.g., spam or not spam" in doc.text
    assert doc.text.count("e.g.,") == 8


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("values (e. G. , fill)", "values (e.g., fill)"),
        ("values (e. G. fill)", "values (e.g. fill)"),
        ("that is (i. E. , the rest)", "that is (i.e., the rest)"),
        ("already e.g. fine", "already e.g. fine"),
        ("the. Gist", "the. Gist"),
    ],
)
def test_abbreviation_repairs(raw, clean):
    assert clean_text(raw)[0] == clean


def test_definition_list_repaired(seed):
    doc, _ = seed
    lines = doc.text.split("\n")
    i = lines.index("- Python")
    assert lines[i + 1].startswith("- NumPy: For numerical operations, especially with arrays and matrices.")
    assert lines[i + 1].endswith("behind many other libraries.")
    assert lines[i + 2].startswith("- Pandas: For data manipulation and analysis.")
    assert lines[i + 2].endswith("datasets efficiently.")
    assert lines[i + 3].startswith("- Scikit-learn: A comprehensive library")
    assert lines[i + 3].endswith("clustering. More.")
    assert lines[i + 4] == (
        "- TensorFlow and PyTorch: The leading deep learning frameworks for building and training "
        "complex neural networks."
    )
    assert lines[i + 5] == "- Other Languages"
    assert lines[i + 6] == "- Software Engineering Principles"
    assert "andPyTorch" not in doc.text
    assert "\n-\n" not in doc.text and not doc.text.startswith("-\n")


def test_glued_and_is_left_alone_in_code():
    assert clean_text("result = future.andThen(x) == 1 ()")[0] == "result = future.andThen(x) == 1 ()"
    assert clean_text("Use Keras orPyTorch here.")[0] == "Use Keras or PyTorch here."


def test_code_line_repaired(seed):
    doc, _ = seed
    code = next(line for line in doc.text.split("\n") if line.startswith("try: df = "))
    for fixed in (
        "pd.read_csv('sensor_data.csv')",
        "print(df.head())",
        "for column in df.columns:",
        "if df[column].isnull().any():",
        "df[column].median()",
        "df[column].fillna(median_val, inplace=True)",
        "if 'temperature' in df.columns and 'pressure' in df.columns:",
        "'temp_pressure_ratio']].head())",
        "print(\"Error: 'sensor_data.csv' not found. Please ensure the file exists.\")",
    ):
        assert fixed in code
    assert "import pandas as pd # Load a hypothetical dataset" in doc.text


def test_prose_sentence_capitals_untouched(seed):
    doc, _ = seed
    # The ". " the scraper put in place of ", and" is ambiguous and stays.
    assert "vectors, matrices, eigenvalues. Eigenvectors are fundamental" in doc.text
    assert "Understanding why certain algorithms are chosen" in doc.text
    assert "print(df. Head())" not in doc.text
    assert clean_text("See df. Head for details. Then go.")[0] == "See df. Head for details. Then go."


def test_looks_like_code():
    assert looks_like_code("import pandas as pd # Load")
    assert looks_like_code("try: df = pd. Read_csv('x')")
    assert looks_like_code("x = f() and print(x)")
    assert not looks_like_code("From understanding data distributions to evaluating model performance.")
    assert not looks_like_code("Call fit() to train the model.")


def test_curly_quotes_kept(seed):
    doc, raw = seed
    for ch in "’“”—–":
        assert doc.text.count(ch) == raw.count(ch)


def test_whitespace_normalised():
    raw = "Title\r\n\r\nOne\u00a0two\t\tthree   four  \r\n\r\n\r\n\r\n\r\nNext line\n"
    text, offsets = clean_text(raw)
    assert text == "Title\n\nOne two three four\n\nNext line"
    assert len(offsets) == len(text) + 1
    assert raw[offsets[text.index("Next")] :].startswith("Next line")


# --------------------------------------------------------------------------- offsets


def test_offsets_point_at_the_same_characters(seed):
    doc, raw = seed
    offsets = doc.offsets
    assert all(a <= b for a, b in zip(offsets, offsets[1:], strict=False))
    for i, ch in enumerate(doc.text):
        if not ch.isspace():
            assert raw[offsets[i]].lower() == ch.lower(), (i, ch, raw[offsets[i]])


def test_random_spans_map_back(seed):
    doc, raw = seed
    rng = random.Random(7)
    exact = 0
    for _ in range(500):
        start = rng.randrange(len(doc.text))
        end = min(len(doc.text), start + rng.randrange(1, 400))
        raw_start, raw_end = doc.raw_span(start, end)
        cleaned, original = doc.text[start:end], raw[raw_start:raw_end]
        alnum = re.compile(r"[^\W_]+")
        assert "".join(alnum.findall(cleaned)).lower() == "".join(alnum.findall(original)).lower()
        if re.sub(r"\s+", " ", original) == cleaned:  # no repair inside: exactly the raw text
            exact += 1
            assert "".join(alnum.findall(cleaned)) == "".join(alnum.findall(original))
    assert exact > 100


def test_tsub_tracks_offsets():
    text, offsets = "a  bXXc", list(range(8))
    text, offsets = tsub(r" +", " ", text, offsets)
    text, offsets = tsub("XX", "Y", text, offsets)
    assert text == "a bYc"
    assert offsets == [0, 1, 3, 4, 6, 7]


# --------------------------------------------------------------------------- HTML

PAGE = """<!DOCTYPE html>
<html><head><title>Ignored title</title><style>p { color: red }</style></head>
<body>
  <!-- a comment that must go -->
  <script>var x = "<p>not text</p>";</script>
  <h1>AI Careers &amp; Skills</h1>
  <p>Python is the <b>main</b> language.<br>It has many libraries.</p>
  <h2 class="x">Key
     <span>Libraries</span></h2>
  <ul>
    <li>NumPy &ndash; arrays</li>
    <li>Pandas&nbsp;for data</li>
  </ul>
  <table><tr><th>Name</th><th>Use</th></tr><tr><td>Torch</td><td>Deep learning</td></tr></table>
  <p>Use &lt;script&gt; tags carefully.</p>
</body></html>
"""


def test_html_stripped_to_markdown():
    text, offsets = clean_text(PAGE, "html")
    assert text.split("\n") == [
        "# AI Careers & Skills",
        "",
        "Python is the main language.",
        "It has many libraries.",
        "",
        "## Key Libraries",
        "",
        "- NumPy – arrays",
        "- Pandas for data",
        "",
        "Name | Use |",
        "Torch | Deep learning |",
        "",
        "Use <script> tags carefully.",
    ]
    for word in ("Careers", "Libraries", "Pandas", "Torch", "carefully"):
        i = text.index(word)
        assert PAGE[offsets[i] : offsets[i] + len(word)] == word


def test_html_file_loaded(tmp_path):
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    docs, _ = load_corpus(tmp_path)
    assert docs[0].kind == "html"
    assert "Ignored title" not in docs[0].text and "not text" not in docs[0].text


# --------------------------------------------------------------------------- the folder


def test_skips_hidden_binary_and_unknown(tmp_path):
    (tmp_path / "notes.md").write_text("# Notes\n\nSome text.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.HTM").write_text("<p>Hello</p>", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("Second file.", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("git stuff", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "blob.txt").write_bytes(b"abc\x00def")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    docs, warnings = load_corpus(tmp_path)
    assert [d.path for d in docs] == ["notes.md", "sub/b.txt", "sub/page.HTM"]
    assert [d.kind for d in docs] == ["markdown", "text", "html"]
    joined = "\n".join(warnings)
    for name in (".hidden.txt", ".git", "image.png", "blob.txt", "empty.txt"):
        assert name in joined
    assert len(warnings) == 5
    assert file_hashes(tmp_path) == {d.path: d.sha256 for d in docs}


def test_undecodable_file_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 au lait")
    docs, warnings = load_corpus(tmp_path)
    assert [d.path for d in docs] == ["ok.txt"]  # one bad file does not block the others
    assert len(warnings) == 1 and re.search(r"latin\.txt: not valid UTF-8.*offset 3", warnings[0])
    assert file_hashes(tmp_path).keys() == {"ok.txt"}


def test_byte_order_mark_dropped(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfHello there.")
    docs, _ = load_corpus(tmp_path)
    assert docs[0].text == "Hello there."
    assert docs[0].raw_span(0, 5) == (0, 5)


def test_missing_corpus(tmp_path):
    with pytest.raises(CorpusEmpty, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_corpus_without_documents(tmp_path):
    (tmp_path / ".hidden.md").write_text("x", encoding="utf-8")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    with pytest.raises(CorpusEmpty, match="no readable"):
        load_corpus(tmp_path)


# Documentation sites as users save them (issue 25, item 5): structure, never one site's strings.
SPHINX_PAGE = """<html><body>
<div class="bd-sidebar"><nav><ul><li><a href="a.html">Other page</a></li></ul></nav></div>
<main><section id="missing"><h1>Working with missing data<a class="headerlink" href="#missing"
 title="Permalink to this heading">&para;</a></h1>
<p>Use <code>fillna()</code> to fill gaps.</p>
<ul class="simple"><li><p>First item text.</p></li><li><p>Second item text.</p></li></ul>
<h2 id="t">Filling<a href="#t">#</a></h2><p>See <a href="#missing">the section above</a>.</p>
<table><tr><th><p>Method</p></th>
<th><p>Action</p></th></tr>
<tr><td><p>ffill</p></td>
<td><p>Fill values forward</p></td></tr></table>
</section></main>
<div class='prev-next-area'><a class='left-prev' href="a.html"><p>previous</p><p>Other page</p></a></div>
<div class="toc-item"><div class="tocsection onthispage">On this page</div>
<nav id="bd-toc-nav"><ul><li><a href="#missing">Working with missing data</a></li></ul></nav></div>
</body></html>"""


def test_documentation_html_loses_anchors_tables_of_contents_and_loose_bullets():
    from careerqa.ingest.corpus import load_document

    doc = load_document("missing.html", SPHINX_PAGE.encode())
    assert doc.text.splitlines()[0] == "# Working with missing data"  # no "¶" after the heading
    assert "## Filling" in doc.text.splitlines()
    assert "¶" not in doc.text and "On this page" not in doc.text and "Other page" not in doc.text
    assert "- First item text.\n- Second item text." in doc.text  # each bullet on its text's line
    assert "See the section above." in doc.text  # a link with words in it is text
    assert "Method | Action |" in doc.text and "ffill | Fill values forward |" in doc.text  # a row a line
    assert "previous" not in doc.text
    at = doc.text.index("Second item")
    assert SPHINX_PAGE[doc.offsets[at] :].startswith("Second item")  # still maps back to the file


def test_html_source_line_breaks_are_spaces_outside_pre():
    from careerqa.ingest.corpus import load_document

    page = "<p>pandas provides the isna() and\n   notna() functions, which are\nalso methods.</p>\n"
    page += "<pre>a = 1\nb = 2</pre>"
    doc = load_document("p.html", page.encode())
    assert "pandas provides the isna() and notna() functions, which are also methods." in doc.text
    assert "a = 1\nb = 2" in doc.text  # code keeps its lines
    at = doc.text.index("notna")
    assert page[doc.offsets[at] :].startswith("notna")


def test_a_books_contents_and_index_pages_are_chrome():
    from careerqa.ingest.boilerplate import is_chrome_text

    contents = "# Table of Contents\n\nAcknowledgements . . . . . . 1\n# 1\n\n1.1\n\nImports . . . . . 3"
    index = "# O\n\nOctave . . . . . . 16\nODBC . . . . . . 17, 21\nOpen Database Connectivity . . . . 17, 21"
    assert is_chrome_text(contents) and is_chrome_text(index)
    prose = "# Intro\n\nThis is prose. It has sentences.\nSee the table . . . . 3\nMore prose goes on."
    assert not is_chrome_text(prose)
