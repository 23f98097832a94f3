from asgiref.sync import sync_to_async

from hotline.realtime import events as rt
from tests.helpers import make_ticket
from ticketing import services
from ticketing.workflow import Status


async def test_a_department_screen_sees_a_dispatch_live_and_catches_up_after_a_disconnect(org, connect):
    screen = await connect(f"/ws/departments/{org.bureau.id}/", user=org.handler)
    missed, done = await screen.until_caught_up()
    assert missed == [] and done["count"] == 0
    ticket = await sync_to_async(make_ticket)(org, Status.PENDING_DISPATCH)
    await sync_to_async(services.ticket_dispatch)(
        ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id
    )
    live = await screen.receive()
    assert isinstance(rt.parse(live), rt.TicketTransitioned)
    assert live["transition"] == "dispatch" and live["ticket_id"] == ticket.id
    await screen.disconnect()

    await sync_to_async(services.ticket_accept)(ticket_id=ticket.id, actor=org.handler)
    await sync_to_async(services.ticket_note_add)(ticket_id=ticket.id, actor=org.handler, text="已联系施工方")
    again = await connect(f"/ws/departments/{org.bureau.id}/?after={live['event_id']}", user=org.handler)
    missed, done = await again.until_caught_up()
    assert [m["type"] for m in missed] == ["ticket.transitioned", "ticket.note"]
    assert done["last_event_id"] == missed[-1]["event_id"]
