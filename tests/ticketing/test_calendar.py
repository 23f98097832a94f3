"""Deadlines across weekends, statutory holidays and make-up working days (2026 schedule)."""

import datetime as dt
import logging

import pytest

from hotline import clock
from tests.helpers import make_ticket
from ticketing import directory, services
from ticketing.calendar import TZ, WorkingCalendar
from ticketing.deadlines import policy_for
from ticketing.models import CalendarDay, DeadlinePolicy
from ticketing.selectors import working_calendar
from ticketing.workflow import Status


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ)


CAL = WorkingCalendar()


@pytest.mark.parametrize(
    ("start", "amount", "unit", "due"),
    [
        # Plain week: Monday 10:00 + 5 working days = next Monday 10:00.
        (at(2026, 3, 2, 10), 5, "working_days", at(2026, 3, 9, 10)),
        # Received on Saturday: counting starts Monday, ends at the end of Friday.
        (at(2026, 3, 7, 15), 5, "working_days", at(2026, 3, 14)),
        # Spring Festival 2026: Sat 14 Feb is a make-up working day, 15-23 Feb are off.
        (at(2026, 2, 12, 10), 5, "working_days", at(2026, 2, 26, 10)),
        # National Day 2026: 1-7 Oct off, Sat 10 Oct is a make-up working day.
        (at(2026, 9, 29, 9), 5, "working_days", at(2026, 10, 12, 9)),
        # Mid-Autumn 2026 falls on Friday 25 Sep; Sunday 20 Sep is a make-up working day.
        (at(2026, 9, 24, 12), 1, "working_days", at(2026, 9, 28, 12)),
        # Working hours skip lunch (12:00-13:00) ...
        (at(2026, 3, 5, 11), 2, "working_hours", at(2026, 3, 5, 14)),
        # ... and the night and the weekend.
        (at(2026, 3, 6, 16, 30), 2, "working_hours", at(2026, 3, 9, 10, 30)),
        # The make-up Sunday counts in working hours too.
        (at(2026, 9, 19, 10), 1, "working_hours", at(2026, 9, 20, 10)),
        # Received at night: counting starts at 09:00.
        (at(2026, 3, 4, 22), 1, "working_hours", at(2026, 3, 5, 10)),
        # Minutes are clock minutes, holidays or not.
        (at(2026, 10, 1, 23, 50), 15, "minutes", at(2026, 10, 2, 0, 5)),
    ],
)
def test_working_time(start, amount, unit, due):
    assert CAL.add(start, amount, unit) == due


def test_statutory_days():
    assert CAL.is_working_day(dt.date(2026, 2, 14))  # Saturday, make-up day
    assert not CAL.is_working_day(dt.date(2026, 2, 16))  # Monday, Spring Festival
    assert CAL.is_working_day(dt.date(2026, 10, 10))  # Saturday, make-up day
    assert not CAL.is_working_day(dt.date(2026, 10, 5))  # Monday, National Day


def test_local_override_wins_over_the_statutory_calendar():
    calendar = WorkingCalendar(overrides={dt.date(2026, 3, 9): False})
    assert calendar.add(at(2026, 3, 7, 15), 5, "working_days") == at(2026, 3, 17)


def test_unknown_year_counts_weekdays_and_warns(caplog):
    calendar = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger="ticketing.calendar"):
        assert calendar.add(at(2027, 1, 8, 10), 5, "working_days") == at(2027, 1, 15, 10)
    assert "2027" in caplog.text
    overridden = WorkingCalendar(overrides={dt.date(2027, 1, 11): False})
    assert overridden.add(at(2027, 1, 8, 10), 5, "working_days") == at(2027, 1, 18, 10)


def test_bad_arguments_are_refused():
    from ticketing.calendar import CalendarError

    with pytest.raises(CalendarError):
        CAL.add(dt.datetime(2026, 3, 2, 10), 1, "working_days")  # naive
    with pytest.raises(CalendarError):
        CAL.add(at(2026, 3, 2), 1, "fortnights")
    with pytest.raises(CalendarError):
        CAL.add(at(2026, 3, 2), -1, "working_days")


@pytest.mark.django_db
def test_calendar_overrides_come_from_the_database():
    CalendarDay.objects.create(date=dt.date(2026, 3, 9), is_working_day=False, note="本地调休")
    assert working_calendar().add(at(2026, 3, 7, 15), 5, "working_days") == at(2026, 3, 17)


def test_dispatch_sets_deadlines_across_national_day(org):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    with clock.frozen(at(2026, 9, 29, 9)):
        ticket = services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    policy = ticket.deadline_policy
    assert policy.name == "默认时限"
    assert ticket.accept_due_at == at(2026, 9, 30, 9)  # 1 working day
    assert ticket.return_due_at == at(2026, 10, 8, 9)  # 2 working days, over the holiday
    assert ticket.reply_due_at == at(2026, 10, 12, 9)  # 5 working days
    # Warning at 80% of the working time between dispatch and the deadline: 4 working days, the 4th being
    # Saturday 10 Oct, a make-up working day.
    assert ticket.reply_warning_at == at(2026, 10, 10, 9)


def test_extension_adds_working_days_to_the_reply_deadline(org):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    with clock.frozen(at(2026, 9, 29, 9)):
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
        services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=2, reason="需勘查")
        ticket = services.ticket_approve_extension(ticket_id=ticket.id, actor=org.supervisor)
    # 12 Oct 09:00 + 2 working days = 14 Oct 09:00.
    assert ticket.reply_due_at == at(2026, 10, 14, 9)


def test_critical_urgency_uses_clock_minutes(org):
    ticket = make_ticket(org, Status.PENDING_DISPATCH, urgency="critical")
    with clock.frozen(at(2026, 10, 3, 2)):  # a holiday night
        ticket = services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    assert ticket.accept_due_at == at(2026, 10, 3, 2, 15)


@pytest.mark.django_db
def test_the_most_specific_policy_wins(org):
    utilities = directory.category_import(pairs=[("水电气暖", "停水")])
    assert utilities.second_level_created == 1
    directory.deadline_policy_upsert(
        name="水电气暖",
        category_path=("水电气暖", None),
        accept_within=30,
        accept_unit="minutes",
        return_within=2,
        return_unit="working_hours",
        reply_within=2,
        reply_unit="working_days",
    )
    from ticketing.models import Category

    outage = Category.objects.get(name="停水")
    assert policy_for(appeal_type="help", urgency="normal", category=outage).name == "水电气暖"
    # Danger to life or property outranks the category rule.
    assert policy_for(appeal_type="help", urgency="critical", category=outage).name.startswith("特急")
    assert policy_for(appeal_type="help", urgency="normal", category=None).name == "默认时限"
    DeadlinePolicy.objects.update(is_active=False)
    assert policy_for(appeal_type="help", urgency="normal", category=None) is None


@pytest.mark.parametrize(
    ("start", "end", "unit", "elapsed"),
    [
        # Across National Day 2026: Tue 29 Sep 09:00 to Mon 12 Oct 09:00 is 5 working days (Sat 10 Oct works).
        (at(2026, 9, 29, 9), at(2026, 10, 12, 9), "working_days", dt.timedelta(days=5)),
        # A weekend alone is no working time.
        (at(2026, 3, 7, 8), at(2026, 3, 9), "working_days", dt.timedelta(0)),
        # Working hours: Thursday 16:00 to Friday 10:00 is 1 h + 1 h.
        (at(2026, 3, 5, 16), at(2026, 3, 6, 10), "working_hours", dt.timedelta(hours=2)),
        # Minutes are clock time.
        (at(2026, 10, 3, 2), at(2026, 10, 3, 2, 15), "minutes", dt.timedelta(minutes=15)),
        # An end before the start is no time at all.
        (at(2026, 3, 9), at(2026, 3, 2), "working_days", dt.timedelta(0)),
    ],
)
def test_elapsed_working_time(start, end, unit, elapsed):
    assert CAL.elapsed(start, end, unit) == elapsed


@pytest.mark.parametrize("unit", ["working_days", "working_hours"])
def test_add_time_undoes_elapsed(unit):
    start = at(2026, 9, 30, 10, 30)
    for end in (at(2026, 10, 9, 11), at(2026, 10, 10, 16), at(2026, 10, 12, 9, 45)):
        assert CAL.add_time(start, CAL.elapsed(start, end, unit), unit) == end


def test_a_suspended_ticket_gets_back_the_working_time_it_had_left(org):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    with clock.frozen(at(2026, 9, 24, 9)):  # Thursday; reply due 5 working days later
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    ticket.refresh_from_db()
    # Fri 25 Sep is Mid-Autumn and 1-7 Oct National Day: Thu 24, Mon 28, Tue 29, Wed 30, Thu 8 Oct.
    assert ticket.reply_due_at == at(2026, 10, 9, 9)
    with clock.frozen(at(2026, 9, 28, 9)):  # one working day used (Thu 09:00 to Mon 09:00)
        services.ticket_suspend(ticket_id=ticket.id, actor=org.handler, reason="等待来电人提供材料")
    with clock.frozen(at(2026, 10, 9, 9)):  # the citizen answers after National Day
        ticket = services.ticket_resume(ticket_id=ticket.id, actor=org.handler, note="材料已补齐")
    assert ticket.status == Status.ACCEPTED
    assert ticket.paused_at is None
    # Four working days were left: Fri 9, Sat 10 (a make-up working day), Mon 12, Tue 13.
    assert ticket.reply_due_at == at(2026, 10, 14, 9)
    resume = ticket.events.last()
    assert resume.kind == "resume"
    assert resume.data["reply_due_at"] == ticket.reply_due_at.isoformat()


def test_a_suspended_ticket_gets_no_deadline_marks(org):
    with clock.frozen(at(2026, 3, 2, 9)):
        ticket = make_ticket(org, Status.SUSPENDED)
    with clock.frozen(at(2026, 4, 30, 9)):  # long past every deadline
        for deadline in ("accept", "return", "reply"):
            assert services.ticket_mark_deadline(ticket_id=ticket.id, deadline=deadline, mark="overdue") is None
