"""The department workbench in a real browser (headless Chromium through chromedriver) against a real Daphne.

A handler's workbench is open; a dispatcher dispatches a ticket through the service; the row appears without a
reload, with the visible and audible cue; the handler accepts it; the server and the page both say accepted.
Then the page's accessibility: every control has an accessible name, the keyboard reaches the actions in order
with a visible focus, and the main text colours meet WCAG AA (4.5:1), measured from the CSS in the browser.

Daphne runs in a thread of this process, one for the test session (tests/ticketing/browser.py says why); services
the test performs "as the dispatcher" run on the server's event loop (`LiveServer.call`), as a request would.

Chromium is required: without it this test fails, naming the packages, unless HOTLINE_SKIP_BROWSER=1.
"""

import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.test import Client

from hotline import clock
from tests.helpers import make_ticket
from tests.ticketing.browser import CHROMEDRIVER, CHROMIUM, WAIT_SECONDS, LiveServer, wait_for
from tests.ticketing.browser import contrast as _contrast
from tests.ticketing.browser import rgb as _rgb
from ticketing import services
from ticketing.calendar import TZ
from ticketing.models import Ticket, User
from ticketing.workflow import Status, Transition

if os.environ.get("HOTLINE_SKIP_BROWSER") == "1":
    pytestmark = pytest.mark.skip(reason="HOTLINE_SKIP_BROWSER=1: the browser test is switched off")


# --- the browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(live_server_daphne: LiveServer) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--lang=zh-CN",
        # The cue's beep plays without a click first, as it does on a desk where someone clicked already.
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open_workbench(driver: Any, server: LiveServer, user: User, query: str = "") -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    client = Client()
    client.force_login(user)
    driver.delete_all_cookies()
    # A cookie is set for the page's origin, so the browser first needs to be on it.
    driver.get(f"{server.url}/static/ticketing/desk.css")
    driver.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})
    driver.get(f"{server.url}/workbench/{query}")
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element("id", "workbench").get_attribute("data-live") == "ready",
        "the workbench's websocket did not connect",
    )


_wait = wait_for


def _text(driver: Any, selector: str) -> str:
    return str(driver.find_element("css selector", selector).text)


# --- the live flow -----------------------------------------------------------------------------------------


def test_a_dispatched_ticket_appears_live_with_a_cue_and_is_accepted(
    org, transactional_db, live_server_daphne, browser
):
    server, driver = live_server_daphne, browser
    _open_workbench(driver, server, org.handler)
    assert driver.find_elements("css selector", "#inbox-rows tr") == []
    # Set in this page; still there later only if the page was never reloaded.
    driver.execute_script("window.__sameDocument = 'yes';")

    ticket = server.call(make_ticket, org=org, status=Status.PENDING_DISPATCH)
    server.call(services.ticket_dispatch, ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)

    row = f'#inbox-rows tr[data-ticket="{ticket.id}"]'
    _wait(driver, lambda d: d.find_elements("css selector", row), "the dispatched ticket did not appear")
    assert driver.execute_script("return window.__sameDocument") == "yes"
    assert "is-new" in driver.find_element("css selector", row).get_attribute("class")
    assert _text(driver, f"{row} .badge.new") == "新"
    assert ticket.number in _text(driver, row)
    # The cue: the banner and its count, the words read out by the live region, the beep, the tab title.
    _wait(
        driver,
        lambda d: ticket.number in d.find_element("id", "announcer").get_attribute("textContent"),
        "no announcement",
    )
    assert driver.find_element("id", "announcer").get_attribute("aria-live") == "polite"
    assert driver.find_element("id", "new-banner").is_displayed()
    assert _text(driver, "#new-count") == "1"
    assert int(driver.find_element("id", "workbench").get_attribute("data-beeps")) >= 1
    assert driver.title.startswith("（1）")
    # The counts moved with it.
    assert _text(driver, '#counts [data-filter="dispatched"] strong') == "1"

    driver.find_element("css selector", f'{row} button[data-open="{ticket.id}"]').click()
    accept = 'form[data-action="accept"] button[type="submit"]'
    _wait(driver, lambda d: d.find_element("css selector", accept).is_displayed(), "no accept button")
    assert ticket.number in _text(driver, "#panel-title")
    # Opened, so no longer new.
    assert not driver.find_element("id", "new-banner").is_displayed()
    driver.find_element("css selector", accept).click()

    _wait(driver, lambda d: d.find_element("id", "panel").get_attribute("data-status") == "accepted", "not accepted")
    assert _text(driver, "#action-status") == "已签收，请在答复时限内办理。"
    _wait(driver, lambda d: _text(d, f"{row} .status-text") == "已签收", "the row still shows the old state")
    assert not driver.find_element("css selector", 'form[data-action="accept"]').is_displayed()
    stored = Ticket.objects.get(pk=ticket.id)
    assert stored.status == Status.ACCEPTED
    assert stored.events.get(kind=Transition.ACCEPT).actor == org.handler

    # A refusal from the server is shown in Chinese where it happened, and nothing changes.
    form = 'form[data-action="request_extension"]'
    _wait(driver, lambda d: d.find_element("css selector", form).is_displayed(), "no extension form")
    driver.find_element("id", "extension-days").send_keys("30")
    driver.find_element("id", "extension-reason").send_keys("需要现场勘查")
    driver.find_element("css selector", f"{form} button[type=submit]").click()
    _wait(driver, lambda d: d.find_element("css selector", f"{form} .form-error").is_displayed(), "no error shown")
    assert _text(driver, f"{form} .form-error") == "单次延期为 1 至 10 个工作日。"
    assert Ticket.objects.get(pk=ticket.id).extension_count == 0
    # And a missing field is named before anything is sent.
    return_form = 'form[data-action="return"]'
    driver.find_element("css selector", f"{return_form} button[type=submit]").click()
    assert _text(driver, f"{return_form} .form-error") == "请填写「退单理由」。"
    assert driver.switch_to.active_element.get_attribute("id") == "return-reason"


# --- accessibility -----------------------------------------------------------------------------------------


# Samples of every coloured text the desks use, built inside the workbench so that its stylesheet applies.
COLOUR_SAMPLES = """
<table class="wb-table"><tbody>
  <tr class="sla-ok"><td>
    <span data-sample="row text">普通工单</span>
    <span class="meta" data-sample="row meta">分类</span>
  </td></tr>
  <tr class="sla-warning"><td>
    <span class="due" data-sample="warning due">答复时限</span>
    <span class="badge warning" data-sample="warning badge">预警</span>
    <span class="meta" data-sample="warning meta">分类</span>
  </td></tr>
  <tr class="sla-overdue"><td>
    <span class="due" data-sample="overdue due">签收时限</span>
    <span class="badge overdue" data-sample="overdue badge">超期</span>
    <span class="meta" data-sample="overdue meta">分类</span>
  </td></tr>
  <tr class="is-new"><td>
    <span class="badge new" data-sample="new badge">新</span>
    <button class="link" type="button" data-sample="new row link">12345-1</button>
    <span class="meta" data-sample="new meta">分类</span>
  </td></tr>
  <tr><td>
    <span class="badge" data-sample="role badge">主办</span>
    <span class="badge urgent" data-sample="urgent badge">紧急</span>
    <span class="badge critical" data-sample="critical badge">特急</span>
  </td></tr>
</tbody></table>
<div class="wb-counts">
  <button type="button" aria-pressed="false" data-sample="count">全部</button>
  <button type="button" aria-pressed="true" data-sample="count pressed">待签收</button>
  <button type="button" class="warning" aria-pressed="false" data-sample="count warning">临近时限</button>
  <button type="button" class="overdue" aria-pressed="false" data-sample="count overdue">已超期</button>
</div>
<p class="wb-new" data-sample="new banner">新派单</p>
<p class="form-error" data-sample="error">请填写</p>
<p class="wb-action-status" data-sample="action status">已签收</p>
<button type="button" data-sample="button">签收</button>
<button type="button" class="plain" data-sample="plain button">切换</button>
<button type="button" class="danger" data-sample="danger button">申请退单</button>
<p class="wb-content" data-sample="content">诉求内容</p>
"""

MEASURE_COLOURS = """
const samples = document.createElement("div");
samples.innerHTML = arguments[0];
document.getElementById("panel").before(samples);
const opaque = (colour) => !/rgba\\(.*,\\s*0\\)$/.test(colour) && colour !== "transparent";
function background(node) {
  for (let current = node; current; current = current.parentElement) {
    const colour = getComputedStyle(current).backgroundColor;
    if (opaque(colour)) return colour;
  }
  return "rgb(255, 255, 255)";
}
const targets = [...samples.querySelectorAll("[data-sample]")].map((node) => [node.dataset.sample, node]);
const pageSelectors = [
  "#connection", "#panel-title", "th", "#inbox-rows td", "header.site .meta", "header.site .brand",
  "#counts button", ".wb-detail dt", "#timeline .meta", "a", ".wb-table .due",
];
for (const selector of pageSelectors) {
  const node = document.querySelector(selector);
  if (node) targets.push([selector, node]);
}
const result = targets.map(([name, node]) => [name, getComputedStyle(node).color, background(node)]);
samples.remove();
return result;
"""


def test_the_workbench_is_usable_by_keyboard_and_screen_reader_and_readable(
    org, transactional_db, live_server_daphne, browser
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    server, driver = live_server_daphne, browser
    # One ticket long overdue and one fresh, so that both kinds of row are on the page.
    with clock.frozen(datetime(2025, 3, 3, 10, tzinfo=TZ)):
        overdue = make_ticket(org, Status.DISPATCHED)
    fresh = make_ticket(org, Status.DISPATCHED)
    _open_workbench(driver, server, org.lead)
    _wait(driver, lambda d: len(d.find_elements("css selector", "#inbox-rows tr")) == 2, "the inbox is not shown")
    assert "sla-overdue" in driver.find_element("css selector", f'tr[data-ticket="{overdue.id}"]').get_attribute(
        "class"
    )
    assert "已超期" in _text(driver, f'tr[data-ticket="{overdue.id}"]')

    driver.find_element("css selector", f'button[data-open="{fresh.id}"]').click()
    _wait(driver, lambda d: d.find_element("id", "panel").get_attribute("data-status") == "dispatched", "no panel")
    _wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "panel-title", "focus not moved")

    # Every control on the page has an accessible name, as the browser computes it.
    controls = driver.find_elements("css selector", "input, select, textarea, button")
    unnamed = [
        control.get_attribute("outerHTML")[:80]
        for control in controls
        if control.is_displayed() and not (control.accessible_name or "").strip()
    ]
    assert unnamed == []
    assert driver.find_element("id", "sound-toggle").accessible_name == "新派单提示音"
    assert driver.find_element("id", "department-select").accessible_name == "切换单位"

    # From the panel's title, the keyboard meets the actions in the order the panel lists them, and every
    # stop shows its focus.
    expected = [
        ("accept", "BUTTON"),
        ("hand_to_unit", "SELECT"),
        ("hand_to_unit", "TEXTAREA"),
        ("hand_to_unit", "BUTTON"),
        ("return", "TEXTAREA"),
        ("return", "BUTTON"),
        ("note", "TEXTAREA"),
        ("note", "BUTTON"),
        ("attachment", "INPUT"),
        ("attachment", "BUTTON"),
    ]
    stops = []
    for _ in expected:
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        form = driver.execute_script("return arguments[0].closest('form[data-action]')?.dataset.action", focused)
        stops.append((form, focused.tag_name.upper()))
        outline = driver.execute_script(
            "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, parseFloat(s.outlineWidth)]", focused
        )
        assert outline[0] != "none" and outline[1] >= 2, f"no visible focus on {stops[-1]}: {outline}"
    assert stops == expected

    # Text colours against what they sit on: WCAG AA for normal text.
    measured = driver.execute_script(MEASURE_COLOURS, COLOUR_SAMPLES)
    assert len(measured) >= 30
    ratios = {name: round(_contrast(_rgb(fg), _rgb(bg)), 2) for name, fg, bg in measured}
    too_low = {name: ratio for name, ratio in ratios.items() if ratio < 4.5}
    assert too_low == {}, ratios
