"""The chat page in headless Chromium (selenium), against a real server with the fake models.

Chromium and chromedriver come from Debian (`apt-get install chromium chromium-driver`); `make test`
installs them. When they are missing these tests fail, they do not skip: the page would go untested.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from careerqa.engine.core import Engine
from careerqa.errors import ModelUnavailable
from careerqa.generate.prompts import ABSTAIN_TEXT, REWRITE_PROMPT
from careerqa.web.app import create_app, get_engine

from .conftest import FakeEmbedder
from .fakes import FakeGenerator, Pieces
from .helpers import (
    ANSWER,
    LONG_ANSWER,
    QUESTION,
    Scripted,
    broken_engine,
    live_server,
    make_settings,
)

# Screenshots kept as test artefacts (gitignored; CI can upload the folder).
ARTIFACTS = Path(
    os.environ.get("CAREERQA_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 20

# A passage whose text is markup: the page must show it as text, never run it.
XSS = "<img src=x onerror=window.pwned=1>"
WEB_DOC = f"""# Web security

Always escape user input: the string {XSS} must be shown as text and never run by the browser.
Cross-site scripting is a common bug in the web apps that AI teams build for their models.
"""
XSS_ANSWER = f"Always escape user input: the string {XSS} must be shown as text [1]."


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("page")
    settings = make_settings(root, {"web.md": WEB_DOC}).replace(answer_cache_size=0)
    script = Scripted()
    generator = FakeGenerator(script)
    app = create_app(settings, engine=Engine(settings, embedder=FakeEmbedder(), generator=generator))
    with live_server(app) as url:
        yield {"url": url, "app": app, "script": script, "generator": generator, "settings": settings}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the chat page tests need Chromium and chromedriver; "
            "install them with `apt-get install -y chromium chromium-driver` (make test does this)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(stack: dict, browser: WebDriver) -> Iterator[WebDriver]:
    """A freshly loaded chat page (no conversation), with the fake generator's script and calls reset."""
    stack["script"].replies.clear()
    stack["generator"].calls.clear()
    stack["app"].dependency_overrides.clear()
    # The page keeps its conversation in localStorage: start each test without one.
    local = {"origin": stack["url"], "storageTypes": "local_storage"}
    browser.execute_cdp_cmd("Storage.clearDataForOrigin", local)
    browser.get(stack["url"] + "/")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "question").is_enabled())
    browser.get_log("browser")  # start each test with an empty console log
    yield browser
    stack["app"].dependency_overrides.clear()


def ask(driver: WebDriver, question: str, key: bool = False) -> WebElement:
    """Type ``question``, send it (Send button or Enter) and return the finished assistant message."""
    done_before = len(driver.find_elements(By.CSS_SELECTOR, ".message.assistant.done"))
    box = driver.find_element(By.ID, "question")
    box.send_keys(question)
    if key:
        box.send_keys(Keys.ENTER)
    else:
        driver.find_element(By.ID, "send").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message.assistant.done")) > done_before
    )
    return driver.find_elements(By.CSS_SELECTOR, ".message.assistant.done")[-1]


def test_answer_with_citation_and_source(page, stack):
    message = ask(page, QUESTION)
    assert message.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    assert "abstained" not in message.get_attribute("class")
    assert "error" not in message.get_attribute("class")
    citation = message.find_element(By.CSS_SELECTOR, "sup.citation a")
    assert citation.text == "[1]"
    sources = message.find_elements(By.CSS_SELECTOR, ".sources li")
    assert len(sources) == 1
    assert sources[0].find_element(By.CSS_SELECTOR, ".source-name").text.startswith("maths.md ›")
    assert "Linear algebra" in sources[0].find_element(By.CSS_SELECTOR, ".quote").text
    assert "Khan Academy" in sources[0].get_attribute("textContent")  # in the full passage, folded
    assert citation.get_attribute("href").endswith("#" + sources[0].get_attribute("id"))
    citation.click()
    assert "highlight" in sources[0].get_attribute("class")
    user = page.find_elements(By.CSS_SELECTOR, ".message.user")
    assert [u.text for u in user] == [QUESTION]
    assert page.find_element(By.ID, "question").get_attribute("value") == ""
    errors = [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # a Content-Security-Policy violation, for one, would show here
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert page.save_screenshot(str(ARTIFACTS / "chat_page_answer.png"))


def test_long_passage_is_clipped_and_expands(page, stack):
    stack["script"].replies[:] = [LONG_ANSWER]
    message = ask(page, QUESTION, key=True)  # Enter sends
    assert message.find_element(By.CSS_SELECTOR, ".text").text == LONG_ANSWER
    details = message.find_element(By.CSS_SELECTOR, ".sources li details")
    summary = details.find_element(By.TAG_NAME, "summary")
    assert summary.text.endswith("…”")
    summary.click()
    assert "MIT OpenCourseWare" in details.find_element(By.CSS_SELECTOR, ".passage").text


def test_shift_enter_is_a_new_line(page, stack):
    box = page.find_element(By.ID, "question")
    box.send_keys("first line")
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys("second line")
    assert box.get_attribute("value") == "first line\nsecond line"
    assert page.find_elements(By.CSS_SELECTOR, ".message") == []


def test_follow_up_sends_the_history(page, stack):
    first = ask(page, QUESTION)
    assert first.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    stack["script"].replies[:] = ["What free courses help with maths?", ANSWER]
    second = ask(page, "and which ones are free?")
    rewrite = stack["generator"].calls[1]
    assert rewrite[0]["content"] == REWRITE_PROMPT
    # the earlier answer as its plain text: the rewrite reads no markers
    assert QUESTION in rewrite[1]["content"] and ANSWER.replace(" [1]", "") in rewrite[1]["content"]
    assert "and which ones are free?" in rewrite[1]["content"]
    assert "understood as: What free courses help with maths?" in second.text


def test_off_topic_question_is_shown_as_abstention(page, stack):
    message = ask(page, "zebra quasar marmalade")
    assert "abstained" in message.get_attribute("class")
    assert message.find_element(By.CSS_SELECTOR, ".text").text == ABSTAIN_TEXT
    assert message.find_elements(By.CSS_SELECTOR, ".sources li") == []
    assert message.value_of_css_property("font-style") == "italic"


def test_empty_question_does_nothing(page, stack):
    page.find_element(By.ID, "question").send_keys("   ")
    page.find_element(By.ID, "send").click()
    page.find_element(By.ID, "question").send_keys(Keys.ENTER)
    assert page.find_elements(By.CSS_SELECTOR, ".message") == []
    assert stack["generator"].calls == []


def test_server_error_is_shown(page, stack, tmp_path):
    stack["app"].dependency_overrides[get_engine] = lambda: broken_engine(stack["settings"], tmp_path)
    message = ask(page, QUESTION)
    assert "error" in message.get_attribute("class")
    assert "409" in message.text and "index --full" in message.text
    assert page.find_element(By.ID, "send").is_enabled()  # ready for the next question


def test_error_mid_stream_is_shown(page, stack):
    engine = Engine(
        stack["settings"],
        embedder=FakeEmbedder(),
        generator=Pieces(LONG_ANSWER, ModelUnavailable("the model crashed")),
    )
    stack["app"].dependency_overrides[get_engine] = lambda: engine
    message = ask(page, QUESTION)
    assert "error" in message.get_attribute("class") and "the model crashed" in message.text


def test_unreachable_server_is_shown(page, stack):
    page.execute_script("window.fetch = () => Promise.reject(new TypeError('Failed to fetch'));")
    message = ask(page, QUESTION)
    assert "error" in message.get_attribute("class") and "could not reach the server" in message.text


def test_send_is_disabled_while_waiting(page, stack):
    engine = Engine(stack["settings"], embedder=FakeEmbedder(), generator=Pieces(LONG_ANSWER, pause=0.15))
    stack["app"].dependency_overrides[get_engine] = lambda: engine
    page.find_element(By.ID, "question").send_keys(QUESTION)
    page.find_element(By.ID, "send").click()
    assert not page.find_element(By.ID, "send").is_enabled()
    # The answer grows in a pending message while it streams.
    WebDriverWait(page, WAIT_S, poll_frequency=0.05).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".message.assistant.pending .text").text.startswith("Khan")
    )
    assert not page.find_element(By.ID, "send").is_enabled()
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.assistant.done"))
    assert page.find_element(By.ID, "send").is_enabled()


def test_corpus_and_model_text_is_escaped(page, stack):
    stack["script"].replies[:] = [XSS_ANSWER]
    message = ask(page, "how should web apps treat user input and cross-site scripting?")
    assert XSS in message.find_element(By.CSS_SELECTOR, ".text").text
    assert XSS in message.find_element(By.CSS_SELECTOR, ".sources li").text
    assert page.find_elements(By.CSS_SELECTOR, "#messages img") == []
    assert page.execute_script("return window.pwned") is None


def test_page_needs_nothing_from_outside(stack, browser):
    """No external resources: every resource the page loads comes from the server itself."""
    browser.get(stack["url"] + "/")
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith(stack["url"]) or u.startswith("data:") for u in urls), urls


# --- a server that needs an API key (web/auth.py) -----------------------------------------------------


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from careerqa.web.auth import new_key

    root = tmp_path_factory.mktemp("page-keyed")
    key, entry = new_key("page")
    settings = make_settings(root).replace(answer_cache_size=0, api_keys=entry)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda messages: ANSWER))
    with live_server(create_app(settings, engine=engine)) as url:
        yield {"url": url, "key": key}


def _next_done(driver: WebDriver, before: int) -> WebElement:
    WebDriverWait(driver, WAIT_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message.assistant.done")) > before
    )
    return driver.find_elements(By.CSS_SELECTOR, ".message.assistant.done")[-1]


def test_a_server_with_api_keys_asks_for_one_and_keeps_it_for_the_tab(keyed_stack, browser):
    browser.get(keyed_stack["url"] + "/")
    browser.execute_script("sessionStorage.clear()")
    refused = ask(browser, QUESTION)
    assert "error" in refused.get_attribute("class") and "401" in refused.text
    field = refused.find_element(By.CSS_SELECTOR, ".key-form input.api-key")
    assert field.get_attribute("type") == "password"
    assert browser.switch_to.active_element == field  # focus is on the key, not the question
    field.send_keys("cqa_wrong" + Keys.ENTER)
    refused = _next_done(browser, 1)
    assert "401" in refused.text and "not known" in refused.text
    field = refused.find_element(By.CSS_SELECTOR, ".key-form input.api-key")
    field.send_keys(keyed_stack["key"] + Keys.ENTER)
    answered = _next_done(browser, 2)
    assert answered.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    again = ask(browser, QUESTION)  # the key is kept for this tab: no second prompt
    assert again.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    assert browser.find_elements(By.CSS_SELECTOR, ".key-form") == []
    assert browser.execute_script("return sessionStorage.getItem('careerqa-api-key')") == keyed_stack["key"]
