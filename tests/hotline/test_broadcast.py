import logging

import pytest
from channels.layers import get_channel_layer
from django.db import connections

from tests.helpers import make_ticket
from ticketing import services
from ticketing.models import TicketEvent
from ticketing.workflow import Status


@pytest.mark.django_db(transaction=True)
def test_a_broken_channel_layer_never_breaks_a_write(org, monkeypatch, caplog):
    ticket = make_ticket(org, Status.DISPATCHED)
    layer = get_channel_layer()

    async def unreachable(group, message):  # type: ignore[no-untyped-def]
        raise ConnectionError("redis is down")

    monkeypatch.setattr(layer, "group_send", unreachable)
    with caplog.at_level(logging.ERROR, logger="hotline.realtime.broadcast"):
        accepted = services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    assert accepted.status == Status.ACCEPTED
    assert TicketEvent.objects.filter(ticket=ticket, kind="accept").exists()
    assert "could not send TicketTransitioned" in caplog.text
    assert "13812345678" not in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_committed_transition_reaches_the_department_group(org):
    from asgiref.sync import sync_to_async

    from hotline.realtime import groups

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(groups.department(org.bureau.id), channel)
    ticket = await sync_to_async(make_ticket)(org, Status.PENDING_DISPATCH)
    await sync_to_async(services.ticket_dispatch)(
        ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id
    )
    message = await layer.receive(channel)
    event = message["event"]
    assert event["type"] == "ticket.transitioned"
    assert event["transition"] == "dispatch"
    assert event["ticket_id"] == ticket.id
    assert event["to_status"] == "dispatched"
    stored = await sync_to_async(TicketEvent.objects.get)(id=event["event_id"])
    assert stored.kind == "dispatch"
    await layer.group_discard(groups.department(org.bureau.id), channel)
    # sync_to_async ran the ORM on a worker thread; its connection must not outlive the test database.
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_no_broadcast_when_the_transaction_rolls_back(org, django_capture_on_commit_callbacks):
    from django.db import transaction

    ticket = make_ticket(org, Status.DISPATCHED)
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
        raise RuntimeError("crash after the write")
    assert callbacks == []
    ticket.refresh_from_db()
    assert ticket.status == Status.DISPATCHED
