"""Duplicates (same caller; same place and category with similar text) and proactive alerts (3 in 7 days)."""

import json
from datetime import timedelta

import pytest

from hotline import clock
from hotline.realtime import broadcast, groups
from hotline.realtime import events as rt
from routing import selectors, services
from routing.models import ProactiveAlert
from routing.types import RoutingInput
from tests.helpers import make_ticket
from ticketing.workflow import Status

NOISE = {"title": "工地夜间施工噪音", "content": "幸福小区东门工地每天夜里十一点后还在施工，噪音很大。"}


def place(org, **overrides):  # type: ignore[no-untyped-def]
    return {"region_id": org.street.id, "category_id": org.category.id, **NOISE, **overrides}


# --- duplicates ------------------------------------------------------------------------------------------------


def test_the_same_callers_open_tickets_are_duplicates(org):
    open_one = make_ticket(org, Status.DISPATCHED, caller_phone="13900001111")
    make_ticket(org, Status.CLOSED, caller_phone="13900001111")
    make_ticket(org, caller_phone="13900002222")
    inp = RoutingInput(title="又来电", content="还是没人管", caller_phone="13900001111")

    (found,) = selectors.duplicates_for(inp, user=org.agent)
    assert (found.ticket_id, found.kind, found.number) == (open_one.id, "same_caller", open_one.number)
    assert "同一来电人" in found.reason


def test_a_ticket_is_not_its_own_duplicate(org):
    ticket = make_ticket(org, caller_phone="13900001111")
    assert selectors.duplicates_for(selectors.routing_input(ticket), user=org.agent) == []


def test_same_place_and_category_with_similar_text_within_the_window(org, settings):
    settings.ROUTING_DUPLICATE_WINDOW_DAYS = 7
    similar = make_ticket(org, caller_phone="13900000001", **place(org))
    other_text = make_ticket(
        org, caller_phone="13900000002", **place(org, title="电梯故障", content="三号楼电梯坏了一周")
    )
    other_place = make_ticket(org, caller_phone="13900000003", **place(org, region_id=org.other_district.id))
    with clock.frozen(clock.now() - timedelta(days=10)):
        old = make_ticket(org, caller_phone="13900000004", **place(org))
    # No search_sync needed: duplicates compare the texts themselves.

    inp = RoutingInput(
        title="夜间施工扰民",
        content="东门工地半夜施工噪音吵得睡不着",
        region_id=org.street.id,
        category_id=org.category.id,
        caller_phone="13900009999",
    )
    found = selectors.duplicates_for(inp, user=org.agent)
    assert [d.ticket_id for d in found] == [similar.id]
    assert found[0].kind == "same_place" and "同一区域、同一分类" in found[0].reason
    assert {other_text.id, other_place.id, old.id}.isdisjoint(d.ticket_id for d in found)


def test_duplicates_respect_visibility(org):
    make_ticket(org, Status.DISPATCHED, caller_phone="13900001111", department=org.bureau)
    inp = RoutingInput(title="x", content="y", caller_phone="13900001111")
    assert selectors.duplicates_for(inp, user=org.other_handler) == []


def test_duplicates_api(org, api_as):
    earlier = make_ticket(org, caller_phone="13900001111")
    ticket = make_ticket(org, caller_phone="13900001111")
    response = api_as(org.agent).get(f"/api/v1/routing/tickets/{ticket.id}/duplicates/")
    assert response.status_code == 200
    assert [(d["ticket_id"], d["kind"]) for d in response.json()] == [(earlier.id, "same_caller")]
    assert "13900001111" not in response.content.decode()
    assert api_as(org.handler).get(f"/api/v1/routing/tickets/{ticket.id}/duplicates/").status_code == 403


# --- proactive alerts --------------------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    messages: list[tuple[rt.RealtimeEvent, list[str]]] = []
    monkeypatch.setattr(broadcast, "send_now", lambda event, groups: messages.append((event, list(groups))))
    return messages


def test_three_tickets_of_one_place_in_seven_days_raise_one_alert(org, sent, django_capture_on_commit_callbacks):
    now = clock.now()
    tickets = []
    for days_ago in (6, 3):
        with clock.frozen(now - timedelta(days=days_ago)):
            tickets.append(make_ticket(org, **place(org)))
    assert services.clusters_check(ticket=tickets[-1]) is None

    tickets.append(make_ticket(org, **place(org)))
    with django_capture_on_commit_callbacks(execute=True):
        alert = services.clusters_check(ticket=tickets[-1])
    assert alert is not None
    assert alert.ticket_ids == [t.id for t in tickets] and (alert.window_days, alert.threshold) == (7, 3)

    ((event, audience),) = [(e, g) for e, g in sent if isinstance(e, rt.ProactiveAlertRaised)]
    payload = json.loads(json.dumps(event.model_dump(mode="json")))
    assert rt.parse(payload) == event
    assert audience == [groups.supervisors()]
    assert (payload["alert_id"], payload["count"], payload["region_name"]) == (alert.id, 3, "太原街街道")
    assert payload["category_name"] == "城乡建设/物业管理" and "未诉先办" in payload["text"]

    # Raised once: later tickets join the open alert without another event.
    sent.clear()
    fourth = make_ticket(org, **place(org))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.clusters_check(ticket=fourth) is None
    assert ProactiveAlert.objects.count() == 1
    assert ProactiveAlert.objects.get().ticket_ids == [*alert.ticket_ids, fourth.id]
    assert not [e for e, _ in sent if isinstance(e, rt.ProactiveAlertRaised)]


def test_tickets_spread_over_more_than_the_window_raise_nothing(org):
    now = clock.now()
    for days_ago in (9, 8):
        with clock.frozen(now - timedelta(days=days_ago)):
            make_ticket(org, **place(org))
    ticket = make_ticket(org, **place(org))
    other = make_ticket(org, **place(org, region_id=org.district.id))
    assert services.clusters_check(ticket=ticket) is None and services.clusters_check(ticket=other) is None
    assert ProactiveAlert.objects.count() == 0


def test_after_acknowledging_a_new_alert_needs_new_tickets(org):
    tickets = [make_ticket(org, **place(org)) for _ in range(3)]
    alert = services.clusters_check(ticket=tickets[-1])
    assert alert is not None
    services.alert_acknowledge(alert_id=alert.id, actor=org.supervisor, note="已安排夜查")
    later = clock.now() + timedelta(minutes=1)
    with clock.frozen(later):
        fresh = [make_ticket(org, **place(org)) for _ in range(2)]
        assert services.clusters_check(ticket=fresh[-1]) is None
        fresh.append(make_ticket(org, **place(org)))
        second = services.clusters_check(ticket=fresh[-1])
    assert second is not None and second.ticket_ids == [t.id for t in fresh]


def test_routing_a_ticket_checks_for_clusters(org, settings):
    settings.ROUTING_RECOMMENDER = "tests.routing.test_services.fake_recommend"
    tickets = [make_ticket(org, **place(org)) for _ in range(3)]
    for ticket in tickets:
        services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)
    (alert,) = ProactiveAlert.objects.all()
    assert alert.ticket_ids == [t.id for t in tickets]
