"""The public site on a phone-sized screen (360 x 740, headless Chromium) against a real Daphne.

A citizen files a request with a photo and the arithmetic challenge, gets the number and query code, looks the
ticket up; the department's handling, driven through the services on the server's loop, arrives on the open
status page without a reload, the reply last; the citizen is dissatisfied and the ticket is reopened. Script in
the request is shown as text. Then accessibility: every control has a name, the keyboard reaches the fields with
a visible focus, errors are listed and focused, text colours meet WCAG AA, nothing is wider than the screen.

The server is the session's one Daphne (tests/ticketing/browser.py), shared with the workbench's browser test.
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ticketing.browser import LiveServer, chrome, contrast, rgb, wait_for
from tests.ticketing.public_helpers import PNG, solve
from ticketing import services
from ticketing.models import Satisfaction, Ticket, TicketAttachment
from ticketing.workflow import Status, Transition

if os.environ.get("HOTLINE_SKIP_BROWSER") == "1":
    pytestmark = pytest.mark.skip(reason="HOTLINE_SKIP_BROWSER=1: the browser test is switched off")

WIDTH, HEIGHT = 360, 740
HOSTILE = "<script>window.__xss = 1</script>'; DROP TABLE ticketing_ticket; --"


@pytest.fixture(scope="module")
def phone(live_server_daphne: LiveServer) -> Iterator[Any]:
    driver = chrome(f"--window-size={WIDTH},{HEIGHT}", "--lang=zh-CN")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 2, "mobile": True}
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    yield


_wait = wait_for


def _by_id(driver: Any, element_id: str) -> Any:
    return driver.find_element("id", element_id)


def _fits_the_screen(driver: Any) -> None:
    width, scroll = driver.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    assert width == WIDTH, width
    assert scroll <= WIDTH, f"the page is {scroll} px wide on a {WIDTH} px screen"


def _tap(driver: Any, element: Any) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _fill_request(driver: Any, org: Any, photo: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_by_id(driver, "f-appeal_type")).select_by_visible_text("投诉")
    Select(_by_id(driver, "f-category")).select_by_value(str(org.category.id))
    Select(_by_id(driver, "f-region")).select_by_value(str(org.district.id))
    _by_id(driver, "f-location").send_keys("幸福小区东门")
    _by_id(driver, "f-title").send_keys("小区夜间施工噪音扰民")
    _by_id(driver, "f-content").send_keys(HOSTILE)
    _by_id(driver, "f-photos").send_keys(photo)
    _by_id(driver, "f-name").send_keys("李四")
    _by_id(driver, "f-phone").send_keys("139 0000 1111")
    _tap(driver, _by_id(driver, "f-consent"))
    question = _by_id(driver, "challenge-question").text
    _by_id(driver, "f-challenge_answer").send_keys(solve(question))


def test_a_citizen_files_from_a_phone_sees_the_reply_arrive_live_and_rates_it(
    org, transactional_db, live_server_daphne, phone, tmp_path
):
    server, driver = live_server_daphne, phone
    photo = tmp_path / "现场.png"
    photo.write_bytes(PNG)

    driver.get(f"{server.url}/public/")
    _fits_the_screen(driver)
    _tap(driver, driver.find_element("link text", "我要反映"))
    _wait(driver, lambda d: d.find_elements("id", "submit-form"), "no request form")
    _fits_the_screen(driver)
    _fill_request(driver, org, str(photo))
    _tap(driver, driver.find_element("css selector", "#submit-form button[type=submit]"))

    _wait(driver, lambda d: d.find_elements("id", "query-code"), "the request was not filed")
    number, code = _by_id(driver, "ticket-number").text, _by_id(driver, "query-code").text
    _fits_the_screen(driver)
    ticket = Ticket.objects.get(number=number)
    assert (ticket.query_code, ticket.content, ticket.caller_phone) == (code, HOSTILE, "13900001111")
    assert ticket.created_by is None and ticket.status == Status.PENDING_DISPATCH
    assert TicketAttachment.objects.get(ticket=ticket).content_type == "image/png"

    _tap(driver, driver.find_element("link text", "查询办理进度"))
    _wait(driver, lambda d: d.find_elements("id", "f-code"), "no look-up form")
    assert _by_id(driver, "f-number").get_attribute("value") == number
    _by_id(driver, "f-code").send_keys(code)
    _tap(driver, driver.find_element("css selector", "form button[type=submit]"))
    _wait(driver, lambda d: d.find_elements("id", "public-status"), "the ticket was not found")
    root = _by_id(driver, "public-status")
    _wait(driver, lambda d: root.get_attribute("data-live") == "ready", "the status page's socket did not connect")
    _fits_the_screen(driver)
    assert _by_id(driver, "status-display").text == "已受理，等待转交"
    assert _by_id(driver, "phone-masked").text == "139****1111"
    # The script the citizen typed is text on the page, and it never ran.
    assert _by_id(driver, "request-content").text == HOSTILE
    assert driver.execute_script("return window.__xss") is None
    assert driver.find_elements("css selector", "#request-content script") == []
    assert not _by_id(driver, "rating-section").is_displayed()
    # Set in this page; still there later only if the page was never reloaded.
    driver.execute_script("window.__sameDocument = 'yes';")

    server.call(services.ticket_dispatch, ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    _wait(driver, lambda d: _by_id(d, "department").text == org.bureau.name, "the dispatch did not arrive")
    assert _by_id(driver, "status-display").text == "办理中"
    server.call(services.ticket_accept, ticket_id=ticket.id, actor=org.handler)
    server.call(services.ticket_note_add, ticket_id=ticket.id, actor=org.handler, text="内部备注：先不回复")
    reply = "<b>已责令</b>工地停止夜间施工。"
    server.call(services.ticket_reply, ticket_id=ticket.id, actor=org.handler, reply_text=reply, result="solved")
    # Not the citizen's until the centre approves it.
    assert not _by_id(driver, "reply-section").is_displayed()
    server.call(services.ticket_approve_reply, ticket_id=ticket.id, actor=org.dispatcher)

    _wait(driver, lambda d: _by_id(d, "reply-section").is_displayed(), "the reply did not arrive")
    assert driver.execute_script("return window.__sameDocument") == "yes"
    assert _by_id(driver, "reply-text").text == reply
    assert driver.find_elements("css selector", "#reply-text b, #timeline b") == []
    assert _by_id(driver, "status-display").text == "已答复"
    assert root.get_attribute("data-status") == "callback"
    steps = [li.get_attribute("data-step") for li in driver.find_elements("css selector", "#timeline li")]
    assert steps == ["received", "dispatched", "accepted", "replied"]
    assert "内部备注" not in driver.page_source and org.handler.username not in driver.page_source
    assert "承办单位已答复" in _by_id(driver, "announcer").get_attribute("textContent")
    _wait(driver, lambda d: _by_id(d, "rating-section").is_displayed(), "no rating form")
    _fits_the_screen(driver)

    _tap(driver, _by_id(driver, "s-dissatisfied"))
    _by_id(driver, "f-comment").send_keys("夜里还在施工")
    _tap(driver, driver.find_element("css selector", "#rating-form button[type=submit]"))
    _wait(driver, lambda d: d.find_elements("id", "notice"), "the rating was not taken")
    assert "重新办理" in _by_id(driver, "notice").text
    ticket.refresh_from_db()
    assert (ticket.status, ticket.satisfaction, ticket.satisfaction_comment, ticket.reopen_count) == (
        Status.DISPATCHED,
        Satisfaction.DISSATISFIED,
        "夜里还在施工",
        1,
    )
    assert ticket.events.filter(kind=Transition.REOPEN, actor=None).exists()
    assert _by_id(driver, "status-display").text == "办理中"
    assert not _by_id(driver, "rating-section").is_displayed()
    assert not _by_id(driver, "reply-section").is_displayed()
    _wait(
        driver,
        lambda d: _by_id(d, "public-status").get_attribute("data-live") == "ready",
        "the reloaded page's socket did not connect",
    )


# --- accessibility -----------------------------------------------------------------------------------------

MEASURE_COLOURS = """
const opaque = (colour) => !/rgba\\(.*,\\s*0\\)$/.test(colour) && colour !== "transparent";
function background(node) {
  for (let current = node; current; current = current.parentElement) {
    const colour = getComputedStyle(current).backgroundColor;
    if (opaque(colour)) return colour;
  }
  return "rgb(255, 255, 255)";
}
const found = [];
for (const selector of arguments[0]) {
  const node = document.querySelector(selector);
  if (node) found.push([selector, getComputedStyle(node).color, background(node)]);
}
return found;
"""

SUBMIT_TEXTS = [
    "h1",
    ".lead",
    "header.site .brand",
    "header.site nav a",
    "legend",
    ".form-row > label",
    ".help",
    ".required-mark",
    ".consent-text",
    ".check label",
    "button.primary",
    ".error-summary h2",
    ".error-summary a",
    ".field-error",
    "footer.site p",
    "select",
    "input[type=text]",
]
STATUS_TEXTS = [
    "#status-display",
    ".facts dt",
    ".facts dd",
    ".live",
    ".timeline time",
    ".timeline .step",
    ".text",
    "#public-status a",
]
HOME_TEXTS = [".choice strong", ".choice span", ".search > label", ".search button", "#kb-title"]


def _measure(driver: Any, selectors: list[str]) -> dict[str, float]:
    measured = driver.execute_script(MEASURE_COLOURS, selectors)
    assert {name for name, _fg, _bg in measured} == set(selectors), "a sampled text is missing from the page"
    return {name: round(contrast(rgb(fg), rgb(bg)), 2) for name, fg, bg in measured}


def _named_controls(driver: Any) -> list[str]:
    controls = driver.find_elements("css selector", "input:not([type=hidden]), select, textarea, button")
    return [
        control.get_attribute("outerHTML")[:80]
        for control in controls
        if control.is_displayed() and not (control.accessible_name or "").strip()
    ]


def test_the_public_pages_are_usable_by_keyboard_and_screen_reader_and_readable_on_a_phone(
    org, transactional_db, live_server_daphne, phone
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    server, driver = live_server_daphne, phone
    driver.get(f"{server.url}/public/")
    ratios = _measure(driver, HOME_TEXTS)

    # Sent empty: the errors are listed by field, focused, and each one leads to its field.
    driver.get(f"{server.url}/public/submit/")
    _tap(driver, driver.find_element("css selector", "#submit-form button[type=submit]"))
    _wait(driver, lambda d: d.find_elements("id", "error-summary"), "no error summary")
    _wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "error-summary", "errors not focused")
    links = driver.find_elements("css selector", "#error-summary a")
    assert [link.get_attribute("href").split("#")[1] for link in links] == [
        "f-appeal_type",
        "f-location",
        "f-title",
        "f-content",
        "f-phone",
        "f-consent",
        "f-challenge_answer",
    ]
    assert links[4].text == "联系电话：该字段不能为空。"
    assert _by_id(driver, "f-phone").get_attribute("aria-invalid") == "true"
    assert "e-phone" in _by_id(driver, "f-phone").get_attribute("aria-describedby")
    _fits_the_screen(driver)

    assert _named_controls(driver) == []
    assert _by_id(driver, "f-phone").accessible_name == "联系电话"
    assert _by_id(driver, "f-consent").accessible_name == "我已阅读并同意以上个人信息使用说明"
    assert _by_id(driver, "f-challenge_answer").accessible_name.startswith("验证题：")
    # Big enough to tap.
    small = driver.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]):not([type=checkbox]), select, textarea,"
        " button')].filter((n) => n.getBoundingClientRect().height < 44).map((n) => n.id || n.textContent)"
    )
    assert small == []

    # From the title, the keyboard meets the fields in the order the form lists them, each with its focus shown.
    _by_id(driver, "f-title").click()
    expected = ["f-content", "f-region", "f-location", "f-photos", "f-name", "f-phone", "f-consent"]
    stops = []
    for _ in expected:
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        stops.append(focused.get_attribute("id"))
        outline = driver.execute_script(
            "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, parseFloat(s.outlineWidth)]", focused
        )
        assert outline[0] != "none" and outline[1] >= 2, f"no visible focus on {stops[-1]}: {outline}"
    assert stops == expected
    ratios.update(_measure(driver, SUBMIT_TEXTS))

    # The status page of a replied ticket.
    ticket = server.call(_replied_ticket, org=org)
    driver.get(f"{server.url}/public/status/?number={ticket.number}")
    assert _named_controls(driver) == []
    _by_id(driver, "f-code").send_keys(ticket.query_code)
    _tap(driver, driver.find_element("css selector", "form button[type=submit]"))
    _wait(driver, lambda d: d.find_elements("id", "rating-form"), "no status page")
    _wait(driver, lambda d: _by_id(d, "public-status").get_attribute("data-live") == "ready", "no socket")
    _fits_the_screen(driver)
    assert _named_controls(driver) == []
    assert _by_id(driver, "s-dissatisfied").accessible_name == "不满意"
    assert driver.find_element("css selector", "#rating-form legend").text == "您对答复满意吗？"
    ratios.update(_measure(driver, STATUS_TEXTS))

    too_low = {name: ratio for name, ratio in ratios.items() if ratio < 4.5}
    assert too_low == {}, ratios


def _replied_ticket(org: Any) -> Ticket:
    from tests.helpers import make_ticket

    return make_ticket(org, Status.CALLBACK)
