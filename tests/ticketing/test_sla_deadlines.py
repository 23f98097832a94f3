"""Each deadline rule, set by the real services on the statutory calendar, and the sweep's warning and overdue
marks at exactly those times: across weekends, the 2025 National Day, the 2026 Spring Festival, the 2026
Mid-Autumn/National Day holidays and their make-up working days (dates from `chinese_calendar`).

The escalation ladder is switched off here; tests/ticketing/test_sla.py covers it.
"""

from datetime import datetime, timedelta

import chinese_calendar
import pytest

from hotline import clock
from tests.helpers import make_ticket
from ticketing import services, sla
from ticketing.calendar import TZ
from ticketing.models import EscalationStep, Ticket
from ticketing.workflow import Status

SECOND = timedelta(seconds=1)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ)


@pytest.fixture(autouse=True)
def no_ladder(db) -> None:  # type: ignore[no-untyped-def]
    EscalationStep.objects.all().delete()


def dispatched(org, moment: datetime, **overrides) -> Ticket:  # type: ignore[no-untyped-def]
    with clock.frozen(moment):
        return make_ticket(org, Status.DISPATCHED, **overrides)


def sweep_at(moment: datetime) -> sla.SweepReport:
    with clock.frozen(moment):
        return sla.sweep()


def marks(ticket: Ticket) -> set[tuple[str, str]]:
    return {(e.data["deadline"], e.data["mark"]) for e in ticket.events.filter(kind="deadline")}


def test_the_calendar_dates_used_here_are_the_statutory_ones():
    # Make-up working days (weekends that are worked) and holidays (weekdays that are not).
    for day in ("2025-09-28", "2025-10-11", "2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"):
        assert chinese_calendar.is_workday(datetime.fromisoformat(day).date()), day
    for day in ("2025-10-01", "2025-10-08", "2026-02-16", "2026-02-23", "2026-09-25", "2026-10-07"):
        assert not chinese_calendar.is_workday(datetime.fromisoformat(day).date()), day


# (case, dispatched at, urgency) -> accept due, accept warning, return due, reply due, reply warning.
# Policies (data migration 0002): normal 1/2/5 working days, warning at 80 %; urgent 2/4 working hours and
# 2 working days, 75 %; critical 15/30/1440 clock minutes, 50 %. Warnings fall at that share of the working
# time between dispatch and the deadline, so always on a working day (in working hours for hour limits).
RULES = [
    pytest.param(
        at(2025, 11, 7, 16, 30),
        "urgent",
        (at(2025, 11, 10, 10, 30), at(2025, 11, 10, 10), at(2025, 11, 10, 13, 30)),
        (at(2025, 11, 11, 16, 30), at(2025, 11, 11, 4, 30)),
        id="working-hours-over-a-weekend",
    ),
    pytest.param(
        at(2025, 9, 26, 10),
        "normal",
        # Sun 28 Sep is a make-up working day; 1-8 Oct are off.
        (at(2025, 9, 28, 10), at(2025, 9, 28, 5, 12), at(2025, 9, 29, 10)),
        (at(2025, 10, 10, 10), at(2025, 10, 9, 10)),
        id="working-days-national-day-2025-make-up-sunday",
    ),
    pytest.param(
        at(2026, 2, 13, 16),
        "urgent",
        # Sat 14 Feb is a make-up working day; 15-23 Feb are off.
        (at(2026, 2, 14, 10), at(2026, 2, 14, 9, 30), at(2026, 2, 14, 12)),
        (at(2026, 2, 24, 16), at(2026, 2, 24, 4)),
        id="working-hours-spring-festival-2026-make-up-saturday",
    ),
    pytest.param(
        at(2026, 9, 24, 15),
        "normal",
        # Fri 25 Sep (Mid-Autumn) and 1-7 Oct are off.
        (at(2026, 9, 28, 15), at(2026, 9, 28, 10, 12), at(2026, 9, 29, 15)),
        (at(2026, 10, 9, 15), at(2026, 10, 8, 15)),
        id="working-days-mid-autumn-and-national-day-2026",
    ),
    pytest.param(
        at(2025, 10, 1, 23, 50),
        "critical",
        (at(2025, 10, 2, 0, 5), at(2025, 10, 1, 23, 57, 30), at(2025, 10, 2, 0, 20)),
        (at(2025, 10, 2, 23, 50), at(2025, 10, 2, 11, 50)),
        id="clock-minutes-on-a-holiday",
    ),
    pytest.param(
        at(2025, 10, 4, 11),
        "normal",
        # Dispatched on a holiday: counting starts on Thu 9 Oct; Sat 11 Oct is a make-up working day.
        (at(2025, 10, 10), at(2025, 10, 9, 19, 12), at(2025, 10, 11)),
        (at(2025, 10, 15), at(2025, 10, 14)),
        id="working-days-dispatched-on-a-holiday",
    ),
]


@pytest.mark.parametrize(("start", "urgency", "accept", "reply"), RULES)
def test_dispatch_sets_each_deadline_on_the_statutory_calendar(org, start, urgency, accept, reply):
    ticket = dispatched(org, start, urgency=urgency)

    assert ticket.dispatched_at == start
    assert (ticket.accept_due_at, ticket.accept_warning_at, ticket.return_due_at) == accept
    assert (ticket.reply_due_at, ticket.reply_warning_at) == reply


@pytest.mark.parametrize(("start", "urgency", "accept", "reply"), RULES)
def test_the_sweep_marks_each_deadline_at_its_exact_time(org, start, urgency, accept, reply):
    ticket = dispatched(org, start, urgency=urgency)
    accept_due, accept_warning, return_due = accept
    reply_due, reply_warning = reply
    moments = sorted(
        [
            (accept_warning, ("accept", "warning")),
            (accept_due, ("accept", "overdue")),
            (return_due, ("return", "overdue")),
            (reply_warning, ("reply", "warning")),
            (reply_due, ("reply", "overdue")),
        ]
    )
    expected: set[tuple[str, str]] = set()
    for moment, mark in moments:
        sweep_at(moment - SECOND)
        assert marks(ticket) == expected, f"nothing before {moment}"
        expected.add(mark)
        sweep_at(moment)
        assert marks(ticket) == expected, moment
        # A second sweep at the same moment finds nothing to do.
        assert not sweep_at(moment).has_work


def test_a_sweep_counts_what_it_marks_and_each_mark_carries_its_due_time(org):
    ticket = dispatched(org, at(2025, 9, 26, 10))

    report = sweep_at(at(2025, 9, 29, 10))

    assert (report.warnings, report.overdue, report.failed) == (0, 2, 0)
    events = {e.data["deadline"]: e for e in ticket.events.filter(kind="deadline")}
    assert set(events) == {"accept", "return"}
    assert events["accept"].data == {
        "mark": "overdue",
        "deadline": "accept",
        "due_at": "2025-09-28T10:00:00+08:00",
        "department": org.bureau.id,
    }
    assert events["return"].data["due_at"] == "2025-09-29T10:00:00+08:00"
    # The accept warning was due but came after the deadline it warns of: the overdue mark says it all.
    assert ("accept", "warning") not in marks(ticket)


def test_accepting_stops_the_accept_clock_and_the_reply_clock_runs_on(org):
    ticket = dispatched(org, at(2026, 2, 13, 16), urgency="urgent")
    with clock.frozen(at(2026, 2, 14, 9, 30)):
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)

    sweep_at(at(2026, 2, 24, 4))
    assert marks(ticket) == {("return", "overdue"), ("reply", "warning")}
    sweep_at(at(2026, 2, 24, 16))

    # Accepted before the accept deadline: no accept mark ever; the return window and the reply run on.
    assert marks(ticket) == {("return", "overdue"), ("reply", "warning"), ("reply", "overdue")}


@pytest.mark.parametrize("status", [Status.REPLIED, Status.CALLBACK, Status.CLOSED])
def test_no_marks_once_the_department_has_replied(org, status):
    with clock.frozen(at(2025, 11, 3, 10)):
        ticket = make_ticket(org, status)

    report = sweep_at(at(2025, 12, 31, 10))

    assert marks(ticket) == set()
    assert not report.has_work


def test_a_local_calendar_override_moves_the_deadline(org):
    from ticketing.models import CalendarDay

    # The city gives Friday 10 Oct 2025 off: the reply due on it moves to the next working day (Sat 11 Oct,
    # a make-up day).
    CalendarDay.objects.create(date=at(2025, 10, 10).date(), is_working_day=False, note="本地调休")
    ticket = dispatched(org, at(2025, 9, 26, 10))

    assert ticket.reply_due_at == at(2025, 10, 11, 10)
    sweep_at(at(2025, 10, 11, 10) - SECOND)
    assert ("reply", "overdue") not in marks(ticket)
    sweep_at(at(2025, 10, 11, 10))
    assert ("reply", "overdue") in marks(ticket)
