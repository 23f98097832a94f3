from datetime import timedelta

import pytest

from hotline import clock
from hotline.errors import ApplicationError, NotFound
from tests.helpers import make_ticket
from ticketing import services
from ticketing.calendar import TZ
from ticketing.workflow import Status


def test_a_note_goes_on_the_trail_for_staff(org):
    ticket = make_ticket(org, Status.ACCEPTED)
    event = services.ticket_note_add(ticket_id=ticket.id, actor=org.handler, text="  已约定周五上门  ")
    assert (event.kind, event.data, event.actor_id) == ("note", {"text": "已约定周五上门"}, org.handler.id)
    assert event.from_status == event.to_status == Status.ACCEPTED
    with pytest.raises(ApplicationError):
        services.ticket_note_add(ticket_id=ticket.id, actor=org.handler, text="  ")
    with pytest.raises(ApplicationError):
        services.ticket_note_add(ticket_id=ticket.id, actor=org.handler, text="字" * 2001)
    with pytest.raises(NotFound):
        services.ticket_note_add(ticket_id=ticket.id, actor=org.other_handler, text="不是我的工单")


def test_deadline_marks_come_once_and_only_when_due(org):
    ticket = make_ticket(org, Status.DISPATCHED)
    before_warning = ticket.accept_warning_at - timedelta(minutes=1)
    with clock.frozen(before_warning):
        assert services.ticket_mark_deadline(ticket_id=ticket.id, deadline="accept", mark="warning") is None
    with clock.frozen(ticket.accept_warning_at + timedelta(minutes=1)):
        warning = services.ticket_mark_deadline(ticket_id=ticket.id, deadline="accept", mark="warning")
        again = services.ticket_mark_deadline(ticket_id=ticket.id, deadline="accept", mark="warning")
        not_yet = services.ticket_mark_deadline(ticket_id=ticket.id, deadline="accept", mark="overdue")
    assert warning is not None and again is None and not_yet is None
    assert warning.data == {
        "mark": "warning",
        "deadline": "accept",
        "due_at": ticket.accept_due_at.astimezone(TZ).isoformat(),
        "department": org.bureau.id,
    }
    assert warning.actor_id is None
    with clock.frozen(ticket.accept_due_at + timedelta(seconds=1)):
        overdue = services.ticket_mark_deadline(ticket_id=ticket.id, deadline="accept", mark="overdue")
    assert overdue is not None and overdue.data["mark"] == "overdue"
    # Accepted: the accept deadline no longer runs.
    services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    with clock.frozen(ticket.reply_due_at + timedelta(days=1)):
        assert services.ticket_mark_deadline(ticket_id=ticket.id, deadline="accept", mark="overdue") is None
        assert services.ticket_mark_deadline(ticket_id=ticket.id, deadline="reply", mark="overdue") is not None
    with pytest.raises(ApplicationError):
        services.ticket_mark_deadline(ticket_id=ticket.id, deadline="lunch", mark="overdue")
