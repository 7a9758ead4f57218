"""The chat page as people expect it (issue 28, item 4), in headless Chromium against a real server:
the conversation kept across a reload and "New chat", Stop (button and Escape) that frees the server,
Copy answer, keyboard use and focus, an axe-core accessibility check, the phone-width layout, and
screenshots of the states (answering, cited, refused, error) in test-artifacts/.

axe-core comes from npm (`make browser` installs it into .cache/browser); it is injected through the
DevTools protocol, which the page's Content-Security-Policy does not apply to, so the policy stays
as strict as it is served.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from careerqa.engine.core import Engine
from careerqa.web.app import get_engine

from . import test_chat_page
from .conftest import FakeEmbedder
from .fakes import Pieces
from .helpers import ANSWER, LONG_ANSWER, QUESTION, broken_engine
from .test_chat_page import ARTIFACTS, WAIT_S, ask

# The chat page tests' fixtures (a live server with the fake models, Chromium, a fresh page).
stack, browser, page = test_chat_page.stack, test_chat_page.browser, test_chat_page.page

AXE = Path(__file__).resolve().parents[1] / ".cache" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
OFF_TOPIC = "zebra quasar marmalade"
SLOW = " ".join([LONG_ANSWER] * 10)  # 130 words: about 20 s at 0.15 s a word, if nobody stops it


def _slow(stack: dict, pause: float = 0.15) -> None:
    engine = Engine(stack["settings"], embedder=FakeEmbedder(), generator=Pieces(SLOW, pause=pause))
    stack["app"].dependency_overrides[get_engine] = lambda: engine


def _start(driver: WebDriver, question: str) -> WebElement:
    """Send ``question`` and wait until its answer is streaming; the pending message."""
    driver.find_element(By.ID, "question").send_keys(question + Keys.ENTER)
    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".message.assistant.pending .text").text
    )
    return driver.find_element(By.CSS_SELECTOR, ".message.assistant.pending")


def _pending(stack: dict) -> int:
    return int(httpx.get(stack["url"] + "/health", timeout=10).json()["queue"]["pending"])


def _wait_idle(stack: dict, within: float) -> float:
    started = time.monotonic()
    while _pending(stack):
        assert time.monotonic() - started < within, "the server still holds the stopped answer"
        time.sleep(0.02)
    return time.monotonic() - started


def test_the_conversation_survives_a_reload_and_new_chat_forgets_it(page, stack):
    ask(page, QUESTION)
    page.refresh()
    restored = WebDriverWait(page, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message"))
    assert [m.get_attribute("class").split()[1] for m in restored] == ["user", "assistant"]
    assert restored[0].text == QUESTION
    answer = restored[1]
    assert answer.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    source = answer.find_element(By.CSS_SELECTOR, ".sources li")
    assert source.find_element(By.CSS_SELECTOR, ".source-name").text.startswith("maths.md ›")
    answer.find_element(By.CSS_SELECTOR, "sup.citation a").click()
    assert "highlight" in source.get_attribute("class")  # restored citations still open their source
    _close_viewer(page)  # ... in the document viewer (tests/test_citation_viewer.py)
    stack["script"].replies[:] = ["What free courses help with maths?", ANSWER]
    follow_up = ask(page, "and which ones are free?")  # the history came back too
    assert QUESTION in stack["generator"].calls[-2][1]["content"]
    assert "understood as: What free courses help with maths?" in follow_up.text
    page.find_element(By.ID, "reset").click()
    assert page.find_elements(By.CSS_SELECTOR, ".message") == []
    assert page.execute_script("return localStorage.getItem('careerqa-chat')") is None
    page.refresh()
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_element(By.ID, "question").is_enabled())
    assert page.find_elements(By.CSS_SELECTOR, ".message") == []


def test_stop_aborts_the_answer_and_the_server_is_free_at_once(page, stack):
    _slow(stack)
    pending = _start(page, QUESTION)
    stop = page.find_element(By.ID, "stop")
    assert stop.is_displayed() and stop.accessible_name == "Stop answering (Escape)"
    stop.click()
    WebDriverWait(page, WAIT_S).until(lambda d: "stopped" in pending.get_attribute("class"))
    assert "not checked against the sources" in pending.text and pending.text.startswith("Khan")
    assert not page.find_element(By.ID, "stop").is_displayed()
    assert page.find_element(By.ID, "send").is_enabled()
    assert _wait_idle(stack, within=1.5) < 1.5  # the model was let go, not run to the end (~20 s)
    stack["app"].dependency_overrides.clear()
    started = time.monotonic()
    answered = ask(page, QUESTION)
    assert answered.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    assert time.monotonic() - started < 5
    page.refresh()  # a stopped answer is kept as stopped; it never went into the history
    kept = WebDriverWait(page, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.stopped"))
    assert len(kept) == 1 and kept[0].text.startswith("Khan")
    history = page.execute_script("return JSON.parse(localStorage.getItem('careerqa-chat')).history")
    assert [h["role"] for h in history] == ["user", "assistant"]


def test_escape_stops_the_answer(page, stack):
    _slow(stack)
    pending = _start(page, QUESTION)
    page.switch_to.active_element.send_keys(Keys.ESCAPE)
    WebDriverWait(page, WAIT_S).until(lambda d: "stopped" in pending.get_attribute("class"))
    assert _wait_idle(stack, within=1.5) < 1.5
    assert page.switch_to.active_element == page.find_element(By.ID, "question")


def test_copy_answer_copies_the_text_and_its_sources(page, stack):
    page.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": stack["url"], "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    message = ask(page, QUESTION)
    copy = message.find_element(By.CSS_SELECTOR, ".answer-actions button.copy")
    assert copy.accessible_name == "Copy answer"
    copy.click()
    WebDriverWait(page, WAIT_S).until(lambda d: copy.text == "Copied")
    read = "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('failed: ' + e))"
    text = page.execute_async_script(read)
    assert text.startswith(ANSWER + "\n\nSources:\n[1] maths.md ›"), text
    # Without the Clipboard API (an insecure origin, an old browser): the textarea fallback.
    page.execute_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    copy.click()
    WebDriverWait(page, WAIT_S).until(lambda d: copy.text in ("Copied", "Copy failed"))
    assert copy.text == "Copied"
    assert page.find_elements(By.CSS_SELECTOR, ".copy-buffer") == []  # the helper textarea is gone


def _close_viewer(driver: WebDriver) -> None:
    """Close the document viewer a citation opened, with Escape as a keyboard user would."""
    viewer = driver.find_element(By.ID, "viewer")
    WebDriverWait(driver, WAIT_S).until(lambda d: viewer.get_attribute("data-state") == "shown")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    WebDriverWait(driver, WAIT_S).until(lambda d: viewer.get_attribute("open") is None)


def _tab_stops(driver: WebDriver, count: int) -> list[dict]:
    """Press Tab ``count`` times; each focused element and whether its focus is visible."""
    stops = []
    for _ in range(count):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        stops.append(
            driver.execute_script(
                "const e = document.activeElement, s = getComputedStyle(e);"
                "return {id: e.id, cls: e.className, tag: e.tagName, label: e.getAttribute('aria-label'),"
                " outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2};"
            )
        )
    return stops


def test_every_control_is_reachable_and_usable_by_keyboard(page, stack):
    stack["script"].replies[:] = [LONG_ANSWER]  # a long passage: its <summary> is a control too
    page.find_element(By.ID, "question").send_keys(QUESTION + Keys.ENTER)
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.assistant.done"))
    stops = _tab_stops(page, 12)
    seen = {s["id"] or s["label"] or s["tag"] for s in stops}
    assert {"send", "reset", "Copy answer", "A", "SUMMARY", "question"} <= seen, stops
    assert all(s["outline"] for s in stops if s["tag"] != "BODY"), stops  # focus is always visible
    page.find_element(By.ID, "question").click()
    for _ in range(12):  # Tab to the citation marker and open it with Enter
        page.switch_to.active_element.send_keys(Keys.TAB)
        if page.switch_to.active_element.tag_name == "a":
            page.switch_to.active_element.send_keys(Keys.ENTER)
            break
    assert "highlight" in page.find_element(By.CSS_SELECTOR, ".sources li").get_attribute("class")
    _close_viewer(page)  # Enter opened the document; Escape closes it and gives the focus back
    assert page.switch_to.active_element.tag_name == "a"
    for _ in range(12):  # and to the passage's summary, opened with Space
        page.switch_to.active_element.send_keys(Keys.TAB)
        if page.switch_to.active_element.tag_name == "summary":
            page.switch_to.active_element.send_keys(Keys.SPACE)
            break
    assert page.find_element(By.CSS_SELECTOR, ".sources details").get_attribute("open") is not None


def _axe(driver: WebDriver) -> list[dict]:
    """axe-core's violations of serious or critical impact on the page as it is now."""
    if not AXE.exists():
        pytest.fail(
            f"{AXE} not found: the accessibility check needs axe-core; install it with `make browser` "
            "(npm install --prefix .cache/browser axe-core@4)",
            pytrace=False,
        )
    driver.execute_cdp_cmd("Runtime.evaluate", {"expression": AXE.read_text(encoding="utf-8")})
    results = driver.execute_async_script(
        "axe.run(document, {resultTypes: ['violations']}).then(r => arguments[0](r.violations),"
        " e => arguments[0]([{id: 'axe failed', impact: 'critical', help: String(e), nodes: []}]))"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results
        if v["impact"] in ("serious", "critical")
    ]


def _every_state(driver: WebDriver, stack: dict, tmp_path: Path) -> None:
    stack["script"].replies[:] = [LONG_ANSWER]
    ask(driver, QUESTION)  # cited, with a folded passage
    stack["script"].replies[:] = [OFF_TOPIC]  # a follow-up now: the rewrite keeps it off topic
    ask(driver, OFF_TOPIC)  # refused
    stack["app"].dependency_overrides[get_engine] = lambda: broken_engine(stack["settings"], tmp_path)
    ask(driver, QUESTION)  # an error
    _slow(stack)
    _start(driver, QUESTION)  # answering


def test_no_serious_accessibility_violations(page, stack, tmp_path):
    assert _axe(page) == []  # the empty page
    _every_state(page, stack, tmp_path)
    assert _axe(page) == []  # answers, a refusal, an error, one streaming (Stop shown)
    page.find_element(By.ID, "stop").click()
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.stopped"))
    assert _axe(page) == []
    assert page.find_element(By.ID, "messages").get_attribute("aria-live") == "polite"
    assert page.find_element(By.ID, "status").get_attribute("role") == "status"
    assert page.find_element(By.ID, "status").get_attribute("textContent") == "Answer stopped"
    page.execute_script("document.body.appendChild(document.createElement('button')).id = 'unnamed'")
    assert [v["id"] for v in _axe(page)] == ["button-name"]  # the checker does see a real violation
    csp = httpx.get(stack["url"] + "/", timeout=10).headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "unsafe" not in csp.split("script-src")[1].split(";")[0]
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert severe == []  # no Content-Security-Policy violation (the 409 of the error state aside)


def test_phone_width_has_no_horizontal_scroll_and_usable_controls(page, stack, tmp_path):
    phone = {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True}
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        _every_state(page, stack, tmp_path)
        layout = page.execute_script(
            "const r = e => e.getBoundingClientRect();"
            "return {width: innerWidth, scroll: document.documentElement.scrollWidth,"
            " controls: [...document.querySelectorAll('button:not([hidden]), textarea, a, summary')]"
            "   .filter(e => e.offsetParent !== null)"
            "   .map(e => ({name: e.id || e.className || e.tagName, left: r(e).left, right: r(e).right,"
            "               height: r(e).height, width: r(e).width}))};"
        )
        assert layout["width"] == 375 and layout["scroll"] <= 375, layout  # no horizontal scroll
        for control in layout["controls"]:
            assert control["left"] >= 0 and control["right"] <= 375, control
        for name in ("question", "stop", "reset"):
            box = next(c for c in layout["controls"] if c["name"] == name)
            assert box["height"] >= 40 and box["width"] >= 80, box  # big enough for a thumb
        assert _axe(page) == []
        _shot(page, page.find_element(By.CSS_SELECTOR, ".message.assistant.pending"), "chat_page_phone.png")
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _shot(driver: WebDriver, shown: WebElement, name: str) -> Image.Image:
    """Save a screenshot of the page in test-artifacts/ and check it shows ``shown``."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", shown)
    assert shown.is_displayed() and shown.size["height"] >= 20 and shown.size["width"] >= 60, shown.size
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path))
    image = Image.open(path).convert("RGB")
    width, height = driver.execute_script("return [innerWidth, innerHeight]")
    ratio = image.width / width
    assert abs(image.height - height * ratio) <= 2, (image.size, width, height)
    r = shown.rect
    crop = image.crop((int(r["x"] * ratio), int(r["y"] * ratio), int((r["x"] + r["width"]) * ratio),
                       int((r["y"] + r["height"]) * ratio)))
    colours = crop.getcolors(maxcolors=1_000_000) or []
    assert len(colours) >= 8, f"{name}: the {shown.get_attribute('class')} message looks blank"
    return image


def test_screenshots_of_the_states(page, stack, tmp_path):
    _slow(stack)
    pending = _start(page, QUESTION)
    assert pending.find_element(By.CSS_SELECTOR, ".text").text.startswith("Khan")
    _shot(page, pending, "chat_page_answering.png")
    page.find_element(By.ID, "stop").click()
    stack["app"].dependency_overrides.clear()
    stack["script"].replies[:] = [LONG_ANSWER]
    cited = ask(page, QUESTION)
    assert cited.find_element(By.CSS_SELECTOR, ".sources li").is_displayed()
    _shot(page, cited, "chat_page_cited.png")
    stack["script"].replies[:] = [OFF_TOPIC]
    refused = ask(page, OFF_TOPIC)
    assert "abstained" in refused.get_attribute("class")
    _shot(page, refused, "chat_page_refused.png")
    stack["app"].dependency_overrides[get_engine] = lambda: broken_engine(stack["settings"], tmp_path)
    error = ask(page, QUESTION)
    assert "error" in error.get_attribute("class") and "409" in error.text
    image = _shot(page, error, "chat_page_error.png")
    r = error.rect  # the error is drawn in red (var(--err), #cf222e) on the screenshot
    ratio = image.width / page.execute_script("return innerWidth")
    border = [image.getpixel((int((r["x"] + r["width"] / 2) * ratio), int((r["y"] + 0.5) * ratio)))]
    assert any(red > 150 and green < 90 for red, green, _ in border), border
