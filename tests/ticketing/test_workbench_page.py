"""The department workbench page without a browser: who may open it, which departments and tickets it carries,
and that every control of the template has a label."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.factories import UserFactory
from tests.helpers import make_ticket
from ticketing import services
from ticketing.models import Role
from ticketing.workflow import Status

URL = "/workbench/"


def _json_script(html: str, element_id: str) -> dict:  # type: ignore[type-arg]
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} in the page"
    return json.loads(match.group(1))


class _Controls(HTMLParser):
    """Form controls, labels and ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "label" and attributes.get("for"):
            self.label_for.add(str(attributes["for"]))
        if tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.controls.append({"tag": tag, **attributes})


def test_the_route_is_named(org):
    assert reverse("ticketing:workbench") == URL


def test_the_page_renders_for_a_handler_with_the_departments_tickets(client, org):
    mine = make_ticket(org, Status.DISPATCHED)
    theirs = make_ticket(org, Status.DISPATCHED, department=org.other_bureau)
    client.force_login(org.handler)

    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "承办单位工作台" in html
    assert "市住房和城乡建设局" in html
    assert 'href="/static/ticketing/desk.css"' in html
    assert 'src="/static/ticketing/workbench.js"' in html
    assert 'aria-live="polite"' in html
    inbox = _json_script(html, "workbench-inbox")
    assert [t["number"] for t in inbox["tickets"]] == [mine.number]
    assert theirs.number not in html
    assert inbox["counts"]["dispatched"] == 1
    config = _json_script(html, "workbench-config")
    assert config["socket_path"] == f"/ws/departments/{org.bureau.id}/"
    assert config["inbox_url"] == f"/api/v1/workbench/departments/{org.bureau.id}/inbox/"
    labels = _json_script(html, "workbench-labels")
    assert labels["transition"]["accept"] == "签收"
    assert labels["count"]["dispatched"] == "待签收"
    # A handler of one department gets no switcher; the caller's data is not on the page.
    assert 'id="department-select"' not in html
    assert "13812345678" not in html and "张三" not in html
    # The script reads the CSRF token from the page, and the cookie is set for it.
    assert re.search(r'data-csrf="[A-Za-z0-9]{32,}"', html)
    assert "csrftoken" in response.cookies


def test_an_anonymous_visitor_is_sent_to_log_in(client, org):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("username", ["agent", "dispatcher", "supervisor", "admin"])
def test_other_roles_are_refused_in_chinese(client, org, username):
    client.force_login(getattr(org, {"admin": "administrator"}.get(username, username)))
    response = client.get(URL)
    assert response.status_code == 403
    assert "工作台供承办单位人员使用" in response.content.decode()


def test_a_handler_without_a_department_is_refused(client, org):
    client.force_login(UserFactory(username="lonely", role=Role.DEPARTMENT_HANDLER))
    response = client.get(URL)
    assert response.status_code == 403
    assert "还没有加入任何承办单位" in response.content.decode()


def test_a_lead_switches_between_the_departments_of_the_subtree(client, org):
    in_unit = make_ticket(org, Status.DISPATCHED, department=org.bureau_unit)
    client.force_login(org.lead)

    html = client.get(URL).content.decode()

    options = re.findall(r'<option value="(\d+)"( selected)?>([^<]*)</option>', html)
    assert [(int(v), bool(s), name.strip("\u3000")) for v, s, name in options] == [
        (org.bureau.id, True, "市住房和城乡建设局"),
        (org.bureau_unit.id, False, "市住建局物业监管处"),
    ]
    # The sub-unit is indented under its parent.
    assert any(name.startswith("\u3000") for _v, _s, name in options)
    assert 'label for="department-select"' in html
    inbox = _json_script(html, "workbench-inbox")
    assert inbox["department_ids"] == sorted([org.bureau.id, org.bureau_unit.id])
    assert [t["number"] for t in inbox["tickets"]] == [in_unit.number]

    unit_page = client.get(URL, {"department": org.bureau_unit.id})
    assert unit_page.status_code == 200
    assert _json_script(unit_page.content.decode(), "workbench-config")["socket_path"] == (
        f"/ws/departments/{org.bureau_unit.id}/"
    )


def test_a_handler_cannot_open_another_departments_workbench(client, org):
    client.force_login(org.handler)
    for wanted in (org.other_bureau.id, org.bureau_unit.id, 999999, "abc", "١"):
        assert client.get(URL, {"department": wanted}).status_code == 404


def test_a_handler_in_two_departments_gets_both(client, org):
    org.handler.departments.add(org.other_bureau)
    client.force_login(org.handler)
    html = client.get(URL).content.decode()
    assert re.findall(r'<option value="(\d+)"', html) == [str(org.bureau.id), str(org.other_bureau.id)]


def test_a_sub_units_member_sees_what_was_handed_down(client, org):
    ticket = make_ticket(org, Status.ACCEPTED)
    services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.handler, unit_id=org.bureau_unit.id)
    client.force_login(org.unit_handler)
    inbox = _json_script(client.get(URL).content.decode(), "workbench-inbox")
    assert [(t["number"], t["role"]) for t in inbox["tickets"]] == [(ticket.number, "unit")]


def test_every_control_has_a_label_and_ids_are_unique(client, org):
    client.force_login(org.lead)
    parser = _Controls()
    parser.feed(client.get(URL).content.decode())

    assert len(parser.ids) == len(set(parser.ids))
    unlabelled = [c for c in parser.controls if c.get("id") not in parser.label_for and not c.get("aria-label")]
    assert unlabelled == []
    names = {c.get("id") for c in parser.controls}
    # The actions of the issue are all there: reply with its four results, return, extension, hand-down,
    # notes, files, assisting parts, and the sound switch.
    assert {
        "reply-result",
        "reply-text",
        "return-reason",
        "extension-days",
        "extension-reason",
        "suspend-reason",
        "resume-note",
        "hand-unit",
        "hand-note",
        "assisting-department",
        "assisting-text",
        "note-text",
        "attachment-file",
        "sound-toggle",
        "department-select",
    } <= names


def test_the_reply_results_are_the_four_of_the_issue(client, org):
    client.force_login(org.handler)
    html = client.get(URL).content.decode()
    select = re.search(r'<select id="reply-result".*?</select>', html, re.S)
    assert select
    assert re.findall(r'<option value="(\w+)">([^<]+)</option>', select.group(0)) == [
        ("solved", "已解决"),
        ("partly_solved", "部分解决"),
        ("not_solved", "未解决"),
        ("explained", "已解释说明"),
    ]


def test_the_static_files_are_found_and_load_nothing_from_elsewhere():
    for name in ("ticketing/desk.css", "ticketing/workbench.js"):
        path = finders.find(name)
        assert path, name
        text = Path(path).read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
