"""The supervisor board in a real browser (headless Chromium): charts drawn as SVG from the page's figures,
the live reload when ticket events arrive (debounced), and the page's accessibility.

The socket is a stand-in installed before the page's script runs: the workbench's browser test owns this
process's Daphne (Twisted's reactor runs once per process), and what the subscription to `ws/supervisor/`
delivers is tested in tests/realtime. Here the test plays the server: it hands the page the messages that
socket sends, and the page must reload its panels from the server, at most once per 5 seconds.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.helpers import make_ticket
from tests.ticketing.browser import wait_for
from ticketing.workflow import Status

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    os.environ.get("HOTLINE_SKIP_BROWSER") == "1" or not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs headless Chromium and chromedriver (Debian: chromium, chromium-driver); HOTLINE_SKIP_BROWSER=1 "
    "switches browser tests off",
)

FAKE_SOCKET = """
window.__sockets = [];
window.WebSocket = function (url) { this.url = url; window.__sockets.push(this); };
window.__say = function (message) { window.__sockets[0].onmessage({data: JSON.stringify(message)}); };
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_SOCKET})
    try:
        yield driver
    finally:
        driver.quit()


_wait = wait_for


def _intake(driver: Any) -> str:
    return str(driver.find_element("css selector", 'li[data-name="intake"] .board-figure-value').text)


def _fragment_loads(driver: Any) -> int:
    return int(
        driver.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('fragment=1')).length"
        )
    )


# The contrast of an element's text against the first opaque background behind it (WCAG 2.1 formula).
CONTRAST = """
function rgb(value) {
  const m = value.match(/[\\d.]+/g).map(Number);
  return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
}
function lum(c) {
  return [c.r, c.g, c.b]
    .map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
}
function background(el) {
  for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.a > 0) return c; }
  return {r: 255, g: 255, b: 255, a: 1};
}
return Array.from(document.querySelectorAll(arguments[0])).map(el => {
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
});
"""


def test_the_board_draws_its_charts_and_reloads_when_tickets_move(org, transactional_db, live_server, browser):
    driver = browser
    make_ticket(org, Status.CLOSED)
    client = Client()
    client.force_login(org.supervisor)
    driver.get(f"{live_server.url}/static/ticketing/board.css")
    driver.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})
    driver.get(f"{live_server.url}/board/")
    opened = time.monotonic()

    _wait(driver, lambda d: d.find_elements("css selector", '[data-chart="trend"] svg rect'), "no trend chart")
    _wait(driver, lambda d: d.find_elements("css selector", '[data-chart="ranking"] svg rect'), "no ranking chart")
    assert driver.find_elements("css selector", '[data-chart="trend"] svg polyline, [data-chart="trend"] svg circle')
    assert _intake(driver) == "1"
    host = live_server.url.removeprefix("http://")
    assert driver.execute_script("return window.__sockets.map(s => s.url)") == [f"ws://{host}/ws/supervisor/"]

    driver.execute_script("window.__say({type: 'catchup.complete', last_event_id: 0, count: 0, truncated: false})")
    connection = driver.find_element("id", "board-connection")
    assert connection.get_attribute("data-state") == "live" and "已连接" in connection.text

    # A burst of events while the page is fresh: one reload, no sooner than 5 s after the last one.
    make_ticket(org, Status.PENDING_DISPATCH)
    for _ in range(5):
        driver.execute_script("window.__say({type: 'ticket.created'})")
    _wait(driver, lambda d: _intake(d) == "2", "the board did not reload after ticket events")
    assert time.monotonic() - opened >= 4.5
    assert _fragment_loads(driver) == 1  # the catch-up and the burst, folded into one reload
    # The reloaded panels have their charts again.
    assert driver.find_elements("css selector", '[data-chart="trend"] svg rect')

    # Accessibility: charts are hidden from assistive technology and each has a caption and a table.
    for chart in driver.find_elements("css selector", "[data-chart]"):
        assert chart.get_attribute("aria-hidden") == "true"
    assert len(driver.find_elements("css selector", "figure figcaption")) == 3
    assert len(driver.find_elements("css selector", "table caption")) >= 5
    for selector in (".board-figure-value", ".board-figure-label", ".board-figure-note", ".board-note", "td", "th"):
        ratios = driver.execute_script(CONTRAST, selector)
        assert ratios and min(ratios) >= 4.5, (selector, ratios)
