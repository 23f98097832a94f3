"""The agent desk without a browser: who may open it, what the page carries for its script, that every control
has a label and every action a shortcut, and the desk's one-step actions through the API (instant reply with
the chosen answer, dispatch by a dispatcher and by an agent, emergency transfer, legal route, merge, a ticket
made at the desk for a call) with the agent's wrap-up ending when the call's ticket is done."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from knowledge_base import services as kb
from knowledge_base.models import ArticleUse
from knowledge_base.services import ArticleContent
from telephony import agents, drafting, selectors, services
from telephony.models import AgentStateKind, Call
from tests.helpers import make_ticket
from ticketing.models import Ticket, TicketEvent
from ticketing.workflow import Status

URL = "/desk/"
CALLER = "13812345678"


def _json_script(html: str, element_id: str) -> dict:  # type: ignore[type-arg]
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} in the page"
    return json.loads(match.group(1))


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.ids: list[str] = []
        self.shortcuts: dict[str, str] = {}
        self._button: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "label" and attributes.get("for"):
            self.label_for.add(str(attributes["for"]))
        if tag in ("input", "select", "textarea"):
            self.controls.append({"tag": tag, **attributes})
        if tag == "button" and attributes.get("aria-keyshortcuts"):
            self._button = attributes
            self.shortcuts[str(attributes["aria-keyshortcuts"])] = ""

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self.shortcuts[str(self._button["aria-keyshortcuts"])] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None


def start_call(org, *, agent=None, call_uuid="desk-1"):  # type: ignore[no-untyped-def]
    return services.call_start(
        call_uuid=call_uuid,
        door="websocket",
        hotline_line="12345",
        caller_number=CALLER,
        agent=agent or org.agent,
        live_transcript=True,
    )


def say(call: Call, index: int, text: str) -> None:
    services.call_segment_add(
        call_id=call.id, index=index, text=text, start_ms=index * 3000, end_ms=index * 3000 + 2500
    )


def drafted(org, *, agent=None, text="我要投诉和平区幸福小区夜间施工噪音"):  # type: ignore[no-untyped-def]
    """A call at the agent's seat with its draft, filled from what the caller said."""
    call = start_call(org, agent=agent)
    say(call, 0, text)
    ticket = drafting.call_draft_fill(call_id=call.id)
    assert ticket is not None
    call.refresh_from_db()
    return call, ticket


# --- the page ----------------------------------------------------------------------------------------------


def test_the_route_is_named():
    assert reverse("telephony:desk") == URL


def test_an_anonymous_visitor_is_sent_to_log_in(client, org):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("username", ["handler", "lead"])
def test_departments_are_refused_in_chinese(client, org, username):
    client.force_login(getattr(org, username))
    response = client.get(URL)
    assert response.status_code == 403
    assert "坐席工作台供热线中心人员" in response.content.decode()


def test_the_page_carries_what_the_script_needs(client, org):
    client.force_login(org.agent)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "坐席工作台" in html and 'lang="zh-hans"' in html
    assert 'href="/static/telephony/desk.css"' in html and 'src="/static/telephony/desk.js"' in html
    assert finders.find("telephony/desk.js") and finders.find("telephony/desk.css")
    assert re.search(r'data-csrf="[A-Za-z0-9]{32,}"', html)
    config = _json_script(html, "desk-config")
    assert config["socket_path"] == "/ws/agent/"
    assert config["user"] == {"id": org.agent.id, "name": str(org.agent)}
    assert config["state"]["state"] == "away" and config["state"]["call"] is None
    assert config["urls"]["my_state"] == "/api/v1/agents/me/state/"
    assert config["urls"]["desk"] == "/api/v1/desk/tickets/"
    labels = _json_script(html, "desk-labels")
    assert labels["emergency_targets"] == {
        "110": "110 报警",
        "119": "119 火警",
        "120": "120 急救",
        "122": "122 交通事故",
    }
    assert set(labels["legal_targets"]) == {"litigation", "arbitration", "petition", "disclosure"}
    reference = _json_script(html, "desk-reference")
    # Departments that take dispatch only (not the hotline centre itself); regions down to streets.
    assert {d["name"] for d in reference["departments"]} >= {org.bureau.name, org.street_office.name}
    assert org.centre.name not in {d["name"] for d in reference["departments"]}
    assert {r["name"] for r in reference["regions"]} == {"沈阳市", "和平区", "太原街街道", "沈河区"}
    assert reference["categories"][0]["children"][0]["name"] == "物业管理"
    # The desk links to the callbacks; only the board's readers get the board's link.
    assert 'href="/callbacks/"' in html and 'href="/board/"' not in html


def test_every_control_has_a_label_and_every_action_its_shortcut(client, org):
    client.force_login(org.dispatcher)
    page = _Page()
    page.feed(client.get(URL).content.decode())
    unlabelled = [c for c in page.controls if c.get("id") not in page.label_for and c.get("type") != "hidden"]
    assert unlabelled == []
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    assert {k: " ".join(v.split()) for k, v in page.shortcuts.items()} == {
        "Alt+1": "即时答复 Alt+1",
        "Alt+2": "派单 Alt+2",
        "Alt+3": "紧急转接 Alt+3",
        "Alt+4": "告知法定途径 Alt+4",
        "Alt+5": "并单 Alt+5",
    }


def test_a_page_opened_during_a_call_shows_it_and_numbers_stay_masked(client, org):
    call, ticket = drafted(org)
    client.force_login(org.agent)
    html = client.get(URL).content.decode()
    state = _json_script(html, "desk-config")["state"]
    assert state["state"] == "on_call" and state["call"]["id"] == call.id
    assert state["call"]["caller_masked"] == "138****5678"
    assert CALLER not in html
    detail = client.get(f"/api/v1/calls/{call.id}/").json()
    assert detail["ticket"] == ticket.id and detail["segments"][0]["text"]


# --- the actions -------------------------------------------------------------------------------------------


def publish(org, title: str, answer: str):  # type: ignore[no-untyped-def]
    content = ArticleContent(title=title, question=title, answer=answer, audience="public")
    article = kb.article_create(actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=content)
    kb.article_submit(article_id=article.id, actor=org.handler)
    return kb.article_approve(article_id=article.id, actor=org.lead)


def test_instant_reply_with_the_chosen_answer_closes_the_ticket_and_ends_the_wrap_up(org, api_as, settings):
    settings.AGENT_WRAP_UP_SECONDS = 120
    article = publish(org, "夜间施工噪音投诉渠道", "夜间施工须办理夜间施工许可，无许可施工可向城管部门举报。")
    call, ticket = drafted(org)
    services.call_end(call_id=call.id, reason="hangup")
    assert selectors.agent_state_of(user=org.agent, now=call.started_at).state == AgentStateKind.WRAP_UP

    client = api_as(org.agent)
    url = reverse("desk-instant-reply", args=[ticket.id])
    response = client.post(url, {"reply_text": "  ", "article": article.id}, format="json")
    assert response.status_code == 400 and "reply_text" in response.json()["errors"]
    response = client.post(url, {"reply_text": article.answer, "article": article.id}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["outcome"]) == ("closed", "instant_reply")
    assert body["message"] == f"工单 {ticket.number} 已即时答复办结。"
    assert ArticleUse.objects.filter(article=article, ticket=ticket, used_by=org.agent).count() == 1
    assert Ticket.objects.get(pk=ticket.id).reply_text == article.answer
    # The call's ticket is done: the agent is free for the next call, and the call keeps its ticket.
    view = selectors.agent_state_of(user=org.agent, now=call.started_at)
    assert view.state == AgentStateKind.AVAILABLE
    assert Call.objects.get(pk=call.id).ticket_id == ticket.id
    # Done is done.
    again = client.post(url, {"reply_text": "再答一次"}, format="json")
    assert again.status_code == 409


def test_a_dispatcher_dispatches_with_lead_and_assisting_departments(org, api_as):
    call, ticket = drafted(org, agent=org.dispatcher)
    client = api_as(org.dispatcher)
    body = client.post(
        reverse("desk-dispatch", args=[ticket.id]),
        {"lead_department": org.bureau.id, "assisting_departments": [org.street_office.id], "note": "请尽快处理"},
        format="json",
    ).json()
    assert (body["status"], body["outcome"]) == ("dispatched", "dispatched")
    assert body["message"] == f"工单 {ticket.number} 已派至{org.bureau.name}。"
    stored = Ticket.objects.get(pk=ticket.id)
    assert stored.lead_department == org.bureau
    assert list(stored.assisting_departments.all()) == [org.street_office]
    kinds = list(TicketEvent.objects.filter(ticket=stored).values_list("kind", flat=True))
    assert kinds[-2:] == ["submit", "dispatch"]
    # During the call nothing changes for the seat.
    assert selectors.agent_state_of(user=org.dispatcher, now=call.started_at).state == AgentStateKind.ON_CALL


def test_the_agent_on_the_call_dispatches_and_a_refused_department_leaves_the_draft(org, api_as):
    _call, ticket = drafted(org)
    client = api_as(org.agent)
    url = reverse("desk-dispatch", args=[ticket.id])
    # A department that takes no dispatch is refused, and the draft stays a draft.
    refused = client.post(url, {"lead_department": org.centre.id}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_department"
    assert Ticket.objects.get(pk=ticket.id).status == Status.DRAFT
    body = client.post(
        url, {"lead_department": org.bureau.id, "assisting_departments": [org.other_bureau.id]}, format="json"
    ).json()
    assert (body["status"], body["outcome"]) == ("dispatched", "dispatched")
    stored = Ticket.objects.get(pk=ticket.id)
    assert stored.lead_department == org.bureau
    assert list(stored.assisting_departments.all()) == [org.other_bureau]


@pytest.mark.parametrize("target", ["119", "litigation"])
def test_emergency_transfer_and_legal_route(org, api_as, target):
    _call, ticket = drafted(org, text="楼道里着火了有很多烟")
    client = api_as(org.agent)
    body = client.post(
        reverse("desk-transfer", args=[ticket.id]), {"target": target, "note": "已转接"}, format="json"
    ).json()
    assert (body["status"], body["outcome"]) == ("transferred", "transferred")
    assert Ticket.objects.get(pk=ticket.id).external_target == target
    bad = client.post(reverse("desk-transfer", args=[ticket.id]), {"target": "999"}, format="json")
    assert bad.status_code == 400


def test_a_repeat_call_is_merged_into_the_open_ticket(org, api_as):
    earlier = make_ticket(org, Status.DISPATCHED)
    _call, ticket = drafted(org)
    client = api_as(org.agent)
    missing = client.post(reverse("desk-merge", args=[ticket.id]), {"into_ticket": 999999}, format="json")
    assert missing.status_code == 404
    body = client.post(reverse("desk-merge", args=[ticket.id]), {"into_ticket": earlier.id}, format="json").json()
    assert (body["status"], body["message"]) == ("merged", f"工单 {ticket.number} 已并入 {earlier.number}。")


def test_actions_on_a_ticket_one_may_not_see_are_not_found(org, api_as):
    _call, ticket = drafted(org)
    # Another agent's draft is theirs until it is submitted.
    response = api_as(org.other_agent).post(
        reverse("desk-dispatch", args=[ticket.id]), {"lead_department": org.bureau.id}, format="json"
    )
    assert response.status_code == 404
    assert (
        api_as(org.handler)
        .post(reverse("desk-transfer", args=[ticket.id]), {"target": "110"}, format="json")
        .status_code
        == 403
    )


def test_a_ticket_made_at_the_desk_is_linked_to_the_call_and_the_filler_keeps_the_agents_words(org, api_as):
    call = start_call(org, call_uuid="desk-cti")
    client = api_as(org.agent)
    url = reverse("call-ticket", args=[call.id])
    assert client.post(url, {"title": "", "content": "x"}, format="json").status_code == 400
    response = client.post(
        url, {"title": "咨询：公积金提取", "content": "来电咨询公积金提取材料", "appeal_type": "inquiry"}, format="json"
    )
    assert response.status_code == 201
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert (ticket.status, ticket.channel, ticket.caller_phone, ticket.created_by) == (
        "draft",
        "phone",
        CALLER,
        org.agent,
    )
    assert Call.objects.get(pk=call.id).ticket == ticket
    again = client.post(url, {"title": "再建一张", "content": "重复"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "call_has_ticket"
    # The caller speaks on: the filler fills what the agent left empty, never the title the agent wrote.
    say(call, 0, "我想问一下和平区住房公积金提取需要什么材料")
    drafting.call_draft_fill(call_id=call.id)
    ticket.refresh_from_db()
    assert ticket.title == "咨询：公积金提取" and ticket.region == org.district


def test_the_agents_correction_through_the_api_survives_the_next_fill(org, api_as):
    call, ticket = drafted(org)
    client = api_as(org.agent)
    client.patch(f"/api/v1/tickets/{ticket.id}/", {"title": "投诉：夜间施工噪音（坐席改）"}, format="json")
    say(call, 1, "是那个幸福小区三号楼旁边的工地")
    drafting.call_draft_fill(call_id=call.id)
    ticket.refresh_from_db()
    assert ticket.title == "投诉：夜间施工噪音（坐席改）"
    assert "三号楼" in ticket.content


def test_finishing_another_ticket_does_not_end_the_wrap_up(org):
    call, _ticket = drafted(org)
    other = make_ticket(org, Status.DRAFT)
    services.call_end(call_id=call.id, reason="hangup")
    agents.agent_ticket_completed(actor=org.agent, ticket_id=other.id)
    assert selectors.agent_state_of(user=org.agent, now=call.started_at).state == AgentStateKind.WRAP_UP
