"""The agent desk in a real browser (headless Chromium) against a real Daphne, with a call streamed into the
WebSocket audio door as a PBX would send it.

A dispatcher's desk is open (a dispatcher takes calls and may dispatch; an agent's role submits to the dispatch
queue instead, see docs/desk.md), and a department handler's workbench in a second browser. A Korean clip is
streamed into `ws/audio/` in real time, 20 ms frames: the real Korean Vosk model transcribes it, and its words
appear on the desk as they are recognized. Only a Korean model is installed here and the form's fields are
Chinese, so after the clip the recognizer stand-in "hears" one Mandarin utterance (the real Korean recognizer
is used for the clip itself; the door, pipeline, stored segments, draft filling, suggestions and events are the
real ones). The form fills from it, the answer and routing suggestions arrive, the agent corrects a field, the
caller hangs up (wrap-up), the agent presses Alt+2, and the department's workbench shows the ticket. Neither page
is reloaded. Then the page's accessibility: names, focus order and visibility, contrast, and the layout at
1366x768.
"""

import json
import os
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from knowledge_base import search
from knowledge_base import services as kb
from knowledge_base.services import ArticleContent
from routing import services as routing_services
from routing.models import Rule
from telephony import speech
from telephony.models import Call, CallStatus
from tests.helpers import make_ticket
from tests.ticketing.browser import WAIT_SECONDS, LiveServer, chrome, contrast, rgb, wait_for
from ticketing.models import Ticket, TicketEvent, User
from ticketing.workflow import Status

SHARED = Path(__file__).resolve().parents[3] / "shared"
CLIP = SHARED / "audio" / "ko" / "ko_picovoice_rhino_within_context.wav"
RATE = 16000
FRAME_BYTES = RATE // 50 * 2  # 20 ms of 16-bit mono
WIDTH, HEIGHT = 1366, 768
# What the caller says after the clip, as a Mandarin recognizer would write it (words apart).
MANDARIN = "你好 我 要 投诉 和平区 幸福小区 旁边 工地 夜间 施工 噪音 太 大 了"
CORRECTED_PLACE = "幸福小区东门外工地"

pytestmark = [
    pytest.mark.skipif(os.environ.get("HOTLINE_SKIP_BROWSER") == "1", reason="HOTLINE_SKIP_BROWSER=1"),
    pytest.mark.skipif(not CLIP.exists(), reason=f"Korean test clip not found at {CLIP} (../shared/audio/ko)"),
]


def clip_pcm() -> bytes:
    with wave.open(str(CLIP)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (RATE, 1, 2)
        return clip.readframes(clip.getnframes())


class KoreanThenMandarin:
    """The real recognizer for the clip; the first audio after it is heard as `MANDARIN`."""

    clip_bytes = 0
    real_class: Any = None

    def __init__(self, model: Any, *, sample_rate: int, start_ms: int = 0) -> None:
        self.real = self.real_class(model, sample_rate=sample_rate, start_ms=start_ms)
        self.sample_rate = sample_rate
        self.fed = 0
        self.next_index = 0
        self.said = False

    def _seen(self, results: list[Any]) -> list[Any]:
        for result in results:
            if isinstance(result, speech.Segment):
                self.next_index = max(self.next_index, result.index + 1)
        return results

    def feed(self, pcm: bytes) -> list[Any]:
        if self.fed < self.clip_bytes:
            self.fed += len(pcm)
            return self._seen(self.real.feed(pcm))
        if self.said:
            return []
        self.said = True
        last_words = self._seen(list(self.real.finish()))
        at_ms = self.clip_bytes * 1000 // (self.sample_rate * 2)
        heard = speech.Segment(index=self.next_index, text=MANDARIN, start_ms=at_ms, end_ms=at_ms + 3000, words=())
        return [*last_words, heard]

    def finish(self) -> list[Any]:
        return [] if self.said else self._seen(list(self.real.finish()))


class Caller(threading.Thread):
    """A PBX streaming one call into the WebSocket audio door: the clip, then silence until told to hang up."""

    def __init__(self, url: str, token: str, agent_id: int, pcm: bytes) -> None:
        super().__init__(name="pbx", daemon=True)
        self.url, self.token, self.agent_id, self.pcm = url, token, agent_id, pcm
        self.hang_up = threading.Event()
        self.started = threading.Event()
        self.clip_sent = threading.Event()
        self.messages: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, additional_headers={"Authorization": f"Token {self.token}"}) as socket:
                start = {"type": "start", "call_id": "desk-browser-1", "caller": "13812345678", "line": "12345"}
                socket.send(json.dumps({**start, "agent": self.agent_id, "sample_rate": RATE}))
                reader = threading.Thread(target=self._read, args=(socket,), daemon=True)
                reader.start()
                # The door answers once the call and its recording exist; the caller speaks from then on.
                if not self.started.wait(WAIT_SECONDS):
                    raise TimeoutError("the door did not start the call")
                began = time.monotonic()
                frames = [self.pcm[i : i + FRAME_BYTES] for i in range(0, len(self.pcm), FRAME_BYTES)]
                silence = bytes(FRAME_BYTES)
                index = 0
                while not self.hang_up.is_set():
                    frame = frames[index] if index < len(frames) else silence
                    if index == len(frames):
                        self.clip_sent.set()
                    # A live caller: frame i is complete only 20 ms after frame i-1.
                    time.sleep(max(0.0, began + (index + 1) * 0.02 - time.monotonic()))
                    socket.send(frame)
                    index += 1
                socket.send(json.dumps({"type": "stop"}))
                reader.join(WAIT_SECONDS)
        except BaseException as error:  # reported by the test
            self.error = error

    def _read(self, socket: Any) -> None:
        try:
            for message in socket:
                if isinstance(message, str):
                    self.messages.append(json.loads(message))
                    if self.messages[-1].get("type") == "started":
                        self.started.set()
        except Exception:
            return


@pytest.fixture
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    settings.AGENT_WRAP_UP_SECONDS = 300
    return tmp_path


@pytest.fixture
def browsers(live_server_daphne: LiveServer) -> Iterator[tuple[Any, Any]]:
    desk = chrome(f"--window-size={WIDTH},{HEIGHT}", "--lang=zh-CN")
    try:
        workbench = chrome("--window-size=1400,1000", "--lang=zh-CN", "--mute-audio")
        try:
            yield desk, workbench
        finally:
            workbench.quit()
    finally:
        desk.quit()


_wait = wait_for


def _sign_in(driver: Any, server: LiveServer, user: User, path: str) -> None:
    client = Client()
    client.force_login(user)
    driver.delete_all_cookies()
    driver.get(f"{server.url}/static/telephony/desk.css")
    driver.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})
    driver.get(f"{server.url}{path}")


def _by_id(driver: Any, element_id: str) -> Any:
    return driver.find_element("id", element_id)


def _value(driver: Any, element_id: str) -> str:
    return str(_by_id(driver, element_id).get_attribute("value"))


def _desk_attr(driver: Any, name: str) -> str:
    return str(_by_id(driver, "desk").get_attribute(f"data-{name}") or "")


def _publish_answer(org) -> Any:  # type: ignore[no-untyped-def]
    content = ArticleContent(
        title="夜间施工噪音扰民如何处理",
        question="工地夜间施工噪音太大怎么办？",
        answer="夜间（22时至次日6时）施工须持有夜间施工许可；无许可施工的，由住建部门责令停工。",
        audience="public",
    )
    article = kb.article_create(actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=content)
    kb.article_submit(article_id=article.id, actor=org.handler)
    article = kb.article_approve(article_id=article.id, actor=org.lead)
    search.sync()
    return article


def test_a_streamed_call_fills_the_desk_and_its_dispatch_reaches_the_department(
    org, transactional_db, live_server_daphne, browsers, media, monkeypatch
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    server = live_server_daphne
    desk, workbench = browsers
    agent = org.dispatcher
    article = _publish_answer(org)
    Rule.objects.create(name="建筑施工噪音", keywords="施工", lead_department=org.bureau)
    pcm = clip_pcm()
    monkeypatch.setattr(KoreanThenMandarin, "real_class", speech.StreamingTranscriber)
    monkeypatch.setattr(KoreanThenMandarin, "clip_bytes", len(pcm))
    monkeypatch.setattr(speech, "StreamingTranscriber", KoreanThenMandarin)

    _sign_in(workbench, server, org.handler, "/workbench/")
    _wait(workbench, lambda d: _by_id(d, "workbench").get_attribute("data-live") == "ready", "workbench not live")
    workbench.execute_script("window.__sameDocument = 'yes';")

    _sign_in(desk, server, agent, "/desk/")
    _wait(desk, lambda d: _desk_attr(d, "live") == "ready", "the desk's websocket did not connect")
    desk.execute_script("window.__sameDocument = 'yes';")
    assert _desk_attr(desk, "state") == "away"
    Select(_by_id(desk, "agent-state")).select_by_value("available")
    _wait(desk, lambda d: _desk_attr(d, "state") == "available", "the status switch did not take")

    token = Token.objects.get_or_create(user=agent)[0].key
    caller = Caller(server.url.replace("http://", "ws://") + "/ws/audio/", token, agent.id, pcm)
    caller.start()
    try:
        # The call pops up: masked number, line, on a call.
        _wait(desk, lambda d: _desk_attr(d, "call"), "no call on the desk")
        _wait(desk, lambda d: _desk_attr(d, "state") == "on_call", "the seat is not on the call")
        assert _by_id(desk, "call-caller").text == "138****5678"
        assert _by_id(desk, "call-line").text == "12345"
        assert "13812345678" not in desk.page_source
        assert _by_id(desk, "agent-state").get_attribute("disabled") is not None

        # The Korean words appear while the clip is still playing.
        _wait(
            desk,
            lambda d: (_by_id(d, "partial").text or _by_id(d, "transcript").text) and not caller.clip_sent.is_set(),
            "no live transcript while the caller was speaking",
        )

        # The Mandarin words after it: the transcript, the form, the answers and the routing suggestion.
        _wait(desk, lambda d: "幸福小区" in _by_id(d, "transcript").text, "the Mandarin segment did not appear")
        _wait(desk, lambda d: _desk_attr(d, "ticket"), "no draft ticket reached the desk")
        _wait(desk, lambda d: _value(d, "f-title").startswith("投诉："), "the title was not filled")
        assert _value(desk, "f-appeal_type") == "complaint"
        assert _value(desk, "f-region") == str(org.district.id)
        assert "is-filled" in _by_id(desk, "f-title").get_attribute("class")
        assert "夜间施工" in _value(desk, "f-content").replace(" ", "")
        _wait(
            desk,
            lambda d: d.find_elements("css selector", f'#answers li[data-article="{article.id}"]'),
            "the knowledge base's answer was not offered",
        )
        assert desk.find_elements("css selector", "#answers mark"), "the snippet has no highlighted words"
        _wait(
            desk,
            lambda d: d.find_elements("css selector", f'#routing li[data-department="{org.bureau.id}"]'),
            "no routing suggestion",
        )
        assert _value(desk, "lead-department") == str(org.bureau.id)
        assert "建筑施工噪音" in _by_id(desk, "routing-outcome").text

        # The agent corrects the place; it is saved and the filler leaves it alone from now on.
        place = _by_id(desk, "f-location_text")
        place.clear()
        place.send_keys(CORRECTED_PLACE)
        _by_id(desk, "f-title").click()
        ticket_id = int(_desk_attr(desk, "ticket"))
        _wait(desk, lambda d: Ticket.objects.get(pk=ticket_id).location_text == CORRECTED_PLACE, "not saved")

        # Choosing the answer puts it in the reply box (not used here: this one is dispatched).
        desk.find_element("css selector", f'#answers input[value="{article.id}"]').click()
        _wait(desk, lambda d: "夜间施工许可" in _value(d, "reply-text"), "the chosen answer was not filled in")
    finally:
        caller.hang_up.set()
        caller.join(WAIT_SECONDS)
    assert caller.error is None, caller.error
    assert {"type": "stopped", "call": int(_desk_attr(desk, "call"))} in caller.messages

    _wait(desk, lambda d: _desk_attr(d, "state") == "wrap_up", "no wrap-up after the hang-up")
    assert "已挂机" in _by_id(desk, "call-duration").text

    # One key: Alt+2 dispatches to the suggested department.
    ActionChains(desk).key_down(Keys.ALT).send_keys("2").key_up(Keys.ALT).perform()
    _wait(desk, lambda d: _desk_attr(d, "ticket-status") == "dispatched", "not dispatched")
    assert f"已派至{org.bureau.name}" in _by_id(desk, "action-status").text
    _wait(desk, lambda d: _desk_attr(d, "state") == "available", "the agent is not back to available")

    # The department's open workbench receives it, without a reload.
    row = f'#inbox-rows tr[data-ticket="{ticket_id}"]'
    _wait(workbench, lambda d: d.find_elements("css selector", row), "the ticket did not reach the workbench")
    assert "is-new" in workbench.find_element("css selector", row).get_attribute("class")
    assert workbench.execute_script("return window.__sameDocument") == "yes"
    assert desk.execute_script("return window.__sameDocument") == "yes"

    # The full number only on request, and the look is on the ticket's trail.
    _by_id(desk, "reveal-contact").click()
    _wait(desk, lambda d: "13812345678" in _by_id(d, "call-caller").text, "the contact was not revealed")
    assert TicketEvent.objects.filter(ticket_id=ticket_id, kind="contact_viewed", actor=agent).count() == 1

    # Stored: the ticket complete, the call's transcript and recording linked to it.
    ticket = Ticket.objects.get(pk=ticket_id)
    assert (ticket.status, ticket.lead_department_id, ticket.created_by_id) == (
        Status.DISPATCHED,
        org.bureau.id,
        agent.id,
    )
    assert ticket.location_text == CORRECTED_PLACE and ticket.region_id == org.district.id
    call = Call.objects.get(call_uuid="desk-browser-1")
    assert call.ticket_id == ticket.id and call.status == CallStatus.ENDED
    assert (media / call.audio_path).stat().st_size > len(pcm)
    texts = list(call.segments.order_by("index").values_list("text", flat=True))
    assert texts[-1] == MANDARIN and len(texts) >= 2
    # The server's sync thread used the database for the pipeline: let go of it before the test database is.
    server.call(lambda: None)


# --- accessibility and layout ------------------------------------------------------------------------------

MEASURE = """
const pick = (selector) => document.querySelector(selector);
const opaque = (c) => !/rgba\\(.*,\\s*0\\)$/.test(c) && c !== "transparent";
function background(node) {
  for (let n = node; n; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    if (opaque(c)) return c;
  }
  return "rgb(255, 255, 255)";
}
const samples = document.createElement("div");
samples.innerHTML = `
  <div class="dk-banner emergency" data-sample="emergency banner">紧急情况</div>
  <div class="dk-banner legal" data-sample="legal banner">法定途径</div>
  <p class="dk-snippet" data-sample="snippet">夜间<mark data-sample="mark">施工</mark></p>
  <ol class="dk-transcript-box"><li><span class="at" data-sample="transcript time">00:03</span></li></ol>
  <p class="dk-partial" data-sample="partial">正在识别</p>
  <p class="dk-action-status" data-sample="action status">已派单</p>
  <div class="dk-call is-ringing"><h2 data-sample="ringing title">当前来电</h2>
    <dl class="dk-facts"><dt data-sample="ringing label">热线</dt></dl></div>
  <input class="is-filled" data-sample="filled field" value="投诉">
  <button class="danger" data-sample="danger button">紧急转接 <kbd>Alt+3</kbd></button>`;
document.getElementById("ticket-form").append(samples);
const targets = [...samples.querySelectorAll("[data-sample]")].map((n) => [n.dataset.sample, n]);
const pageSelectors = ["#connection", "#queue", "#state-note", "label[for=agent-state]", "#call-empty",
                       ".dk-action label", "#ticket-status", "th", "legend", "a", "button[data-do]"];
for (const selector of pageSelectors) {
  const node = pick(selector);
  if (node) targets.push([selector, node]);
}
const result = targets.map(([name, n]) => [name, getComputedStyle(n).color, background(n)]);
samples.remove();
return result;
"""


def test_the_desk_is_usable_by_keyboard_and_screen_reader_fits_the_screen_and_is_readable(
    org, transactional_db, live_server_daphne
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = chrome(f"--window-size={WIDTH},{HEIGHT}", "--lang=zh-CN")
    try:
        _sign_in(driver, live_server_daphne, org.agent, "/desk/")
        _wait(driver, lambda d: _desk_attr(d, "live") == "ready", "the desk's websocket did not connect")

        # Every control has an accessible name, as the browser computes it.
        controls = driver.find_elements("css selector", "input, select, textarea, button")
        unnamed = [
            c.get_attribute("outerHTML")[:80]
            for c in controls
            if c.is_displayed() and not (c.accessible_name or "").strip()
        ]
        assert unnamed == []
        assert _by_id(driver, "agent-state").accessible_name == "坐席状态"
        assert _by_id(driver, "do-dispatch").accessible_name == "派单 Alt+2"
        assert _by_id(driver, "transcript").get_attribute("role") == "log"

        # A wrong key press is explained where it happened, in Chinese, and moves focus where the fix is.
        ActionChains(driver).key_down(Keys.ALT).send_keys("1").key_up(Keys.ALT).perform()
        _wait(driver, lambda d: _by_id(d, "action-error").is_displayed(), "no message for an action without ticket")
        assert "还没有工单" in _by_id(driver, "action-error").text

        # From the reply box the keyboard goes on to the departments, then the actions in reading order, with the
        # focus always visible.
        driver.execute_script("document.getElementById('reply-text').focus()")
        expected = [
            "lead-department",
            "assisting-departments",
            "do-instant_reply",
            "do-dispatch",
            "emergency-target",
            "do-transfer",
            "legal-target",
            "do-legal",
            "merge-target",
            "do-merge",
            "action-note",
        ]
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

        # 1366x768: the call, the form, the help and every action button are on the first screen.
        driver.execute_script(
            "window.scrollTo(0, 0); document.querySelectorAll('.dk-panel').forEach((p) => p.scrollTo(0, 0))"
        )
        height = driver.execute_script("return window.innerHeight")
        for element_id in (
            "call-card",
            "f-title",
            "answers-box",
            "do-instant_reply",
            "do-dispatch",
            "do-merge",
            "action-note",
        ):
            box = driver.execute_script(
                "return arguments[0].getBoundingClientRect().toJSON()", _by_id(driver, element_id)
            )
            assert box["top"] >= 0 and box["top"] < height, f"{element_id} is not on the first screen: {box}"
        for element_id in ("call-card", "do-instant_reply", "do-merge", "action-note"):
            box = driver.execute_script(
                "return arguments[0].getBoundingClientRect().toJSON()", _by_id(driver, element_id)
            )
            assert box["bottom"] <= height, f"{element_id} is cut off: {box}"
        # The three panels end above the action bar (it stays in sight at the bottom), not behind it.
        actions_top = driver.execute_script("return document.querySelector('.dk-actions').getBoundingClientRect().top")
        for selector in (".dk-call", ".dk-ticket", ".dk-assist"):
            bottom = driver.execute_script(
                "return document.querySelector(arguments[0]).getBoundingClientRect().bottom", selector
            )
            assert bottom <= actions_top + 1, f"{selector} runs under the action bar: {bottom} > {actions_top}"

        # Text colours against what they sit on: WCAG AA for normal text.
        measured = driver.execute_script(MEASURE)
        assert len(measured) >= 18
        ratios = {name: round(contrast(rgb(fg), rgb(bg)), 2) for name, fg, bg in measured}
        low = {name: ratio for name, ratio in ratios.items() if ratio < 4.5}
        assert low == {}, ratios
    finally:
        driver.quit()


# --- the supervisor board's live telephony panel -----------------------------------------------------------


def test_the_board_shows_calls_queue_and_seats_live(org, transactional_db, live_server_daphne):
    from telephony import agents, services

    server = live_server_daphne
    driver = chrome("--window-size=1400,1000", "--lang=zh-CN")
    try:
        _sign_in(driver, server, org.supervisor, "/board/")
        _wait(driver, lambda d: _by_id(d, "board-connection").get_attribute("data-state") == "live", "board not live")
        _wait(driver, lambda d: int(_by_id(d, "board-live").get_attribute("data-loaded")) >= 1, "panel not loaded")
        driver.execute_script("window.__sameDocument = 'yes';")
        assert _by_id(driver, "live-queue").text == "0"
        assert "还没有坐席签入" in _by_id(driver, "live-agents").text

        server.call(agents.agent_state_set, actor=org.other_agent, state="available")
        waiting = server.call(
            services.call_start,
            call_uuid="board-queue",
            door="cti",
            hotline_line="8890",
            caller_number="13900001111",
            live_transcript=False,
        )
        talking = server.call(
            services.call_start,
            call_uuid="board-talk",
            door="cti",
            hotline_line="12345",
            caller_number="13812345678",
            agent=org.agent,
            live_transcript=False,
        )
        server.call(services.call_answer, call_id=talking.id)

        _wait(driver, lambda d: _by_id(d, "live-queue").text == "1", "the queue did not show the ringing call")
        _wait(
            driver,
            lambda d: d.find_elements("css selector", 'tr[data-call="board-talk"][data-status="active"]'),
            "no call",
        )
        assert "139****1111" in _by_id(driver, "live-calls").text and "13900001111" not in driver.page_source
        _wait(
            driver,
            lambda d: d.find_elements(
                "css selector", f'#live-agents tr[data-agent="{org.agent.id}"][data-state="on_call"]'
            ),
            "the seat is not shown on the call",
        )
        assert _by_id(driver, "live-talking").text == "1" and _by_id(driver, "live-available").text == "1"
        assert driver.find_elements("css selector", '#live-chart rect[data-state="on_call"]')

        server.call(services.call_end, call_id=talking.id, reason="hangup")
        server.call(services.call_end, call_id=waiting.id, reason="abandoned")
        _wait(
            driver,
            lambda d: d.find_elements(
                "css selector", f'#live-agents tr[data-agent="{org.agent.id}"][data-state="wrap_up"]'
            ),
            "the hang-up did not show as wrap-up",
        )
        _wait(driver, lambda d: _by_id(d, "live-queue").text == "0", "the queue did not empty")
        assert "当前没有通话" in _by_id(driver, "live-calls").text

        # Three requests about one place and matter raise a proactive alert: it shows up on the board.
        assert _by_id(driver, "live-alerts").text == "0"
        tickets = [
            make_ticket(org, Status.PENDING_DISPATCH, region_id=org.street.id, category_id=org.category.id)
            for _ in range(3)
        ]
        alert = server.call(routing_services.clusters_check, ticket=tickets[-1])
        assert alert is not None
        _wait(driver, lambda d: _by_id(d, "live-alerts").text == "1", "the proactive alert did not show")
        assert org.street.name in _by_id(driver, "live-alert-rows").text
        assert driver.execute_script("return window.__sameDocument") == "yes"
    finally:
        driver.quit()
