"""The ticket API's contract: what it refuses, how errors look, and a whole case driven through it alone."""

import json
import re
from datetime import datetime

import pytest

from hotline import clock
from tests.helpers import make_ticket, ticket_payload, transition_body
from ticketing import services
from ticketing.calendar import TZ
from ticketing.models import EVENT_UPDATED, IdempotencyKey, Ticket, TicketEvent
from ticketing.workflow import SIDES, Side, Status, Transition

TICKETS = "/api/v1/tickets/"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _transition(client, ticket_id: int, name: str, body: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"{TICKETS}{ticket_id}/transitions/{name}/", body or {}, format="json")


def _at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=TZ)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- create: bad input -----------------------------------------------------------------------------------


def test_create_returns_the_new_ticket(org, api_as):
    response = api_as(org.agent).post(TICKETS, ticket_payload(category=org.category.id), format="json")

    assert response.status_code == 201
    body = response.json()
    ticket = Ticket.objects.get()
    assert body["id"] == ticket.id
    assert body["status"] == Status.PENDING_DISPATCH
    assert body["hotline_line"] == "12345"
    assert body["category"] == {"id": org.category.id, "name": "物业管理", "parent": "城乡建设"}
    assert ticket.created_by == org.agent
    assert "Idempotent-Replayed" not in response


def test_create_as_draft(org, api_as):
    response = api_as(org.agent).post(TICKETS, ticket_payload(draft=True, hotline_line="8890"), format="json")

    assert response.status_code == 201
    assert response.json()["status"] == Status.DRAFT
    assert response.json()["number"].startswith("8890-")


def test_create_refuses_unknown_fields_and_names_them(org, api_as):
    response = api_as(org.agent).post(
        TICKETS, ticket_payload(priority="high", callerPhone="13812345678"), format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {"callerPhone": ["未知字段。"], "priority": ["未知字段。"]}
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("category", "abc"),
        ("region", 1.5),
        ("caller_confidential", "maybe"),
        ("title", ["噪音", "扰民"]),
        ("content", {"text": "噪音"}),
        ("channel", "fax"),
        ("appeal_type", 3),
        ("urgency", "very"),
        ("draft", "sometimes"),
    ],
)
def test_create_refuses_wrong_types(org, api_as, field, value):
    response = api_as(org.agent).post(TICKETS, ticket_payload(**{field: value}), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == [field]
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("field", ["channel", "appeal_type", "title", "content"])
def test_create_requires_the_ticket_form(org, api_as, field):
    body = ticket_payload()
    del body[field]

    response = api_as(org.agent).post(TICKETS, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [field]
    assert not Ticket.objects.exists()


def test_an_empty_body_names_every_required_field(org, api_as):
    response = api_as(org.agent).post(TICKETS, {}, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["appeal_type", "channel", "content", "title"]


def test_a_blank_title_is_refused(org, api_as):
    response = api_as(org.agent).post(TICKETS, ticket_payload(title="   "), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["title"]


@pytest.mark.parametrize(("field", "limit"), [("title", 200), ("content", 10000)])
def test_create_refuses_oversized_text_but_takes_the_limit(org, api_as, field, limit):
    client = api_as(org.agent)

    too_long = client.post(TICKETS, ticket_payload(**{field: "噪" * (limit + 1)}), format="json")
    at_limit = client.post(TICKETS, ticket_payload(**{field: "噪" * limit}), format="json")

    assert too_long.status_code == 400
    assert list(too_long.json()["errors"]) == [field]
    assert at_limit.status_code == 201
    assert len(getattr(Ticket.objects.get(), field)) == limit


@pytest.mark.parametrize("body", ["[]", '[{"title": "噪音"}]', '"噪音"', "42"])
def test_create_refuses_a_body_that_is_not_an_object(org, api_as, body):
    response = api_as(org.agent).post(TICKETS, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"] == {"non_field_errors": ["请求体必须是 JSON 对象。"]}
    assert not Ticket.objects.exists()


def test_create_refuses_malformed_json(org, api_as):
    response = api_as(org.agent).post(TICKETS, '{"title": "噪音",', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("phone", ["abc", "138-1234-567x", "12", "1" * 25, "１３８１２３４５６７８"])
def test_create_refuses_an_invalid_phone(org, api_as, phone):
    response = api_as(org.agent).post(TICKETS, ticket_payload(caller_phone=phone), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["caller_phone"]


@pytest.mark.parametrize("phone", ["13812345678", "024-23456789", "+86 138 1234 5678", ""])
def test_create_takes_a_valid_phone(org, api_as, phone):
    response = api_as(org.agent).post(TICKETS, ticket_payload(caller_phone=phone), format="json")

    assert response.status_code == 201
    assert Ticket.objects.get().caller_phone == phone


@pytest.mark.parametrize(
    ("id_number", "message"),
    [
        ("110105194912310021", "身份证号校验位不正确。"),
        ("110105194912310020", "身份证号校验位不正确。"),
        ("11010519491231002", "身份证号应为 18 位。"),
        ("11010519491231002Y", "身份证号应为 18 位。"),
    ],
)
def test_create_refuses_an_invalid_id_number(org, api_as, id_number, message):
    response = api_as(org.agent).post(TICKETS, ticket_payload(caller_id_number=id_number), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"caller_id_number": [message]}


@pytest.mark.parametrize("id_number", ["11010519491231002X", "11010519491231002x"])
def test_create_takes_a_valid_id_number_and_stores_it_upper_case(org, api_as, id_number):
    response = api_as(org.agent).post(TICKETS, ticket_payload(caller_id_number=id_number), format="json")

    assert response.status_code == 201
    assert Ticket.objects.get().caller_id_number == "11010519491231002X"
    assert response.json()["caller_id_number"] == "110***********002X"


def test_create_refuses_an_unknown_hotline_line(org, api_as):
    response = api_as(org.agent).post(TICKETS, ticket_payload(hotline_line="99999"), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_hotline_line"
    assert response.json()["field"] == "hotline_line"
    assert CHINESE.search(response.json()["detail"])
    assert not Ticket.objects.exists()


def test_create_refuses_an_unknown_category(org, api_as):
    response = api_as(org.agent).post(TICKETS, ticket_payload(category=org.category.id + 1000), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_category"
    assert response.json()["field"] == "category"
    assert not Ticket.objects.exists()


def test_a_department_user_cannot_create(org, api_as):
    response = api_as(org.handler).post(TICKETS, ticket_payload(), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "not_permitted"
    assert not Ticket.objects.exists()


# --- status is never written directly --------------------------------------------------------------------


def test_status_in_a_create_is_an_unknown_field(org, api_as):
    response = api_as(org.agent).post(TICKETS, ticket_payload(status="closed"), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["未知字段。"]}
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("body", [{"status": "closed"}, {"status": "closed", "title": "新标题"}])
def test_status_in_a_patch_is_an_unknown_field_and_changes_nothing(org, api_as, body):
    ticket = make_ticket(org, Status.DRAFT)

    response = api_as(org.agent).patch(f"{TICKETS}{ticket.id}/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["未知字段。"]}
    ticket.refresh_from_db()
    assert ticket.status == Status.DRAFT
    assert ticket.title == "小区夜间施工噪音扰民"
    assert not ticket.events.filter(kind=EVENT_UPDATED).exists()


# --- PATCH -----------------------------------------------------------------------------------------------


def test_patch_on_a_draft_updates_and_records_field_names_only(org, api_as):
    ticket = make_ticket(org, Status.DRAFT)

    response = api_as(org.agent).patch(
        f"{TICKETS}{ticket.id}/",
        {"title": "工地夜间施工", "caller_phone": "13900001111", "category": org.category.id},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "工地夜间施工"
    assert body["caller_phone"] == "139****1111"
    assert body["category"]["id"] == org.category.id
    assert body["status"] == Status.DRAFT
    ticket.refresh_from_db()
    assert (ticket.title, ticket.caller_phone, ticket.category_id) == ("工地夜间施工", "13900001111", org.category.id)
    updated = ticket.events.get(kind=EVENT_UPDATED)
    assert updated.data == {"fields": ["caller_phone", "category", "title"]}
    assert updated.actor == org.agent
    assert (updated.from_status, updated.to_status) == (Status.DRAFT, Status.DRAFT)
    assert "13900001111" not in json.dumps(updated.data)
    assert "工地夜间施工" not in json.dumps(updated.data, ensure_ascii=False)


def test_patch_stores_the_id_number_upper_case_like_create(org, api_as):
    ticket = make_ticket(org, Status.DRAFT)

    response = api_as(org.agent).patch(
        f"{TICKETS}{ticket.id}/", {"caller_id_number": "11010519491231002x"}, format="json"
    )

    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.caller_id_number == "11010519491231002X"


@pytest.mark.parametrize("method", ["put", "delete"])
def test_a_ticket_cannot_be_replaced_or_deleted(org, api_as, method):
    ticket = make_ticket(org, Status.DRAFT)

    response = getattr(api_as(org.supervisor), method)(f"{TICKETS}{ticket.id}/", {"title": "新"}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.title) == (Status.DRAFT, "小区夜间施工噪音扰民")


def test_patch_without_a_change_records_nothing(org, api_as):
    ticket = make_ticket(org, Status.DRAFT)

    response = api_as(org.agent).patch(f"{TICKETS}{ticket.id}/", {"title": ticket.title}, format="json")

    assert response.status_code == 200
    assert not ticket.events.filter(kind=EVENT_UPDATED).exists()


def test_patch_on_a_dispatched_ticket_is_a_conflict(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED)

    response = api_as(org.agent).patch(f"{TICKETS}{ticket.id}/", {"title": "改标题"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_editable"
    assert response.json()["status"] == Status.DISPATCHED
    ticket.refresh_from_db()
    assert ticket.title == "小区夜间施工噪音扰民"
    assert not ticket.events.filter(kind=EVENT_UPDATED).exists()


def test_patch_of_an_invisible_ticket_is_not_found(org, api_as):
    ticket = make_ticket(org, Status.DRAFT)

    response = api_as(org.other_agent).patch(f"{TICKETS}{ticket.id}/", {"title": "改标题"}, format="json")

    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.title == "小区夜间施工噪音扰民"


# --- transitions -----------------------------------------------------------------------------------------


def _valid_body(transition: Transition, org) -> dict:  # type: ignore[no-untyped-def]
    return transition_body(org, transition)


@pytest.mark.parametrize("transition", list(Transition))
def test_every_transition_has_an_endpoint_that_refuses_a_closed_ticket(org, api_as, transition):
    ticket = make_ticket(org, Status.CLOSED)
    events = ticket.events.count()
    actor = org.handler if SIDES[transition] is Side.DEPARTMENT else org.supervisor

    response = _transition(api_as(actor), ticket.id, transition.value, _valid_body(transition, org))

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["transition"] == transition.value
    assert body["status"] == Status.CLOSED
    assert body["detail"] == f"工单当前状态为「已办结」，不能执行「{transition.label}」。"
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    assert ticket.events.count() == events


def test_an_unknown_transition_has_no_endpoint(org, api_as):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)

    response = _transition(api_as(org.supervisor), ticket.id, "close_everything")

    assert response.status_code == 404


def test_dispatching_twice_is_a_conflict(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED)

    response = _transition(api_as(org.dispatcher), ticket.id, "dispatch", {"lead_department": org.other_bureau.id})

    assert response.status_code == 409
    assert response.json()["detail"] == "工单当前状态为「已派单」，不能执行「派单」。"
    ticket.refresh_from_db()
    assert ticket.lead_department == org.bureau


@pytest.mark.parametrize(
    ("transition", "status", "username"),
    [
        (Transition.ACCEPT, Status.DISPATCHED, "dispatcher"),
        (Transition.ACCEPT, Status.DISPATCHED, "supervisor"),
        (Transition.REPLY, Status.ACCEPTED, "supervisor"),
        (Transition.APPROVE_EXTENSION, Status.ACCEPTED, "dispatcher"),
        (Transition.APPROVE_REPLY, Status.REPLIED, "handler"),
        (Transition.CLOSE, Status.CALLBACK, "handler"),
        (Transition.REOPEN, Status.CALLBACK, "lead"),
        (Transition.REJECT_EXTENSION, Status.ACCEPTED, "handler"),
    ],
)
def test_a_transition_by_the_wrong_role_is_not_permitted(org, api_as, transition, status, username):
    ticket = make_ticket(org, status)
    events = ticket.events.count()

    response = _transition(api_as(getattr(org, username)), ticket.id, transition.value, _valid_body(transition, org))

    assert response.status_code == 403
    assert response.json()["code"] == "not_permitted"
    assert response.json()["transition"] == transition.value
    assert CHINESE.search(response.json()["detail"])
    ticket.refresh_from_db()
    assert ticket.status == status
    assert ticket.events.count() == events


def test_an_assisting_department_sees_but_cannot_accept(org, api_as):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    services.ticket_dispatch(
        ticket_id=ticket.id,
        actor=org.dispatcher,
        lead_department_id=org.bureau.id,
        assisting_department_ids=[org.other_bureau.id],
    )
    client = api_as(org.other_handler)

    assert client.get(f"{TICKETS}{ticket.id}/").status_code == 200
    response = _transition(client, ticket.id, "accept")

    assert response.status_code == 403
    assert response.json()["code"] == "not_permitted"


def test_a_transition_on_an_invisible_ticket_is_not_found(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED, department=org.other_bureau)

    response = _transition(api_as(org.handler), ticket.id, "accept")

    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == Status.DISPATCHED


@pytest.mark.parametrize(
    ("transition", "status", "username", "body", "missing"),
    [
        (Transition.RETURN, Status.DISPATCHED, "handler", {}, "reason"),
        (Transition.RETURN, Status.DISPATCHED, "handler", {"reason": "  "}, "reason"),
        (Transition.REPLY, Status.ACCEPTED, "handler", {"reply_text": "已处理。"}, "result"),
        (Transition.REOPEN, Status.CALLBACK, "agent", {}, "comment"),
        (Transition.DISPATCH, Status.PENDING_DISPATCH, "dispatcher", {"note": "加急"}, "lead_department"),
        (Transition.CLOSE, Status.CALLBACK, "agent", {"comment": "满意"}, "satisfaction"),
    ],
)
def test_a_transition_without_its_required_input_is_refused(org, api_as, transition, status, username, body, missing):
    ticket = make_ticket(org, status)

    response = _transition(api_as(getattr(org, username)), ticket.id, transition.value, body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [missing]
    ticket.refresh_from_db()
    assert ticket.status == status


def test_a_transition_refuses_unknown_fields(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED)

    response = _transition(api_as(org.handler), ticket.id, "accept", {"status": "closed"})

    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["未知字段。"]}
    ticket.refresh_from_db()
    assert ticket.status == Status.DISPATCHED


def test_closing_a_dissatisfied_callback_is_refused(org, api_as):
    ticket = make_ticket(org, Status.CALLBACK)

    response = _transition(api_as(org.agent), ticket.id, "close", {"satisfaction": "dissatisfied"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["satisfaction"]
    ticket.refresh_from_db()
    assert ticket.status == Status.CALLBACK


def test_a_return_waits_for_review_and_an_approved_one_leaves_the_department(org, api_as):
    ticket = make_ticket(org, Status.ACCEPTED)

    response = _transition(api_as(org.handler), ticket.id, "return", {"reason": "不属于本单位职责。"})

    assert response.status_code == 200
    assert response.json()["status"] == Status.RETURN_PENDING
    assert response.json()["lead_department"]["id"] == org.bureau.id
    # The department may not decide its own return.
    refused = _transition(api_as(org.handler), ticket.id, "approve_return", {})
    assert refused.status_code == 403

    response = _transition(api_as(org.dispatcher), ticket.id, "approve_return", {"note": "同意，另行派单。"})

    assert response.status_code == 200
    assert api_as(org.handler).get(f"{TICKETS}{ticket.id}/").status_code == 404
    seen_by_dispatcher = api_as(org.dispatcher).get(f"{TICKETS}{ticket.id}/").json()
    assert seen_by_dispatcher["status"] == Status.PENDING_DISPATCH
    assert seen_by_dispatcher["lead_department"] is None
    assert seen_by_dispatcher["return_count"] == 1
    assert ticket.events.last().data == {
        "lead_department": None,
        "department": org.bureau.id,
        "reason": "不属于本单位职责。",
        "note": "同意，另行派单。",
    }


def test_a_refused_return_leaves_the_ticket_accepted_by_the_department(org, api_as):
    ticket = make_ticket(org, Status.RETURN_PENDING)

    response = _transition(api_as(org.dispatcher), ticket.id, "reject_return", {"reason": "属于本单位职责。"})

    assert response.status_code == 200
    assert response.json()["status"] == Status.ACCEPTED
    ticket.refresh_from_db()
    assert ticket.accepted_at is not None
    assert ticket.lead_department_id == org.bureau.id


def test_a_transition_the_actor_still_sees_answers_200_with_the_detail(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED)

    response = _transition(api_as(org.handler), ticket.id, "accept")

    assert response.status_code == 200
    assert response.json()["status"] == Status.ACCEPTED
    assert response.json()["allowed_transitions"] == [
        "return",
        "reassign",
        "request_extension",
        "approve_extension",
        "reject_extension",
        "suspend",
        "reply",
        "merge",
    ]


# --- the whole case through the API ----------------------------------------------------------------------


def test_a_whole_case_through_the_api(org, api_as):
    def step(user, when, name, body=None):  # type: ignore[no-untyped-def]
        with clock.frozen(when):
            response = _transition(api_as(user), ticket_id, name, body)
        assert response.status_code == 200, response.json()
        return response.json()

    # Monday 3 March 2025: a working week with no holiday in it.
    with clock.frozen(_at(3, 9, 30)):
        created = api_as(org.agent).post(TICKETS, ticket_payload(category=org.category.id), format="json")
    assert created.status_code == 201
    ticket_id = created.json()["id"]

    dispatched = step(org.dispatcher, _at(3, 10), "dispatch", {"lead_department": org.bureau.id, "note": "请核实"})
    assert dispatched["status"] == Status.DISPATCHED
    assert dispatched["lead_department"]["id"] == org.bureau.id
    assert _time(dispatched["accept_due_at"]) == _at(4, 10)
    assert _time(dispatched["return_due_at"]) == _at(5, 10)
    assert _time(dispatched["reply_due_at"]) == _at(10, 10)

    assert step(org.handler, _at(3, 10, 30), "accept")["status"] == Status.ACCEPTED
    requested = step(org.handler, _at(5, 9), "request_extension", {"working_days": 3, "reason": "需要现场勘查。"})
    assert requested["status"] == Status.ACCEPTED
    assert _time(requested["reply_due_at"]) == _at(10, 10)

    approved = step(org.supervisor, _at(5, 11), "approve_extension", {"note": "同意"})
    assert approved["status"] == Status.ACCEPTED
    assert _time(approved["reply_due_at"]) == _at(13, 10)
    assert approved["extension_count"] == 1

    replied = step(org.handler, _at(6, 10), "reply", {"reply_text": "已约谈施工方。", "result": "partly_solved"})
    assert replied["status"] == Status.REPLIED
    assert replied["reply_result"] == "partly_solved"
    assert step(org.dispatcher, _at(6, 11), "approve_reply")["status"] == Status.CALLBACK

    # Friday: the caller is not satisfied; the bureau gets the case again with fresh deadlines.
    reopened = step(org.agent, _at(7, 10), "reopen", {"comment": "夜间仍在施工。"})
    assert reopened["status"] == Status.DISPATCHED
    assert reopened["lead_department"]["id"] == org.bureau.id
    assert reopened["satisfaction"] == "dissatisfied"
    assert reopened["reopen_count"] == 1
    assert reopened["accepted_at"] is None
    assert _time(reopened["dispatched_at"]) == _at(7, 10)
    assert _time(reopened["accept_due_at"]) == _at(10, 10)
    assert _time(reopened["reply_due_at"]) == _at(14, 10)

    assert step(org.handler, _at(7, 11), "accept")["status"] == Status.ACCEPTED
    step(org.handler, _at(10, 10), "reply", {"reply_text": "施工方已停止夜间施工。", "result": "solved"})
    assert step(org.dispatcher, _at(10, 11), "approve_reply")["status"] == Status.CALLBACK
    closed = step(org.agent, _at(11, 10), "close", {"satisfaction": "satisfied", "comment": "满意"})
    assert closed["status"] == Status.CLOSED
    assert closed["satisfaction"] == "satisfied"
    assert _time(closed["closed_at"]) == _at(11, 10)
    assert closed["allowed_transitions"] == []

    timeline = api_as(org.agent).get(f"{TICKETS}{ticket_id}/timeline/")
    assert timeline.status_code == 200
    events = timeline.json()
    assert [(e["kind"], e["from_status"], e["to_status"], e["actor"]["id"]) for e in events] == [
        ("created", "", "pending_dispatch", org.agent.id),
        ("dispatch", "pending_dispatch", "dispatched", org.dispatcher.id),
        ("accept", "dispatched", "accepted", org.handler.id),
        ("request_extension", "accepted", "accepted", org.handler.id),
        ("approve_extension", "accepted", "accepted", org.supervisor.id),
        ("reply", "accepted", "replied", org.handler.id),
        ("approve_reply", "replied", "callback", org.dispatcher.id),
        ("reopen", "callback", "dispatched", org.agent.id),
        ("accept", "dispatched", "accepted", org.handler.id),
        ("reply", "accepted", "replied", org.handler.id),
        ("approve_reply", "replied", "callback", org.dispatcher.id),
        ("close", "callback", "closed", org.agent.id),
    ]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert [_time(e["created_at"]) for e in events] == [
        _at(3, 9, 30),
        _at(3, 10),
        _at(3, 10, 30),
        _at(5, 9),
        _at(5, 11),
        _at(6, 10),
        _at(6, 11),
        _at(7, 10),
        _at(7, 11),
        _at(10, 10),
        _at(10, 11),
        _at(11, 10),
    ]
    assert events[2]["actor"] == {"id": org.handler.id, "name": str(org.handler), "role": "department_handler"}
    assert events[4]["data"]["working_days"] == 3
    assert _time(events[4]["data"]["reply_due_at"]) == _at(13, 10)

    later = api_as(org.agent).get(f"{TICKETS}{ticket_id}/timeline/", {"after": ids[-3]})
    assert [e["id"] for e in later.json()] == ids[-2:]


@pytest.mark.parametrize("after", ["-1", "abc", "1.5", "", "²"])
def test_the_timeline_refuses_a_bad_after(org, api_as, after):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)

    response = api_as(org.agent).get(f"{TICKETS}{ticket.id}/timeline/", {"after": after})

    assert response.status_code == 400
    assert response.json()["field"] == "after"


# --- Idempotency-Key -------------------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_same_ticket(org, api_as):
    client = api_as(org.agent)

    first = client.post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="call-7f3a")
    second = client.post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="call-7f3a")

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["number"] == first.json()["number"]
    assert "Idempotent-Replayed" not in first
    assert second["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1
    assert TicketEvent.objects.filter(kind="created").count() == 1


def test_the_same_idempotency_key_with_another_body_is_refused(org, api_as):
    client = api_as(org.agent)
    client.post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="call-7f3a")

    response = client.post(TICKETS, ticket_payload(title="另一件事"), format="json", HTTP_IDEMPOTENCY_KEY="call-7f3a")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert CHINESE.search(response.json()["detail"])
    assert list(Ticket.objects.values_list("title", flat=True)) == ["小区夜间施工噪音扰民"]


def test_an_idempotency_key_longer_than_128_characters_is_refused(org, api_as):
    client = api_as(org.agent)

    too_long = client.post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 129)
    longest = client.post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 128)

    assert too_long.status_code == 400
    assert too_long.json()["code"] == "idempotency_key_too_long"
    assert longest.status_code == 201
    assert Ticket.objects.count() == 1
    assert IdempotencyKey.objects.get().key == "k" * 128


def test_different_users_may_use_the_same_idempotency_key(org, api_as):
    first = api_as(org.agent).post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="call-1")
    second = api_as(org.other_agent).post(TICKETS, ticket_payload(), format="json", HTTP_IDEMPOTENCY_KEY="call-1")

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second
    assert sorted(Ticket.objects.values_list("created_by__username", flat=True)) == ["agent", "agent2"]


# --- the OpenAPI schema ----------------------------------------------------------------------------------


def test_the_schema_documents_every_transition(api):
    response = api.get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    operations = {
        operation["operationId"]: path
        for path, item in schema["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for transition in Transition:
        assert operations[f"tickets_transition_{transition.value}"] == (
            f"/api/v1/tickets/{{id}}/transitions/{transition.value}/"
        )
    timeline = schema["paths"]["/api/v1/tickets/{id}/timeline/"]["get"]["responses"]["200"]
    assert timeline["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/TicketEvent"},
    }


# --- list filters ----------------------------------------------------------------------------------------


def _listed(client, **params) -> list[int]:  # type: ignore[no-untyped-def]
    response = client.get(TICKETS, {"page_size": 200, **params})
    assert response.status_code == 200, response.json()
    return sorted(item["id"] for item in response.json()["results"])


def test_the_list_filters_on_several_statuses(org, api_as):
    draft = make_ticket(org, Status.DRAFT)
    pending = make_ticket(org, Status.PENDING_DISPATCH)
    dispatched = make_ticket(org, Status.DISPATCHED)
    closed = make_ticket(org, Status.CLOSED)
    client = api_as(org.supervisor)

    assert _listed(client, status=["draft", "dispatched"]) == sorted([draft.id, dispatched.id])
    assert _listed(client, status="closed") == [closed.id]
    assert _listed(client) == sorted([draft.id, pending.id, dispatched.id, closed.id])
    assert client.get(TICKETS, {"status": "finished"}).status_code == 400


def test_the_list_filters_on_appeal_type(org, api_as):
    complaint = make_ticket(org, Status.PENDING_DISPATCH)
    inquiry = make_ticket(org, Status.PENDING_DISPATCH, appeal_type="inquiry")
    client = api_as(org.dispatcher)

    assert _listed(client, appeal_type="inquiry") == [inquiry.id]
    assert _listed(client, appeal_type="complaint") == [complaint.id]
    assert _listed(client, appeal_type="praise") == []


def test_the_department_filter_includes_the_subtree(org, api_as):
    bureau = make_ticket(org, Status.DISPATCHED, department=org.bureau)
    unit = make_ticket(org, Status.DISPATCHED, department=org.bureau_unit)
    other = make_ticket(org, Status.DISPATCHED, department=org.other_bureau)
    client = api_as(org.supervisor)

    assert _listed(client, department=org.bureau.id) == sorted([bureau.id, unit.id])
    assert _listed(client, department=org.bureau_unit.id) == [unit.id]
    assert _listed(client, department=org.other_bureau.id) == [other.id]


def test_the_department_filter_does_not_widen_visibility(org, api_as):
    make_ticket(org, Status.DISPATCHED, department=org.other_bureau)

    assert _listed(api_as(org.handler), department=org.other_bureau.id) == []


def test_the_region_filter_includes_the_subtree(org, api_as):
    district = make_ticket(org, Status.PENDING_DISPATCH, region_id=org.district.id)
    street = make_ticket(org, Status.PENDING_DISPATCH, region_id=org.street.id)
    other = make_ticket(org, Status.PENDING_DISPATCH, region_id=org.other_district.id)
    make_ticket(org, Status.PENDING_DISPATCH)
    client = api_as(org.dispatcher)

    assert _listed(client, region=org.district.id) == sorted([district.id, street.id])
    assert _listed(client, region=org.street.id) == [street.id]
    assert _listed(client, region=org.other_district.id) == [other.id]
    assert _listed(client, region=org.city.id) == sorted([district.id, street.id, other.id])


def test_the_overdue_filter(org, api_as):
    with clock.frozen(_at(20, 10, month=2)):
        late_reply = make_ticket(org, Status.ACCEPTED)
    with clock.frozen(_at(3, 10)):
        late_accept = make_ticket(org, Status.DISPATCHED)
    with clock.frozen(_at(5, 9)):
        fresh = make_ticket(org, Status.DISPATCHED)
        pending = make_ticket(org, Status.PENDING_DISPATCH)
    client = api_as(org.supervisor)

    with clock.frozen(_at(5, 12)):
        overdue = _listed(client, overdue="true")
        on_time = _listed(client, overdue="false")
        everything = _listed(client)

    assert overdue == sorted([late_reply.id, late_accept.id])
    assert on_time == sorted([fresh.id, pending.id])
    assert len(everything) == 4


@pytest.mark.parametrize("params", [{"bogus": "1"}, {"statuses": "draft"}, {"department_id": "1"}])
def test_an_unknown_query_parameter_is_refused(org, api_as, params):
    response = api_as(org.supervisor).get(TICKETS, params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"] == {next(iter(params)): ["未知字段。"]}


@pytest.mark.parametrize("params", [{"page_size": "201"}, {"department": "abc"}, {"overdue": "maybe"}])
def test_a_malformed_query_parameter_is_refused(org, api_as, params):
    response = api_as(org.supervisor).get(TICKETS, params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == list(params)
