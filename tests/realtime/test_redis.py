"""The channel layer failing, and (with REDIS_URL) real Redis fan-out between processes."""

import logging
import os

import pytest
from asgiref.sync import sync_to_async

from tests.helpers import make_ticket
from ticketing import services
from ticketing.models import TicketEvent
from ticketing.workflow import Status

UNREACHABLE = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # Nothing listens on port 1: connections are refused at once.
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
    }
}


async def test_redis_down_writes_commit_errors_are_logged_and_clients_catch_up(org, connect, settings, caplog):
    settings.HOTLINE_CATCHUP_GRACE_SECONDS = 0
    working_layers = settings.CHANNEL_LAYERS
    ticket = await sync_to_async(make_ticket)(org, Status.DISPATCHED)
    watcher = await connect(f"/ws/tickets/{ticket.id}/", user=org.supervisor)
    _, done = await watcher.until_caught_up()
    await watcher.disconnect()

    settings.CHANNEL_LAYERS = UNREACHABLE
    with caplog.at_level(logging.ERROR, logger="hotline.realtime.broadcast"):
        accepted = await sync_to_async(services.ticket_accept)(ticket_id=ticket.id, actor=org.handler)
    assert accepted.status == Status.ACCEPTED
    stored = await sync_to_async(TicketEvent.objects.get)(ticket=ticket, kind="accept")
    assert "could not send TicketTransitioned" in caplog.text
    assert "clients will catch up from stored events" in caplog.text

    # Redis is back: the screen reconnects with the last id it saw and gets the accept it missed.
    settings.CHANNEL_LAYERS = working_layers
    again = await connect(f"/ws/tickets/{ticket.id}/?after={done['last_event_id']}", user=org.supervisor)
    missed, _ = await again.until_caught_up()
    assert [m["event_id"] for m in missed] == [stored.id]


@pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: fan-out between processes over real Redis"
)
async def test_an_event_sent_by_another_process_reaches_this_ones_subscribers(org, connect, settings):
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from hotline.realtime import groups
    from hotline.realtime.broadcast import MESSAGE_TYPE

    screen = await connect(f"/ws/departments/{org.bureau.id}/", user=org.handler)
    await screen.until_caught_up()
    # A second layer object with its own connections stands for a second Daphne process.
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    other_process = RedisPubSubChannelLayer(hosts=config["hosts"], prefix=config["prefix"])
    try:
        payload = {"type": "heartbeat", "at": "2026-11-22T10:00:00+08:00"}
        await other_process.group_send(groups.department(org.bureau.id), {"type": MESSAGE_TYPE, "event": payload})
        assert await screen.receive() == payload
    finally:
        await other_process.flush()
