"""The day counts (ticketing/rollups.py) against the measures computed from the trail.

A seeded random walk drives a few dozen tickets through every transition the workflow allows (drafts, returns
approved and refused, reassignments from every state, merges, suspensions, extensions, replies sent back,
reopenings, unreachable callbacks, refused actions) over two weeks that cross a weekend and a month's end, with
the clock frozen at each step. Then every figure the day counts serve is compared with the same figure computed
from the trail, for many periods, several moments and three scopes; and the counts rebuilt from the trail (as the
migration does) are compared with the counts the services kept.
"""

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from hotline import clock
from hotline.errors import ApplicationError
from tests.helpers import ticket_input
from tests.races import needs_postgres, race
from ticketing import measures, rollups, services
from ticketing.calendar import TZ
from ticketing.measures import Period
from ticketing.models import DailyCounts, Ticket, TicketEvent
from ticketing.workflow import TERMINAL, Status, Transition, allowed_from

pytestmark = pytest.mark.django_db

T = Transition
START = dt.datetime(2025, 10, 27, 8, 0, tzinfo=TZ)  # a Monday; the walk runs into November
SEED = 20251027
STEPS = 420

# How often the walk picks each transition when it is allowed: mostly forward, now and then sideways.
WEIGHTS = {
    T.SUBMIT: 4,
    T.INSTANT_REPLY: 1.5,
    T.DISPATCH: 6,
    T.ACCEPT: 5,
    T.RETURN: 1,
    T.APPROVE_RETURN: 3,
    T.REJECT_RETURN: 2,
    T.REASSIGN: 0.8,
    T.REQUEST_EXTENSION: 0.6,
    T.APPROVE_EXTENSION: 2,
    T.REJECT_EXTENSION: 1,
    T.SUSPEND: 0.5,
    T.RESUME: 3,
    T.REPLY: 4,
    T.APPROVE_REPLY: 4,
    T.REJECT_REPLY: 0.8,
    T.CLOSE: 4,
    T.REOPEN: 1.2,
    T.MERGE: 0.3,
    T.TRANSFER: 0.2,
    T.CANCEL: 0.2,
}


@dataclass
class Walk:
    org: Any
    end: dt.datetime
    kinds: Counter[str]
    refused: int


def _walk(org) -> Walk:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    departments = [org.bureau, org.bureau_unit, org.other_bureau, org.street_office, org.district_government]
    tickets: list[int] = []
    now = START
    refused = 0

    def other_department(current: int | None) -> int:
        return rng.choice([d.id for d in departments if d.id != current])

    def perform(ticket: Ticket, transition: Transition) -> None:
        lead = ticket.lead_department_id
        handler = org.handler_for(next(d for d in departments if d.id == lead)) if lead else None
        args: dict[str, Any] = {"ticket_id": ticket.id}
        call: Callable[..., Any]
        if transition == T.SUBMIT:
            call, args["actor"] = services.ticket_submit, org.agent
        elif transition == T.INSTANT_REPLY:
            call, args["actor"], args["reply_text"] = services.ticket_instant_reply, org.agent, "已当场答复。"
        elif transition == T.DISPATCH:
            call, args["actor"] = services.ticket_dispatch, org.dispatcher
            args["lead_department_id"] = rng.choice(departments).id
            if rng.random() < 0.2:
                args["assisting_department_ids"] = [other_department(args["lead_department_id"])]
        elif transition == T.ACCEPT:
            call, args["actor"] = services.ticket_accept, handler
        elif transition == T.RETURN:
            call, args["actor"], args["reason"] = services.ticket_return, handler, "不属于本单位职责。"
        elif transition == T.APPROVE_RETURN:
            call, args["actor"] = services.ticket_approve_return, org.dispatcher
        elif transition == T.REJECT_RETURN:
            call, args["actor"], args["reason"] = services.ticket_reject_return, org.dispatcher, "属于本单位职责。"
        elif transition == T.REASSIGN:
            call, args["actor"], args["reason"] = services.ticket_reassign, org.dispatcher, "职责调整。"
            args["lead_department_id"] = other_department(lead)
        elif transition == T.REQUEST_EXTENSION:
            call, args["actor"] = services.ticket_request_extension, handler
            args.update(working_days=rng.choice([1, 3, 12]), reason="需要现场勘查。")
        elif transition == T.APPROVE_EXTENSION:
            call, args["actor"] = services.ticket_approve_extension, org.supervisor
        elif transition == T.REJECT_EXTENSION:
            call, args["actor"], args["note"] = services.ticket_reject_extension, org.supervisor, "理由不充分。"
        elif transition == T.SUSPEND:
            call, args["actor"], args["reason"] = services.ticket_suspend, handler, "等待来电人补充材料。"
        elif transition == T.RESUME:
            call, args["actor"] = services.ticket_resume, handler
        elif transition == T.REPLY:
            call, args["actor"], args["reply_text"] = services.ticket_reply, handler, "已处理。"
            args["result"] = rng.choice(["solved", "solved", "explained", "partly_solved", "not_solved"])
        elif transition == T.APPROVE_REPLY:
            call, args["actor"] = services.ticket_approve_reply, org.dispatcher
        elif transition == T.REJECT_REPLY:
            call, args["actor"], args["reason"] = services.ticket_reject_reply, org.dispatcher, "答复不完整。"
        elif transition == T.CLOSE:
            call, args["actor"] = services.ticket_close, org.agent
            args["satisfaction"] = rng.choice(["satisfied", "satisfied", "fairly_satisfied", None])
        elif transition == T.REOPEN:
            call, args["actor"], args["comment"] = services.ticket_reopen, org.agent, "问题没有解决。"
        elif transition == T.MERGE:
            # Sometimes into itself or a closed-off ticket: refused, and nothing may be counted.
            call, args["actor"], args["into_ticket_id"] = services.ticket_merge, org.agent, rng.choice(tickets)
        elif transition == T.TRANSFER:
            call, args["actor"], args["target"] = services.ticket_transfer, org.agent, "110"
        else:
            call, args["actor"], args["reason"] = services.ticket_cancel, org.agent, "来电人撤回诉求。"
        call(**args)

    for _step in range(STEPS):
        now += dt.timedelta(minutes=rng.expovariate(1 / 45))
        with clock.frozen(now):
            live = list(Ticket.objects.filter(id__in=tickets).exclude(status__in=TERMINAL))
            if not live or rng.random() < 0.18:
                data = ticket_input(urgency=rng.choice(["normal"] * 6 + ["urgent", "critical"]))
                tickets.append(services.ticket_create(data=data, actor=org.agent, draft=rng.random() < 0.2).id)
                continue
            ticket = rng.choice(live)
            if ticket.status == Status.ACCEPTED and ticket.lead_department_id == org.bureau.id and rng.random() < 0.1:
                # Handed down to the sub-unit: an event that counts nothing and moves nothing.
                services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.handler, unit_id=org.bureau_unit.id)
                continue
            choices = allowed_from(Status(ticket.status))
            transition = rng.choices(choices, [WEIGHTS[c] for c in choices])[0]
            try:
                perform(ticket, transition)
            except ApplicationError:
                refused += 1
    kinds = Counter(TicketEvent.objects.values_list("kind", flat=True))
    return Walk(org=org, end=now, kinds=kinds, refused=refused)


@pytest.fixture
def walk(org) -> Walk:  # type: ignore[no-untyped-def]
    return _walk(org)


def _periods(walk: Walk) -> list[Period]:
    first, last = START.date(), walk.end.astimezone(TZ).date()
    days = (last - first).days + 1
    periods = [Period.from_dates(first + dt.timedelta(days=n), first + dt.timedelta(days=n + 1)) for n in range(days)]
    rng = random.Random(SEED + 1)
    for _ in range(6):
        a = first + dt.timedelta(days=rng.randrange(days))
        periods.append(Period.from_dates(a, a + dt.timedelta(days=rng.randint(2, 6))))
    periods.append(Period.from_dates(first, last + dt.timedelta(days=1)))
    periods.append(Period.from_dates(dt.date(2025, 10, 1), dt.date(2025, 12, 1)))
    return periods


def test_the_walk_is_varied(walk):
    """What the comparison below would miss if the walk did not reach it."""
    for kind in [*measures.MEASURED_KINDS, "accept", "merge", "approve_return", "reject_reply", "suspend"]:
        assert walk.kinds[kind] > 0, kind
    assert walk.refused > 0
    total = measures.measures(
        user=walk.org.supervisor, period=Period.from_dates(START.date(), dt.date(2025, 12, 1)), now=walk.end
    ).total
    assert total.accepted_late and total.accepted_on_time and total.accept_lapsed
    assert total.returns_refused and total.dissatisfied and total.callback_unreachable and total.fairly_satisfied
    assert 0 < total.resolved < total.replies_approved
    assert 0 < total.replied_on_time < total.replied
    assert START.astimezone(TZ).month != walk.end.astimezone(TZ).month


@pytest.mark.parametrize("group_by", [None, "department", "day", "week", "month"])
def test_the_day_counts_give_what_the_trail_gives(walk, group_by):
    org = walk.org
    moments = [walk.end, walk.end - dt.timedelta(days=3), walk.end + dt.timedelta(days=10)]
    for user in (org.supervisor, org.lead, org.district_lead):
        for period in _periods(walk):
            for now in moments:
                fast = measures.measures(user=user, period=period, group_by=group_by, now=now)
                slow = measures.measures(user=user, period=period, group_by=group_by, now=now, from_trail=True)
                assert fast == slow, (user.username, period.label(), now)


def test_the_board_pass_gives_what_the_trail_gives(walk):
    period = Period.from_dates(START.date(), walk.end.astimezone(TZ).date() + dt.timedelta(days=1))
    groupings = ("day", "department")
    fast = measures.measures_grouped(user=walk.org.supervisor, period=period, groupings=groupings, now=walk.end)
    slow = measures.measures_grouped(
        user=walk.org.supervisor, period=period, groupings=groupings, now=walk.end, from_trail=True
    )
    assert fast == slow
    assert sum(row.counts.dispatched for row in fast["department"].rows) == fast[""].total.dispatched > 0


def test_hot_topics_count_intake_as_the_tickets_do(walk):
    org = walk.org
    for user in (org.supervisor, org.lead, org.district_lead):
        scope = measures.measures_scope(user)
        for period in _periods(walk):
            hot = measures.hot_topics(user=user, period=period)
            both = Period(hot.previous_period.start, period.end)
            tickets = measures._intake_tickets(period=both, scope=scope)
            now, before = tickets.filter(created_at__gte=period.start), tickets.filter(created_at__lt=period.start)
            assert (hot.intake, hot.previous_intake) == (now.count(), before.count()), period.label()


def _rows() -> list[tuple[Any, ...]]:
    names = measures.DAY_COUNTED
    return sorted(
        (row for row in DailyCounts.objects.values_list("day", "department_id", *names) if any(row[2:])),
        key=lambda row: (row[0], row[1] or 0),
    )


def test_rebuilding_from_the_trail_gives_the_counts_the_services_kept(walk):
    kept = _rows()
    assert kept
    written = rollups.rebuild()
    assert _rows() == kept and written == len(kept)


def test_the_migration_rebuilds_with_its_historical_models(walk):
    kept = _rows()
    DailyCounts.objects.all().delete()
    state = MigrationExecutor(connection).loader.project_state(("ticketing", "0009_daily_counts"))
    rollups.rebuild(apps=state.apps)
    assert _rows() == kept


def test_the_rebuild_command(walk, capsys):
    kept = _rows()
    DailyCounts.objects.filter(department__isnull=True).update(intake=0)
    assert _rows() != kept
    call_command("rebuild_daily_counts")
    assert _rows() == kept
    assert "每日统计已按流转记录重算" in capsys.readouterr().out


def test_a_refused_action_counts_nothing(org):
    with clock.frozen(START):
        ticket = services.ticket_create(data=ticket_input(), actor=org.agent)
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    before = _rows()
    # Two working days later the return window has closed: the return is refused, and nothing is counted.
    with clock.frozen(START + dt.timedelta(days=3)), pytest.raises(ApplicationError) as refused:
        services.ticket_return(ticket_id=ticket.id, actor=org.handler, reason="不属于本单位职责。")
    assert refused.value.code == "return_window_closed"
    assert _rows() == before


def test_an_acceptance_counts_on_the_day_and_department_of_the_hold_it_ends(org):
    with clock.frozen(START):
        ticket = services.ticket_create(data=ticket_input(), actor=org.agent)
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id)
    with clock.frozen(START + dt.timedelta(hours=2)):
        services.ticket_reassign(
            ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id, reason="职责调整。"
        )
    # Accepted on Wednesday, a working day after the reassignment on Monday: late, counted on Monday for B1.
    with clock.frozen(START + dt.timedelta(days=2)):
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    monday = DailyCounts.objects.get(day=START.date(), department=org.bureau)
    assert (monday.dispatched, monday.accepted_late, monday.accepted_on_time, monday.intake) == (1, 1, 0, 1)
    other = DailyCounts.objects.get(day=START.date(), department=org.other_bureau)
    # Its intake moved to B1 with the ticket; its hold was taken away by the centre, which counts nothing.
    assert (other.dispatched, other.accepted_on_time, other.accepted_late, other.intake) == (1, 0, 0, 0)
    assert not DailyCounts.objects.filter(day=(START + dt.timedelta(days=2)).date()).exists()


def test_a_period_that_is_not_whole_days_is_read_from_the_trail(org):
    with clock.frozen(START):
        early = services.ticket_create(data=ticket_input(), actor=org.agent)
        services.ticket_dispatch(ticket_id=early.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    with clock.frozen(START + dt.timedelta(hours=3)):
        late = services.ticket_create(data=ticket_input(), actor=org.agent)
        services.ticket_dispatch(ticket_id=late.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    afternoon = Period(START + dt.timedelta(hours=1), START + dt.timedelta(days=1))
    report = measures.measures(user=org.supervisor, period=afternoon, group_by="department")
    assert (report.total.intake, report.total.dispatched) == (1, 1)
    monday = Period.from_dates(START.date(), START.date() + dt.timedelta(days=1))
    whole_day = measures.measures(user=org.supervisor, period=monday)
    assert (whole_day.total.intake, whole_day.total.dispatched) == (2, 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_concurrent_first_counts_of_a_day_add_up(org):
    """Tickets created at once on a day nobody has counted yet: every insert of the day's row but one is a
    no-op, and every count lands on that one row."""
    day = START + dt.timedelta(days=40)

    def create(actor) -> Ticket:  # type: ignore[no-untyped-def]
        with clock.frozen(day):
            return services.ticket_create(data=ticket_input(), actor=actor)

    agents = [org.agent, org.other_agent, org.dispatcher, org.supervisor, org.agent, org.other_agent]
    results = race([lambda actor=actor: create(actor) for actor in agents])
    assert all(isinstance(r, Ticket) for r in results), results
    rows = DailyCounts.objects.filter(day=day.date())
    assert [(row.department_id, row.intake) for row in rows] == [(None, len(agents))]
