"""Citations that open their source, in headless Chromium against a real server (fake models): a click
on [n] or on a source shows the whole document scrolled to the passage with the answer's sentence
highlighted, within 300 ms; a PDF citation names and shows its page; markup inside a document never
runs; the open viewer has no serious accessibility violation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from careerqa.engine.core import Engine
from careerqa.web.app import create_app

from . import test_chat_page
from .conftest import SEED, FakeEmbedder
from .docfixtures import guide_pdf
from .fakes import FakeGenerator
from .helpers import ANSWER, QUESTION, Scripted, live_server, make_settings
from .test_chat_page import ARTIFACTS, WAIT_S, ask
from .test_chat_page_ux import _axe

browser = test_chat_page.browser  # Chromium, shared with the chat page tests
OPEN_MS = 300  # the target: the highlighted passage within 300 ms of the click

HOSTILE = """# Hostile page

Recruiters reward portfolios that show careful input handling. <script>window.pwned = 1</script>
An image tag <img src=x onerror="window.pwned=2"> and a link <a href="javascript:window.pwned=3">here</a>
are text in this corpus, never markup.
"""
HOSTILE_ANSWER = "Recruiters reward portfolios that show careful input handling [1]."
SEED_ANSWER = "Key areas include linear algebra, calculus and probability and statistics [1]."
PDF_QUESTION = "should I counter the first salary offer?"
PDF_ANSWER = "Negotiation specialists recommend countering the first offer fifteen percent higher [1]."


@pytest.fixture(scope="module")
def viewer_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("viewer")
    seed = SEED.read_text(encoding="utf-8")  # the real article: a long document to open and scroll
    settings = make_settings(root, {"hostile.md": HOSTILE, SEED.name: seed}).replace(answer_cache_size=0)
    guide_pdf(settings.corpus_dir / "guide.pdf")
    script = Scripted()
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(script))
    with live_server(create_app(settings, engine=engine)) as url:
        yield {"url": url, "script": script}


@pytest.fixture
def page(viewer_stack: dict, browser: WebDriver) -> Iterator[WebDriver]:
    viewer_stack["script"].replies.clear()
    local = {"origin": viewer_stack["url"], "storageTypes": "local_storage"}
    browser.execute_cdp_cmd("Storage.clearDataForOrigin", local)
    browser.get(viewer_stack["url"] + "/")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "question").is_enabled())
    browser.get_log("browser")
    yield browser


# Clicks the element, then resolves with the milliseconds until the viewer shows the document (a
# highlighted sentence, or the passage when none is highlighted), measured in the page's own clock.
_CLICK_AND_TIME = """
const [target, done] = [arguments[0], arguments[arguments.length - 1]];
const viewer = document.getElementById("viewer");
const t0 = performance.now();
const shown = () => viewer.dataset.state === "shown" || viewer.dataset.state === "error";
const observer = new MutationObserver(() => {
  if (shown()) { observer.disconnect(); done(performance.now() - t0); }
});
observer.observe(viewer, {attributes: true, subtree: true, childList: true});
target.click();
if (shown()) { observer.disconnect(); done(performance.now() - t0); }
"""


def _open(driver: WebDriver, selector: str) -> float:
    message = driver.find_elements(By.CSS_SELECTOR, ".message.assistant.done")[-1]
    target = message.find_element(By.CSS_SELECTOR, selector)
    driver.execute_script("document.getElementById('viewer').dataset.state = ''")
    elapsed = float(driver.execute_async_script(_CLICK_AND_TIME, target))
    print(f"citation opened in {elapsed:.0f} ms")  # shown with pytest -s
    return elapsed


def _in_view(driver: WebDriver, css: str) -> bool:
    return bool(
        driver.execute_script(
            "const box = document.getElementById('doc-text').getBoundingClientRect();"
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
            "return r.top >= box.top && r.bottom <= box.bottom && r.height > 0;",
            css,
        )
    )


def test_a_citation_click_shows_the_highlighted_passage_in_its_document(page, viewer_stack):
    viewer_stack["script"].replies[:] = [ANSWER]
    message = ask(page, QUESTION)
    assert message.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    elapsed = [_open(page, "sup.citation a")]
    viewer = page.find_element(By.ID, "viewer")
    assert viewer.get_attribute("open") is not None and viewer.get_attribute("data-state") == "shown"
    assert page.find_element(By.ID, "viewer-title").text == "maths.md › Maths for AI"
    text = page.find_element(By.ID, "doc-text")
    assert "Linear algebra, calculus and statistics" in text.text  # the whole document, not a clip
    marks = text.find_elements(By.CSS_SELECTOR, ".passage-shown mark.support")
    assert [m.text for m in marks] == [
        "If your maths feels rusty, Khan Academy and MIT OpenCourseWare have free courses on all three "
        "topics."
    ]
    assert _in_view(page, "#doc-text mark.support")
    assert page.switch_to.active_element.get_attribute("class") == "passage-shown"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert page.save_screenshot(str(ARTIFACTS / "chat_page_citation_open.png"))
    assert _axe(page) == []  # the open viewer: labelled dialog, focus inside
    page.find_element(By.ID, "viewer-close").click()
    assert page.find_element(By.ID, "viewer").get_attribute("open") is None
    for _ in range(2):  # the source's name opens it too; Escape closes it
        elapsed.append(_open(page, ".sources .source-open"))
        assert page.find_element(By.ID, "viewer").get_attribute("open") is not None
        page.switch_to.active_element.send_keys(Keys.ESCAPE)
        WebDriverWait(page, WAIT_S).until(
            lambda d: d.find_element(By.ID, "viewer").get_attribute("open") is None
        )
    assert max(elapsed) < OPEN_MS, elapsed
    assert [e for e in page.get_log("browser") if e["level"] == "SEVERE"] == []


def test_a_pdf_citation_names_and_shows_its_page(page, viewer_stack):
    viewer_stack["script"].replies[:] = [PDF_ANSWER]
    message = ask(page, PDF_QUESTION)
    assert "guide.pdf" in message.find_element(By.CSS_SELECTOR, ".sources").text
    assert _open(page, "sup.citation a") < OPEN_MS
    assert page.find_element(By.ID, "viewer-where").text == "page 4 of 4"
    text = page.find_element(By.ID, "doc-text")
    assert [m.text for m in text.find_elements(By.CSS_SELECTOR, ".page-mark")] == [
        "— page 2 —",
        "— page 3 —",
        "— page 4 —",
    ]
    mark = text.find_element(By.CSS_SELECTOR, "mark.support")
    assert "fifteen percent" in mark.text
    # the passage comes after the page 4 mark: the reader sees which page it is on
    assert page.execute_script(
        "const [m, p] = [document.querySelector('#doc-text mark.support'),"
        " [...document.querySelectorAll('#doc-text .page-mark')].pop()];"
        "return !!(p.compareDocumentPosition(m) & Node.DOCUMENT_POSITION_FOLLOWING);"
    )
    assert _in_view(page, "#doc-text mark.support")


def test_markup_inside_a_document_never_runs(page, viewer_stack):
    viewer_stack["script"].replies[:] = [HOSTILE_ANSWER]
    ask(page, "do recruiters reward portfolios with careful input handling?")
    assert _open(page, "sup.citation a") < OPEN_MS
    text = page.find_element(By.ID, "doc-text")
    shown = text.get_attribute("textContent")
    assert "<script>window.pwned = 1</script>" in shown and '<img src=x onerror="window.pwned=2">' in shown
    assert text.find_elements(By.CSS_SELECTOR, "script, img, a, iframe") == []
    assert page.execute_script("return window.pwned") is None
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_a_citation_into_the_long_seed_article_opens_within_300_ms(page, viewer_stack):
    """The whole 3,300-word article is put in the page and scrolled to the passage."""
    viewer_stack["script"].replies[:] = [SEED_ANSWER]
    message = ask(page, "what kind of math should I focus on for AI?")
    assert SEED.name in message.find_element(By.CSS_SELECTOR, ".sources").text
    assert _open(page, "sup.citation a") < OPEN_MS
    text = page.find_element(By.ID, "doc-text").get_attribute("textContent")
    assert len(text.split()) > 3000  # the whole document, not the passage
    mark = page.find_element(By.CSS_SELECTOR, "#doc-text mark.support")
    assert "linear algebra" in mark.text
    assert _in_view(page, "#doc-text mark.support")
