"""The chat page's thumbs up/down in headless Chromium, against a real server with the question log on;
and their absence when it is off. Chromium is needed as for ``test_chat_page.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from careerqa.engine.core import Engine
from careerqa.evals.gaps import read_log
from careerqa.web.app import create_app

from .conftest import FakeEmbedder
from .fakes import FakeGenerator
from .helpers import ANSWER, QUESTION, Scripted, live_server, make_settings
from .test_chat_page import WAIT_S, ask, browser  # noqa: F401 - browser is a fixture


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("feedback")
    settings = make_settings(root).replace(answer_cache_size=0, log_questions=1)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(Scripted()))
    with live_server(create_app(settings, engine=engine)) as url:
        yield {"url": url, "settings": settings}


def open_page(driver: WebDriver, url: str) -> WebDriver:
    driver.get(url + "/")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "question").is_enabled())
    return driver


def test_thumbs_down_reaches_the_question_log(logged, browser):  # noqa: F811
    page = open_page(browser, logged["url"])
    message = ask(page, QUESTION)
    assert message.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    buttons = message.find_elements(By.CSS_SELECTOR, ".feedback button.vote")
    assert [b.get_attribute("data-vote") for b in buttons] == ["up", "down"]
    buttons[1].click()
    WebDriverWait(page, WAIT_S).until(lambda d: "chosen" in (buttons[1].get_attribute("class") or ""))
    assert all(not b.is_enabled() for b in buttons)  # one vote per answer
    assert "thanks" in message.find_element(By.CSS_SELECTOR, ".feedback .note").text
    records = list(read_log(logged["settings"].index_dir))
    answer = next(r for r in records if r["kind"] == "answer" and r["question"] == QUESTION)
    assert {"kind": "feedback", "id": answer["id"], "vote": "down"}.items() <= records[-1].items()
    assert not [e for e in page.get_log("browser") if e["level"] == "SEVERE"]


def test_no_thumbs_when_the_log_is_off(tmp_path, browser):  # noqa: F811
    settings = make_settings(tmp_path).replace(answer_cache_size=0)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(Scripted()))
    with live_server(create_app(settings, engine=engine)) as url:
        message = ask(open_page(browser, url), QUESTION)
        assert message.find_elements(By.CSS_SELECTOR, ".feedback") == []
