"""The tokenizer (accents, Snowball stems), spelling correction against the corpus, and page chrome."""

from __future__ import annotations

from collections import Counter

from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.index.sync import index_chunks
from careerqa.ingest.boilerplate import html_chrome_spans, is_chrome_text
from careerqa.ingest.clean import clean_text
from careerqa.ingest.corpus import load_corpus
from careerqa.text.spelling import SpellingCorrector
from careerqa.text.tokens import fold, tokenize

from .conftest import REPO, make_settings


def test_accented_letters_are_kept_and_folded():
    assert tokenize("Résumé tips") == ["resum", "tip"]
    assert tokenize("resume tips") == tokenize("Résumé tips")
    assert fold("Ｃafé") == "cafe"


def test_inflections_meet():
    for a, b in [("courses", "course"), ("biases", "bias"), ("uses", "use"), ("learning", "learn"),
                 ("Maths", "math"), ("studies", "study")]:  # fmt: skip
        assert tokenize(a) == tokenize(b), (a, b)
    assert tokenize("C++ and C# code") == ["c++", "c#", "code"]


def speller(lexicon=()) -> SpellingCorrector:
    text = "Docker packages containers. Deep learning frameworks: TensorFlow and PyTorch. Research example."
    return SpellingCorrector.from_texts([text, "learning learning docker"], lexicon)


def test_misspelt_words_are_corrected_to_corpus_words():
    fixed, corrections = speller().correct("wat is dokker used for, framworks for deep lernin exmaple")
    assert corrections == {"dokker": "docker", "framworks": "frameworks", "lernin": "learning",
                           "exmaple": "example"}  # fmt: skip
    assert fixed == "wat is docker used for, frameworks for deep learning example"


def test_known_short_and_numeric_words_are_left_alone():
    sp = speller(lexicon={"topping"})
    assert sp.correct("pizza topping")[1] == {}  # "topping" is a known English word; "pizza" has no near word
    assert sp.correct("ppl gpt4 dokker4")[1] == {}  # under 4 letters, or with digits
    assert sp.correct("Docker research")[0] == "Docker research"  # known: untouched, case kept


def test_the_nearest_most_frequent_word_wins():
    sp = SpellingCorrector(Counter({"model": 5, "modal": 1}))
    assert sp.correct_word("modle") == "model"


def test_retriever_finds_a_misspelt_term(settings, fake_embedder):
    engine = Engine(settings, embedder=fake_embedder)
    assert engine.view().retriever.prepare("kubernets and dokker") == "kubernetes and docker"
    assert engine.search("kubernets", top_k=1)[0].chunk.source == "cloud.md"


def test_seed_related_articles_block_is_not_indexed():
    settings = Settings()
    documents, _ = load_corpus(REPO / "corpus")
    indexed = [c for d in documents for c in index_chunks(d, settings)]
    assert not any(c.section == "More Articles" for c in indexed)
    # everything else is still there: the article's sections and every FAQ entry
    assert sum(c.kind == "faq" for c in indexed) >= 7
    assert any("Conclusion" in c.section for c in indexed)


def test_chrome_text_by_structure():
    titles = "Related Reading\nHow to Start in Machine Learning\nBest Python Tools for Data\nA Guide to MLOps"
    assert is_chrome_text(titles)
    links = "- [Home](/)\n- [Blog](/blog)\n- [About us](/about)"
    assert is_chrome_text(links)
    # a list with markers, and prose, are content
    assert not is_chrome_text("Key Libraries\n- NumPy\n- Pandas\n- Scikit Learn")
    prose = "Learning Paths\nStart with Python. Then learn statistics.\nBuild Projects\nShip"
    assert not is_chrome_text(prose)


HTML = """<html><body>
<header><nav class="top"><ul><li><a href="/">Home</a></li><li><a href="/jobs">Jobs</a></li></ul></nav>
<h1>Becoming an ML Engineer</h1></header>
<div class="cookie-banner"><div>We use cookies to improve your experience.</div><button>Accept</button></div>
<article><p>Strong Python skills and <b>statistics</b> are the base of every ML engineer's work.</p>
<aside><h3>Related posts</h3><ul><li><a href="/a">Ten Tips for Data Scientists</a></li></ul></aside>
<p>Deploying models with Docker is a daily task.</p></article>
<div role="navigation"><a href="/prev">Previous</a></div>
<footer><p>Copyright 2026 Example Media. Share on Twitter.</p></footer>
</body></html>"""


def test_html_nav_footer_and_banners_are_cut():
    text, offsets = clean_text(HTML, "html")
    assert "Becoming an ML Engineer" in text and "Strong Python skills" in text and "Docker" in text
    for chrome in ("Home", "Jobs", "cookies", "Accept", "Related posts", "Ten Tips", "Previous", "Copyright"):
        assert chrome not in text, chrome
    assert len(offsets) == len(text) + 1
    start = text.index("Strong")
    assert HTML[offsets[start] : offsets[start] + 6] == "Strong"  # offsets still map to the file
    assert len(html_chrome_spans(HTML)) == 5  # nav, cookie div, aside, role=navigation, footer


def test_html_chrome_kept_out_of_search(tmp_path, fake_embedder):
    settings = make_settings(tmp_path, {"page.html": HTML})
    engine = Engine(settings, embedder=fake_embedder)
    assert all("cookies" not in c.text for c in engine.view().store.chunks.values())
    assert engine.search("docker daily task", top_k=1)[0].chunk.source == "page.html"
