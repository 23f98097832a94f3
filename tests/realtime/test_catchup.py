"""Catch-up without loss: a screen that reconnects with the last id it saw gets exactly what it missed."""

import pytest
from asgiref.sync import sync_to_async

from tests.helpers import make_ticket
from ticketing import services
from ticketing.models import TicketEvent
from ticketing.workflow import Status


@pytest.fixture(autouse=True)
def exact_catch_up(settings):  # type: ignore[no-untyped-def]
    # No grace window: these tests count exactly what comes back (the window is tested on its own).
    settings.HOTLINE_CATCHUP_GRACE_SECONDS = 0


async def test_reconnect_receives_exactly_the_missed_events_in_order(org, connect):
    ticket = await sync_to_async(make_ticket)(org, Status.DISPATCHED)
    watcher = await connect(f"/ws/tickets/{ticket.id}/", user=org.supervisor)
    _, done = await watcher.until_caught_up()
    last_seen = done["last_event_id"]
    await watcher.disconnect()

    await sync_to_async(services.ticket_accept)(ticket_id=ticket.id, actor=org.handler)
    await sync_to_async(services.ticket_note_add)(ticket_id=ticket.id, actor=org.handler, text="已到现场")
    await sync_to_async(services.ticket_reply)(
        ticket_id=ticket.id, actor=org.handler, reply_text="已责令停工。", result="solved"
    )
    expected = await sync_to_async(list)(
        TicketEvent.objects.filter(ticket=ticket, id__gt=last_seen).order_by("id").values_list("id", flat=True)
    )
    assert len(expected) == 3

    again = await connect(f"/ws/tickets/{ticket.id}/?after={last_seen}", user=org.supervisor)
    missed, done = await again.until_caught_up()
    assert [m["event_id"] for m in missed] == expected
    assert [m.get("transition", m["type"]) for m in missed] == ["accept", "ticket.note", "reply"]
    assert done == {"type": "catchup.complete", "last_event_id": expected[-1], "count": 3, "truncated": False}

    # Live events resume after the catch-up.
    await sync_to_async(services.ticket_approve_reply)(ticket_id=ticket.id, actor=org.dispatcher)
    live = await again.receive()
    assert live["transition"] == "approve_reply"
    assert await again.nothing_more()


async def test_a_department_catches_up_on_a_ticket_that_was_reassigned_away(org, connect):
    ticket = await sync_to_async(make_ticket)(org, Status.ACCEPTED)
    screen = await connect(f"/ws/departments/{org.bureau.id}/", user=org.handler)
    _, done = await screen.until_caught_up()
    await screen.disconnect()
    await sync_to_async(services.ticket_reassign)(
        ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id, reason="职责调整"
    )
    # The ticket is no longer the bureau's, but the bureau was told it left.
    again = await connect(f"/ws/departments/{org.bureau.id}/?after={done['last_event_id']}", user=org.handler)
    missed, _ = await again.until_caught_up()
    assert [(m["transition"], m["data"]["from_department"]) for m in missed] == [("reassign", org.bureau.id)]
    other = await connect(
        f"/ws/departments/{org.other_bureau.id}/?after={done['last_event_id']}", user=org.other_handler
    )
    missed_other, _ = await other.until_caught_up()
    assert [m["transition"] for m in missed_other] == ["reassign"]


async def test_catch_up_does_not_leak_other_departments_events(org, connect):
    screen = await connect(f"/ws/departments/{org.bureau.id}/", user=org.handler)
    _, done = await screen.until_caught_up()
    await screen.disconnect()
    await sync_to_async(make_ticket)(org, Status.ACCEPTED, department=org.other_bureau)
    mine = await sync_to_async(make_ticket)(org, Status.DISPATCHED, department=org.bureau)
    again = await connect(f"/ws/departments/{org.bureau.id}/?after={done['last_event_id']}", user=org.handler)
    missed, _ = await again.until_caught_up()
    assert {m["ticket_id"] for m in missed} == {mine.id}


async def test_a_long_absence_is_truncated_and_says_so(org, connect, settings):
    settings.HOTLINE_CATCHUP_LIMIT = 3
    ticket = await sync_to_async(make_ticket)(org, Status.CLOSED)
    first = await sync_to_async(TicketEvent.objects.filter(ticket=ticket).earliest)("id")
    watcher = await connect(f"/ws/tickets/{ticket.id}/?after={first.id}", user=org.supervisor)
    missed, done = await watcher.until_caught_up()
    total = await sync_to_async(TicketEvent.objects.filter(ticket=ticket, id__gt=first.id).count)()
    assert total > 3
    assert len(missed) == 3
    assert done["truncated"] is True


async def test_first_connect_starts_from_the_newest_event(org, connect):
    await sync_to_async(make_ticket)(org, Status.DISPATCHED)
    newest = await sync_to_async(TicketEvent.objects.latest)("id")
    screen = await connect("/ws/supervisor/", user=org.supervisor)
    missed, done = await screen.until_caught_up()
    assert missed == []
    assert done["last_event_id"] == newest.id


@pytest.mark.django_db
def test_the_grace_window_resends_recent_smaller_ids_for_late_commits(org):
    """A transaction that took its id earlier but committed later is not lost by `id > after`."""
    from datetime import timedelta

    from django.db.models import Q

    from ticketing.selectors import ticket_events_missed

    ticket = make_ticket(org, Status.ACCEPTED)
    ids = list(ticket.events.order_by("id").values_list("id", flat=True))
    # The client saw the newest event; with a window, recent smaller ids come again (deduplicated by id).
    missed = ticket_events_missed(scope=Q(ticket=ticket), after=ids[-1], grace=timedelta(seconds=60), limit=100)
    assert [e.id for e in missed.events] == ids[:-1]
    exact = ticket_events_missed(scope=Q(ticket=ticket), after=ids[-1], grace=timedelta(0), limit=100)
    assert exact.events == []
