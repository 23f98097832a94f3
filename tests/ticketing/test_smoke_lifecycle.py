from tests.helpers import make_ticket
from ticketing.workflow import Status


def test_a_ticket_reaches_every_state(org):
    for status in Status:
        ticket = make_ticket(org, status)
        assert ticket.status == status
        assert ticket.events.count() >= 1
