"""Races that only a real database shows: row locks, unique constraints under concurrent inserts.

SQLite serializes every writer and does not implement SELECT ... FOR UPDATE, so these run on PostgreSQL
(`DATABASE_URL`), which CI provides.
"""

import pytest

from hotline.errors import InvalidTransition
from tests.helpers import make_ticket, ticket_input
from tests.races import needs_postgres, race
from ticketing import services
from ticketing.models import IdempotencyKey, Ticket, TicketEvent
from ticketing.workflow import Status

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    needs_postgres,
]


def test_two_handlers_accepting_at_once_one_wins(org):
    for _round in range(5):
        ticket = make_ticket(org, Status.DISPATCHED)
        results = race(
            [
                lambda ticket=ticket: services.ticket_accept(ticket_id=ticket.id, actor=org.handler),
                lambda ticket=ticket: services.ticket_accept(ticket_id=ticket.id, actor=org.lead),
            ]
        )
        winners = [r for r in results if isinstance(r, Ticket)]
        losers = [r for r in results if isinstance(r, InvalidTransition)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert TicketEvent.objects.filter(ticket=ticket, kind="accept").count() == 1
        ticket.refresh_from_db()
        assert ticket.status == Status.ACCEPTED


def test_same_idempotency_key_at_once_makes_one_ticket(org):
    data = ticket_input(title="同一请求重试")
    before = Ticket.objects.count()
    results = race(
        [
            lambda: services.ticket_create_idempotent(idempotency_key="pbx-call-42", data=data, actor=org.agent)
            for _ in range(6)
        ]
    )
    assert all(isinstance(r, tuple) for r in results), results
    ids = {ticket.id for ticket, _created in results}
    assert len(ids) == 1
    assert sum(created for _ticket, created in results) == 1
    assert Ticket.objects.count() == before + 1
    assert IdempotencyKey.objects.filter(key="pbx-call-42").count() == 1


def test_many_concurrent_creates_get_distinct_numbers(org):
    agents = [org.agent, org.other_agent, org.dispatcher, org.supervisor]

    def create_batch(actor) -> list[str]:  # type: ignore[no-untyped-def]
        return [services.ticket_create(data=ticket_input(), actor=actor).number for _ in range(15)]

    results = race([lambda actor=actor: create_batch(actor) for actor in agents for _ in range(2)])
    assert all(isinstance(r, list) for r in results), results
    numbers = [number for batch in results for number in batch]
    assert len(numbers) == 120
    assert len(set(numbers)) == 120
    sequence = sorted(int(number.rsplit("-", 1)[1]) for number in numbers)
    # Nothing rolled back here, so the numbers are also gapless.
    assert sequence == list(range(1, 121))
