"""Who sees which ticket through the API: list, detail and timeline give the same answer, and a ticket a
user may not see looks exactly like one that does not exist.

The expectation is written out by hand from the rule in `selectors.ticket_visible_to`, never computed from it.
"""

import pytest

from tests.helpers import make_ticket
from ticketing import services
from ticketing.models import EVENT_CONTACT_VIEWED, Ticket, TicketEvent
from ticketing.workflow import Status, Transition

# x: visible, .: not visible (and answered like a missing ticket).
#   draft            a draft of org.agent
#   dispatcher_draft a draft of org.dispatcher (a dispatcher sees their own drafts, no one else's)
#   pending          org.agent's ticket waiting for dispatch
#   bureau           taken in by org.other_agent, dispatched to org.bureau
#   unit             dispatched to org.bureau_unit (a child of bureau)
#   other            dispatched to org.other_bureau
#   street           dispatched to org.street_office (a child of district_government)
#   assisted         taken in by org.other_agent, led by org.other_bureau, assisted by org.bureau
#   callback         taken in by org.dispatcher, handled by org.bureau_unit, waiting for the callback
VISIBILITY = """
                draft  dispatcher_draft  pending  bureau  unit  other  street  assisted  callback
agent             x           .             x        x      x     x      x        x         x
other_agent       .           .             x        x      x     x      x        x         x
dispatcher        .           x             x        x      x     x      x        x         x
supervisor        x           x             x        x      x     x      x        x         x
administrator     x           x             x        x      x     x      x        x         x
handler           .           .             .        x      .     .      .        x         .
lead              .           .             .        x      x     .      .        x         x
unit_handler      .           .             .        .      x     .      .        .         x
other_handler     .           .             .        .      .     x      .        x         .
street_handler    .           .             .        .      .     .      x        .         .
district_lead     .           .             .        .      .     .      x        .         .
"""


def _parse(table: str) -> tuple[list[str], dict[str, set[str]]]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    expected = {}
    for name, *marks in rows:
        assert len(marks) == len(header), name
        assert set(marks) <= {"x", "."}, name
        expected[name] = {ticket for ticket, mark in zip(header, marks, strict=True) if mark == "x"}
    return header, expected


TICKET_NAMES, EXPECTED = _parse(VISIBILITY)
USERS = list(EXPECTED)


@pytest.fixture
def tickets(org) -> dict[str, Ticket]:
    made = {
        "draft": make_ticket(org, Status.DRAFT),
        "dispatcher_draft": make_ticket(org, Status.DRAFT, agent=org.dispatcher),
        "pending": make_ticket(org, Status.PENDING_DISPATCH),
        "bureau": make_ticket(org, Status.DISPATCHED, department=org.bureau, agent=org.other_agent),
        "unit": make_ticket(org, Status.DISPATCHED, department=org.bureau_unit, agent=org.dispatcher),
        "other": make_ticket(org, Status.DISPATCHED, department=org.other_bureau, agent=org.dispatcher),
        "street": make_ticket(org, Status.DISPATCHED, department=org.street_office, agent=org.dispatcher),
        "callback": make_ticket(org, Status.CALLBACK, department=org.bureau_unit, agent=org.dispatcher),
    }
    assisted = make_ticket(org, Status.PENDING_DISPATCH, agent=org.other_agent)
    made["assisted"] = services.ticket_dispatch(
        ticket_id=assisted.id,
        actor=org.dispatcher,
        lead_department_id=org.other_bureau.id,
        assisting_department_ids=[org.bureau.id],
    )
    assert set(made) == set(TICKET_NAMES)
    assert made["assisted"].status == Status.DISPATCHED
    assert list(made["assisted"].assisting_departments.all()) == [org.bureau]
    assert made["callback"].status == Status.CALLBACK
    return made


def test_the_table_covers_every_user_of_the_org():
    assert USERS == [
        "agent",
        "other_agent",
        "dispatcher",
        "supervisor",
        "administrator",
        "handler",
        "lead",
        "unit_handler",
        "other_handler",
        "street_handler",
        "district_lead",
    ]
    assert EXPECTED["supervisor"] == set(TICKET_NAMES)


@pytest.mark.parametrize("username", USERS)
def test_list_shows_exactly_the_visible_tickets(org, tickets, api_as, username):
    response = api_as(getattr(org, username)).get("/api/v1/tickets/", {"page_size": 200})

    assert response.status_code == 200
    body = response.json()
    names_by_id = {ticket.id: name for name, ticket in tickets.items()}
    listed = [names_by_id[item["id"]] for item in body["results"]]
    assert sorted(listed) == sorted(EXPECTED[username])
    assert body["count"] == len(EXPECTED[username])


@pytest.mark.parametrize("username", USERS)
def test_detail_is_found_only_when_visible_and_never_forbidden(org, tickets, api_as, username):
    client = api_as(getattr(org, username))

    for name, ticket in tickets.items():
        response = client.get(f"/api/v1/tickets/{ticket.id}/")
        if name in EXPECTED[username]:
            assert response.status_code == 200, name
            assert response.json()["number"] == ticket.number
        else:
            assert response.status_code == 404, name
            assert response.json()["code"] == "not_found"
            assert ticket.number not in response.content.decode()


@pytest.mark.parametrize("username", USERS)
def test_timeline_is_found_only_when_visible_and_never_forbidden(org, tickets, api_as, username):
    client = api_as(getattr(org, username))

    for name, ticket in tickets.items():
        response = client.get(f"/api/v1/tickets/{ticket.id}/timeline/")
        if name in EXPECTED[username]:
            assert response.status_code == 200, name
            events = response.json()
            assert [event["id"] for event in events] == list(ticket.events.order_by("id").values_list("id", flat=True))
            assert events[0]["kind"] == "created"
        else:
            assert response.status_code == 404, name
            assert response.json()["code"] == "not_found"


def test_a_missing_ticket_looks_like_an_invisible_one(org, tickets, api_as):
    client = api_as(org.handler)
    missing = Ticket.objects.order_by("id").last().id + 1000
    invisible = tickets["other"].id

    for ticket_id in (missing, 10**20, invisible):
        assert client.get(f"/api/v1/tickets/{ticket_id}/").json() == {
            "code": "not_found",
            "detail": "未找到，或您无权查看。",
        }
        assert client.get(f"/api/v1/tickets/{ticket_id}/timeline/").status_code == 404


def _endpoints(ticket_id: int) -> list[tuple[str, str]]:
    base = f"/api/v1/tickets/{ticket_id}"
    return [
        ("get", "/api/v1/tickets/"),
        ("post", "/api/v1/tickets/"),
        ("get", f"{base}/"),
        ("patch", f"{base}/"),
        ("get", f"{base}/timeline/"),
        ("post", f"{base}/contact/"),
        *[("post", f"{base}/transitions/{transition.value}/") for transition in Transition],
    ]


def test_an_anonymous_client_is_refused_on_every_ticket_endpoint(org, api):
    ticket = make_ticket(org, Status.DRAFT)
    events_before = ticket.events.count()
    endpoints = _endpoints(ticket.id)
    assert len(endpoints) == 6 + len(Transition)

    for method, url in endpoints:
        response = getattr(api, method)(url, {}, format="json")
        assert response.status_code in (401, 403), url
        assert response.json()["code"] == "not_authenticated", url

    ticket.refresh_from_db()
    assert ticket.status == Status.DRAFT
    assert ticket.events.count() == events_before
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize("username", ["handler", "lead"])
def test_a_department_user_sees_the_caller_masked_and_no_query_code(org, api_as, username):
    ticket = make_ticket(org, Status.DISPATCHED, caller_id_number="11010519491231002X")

    detail = api_as(getattr(org, username)).get(f"/api/v1/tickets/{ticket.id}/")
    listed = api_as(getattr(org, username)).get("/api/v1/tickets/")

    assert detail.status_code == 200
    body = detail.json()
    assert body["caller_phone"] == "138****5678"
    assert body["caller_name"] == "张*"
    assert body["caller_id_number"] == "110***********002X"
    assert body["query_code"] is None
    assert listed.json()["results"][0]["caller_phone"] == "138****5678"
    for text in (detail.content.decode(), listed.content.decode()):
        assert "13812345678" not in text
        assert "张三" not in text
        assert "11010519491231002X" not in text
        assert ticket.query_code not in text


def test_the_hotline_centre_sees_the_query_code_but_still_a_masked_phone(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED)

    body = api_as(org.dispatcher).get(f"/api/v1/tickets/{ticket.id}/").json()

    assert body["query_code"] == ticket.query_code
    assert len(body["query_code"]) == 6
    assert body["caller_phone"] == "138****5678"


@pytest.mark.parametrize("username", ["agent", "dispatcher", "supervisor", "administrator", "handler", "lead"])
def test_a_confidential_caller_is_shown_to_nobody(org, api_as, username):
    ticket = make_ticket(org, Status.DISPATCHED, caller_confidential=True, caller_id_number="11010519491231002X")
    client = api_as(getattr(org, username))

    detail = client.get(f"/api/v1/tickets/{ticket.id}/")
    listed = client.get("/api/v1/tickets/")

    assert detail.status_code == 200
    body = detail.json()
    assert body["caller_confidential"] is True
    assert (body["caller_name"], body["caller_phone"], body["caller_id_number"]) == ("", "", "")
    assert [item["caller_phone"] for item in listed.json()["results"]] == [""]
    for text in (detail.content.decode(), listed.content.decode()):
        for secret in ("13812345678", "138****5678", "张三", "张*", "11010519491231002X", "110***********002X"):
            assert secret not in text


def test_a_confidential_callers_contact_is_refused_to_the_department(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED, caller_confidential=True)

    response = api_as(org.handler).post(f"/api/v1/tickets/{ticket.id}/contact/")

    assert response.status_code == 403
    assert response.json()["code"] == "confidential"
    assert "13812345678" not in response.content.decode()
    assert not TicketEvent.objects.filter(ticket=ticket, kind=EVENT_CONTACT_VIEWED).exists()


def test_a_confidential_callers_contact_is_given_to_the_dispatcher_and_recorded(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED, caller_confidential=True, caller_id_number="11010519491231002X")

    response = api_as(org.dispatcher).post(f"/api/v1/tickets/{ticket.id}/contact/")

    assert response.status_code == 200
    assert response.json() == {
        "caller_name": "张三",
        "caller_phone": "13812345678",
        "caller_id_number": "11010519491231002X",
    }
    viewed = TicketEvent.objects.get(ticket=ticket, kind=EVENT_CONTACT_VIEWED)
    assert viewed.actor == org.dispatcher
    assert (viewed.from_status, viewed.to_status) == (Status.DISPATCHED, Status.DISPATCHED)
    assert viewed.data == {}


def test_a_department_may_see_an_ordinary_callers_contact_and_it_is_recorded(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED)

    response = api_as(org.handler).post(f"/api/v1/tickets/{ticket.id}/contact/")

    assert response.status_code == 200
    assert response.json()["caller_phone"] == "13812345678"
    assert TicketEvent.objects.get(ticket=ticket, kind=EVENT_CONTACT_VIEWED).actor == org.handler


def test_the_contact_of_an_invisible_ticket_is_not_found(org, api_as):
    ticket = make_ticket(org, Status.DISPATCHED, department=org.other_bureau)

    response = api_as(org.handler).post(f"/api/v1/tickets/{ticket.id}/contact/")

    assert response.status_code == 404
    assert not TicketEvent.objects.filter(ticket=ticket, kind=EVENT_CONTACT_VIEWED).exists()


# The list costs the same number of queries however many tickets it shows: pagination count, the page
# with its joined category, region and department, plus the department lookups for department users.
LIST_QUERIES = {"dispatcher": 2, "agent": 2, "lead": 4, "handler": 3}


@pytest.mark.parametrize("count", [3, 12])
@pytest.mark.parametrize("username", list(LIST_QUERIES))
def test_the_list_does_not_query_per_ticket(org, api_as, django_assert_num_queries, username, count):
    departments = [org.bureau, org.bureau_unit]
    for i in range(count):
        ticket = make_ticket(org, Status.PENDING_DISPATCH, category_id=org.category.id, region_id=org.street.id)
        services.ticket_dispatch(
            ticket_id=ticket.id,
            actor=org.dispatcher,
            lead_department_id=departments[i % 2].id,
            assisting_department_ids=[org.other_bureau.id],
        )
    client = api_as(getattr(org, username))

    with django_assert_num_queries(LIST_QUERIES[username]):
        response = client.get("/api/v1/tickets/", {"page_size": 200})

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == {"dispatcher": count, "agent": count, "lead": count, "handler": (count + 1) // 2}[username]
    assert results[0]["category"] == {"id": org.category.id, "name": "物业管理", "parent": "城乡建设"}
    assert results[0]["region"]["code"] == "210102001"
