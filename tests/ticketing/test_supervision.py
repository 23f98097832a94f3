"""Supervision orders and urging: who may do what (403/404), the trail, escalation up to level 3, the
orders' own overdue marks, visibility, and the API round trips."""

import json
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hotline import clock
from hotline.errors import ApplicationError, Conflict, InvalidTransition, NotFound, NotPermitted
from hotline.realtime import events as rt
from tests.helpers import make_ticket
from ticketing import services, sla, supervision
from ticketing.calendar import TZ
from ticketing.models import SupervisionOrder, Ticket, TicketEventDepartment
from ticketing.realtime import staff_event
from ticketing.supervision_selectors import supervision_order_visible_to
from ticketing.workflow import Status

ORDERS = "/api/v1/supervision-orders/"
# Mon 3 Nov 2025 10:00: an ordinary week (Wed 5 Nov 10:00 is 2 working days later).
MONDAY = datetime(2025, 11, 3, 10, tzinfo=TZ)


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=TZ)


def issue(org, ticket: Ticket, *, days: int = 2, level: int = 1) -> SupervisionOrder:  # type: ignore[no-untyped-def]
    with clock.frozen(MONDAY):
        return supervision.supervision_order_issue(
            ticket_id=ticket.id, actor=org.supervisor, reason="群众多次来电反映", due_working_days=days, level=level
        )


@pytest.fixture
def ticket(org) -> Ticket:  # type: ignore[no-untyped-def]
    with clock.frozen(MONDAY - timedelta(hours=1)):
        return make_ticket(org, Status.ACCEPTED)


# ---------------------------------------------------------------------------------------------------------
# issue


def test_a_supervisor_issues_an_order_on_the_trail(org, ticket, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = issue(org, ticket, days=2)

    assert (order.department, order.level, order.formal_notice, order.status) == (org.bureau, 1, False, "open")
    assert (order.issued_by, order.issued_at, order.due_at) == (org.supervisor, MONDAY, at(5))
    event = ticket.events.get(kind="supervision_issued")
    assert event.actor == org.supervisor
    assert event.data == {
        "order": order.id,
        "level": 1,
        "formal_notice": False,
        "department": org.bureau.id,
        "due_at": "2025-11-05T10:00:00+08:00",
        "reason": "群众多次来电反映",
    }
    assert set(TicketEventDepartment.objects.filter(event=event).values_list("department_id", flat=True)) == {
        org.bureau.id
    }
    assert callbacks, "the department and the supervisors get it live"
    payload = rt.parse(staff_event(event, ticket).model_dump(mode="json"))
    assert isinstance(payload, rt.TicketActivity) and payload.kind == "supervision_issued"


@pytest.mark.parametrize("username", ["agent", "dispatcher", "handler", "lead"])
def test_only_supervision_issues_orders(org, ticket, username):
    with pytest.raises(NotPermitted):
        supervision.supervision_order_issue(
            ticket_id=ticket.id, actor=getattr(org, username), reason="督办", due_working_days=2
        )
    assert not SupervisionOrder.objects.exists()


def test_an_administrator_may_issue_an_order_of_any_level(org, ticket):
    order = supervision.supervision_order_issue(
        ticket_id=ticket.id, actor=org.administrator, reason="领导批示", due_working_days=1, level=3
    )
    assert order.level == 3


def test_issue_refuses_a_missing_ticket_and_one_no_department_holds(org, ticket):
    with pytest.raises(NotFound):
        supervision.supervision_order_issue(ticket_id=999999, actor=org.supervisor, reason="督办", due_working_days=2)
    pending = make_ticket(org, Status.PENDING_DISPATCH)
    with pytest.raises(InvalidTransition):
        supervision.supervision_order_issue(
            ticket_id=pending.id, actor=org.supervisor, reason="督办", due_working_days=2
        )
    closed = make_ticket(org, Status.CLOSED)
    with pytest.raises(InvalidTransition):
        supervision.supervision_order_issue(
            ticket_id=closed.id, actor=org.supervisor, reason="督办", due_working_days=2
        )
    assert not SupervisionOrder.objects.exists()


@pytest.mark.parametrize(
    ("reason", "days", "level", "code"),
    [
        ("   ", 2, 1, "required"),
        ("字" * 1001, 2, 1, "too_long"),
        ("督办", 0, 1, "invalid_due"),
        ("督办", 31, 1, "invalid_due"),
        ("督办", 2, 4, "invalid_choice"),
    ],
)
def test_issue_refuses_bad_input(org, ticket, reason, days, level, code):
    with pytest.raises(ApplicationError) as refused:
        supervision.supervision_order_issue(
            ticket_id=ticket.id, actor=org.supervisor, reason=reason, due_working_days=days, level=level
        )
    assert refused.value.code == code
    assert not SupervisionOrder.objects.exists()


def test_a_second_order_while_one_is_open_is_a_conflict(org, ticket):
    first = issue(org, ticket)
    with pytest.raises(Conflict) as refused:
        issue(org, ticket)
    assert refused.value.code == "supervision_order_open"
    # Once the first is closed, a new one may be issued.
    supervision.supervision_order_close(order_id=first.id, actor=org.supervisor)
    assert issue(org, ticket).id != first.id


def test_a_suspended_ticket_may_be_supervised(org):
    suspended = make_ticket(org, Status.SUSPENDED)
    assert issue(org, suspended).status == "open"


# ---------------------------------------------------------------------------------------------------------
# respond, close


def test_the_department_responds(org, ticket):
    order = issue(org, ticket)
    with clock.frozen(at(6)):
        answered = supervision.supervision_order_respond(
            order_id=order.id, actor=org.handler, response=" 已约谈施工方 "
        )

    assert (answered.status, answered.response, answered.responded_by) == ("answered", "已约谈施工方", org.handler)
    event = ticket.events.get(kind="supervision_responded")
    assert (event.actor, event.data["response"], event.data["late"], event.data["order"]) == (
        org.handler,
        "已约谈施工方",
        True,
        order.id,
    )


def test_a_lead_of_a_parent_department_may_respond_for_its_sub_unit(org):
    unit_ticket = make_ticket(org, Status.ACCEPTED, department=org.bureau_unit)
    order = issue(org, unit_ticket)
    assert supervision.supervision_order_respond(order_id=order.id, actor=org.lead, response="已督促处室").status == (
        "answered"
    )


def test_respond_permissions(org, ticket):
    order = issue(org, ticket)
    # Another department does not see the order at all; a supervisor sees it but is not the department.
    with pytest.raises(NotFound):
        supervision.supervision_order_respond(order_id=order.id, actor=org.other_handler, response="不是我们")
    with pytest.raises(NotFound):
        supervision.supervision_order_respond(order_id=order.id, actor=org.agent, response="代答")
    with pytest.raises(NotPermitted):
        supervision.supervision_order_respond(order_id=order.id, actor=org.supervisor, response="代答")
    with pytest.raises(NotFound):
        supervision.supervision_order_respond(order_id=999999, actor=org.handler, response="?")
    with pytest.raises(ApplicationError) as blank:
        supervision.supervision_order_respond(order_id=order.id, actor=org.handler, response=" ")
    assert blank.value.code == "required"
    order.refresh_from_db()
    assert order.status == "open"
    assert not ticket.events.filter(kind="supervision_responded").exists()


def test_an_answered_order_cannot_be_answered_again_and_is_closed_by_supervision(org, ticket):
    order = issue(org, ticket)
    supervision.supervision_order_respond(order_id=order.id, actor=org.handler, response="已处理")
    with pytest.raises(InvalidTransition):
        supervision.supervision_order_respond(order_id=order.id, actor=org.handler, response="再答一次")
    with pytest.raises(NotPermitted):
        supervision.supervision_order_close(order_id=order.id, actor=org.handler, note="自己结束")
    with pytest.raises(NotPermitted):
        supervision.supervision_order_close(order_id=order.id, actor=org.dispatcher, note="")

    closed = supervision.supervision_order_close(order_id=order.id, actor=org.supervisor, note="反馈属实")
    assert (closed.status, closed.closed_by) == ("closed", org.supervisor)
    assert ticket.events.get(kind="supervision_closed").data["answered"] is True
    with pytest.raises(InvalidTransition):
        supervision.supervision_order_close(order_id=order.id, actor=org.supervisor)
    with pytest.raises(InvalidTransition):
        supervision.supervision_order_escalate(order_id=order.id, actor=org.supervisor, reason="再提级")


# ---------------------------------------------------------------------------------------------------------
# escalate


def test_escalation_goes_up_to_level_three_and_not_beyond(org, ticket, settings):
    settings.SLA_SUPERVISION_DUE_WORKING_DAYS = 2
    order = issue(org, ticket)
    supervision.supervision_order_respond(order_id=order.id, actor=org.handler, response="已处理")

    with clock.frozen(at(4)):
        second = supervision.supervision_order_escalate(order_id=order.id, actor=org.supervisor, reason="反馈不实")
    # A fresh deadline from now, and the order waits for a new answer at the new level.
    assert (second.level, second.status, second.due_at, second.response, second.responded_by) == (
        2,
        "open",
        at(6),
        "",
        None,
    )
    with clock.frozen(at(5)):
        third = supervision.supervision_order_escalate(order_id=order.id, actor=org.administrator, reason="仍未解决")
    assert (third.level, third.due_at) == (3, at(7))

    with pytest.raises(Conflict) as refused:
        supervision.supervision_order_escalate(order_id=order.id, actor=org.supervisor, reason="再提级")
    assert refused.value.code == "top_level"
    order.refresh_from_db()
    assert order.level == 3

    trail = [e.data for e in ticket.events.filter(kind="supervision_escalated").order_by("id")]
    assert [(d["from_level"], d["level"], d["previous_status"], d["reason"]) for d in trail] == [
        (1, 2, "answered", "反馈不实"),
        (2, 3, "open", "仍未解决"),
    ]


@pytest.mark.parametrize("username", ["dispatcher", "handler", "lead", "agent"])
def test_only_supervision_escalates(org, ticket, username):
    order = issue(org, ticket)
    with pytest.raises((NotPermitted, NotFound)):
        supervision.supervision_order_escalate(order_id=order.id, actor=getattr(org, username), reason="提级")
    order.refresh_from_db()
    assert order.level == 1


# ---------------------------------------------------------------------------------------------------------
# urge


def test_an_urge_is_a_reminder_on_the_trail_counted_on_open_orders(org, ticket):
    order = issue(org, ticket)
    with clock.frozen(at(4)):
        event = supervision.ticket_urge(ticket_id=ticket.id, actor=org.dispatcher, message="请尽快答复")
        supervision.ticket_urge(ticket_id=ticket.id, actor=org.supervisor, message="再次催办")

    assert (event.kind, event.actor, event.data) == (
        "urged",
        org.dispatcher,
        {"department": org.bureau.id, "message": "请尽快答复", "orders": [order.id]},
    )
    order.refresh_from_db()
    assert (order.urge_count, order.last_urged_at) == (2, at(4))
    # An answered order is no longer urged.
    supervision.supervision_order_respond(order_id=order.id, actor=org.handler, response="已处理")
    third = supervision.ticket_urge(ticket_id=ticket.id, actor=org.supervisor, message="请答复群众")
    assert third.data["orders"] == []
    order.refresh_from_db()
    assert order.urge_count == 2


def test_urge_permissions_and_states(org, ticket):
    for actor in (org.agent, org.handler, org.lead):
        with pytest.raises(NotPermitted):
            supervision.ticket_urge(ticket_id=ticket.id, actor=actor, message="催办")
    # A draft belongs to the agent taking the call: a dispatcher does not see it.
    draft = make_ticket(org, Status.DRAFT)
    with pytest.raises(NotFound):
        supervision.ticket_urge(ticket_id=draft.id, actor=org.dispatcher, message="催办")
    pending = make_ticket(org, Status.PENDING_DISPATCH)
    with pytest.raises(InvalidTransition):
        supervision.ticket_urge(ticket_id=pending.id, actor=org.dispatcher, message="催办")
    with pytest.raises(ApplicationError) as blank:
        supervision.ticket_urge(ticket_id=ticket.id, actor=org.dispatcher, message="")
    assert blank.value.code == "required"
    assert not ticket.events.filter(kind="urged").exists()


# ---------------------------------------------------------------------------------------------------------
# the orders' own deadlines


def test_an_order_past_its_deadline_is_marked_overdue_once(org, ticket):
    order = issue(org, ticket)  # due Wed 5 Nov 10:00

    with clock.frozen(at(5) - timedelta(seconds=1)):
        assert sla.sweep().orders_overdue == 0
    with clock.frozen(at(5)):
        assert sla.sweep().orders_overdue == 1
        assert sla.sweep().orders_overdue == 0
    order.refresh_from_db()
    assert order.overdue_marked_at == at(5)
    event = ticket.events.get(kind="supervision_overdue")
    assert event.actor is None
    assert event.data == {
        "order": order.id,
        "level": 1,
        "formal_notice": False,
        "department": org.bureau.id,
        "due_at": "2025-11-05T10:00:00+08:00",
    }

    # Escalated: a fresh deadline, which can be missed again.
    with clock.frozen(at(6)):
        supervision.supervision_order_escalate(order_id=order.id, actor=org.supervisor, reason="逾期未反馈")
    with clock.frozen(at(10)):
        assert sla.sweep().orders_overdue == 1
    assert ticket.events.filter(kind="supervision_overdue").count() == 2


def test_answered_orders_and_orders_of_finished_tickets_do_not_go_overdue(org, ticket):
    answered = issue(org, ticket)
    supervision.supervision_order_respond(order_id=answered.id, actor=org.handler, response="已处理")
    other = make_ticket(org, Status.ACCEPTED)
    on_closed = issue(org, other)
    services.ticket_reply(ticket_id=other.id, actor=org.handler, reply_text="已处理完毕。", result="solved")
    services.ticket_approve_reply(ticket_id=other.id, actor=org.dispatcher)
    services.ticket_close(ticket_id=other.id, actor=org.agent, satisfaction="satisfied")

    with clock.frozen(at(28)):
        assert sla.sweep().orders_overdue == 0
    assert SupervisionOrder.objects.filter(pk__in=[answered.pk, on_closed.pk], overdue_marked_at=None).count() == 2


# ---------------------------------------------------------------------------------------------------------
# visibility


def test_who_sees_which_orders(org, ticket):
    bureau_order = issue(org, ticket)
    unit_order = issue(org, make_ticket(org, Status.ACCEPTED, department=org.bureau_unit))
    other_order = issue(org, make_ticket(org, Status.ACCEPTED, department=org.other_bureau))

    def seen(user) -> set[int]:  # type: ignore[no-untyped-def]
        return set(supervision_order_visible_to(user=user).values_list("id", flat=True))

    everything = {bureau_order.id, unit_order.id, other_order.id}
    assert seen(org.supervisor) == seen(org.administrator) == seen(org.dispatcher) == everything
    assert seen(org.agent) == set()
    # A handler sees its own department's orders; a lead also the sub-units' (as with tickets).
    assert seen(org.handler) == {bureau_order.id}
    assert seen(org.lead) == {bureau_order.id, unit_order.id}
    assert seen(org.unit_handler) == {unit_order.id}
    assert seen(org.other_handler) == {other_order.id}
    assert seen(org.street_handler) == set()


# ---------------------------------------------------------------------------------------------------------
# the API


def test_the_api_round_trip(org, ticket, api_as, settings):
    settings.SLA_SUPERVISION_DUE_WORKING_DAYS = 2
    supervisor = api_as(org.supervisor)
    with clock.frozen(MONDAY):
        issued = supervisor.post(
            f"/api/v1/tickets/{ticket.id}/supervision-orders/", {"reason": "群众多次来电反映"}, format="json"
        )
    assert issued.status_code == 201, issued.json()
    body = issued.json()
    assert (body["level"], body["level_display"], body["status"], body["status_display"]) == (
        1,
        "热线中心督办",
        "open",
        "督办中",
    )
    assert body["ticket"] == {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "status": "accepted",
        "status_display": "已签收",
        "reply_due_at": ticket.reply_due_at.astimezone(TZ).isoformat(),
    }
    assert body["department"] == {"id": org.bureau.id, "code": "B1", "name": "市住房和城乡建设局"}
    assert body["issued_by"] == {"id": org.supervisor.id, "name": str(org.supervisor), "role": "supervisor"}
    assert body["due_at"] == "2025-11-05T10:00:00+08:00"
    order_id = body["id"]

    handler = api_as(org.handler)
    urged = api_as(org.dispatcher).post(f"/api/v1/tickets/{ticket.id}/urge/", {"message": "请尽快答复"}, format="json")
    assert urged.status_code == 201
    assert (urged.json()["kind"], urged.json()["data"]["orders"]) == ("urged", [order_id])

    handler = api_as(org.handler)
    responded = handler.post(f"{ORDERS}{order_id}/respond/", {"response": "已约谈施工方"}, format="json")
    assert responded.status_code == 200
    assert (responded.json()["status"], responded.json()["urge_count"]) == ("answered", 1)
    assert responded.json()["responded_by"]["id"] == org.handler.id

    supervisor = api_as(org.supervisor)
    for level in (2, 3):
        escalated = supervisor.post(f"{ORDERS}{order_id}/escalate/", {"reason": "仍未解决"}, format="json")
        assert escalated.status_code == 200
        assert (escalated.json()["level"], escalated.json()["status"]) == (level, "open")
    refused = supervisor.post(f"{ORDERS}{order_id}/escalate/", {"reason": "再提级"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "top_level"

    closed = supervisor.post(f"{ORDERS}{order_id}/close/", {}, format="json")
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["closed_by"]["id"]) == ("closed", org.supervisor.id)

    detail = supervisor.get(f"{ORDERS}{order_id}/")
    assert detail.status_code == 200 and detail.json()["id"] == order_id
    listed = supervisor.get(f"/api/v1/tickets/{ticket.id}/supervision-orders/")
    assert [o["id"] for o in listed.json()] == [order_id]
    timeline = supervisor.get(f"/api/v1/tickets/{ticket.id}/timeline/").json()
    assert [e["kind"] for e in timeline if e["kind"].startswith(("supervision", "urged"))] == [
        "supervision_issued",
        "urged",
        "supervision_responded",
        "supervision_escalated",
        "supervision_escalated",
        "supervision_closed",
    ]


def test_api_errors_map_to_status_codes(org, ticket, api_as):
    path = f"/api/v1/tickets/{ticket.id}/supervision-orders/"
    forbidden = api_as(org.handler).post(path, {"reason": "督办"}, format="json")
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "not_permitted")
    missing = api_as(org.supervisor).post(
        "/api/v1/tickets/999999/supervision-orders/", {"reason": "督办"}, format="json"
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    invalid = api_as(org.supervisor).post(path, {"due_working_days": 0}, format="json")
    assert invalid.status_code == 400
    assert set(invalid.json()["errors"]) == {"reason", "due_working_days"}
    unknown = api_as(org.supervisor).post(path, {"reason": "督办", "status": "closed"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["errors"] == {"status": ["未知字段。"]}

    order = issue(org, ticket)
    hidden = api_as(org.other_handler).get(f"{ORDERS}{order.id}/")
    assert hidden.status_code == 404
    hidden_respond = api_as(org.other_handler).post(f"{ORDERS}{order.id}/respond/", {"response": "x"}, format="json")
    assert hidden_respond.status_code == 404
    not_theirs = api_as(org.supervisor).post(f"{ORDERS}{order.id}/respond/", {"response": "代答"}, format="json")
    assert (not_theirs.status_code, not_theirs.json()["code"]) == (403, "not_permitted")
    urge_pending = api_as(org.dispatcher).post(
        f"/api/v1/tickets/{make_ticket(org, Status.PENDING_DISPATCH).id}/urge/", {"message": "催办"}, format="json"
    )
    assert urge_pending.status_code == 409
    assert api_as(org.agent).post(
        f"/api/v1/tickets/{ticket.id}/urge/", {"message": "催"}, format="json"
    ).status_code == (403)
    assert api_as(org.handler).get(f"/api/v1/tickets/{make_ticket(org).id}/supervision-orders/").status_code == 404


def _listed(client, **params) -> list[int]:  # type: ignore[no-untyped-def]
    response = client.get(ORDERS, {"page_size": 200, **params})
    assert response.status_code == 200, response.json()
    return sorted(item["id"] for item in response.json()["results"])


def test_the_list_filters(org, ticket, api_as):
    open_order = issue(org, ticket, days=1)  # due Tue 4 Nov 10:00
    unit_ticket = make_ticket(org, Status.ACCEPTED, department=org.bureau_unit)
    answered = issue(org, unit_ticket, days=1)
    supervision.supervision_order_respond(order_id=answered.id, actor=org.unit_handler, response="已处理")
    other = issue(org, make_ticket(org, Status.ACCEPTED, department=org.other_bureau), days=5)
    client = api_as(org.supervisor)

    assert _listed(client) == sorted([open_order.id, answered.id, other.id])
    assert _listed(client, status="answered") == [answered.id]
    assert _listed(client, department=org.bureau.id) == sorted([open_order.id, answered.id])
    assert _listed(client, department=org.other_bureau.id) == [other.id]
    assert _listed(client, ticket=unit_ticket.id) == [answered.id]
    with clock.frozen(at(4)):
        assert _listed(client, overdue="true") == [open_order.id]
        assert _listed(client, overdue="false") == sorted([answered.id, other.id])
        listed = client.get(ORDERS, {"overdue": "true"}).json()["results"]
    assert listed[0]["overdue"] is True
    # A department's list is its own, whatever the filter asks.
    assert _listed(api_as(org.handler)) == [open_order.id]
    assert _listed(api_as(org.handler), department=org.other_bureau.id) == []
    assert _listed(api_as(org.agent)) == []
    for params in ({"status": "finished"}, {"overdue": "maybe"}, {"bogus": "1"}, {"level": "9"}):
        assert client.get(ORDERS, params).status_code == 400, params


def test_the_list_costs_the_same_queries_for_one_order_or_many(org, api_as):
    client = api_as(org.supervisor)
    issue(org, make_ticket(org, Status.ACCEPTED))
    with CaptureQueriesContext(connection) as one:
        assert client.get(ORDERS).status_code == 200
    for _ in range(4):
        order = issue(org, make_ticket(org, Status.ACCEPTED))
        supervision.supervision_order_respond(order_id=order.id, actor=org.handler, response="已处理")
    with CaptureQueriesContext(connection) as five:
        assert len(client.get(ORDERS).json()["results"]) == 5
    assert len(five.captured_queries) == len(one.captured_queries) <= 3


def test_the_schema_documents_the_supervision_endpoints(api):
    schema = json.loads(api.get("/api/v1/schema/", {"format": "json"}).content)
    for path in (
        "/api/v1/supervision-orders/",
        "/api/v1/supervision-orders/{id}/",
        "/api/v1/supervision-orders/{id}/respond/",
        "/api/v1/supervision-orders/{id}/close/",
        "/api/v1/supervision-orders/{id}/escalate/",
        "/api/v1/tickets/{ticket_id}/supervision-orders/",
        "/api/v1/tickets/{ticket_id}/urge/",
    ):
        assert path in schema["paths"], path


@pytest.mark.parametrize("leaves_by", ["reassign", "approve_return"])
def test_orders_end_when_the_ticket_leaves_the_department(org, ticket, leaves_by):
    order = issue(org, ticket)
    with clock.frozen(at(4)):  # within the return window (2 working days)
        if leaves_by == "reassign":
            services.ticket_reassign(
                ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id, reason="职责调整"
            )
        else:
            services.ticket_return(ticket_id=ticket.id, actor=org.handler, reason="不属于本单位职责")
            services.ticket_approve_return(ticket_id=ticket.id, actor=org.dispatcher)

    order.refresh_from_db()
    assert order.status == "closed"
    assert order.closed_by == org.dispatcher
    assert ticket.events.last().data["ended_orders"] == [order.id]
    # The new department is not chased by the old department's order.
    with clock.frozen(at(28)):
        assert not sla.sweep().orders_overdue
