"""The escalation ladder: each step once, at its working-day offset, only while the deadline runs; the clock
paused while suspended; extensions and reassignment restart the ladder; two sweepers at once; the command."""

import importlib
import os
import signal
import threading
import time
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from hotline import clock
from hotline.realtime import events as rt
from tests.helpers import make_ticket
from tests.races import needs_postgres, race
from ticketing import services, sla
from ticketing.calendar import TZ
from ticketing.models import (
    Escalation,
    EscalationStep,
    SupervisionLevel,
    SupervisionOrder,
    Ticket,
    TicketEvent,
    TicketEventDepartment,
)
from ticketing.realtime import staff_event
from ticketing.selectors import working_calendar
from ticketing.workflow import Status

SECOND = timedelta(seconds=1)
LADDER = importlib.import_module("ticketing.migrations.0005_default_escalation_ladder")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def ladder(db) -> dict[str, EscalationStep]:  # type: ignore[no-untyped-def]
    """The example ladder of the data migration (transactional tests flush the rows it wrote)."""
    from django.apps import apps

    LADDER.create(apps, None)
    return {step.action: step for step in EscalationStep.objects.all()}


def sweep_at(moment: datetime) -> sla.SweepReport:
    with clock.frozen(moment):
        return sla.sweep()


def accepted(org, moment: datetime, **overrides) -> Ticket:  # type: ignore[no-untyped-def]
    with clock.frozen(moment):
        return make_ticket(org, Status.ACCEPTED, **overrides)


def steps_taken(ticket: Ticket) -> list[tuple[str, datetime]]:
    return [(e.step.action, e.due_at) for e in Escalation.objects.filter(ticket=ticket).select_related("step")]


def escalation_events(ticket: Ticket) -> list[dict[str, Any]]:
    return [e.data for e in ticket.events.filter(kind="escalation").order_by("id")]


# ---------------------------------------------------------------------------------------------------------
# the ladder


def test_the_migration_ladder(ladder):
    assert {(s.deadline, s.after_working_days, s.action, s.is_active) for s in ladder.values()} == {
        ("accept", 0, "urge", True),
        ("reply", 0, "notify_lead", True),
        ("reply", 1, "supervision_order", True),
        ("reply", 5, "formal_notice", True),
    }


def test_each_step_once_at_its_working_day_offset_across_national_day(org, ladder, settings):
    settings.SLA_SUPERVISION_DUE_WORKING_DAYS = 2
    # Dispatched and accepted Tue 23 Sep 2025 10:00: 5 working days (Sun 28 Sep is a make-up day) end
    # Mon 29 Sep 10:00. +1 working day: Tue 30 Sep 10:00. +5 working days: 1-8 Oct are off and Sat 11 Oct
    # is a make-up day, so Mon 13 Oct 10:00.
    ticket = accepted(org, at(2025, 9, 23, 10))
    due = at(2025, 9, 29, 10)
    assert ticket.reply_due_at == due

    assert not sweep_at(due - SECOND).escalations
    report = sweep_at(due)
    assert dict(report.escalations) == {"notify_lead": 1}
    assert not sweep_at(due).has_work

    assert not sweep_at(at(2025, 9, 30, 10) - SECOND).has_work
    report = sweep_at(at(2025, 9, 30, 10))
    assert dict(report.escalations) == {"supervision_order": 1}
    order = SupervisionOrder.objects.get()
    # Its own deadline: 2 working days from Tue 30 Sep 10:00, over the holiday, is Fri 10 Oct 10:00.
    assert (order.level, order.formal_notice, order.issued_by, order.status) == (1, False, None, "open")
    assert (order.department, order.issued_at, order.due_at) == (org.bureau, at(2025, 9, 30, 10), at(2025, 10, 10, 10))

    # The order's own deadline passes before the next step.
    assert sweep_at(at(2025, 10, 10, 10)).orders_overdue == 1
    assert not sweep_at(at(2025, 10, 13, 10) - SECOND).has_work
    report = sweep_at(at(2025, 10, 13, 10))
    assert dict(report.escalations) == {"formal_notice": 1}
    notice = SupervisionOrder.objects.exclude(pk=order.pk).get()
    assert (notice.level, notice.formal_notice, notice.issued_by) == (SupervisionLevel.GOVERNMENT_OFFICE, True, None)

    # Years later, still nothing more: every step of the ladder was taken for this deadline.
    assert not sweep_at(at(2026, 9, 1, 10)).escalations
    assert steps_taken(ticket) == [("notify_lead", due), ("supervision_order", due), ("formal_notice", due)]
    assert escalation_events(ticket) == [
        {
            "step": ladder["notify_lead"].id,
            "action": "notify_lead",
            "deadline": "reply",
            "due_at": "2025-09-29T10:00:00+08:00",
            "after_working_days": 0,
            "department": org.bureau.id,
            "order": None,
            "notify": "department_lead",
        },
        {
            "step": ladder["supervision_order"].id,
            "action": "supervision_order",
            "deadline": "reply",
            "due_at": "2025-09-29T10:00:00+08:00",
            "after_working_days": 1,
            "department": org.bureau.id,
            "order": order.id,
            "level": 1,
            "formal_notice": False,
            "order_due_at": "2025-10-10T10:00:00+08:00",
        },
        {
            "step": ladder["formal_notice"].id,
            "action": "formal_notice",
            "deadline": "reply",
            "due_at": "2025-09-29T10:00:00+08:00",
            "after_working_days": 5,
            "department": org.bureau.id,
            "order": notice.id,
            "level": 2,
            "formal_notice": True,
            "order_due_at": "2025-10-15T10:00:00+08:00",
            "notify": "supervisor_board",
        },
    ]


def test_a_late_sweep_takes_every_due_step_in_ladder_order(org, ladder):
    ticket = accepted(org, at(2025, 9, 23, 10))

    report = sweep_at(at(2025, 10, 13, 10))

    assert dict(report.escalations) == {"notify_lead": 1, "supervision_order": 1, "formal_notice": 1}
    assert [data["action"] for data in escalation_events(ticket)] == [
        "notify_lead",
        "supervision_order",
        "formal_notice",
    ]
    # The return window and the reply deadline.
    assert report.overdue == 2
    assert "升级 3 次" in report.summary()


def test_escalation_events_reach_the_department_and_fit_the_schema(org, ladder):
    ticket = accepted(org, at(2025, 9, 23, 10))
    sweep_at(at(2025, 9, 29, 10))

    event = ticket.events.get(kind="escalation")
    assert event.actor_id is None
    assert set(TicketEventDepartment.objects.filter(event=event).values_list("department_id", flat=True)) == {
        org.bureau.id
    }
    payload = staff_event(event, ticket).model_dump(mode="json")
    parsed = rt.parse(payload)
    assert isinstance(parsed, rt.TicketActivity)
    assert (parsed.kind, parsed.data["action"]) == ("escalation", "notify_lead")


def test_the_accept_urge_counts_on_open_orders(org, ladder):
    with clock.frozen(at(2025, 11, 3, 10)):
        ticket = make_ticket(org, Status.DISPATCHED)
        from ticketing import supervision

        order = supervision.supervision_order_issue(
            ticket_id=ticket.id, actor=org.supervisor, reason="群众反映强烈", due_working_days=3
        )
    # Accept within 1 working day: Tue 4 Nov 10:00.
    assert not sweep_at(at(2025, 11, 4, 10) - SECOND).escalations
    report = sweep_at(at(2025, 11, 4, 10))

    assert dict(report.escalations) == {"urge": 1}
    order.refresh_from_db()
    assert (order.urge_count, order.last_urged_at) == (1, at(2025, 11, 4, 10))
    assert escalation_events(ticket)[0]["urged_orders"] == [order.id]


def test_no_step_for_a_deadline_that_does_not_run(org, ladder):
    with clock.frozen(at(2025, 11, 3, 10)):
        replied = make_ticket(org, Status.REPLIED)
        accepted_ticket = make_ticket(org, Status.ACCEPTED)

    report = sweep_at(at(2025, 12, 31, 10))

    # The accepted ticket's accept deadline no longer runs; the replied one has no running deadline at all.
    assert steps_taken(replied) == []
    assert [action for action, _due in steps_taken(accepted_ticket)] == [
        "notify_lead",
        "supervision_order",
        "formal_notice",
    ]
    assert dict(report.escalations) == {"notify_lead": 1, "supervision_order": 1, "formal_notice": 1}


def test_an_inactive_step_is_not_taken(org, ladder):
    ladder["supervision_order"].is_active = False
    ladder["supervision_order"].save()
    ticket = accepted(org, at(2025, 9, 23, 10))

    sweep_at(at(2025, 10, 13, 10))

    assert [action for action, _due in steps_taken(ticket)] == ["notify_lead", "formal_notice"]


def test_the_ladder_counts_on_local_calendar_overrides(org, ladder):
    from ticketing.models import CalendarDay

    ticket = accepted(org, at(2025, 9, 23, 10))
    # Tue 30 Sep made a local day off: +1 working day after Mon 29 Sep 10:00 is then Thu 9 Oct 10:00.
    CalendarDay.objects.create(date=at(2025, 9, 30).date(), is_working_day=False)

    assert "supervision_order" not in sweep_at(at(2025, 10, 9, 10) - SECOND).escalations
    assert "supervision_order" in sweep_at(at(2025, 10, 9, 10)).escalations
    assert [action for action, _due in steps_taken(ticket)] == ["notify_lead", "supervision_order"]


# ---------------------------------------------------------------------------------------------------------
# the clock paused while suspended


def test_suspended_the_clock_stops_and_resume_shifts_the_deadline_by_working_time_only(org, ladder):
    # Dispatched and accepted Mon 3 Nov 2025 10:00: reply due Mon 10 Nov 10:00, warning (80 % of the 5 working
    # days) Fri 7 Nov 10:00.
    ticket = accepted(org, at(2025, 11, 3, 10))
    assert (ticket.reply_due_at, ticket.reply_warning_at) == (at(2025, 11, 10, 10), at(2025, 11, 7, 10))
    # The return window (Wed 5 Nov 10:00) closed before the suspension and is marked; resume does not move it.
    report = sweep_at(at(2025, 11, 7, 12))
    assert (report.overdue, report.warnings) == (1, 1)
    with clock.frozen(at(2025, 11, 7, 17)):
        services.ticket_suspend(ticket_id=ticket.id, actor=org.handler, reason="等待来电人提供购房合同。")

    suspended_at = ticket.events.get(kind="suspend").id
    # Suspended past the deadline and a working day beyond it: no mark, no step.
    for moment in (at(2025, 11, 9, 12), at(2025, 11, 10, 10), at(2025, 11, 11, 12)):
        assert not sweep_at(moment).has_work
    assert not ticket.events.filter(id__gt=suspended_at).exists()

    with clock.frozen(at(2025, 11, 12, 9)):
        resumed = services.ticket_resume(ticket_id=ticket.id, actor=org.handler, note="材料已补齐。")
    # Paused Fri 17:00 to Wed 09:00: the weekend does not count, so 7 h + Mon + Tue + 9 h = 2 days 16 hours of
    # working time. Left at the pause: 17 h to the deadline (the weekend does not count). The warning had
    # passed before the pause and stays where it was.
    assert resumed.events.filter(kind="resume").get().data["paused_seconds"] == (2 * 24 + 16) * 3600
    assert (resumed.reply_due_at, resumed.reply_warning_at) == (at(2025, 11, 13, 2), at(2025, 11, 7, 10))

    # The new deadline is near at once: one warning for it.
    assert sweep_at(at(2025, 11, 12, 9)).warnings == 1
    assert not sweep_at(at(2025, 11, 13, 2) - SECOND).has_work
    report = sweep_at(at(2025, 11, 13, 2))
    assert (report.overdue, dict(report.escalations)) == (1, {"notify_lead": 1})
    assert steps_taken(ticket) == [("notify_lead", at(2025, 11, 13, 2))]


def test_resuming_a_ticket_paused_after_its_deadline_does_not_start_the_ladder_over(org, ladder):
    ticket = accepted(org, at(2025, 11, 3, 10))
    sweep_at(at(2025, 11, 10, 10))
    assert [a for a, _d in steps_taken(ticket)] == ["notify_lead"]
    with clock.frozen(at(2025, 11, 10, 11)):
        services.ticket_suspend(ticket_id=ticket.id, actor=org.handler, reason="等待现场勘查时间。")
    with clock.frozen(at(2025, 11, 10, 15)):
        resumed = services.ticket_resume(ticket_id=ticket.id, actor=org.handler)

    assert resumed.reply_due_at == at(2025, 11, 10, 10)
    sweep_at(at(2025, 11, 10, 15))
    assert [a for a, _d in steps_taken(ticket)] == ["notify_lead"]


def test_a_step_due_at_suspension_waits_for_the_resume(org, ladder):
    ticket = accepted(org, at(2025, 11, 3, 10))
    sweep_at(at(2025, 11, 10, 10))
    assert [a for a, _d in steps_taken(ticket)] == ["notify_lead"]
    with clock.frozen(at(2025, 11, 10, 11)):
        services.ticket_suspend(ticket_id=ticket.id, actor=org.handler, reason="等待现场勘查时间。")

    # Suspended across the supervision step's time (Tue 11 Nov 10:00): not taken while the clock is stopped.
    assert not sweep_at(at(2025, 11, 14, 10)).escalations
    assert [a for a, _d in steps_taken(ticket)] == ["notify_lead"]


# ---------------------------------------------------------------------------------------------------------
# a new deadline value restarts the ladder


def test_an_extension_moves_the_reply_deadline_and_the_ladder_counts_from_the_new_one(org, ladder):
    ticket = accepted(org, at(2025, 9, 23, 10))
    old_due = at(2025, 9, 29, 10)
    with clock.frozen(at(2025, 9, 26, 10)):
        services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=3, reason="需现场勘查")
    sweep_at(old_due)
    assert steps_taken(ticket) == [("notify_lead", old_due)]

    with clock.frozen(at(2025, 9, 29, 11)):
        ticket = services.ticket_approve_extension(ticket_id=ticket.id, actor=org.supervisor, note="同意")
    # 3 working days after Mon 29 Sep 10:00, over the holiday (1-8 Oct): Fri 10 Oct 10:00.
    new_due = at(2025, 10, 10, 10)
    assert ticket.reply_due_at == new_due

    # The old deadline's next step (Tue 30 Sep) does not come: the deadline it counted from is gone.
    assert not sweep_at(at(2025, 9, 30, 10)).escalations
    assert not sweep_at(new_due - SECOND).escalations
    assert dict(sweep_at(new_due).escalations) == {"notify_lead": 1}
    # +1 working day from Fri 10 Oct 10:00: Sat 11 Oct 10:00, a make-up working day.
    assert not sweep_at(at(2025, 10, 11, 10) - SECOND).escalations
    assert dict(sweep_at(at(2025, 10, 11, 10)).escalations) == {"supervision_order": 1}
    assert steps_taken(ticket) == [
        ("notify_lead", old_due),
        ("notify_lead", new_due),
        ("supervision_order", new_due),
    ]
    assert SupervisionOrder.objects.get().ticket == ticket
    # Both deadlines got their own overdue mark.
    reply_marks = ticket.events.filter(kind="deadline", data__deadline="reply", data__mark="overdue")
    assert sorted(e.data["due_at"] for e in reply_marks) == ["2025-09-29T10:00:00+08:00", "2025-10-10T10:00:00+08:00"]


def test_a_reassigned_ticket_starts_a_fresh_ladder_with_the_new_department(org, ladder):
    ticket = accepted(org, at(2025, 11, 3, 10))
    sweep_at(at(2025, 11, 10, 10))
    with clock.frozen(at(2025, 11, 10, 11)):
        services.ticket_reassign(
            ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id, reason="职责调整"
        )

    # Fresh deadlines from the reassignment: accept by Tue 11 Nov 11:00, reply by Mon 17 Nov 11:00.
    assert dict(sweep_at(at(2025, 11, 11, 11)).escalations) == {"urge": 1}
    assert not sweep_at(at(2025, 11, 17, 11) - SECOND).escalations
    assert [(a, d) for a, d in steps_taken(ticket)][1:] == [("urge", at(2025, 11, 11, 11))]
    last = ticket.events.filter(kind="escalation").order_by("-id").first()
    assert last is not None and last.data["department"] == org.other_bureau.id


# ---------------------------------------------------------------------------------------------------------
# exactly once rests on the constraint


def test_a_step_another_sweeper_took_is_not_taken_again(org, ladder):
    ticket = accepted(org, at(2025, 9, 23, 10))
    step = ladder["supervision_order"]
    now = at(2025, 9, 30, 10)
    calendar = working_calendar()

    with clock.frozen(now):
        first = sla.take_step(ticket_id=ticket.id, step=step, due_at=ticket.reply_due_at, now=now, calendar=calendar)
        # The second sweeper listed the ticket before the first committed: its insert meets the constraint.
        second = sla.take_step(ticket_id=ticket.id, step=step, due_at=ticket.reply_due_at, now=now, calendar=calendar)

    assert first is not None and first.supervision_order is not None
    assert second is None
    assert SupervisionOrder.objects.count() == 1
    assert ticket.events.filter(kind="escalation").count() == 1


def test_a_step_for_a_deadline_that_moved_meanwhile_is_not_taken(org, ladder):
    ticket = accepted(org, at(2025, 9, 23, 10))
    now = at(2025, 9, 30, 10)
    stale_due = ticket.reply_due_at - timedelta(hours=1)

    with clock.frozen(now):
        taken = sla.take_step(
            ticket_id=ticket.id, step=ladder["notify_lead"], due_at=stale_due, now=now, calendar=working_calendar()
        )

    assert taken is None
    assert not Escalation.objects.exists()


def test_a_failure_on_one_ticket_is_counted_and_the_others_go_on(org, ladder, monkeypatch, caplog):
    first = accepted(org, at(2025, 9, 23, 10))
    second = accepted(org, at(2025, 9, 23, 10), caller_phone="13900001111")
    real = sla.take_step

    def flaky(**kwargs: Any) -> Escalation | None:
        if kwargs["ticket_id"] == first.id:
            raise RuntimeError("boom")
        return real(**kwargs)

    monkeypatch.setattr(sla, "take_step", flaky)
    report = sweep_at(at(2025, 9, 29, 10))

    assert report.failed == 1
    assert dict(report.escalations) == {"notify_lead": 1}
    assert f"ticket {first.id} failed" in caplog.text
    assert steps_taken(second) == [("notify_lead", at(2025, 9, 29, 10))]
    assert "13900001111" not in caplog.text and "13812345678" not in caplog.text
    monkeypatch.undo()
    # The next sweep takes what failed.
    assert dict(sweep_at(at(2025, 9, 29, 10)).escalations) == {"notify_lead": 1}


def test_a_stop_request_ends_the_sweep_between_tickets(org, ladder):
    for _ in range(3):
        accepted(org, at(2025, 9, 23, 10))
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with clock.frozen(at(2025, 9, 29, 10)):
        report = sla.sweep(should_stop=should_stop)

    assert report.interrupted
    assert Escalation.objects.count() + TicketEvent.objects.filter(kind="deadline").count() == 2
    # A later sweep finishes the job.
    sweep_at(at(2025, 9, 29, 10))
    assert Escalation.objects.count() == 3


# ---------------------------------------------------------------------------------------------------------
# two sweepers at once (PostgreSQL: SQLite serializes writers and has no row locks)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_two_sweepers_at_once_take_each_step_exactly_once(org, ladder):
    tickets = [accepted(org, at(2025, 9, 23, 10)) for _ in range(12)]
    moments = [at(2025, 9, 29, 10), at(2025, 9, 30, 10), at(2025, 10, 10, 10), at(2025, 10, 13, 10)]
    totals: dict[str, int] = {}
    for moment in moments:
        reports = race([lambda moment=moment: sweep_at(moment) for _ in range(2)])
        assert all(isinstance(r, sla.SweepReport) for r in reports), reports
        assert all(r.failed == 0 for r in reports), [r.summary() for r in reports]
        for report in reports:
            for action, count in report.escalations.items():
                totals[action] = totals.get(action, 0) + count
            totals["overdue"] = totals.get("overdue", 0) + report.overdue
            totals["orders_overdue"] = totals.get("orders_overdue", 0) + report.orders_overdue

    n = len(tickets)
    # What the two sweepers report together is what happened, once per ticket.
    assert totals == {
        "notify_lead": n,
        "supervision_order": n,
        "formal_notice": n,
        # The return window and the reply deadline.
        "overdue": 2 * n,
        "orders_overdue": n,
    }
    assert Escalation.objects.count() == 3 * n
    assert SupervisionOrder.objects.filter(formal_notice=False, level=1).count() == n
    assert SupervisionOrder.objects.filter(formal_notice=True, level=2).count() == n
    assert SupervisionOrder.objects.exclude(overdue_marked_at=None).count() == n
    assert TicketEvent.objects.filter(kind="escalation").count() == 3 * n
    assert TicketEvent.objects.filter(kind="deadline", data__mark="overdue").count() == 2 * n
    assert TicketEvent.objects.filter(kind="supervision_overdue").count() == n
    for ticket in tickets:
        assert [a for a, _d in steps_taken(ticket)] == ["notify_lead", "supervision_order", "formal_notice"]


# ---------------------------------------------------------------------------------------------------------
# the command


def test_the_command_once_prints_its_summary(org, ladder):
    accepted(org, at(2025, 9, 23, 10))
    out = StringIO()

    with clock.frozen(at(2025, 10, 13, 10)):
        call_command("run_sla_monitor", "--once", stdout=out)
        call_command("run_sla_monitor", "--once", stdout=out)

    first, second = out.getvalue().splitlines()
    assert first == (
        "预警 0 条，超期 2 条，升级 3 次（通知承办单位负责人 1，生成督办单 1，通报督办 1），督办单超期 0 张，失败 0 条"
    )
    assert second == "预警 0 条，超期 0 条，升级 0 次（无），督办单超期 0 张，失败 0 条"


def test_the_command_refuses_a_bad_interval(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("run_sla_monitor", "--interval", "0")


@pytest.mark.django_db(transaction=True)
def test_the_command_loops_until_sigterm_and_stops_cleanly(org, ladder):
    accepted(org, at(2025, 9, 23, 10))
    before = signal.getsignal(signal.SIGTERM)
    out, err = StringIO(), StringIO()

    def terminate_once_running() -> None:
        # Only once the command's own handler is in place, or SIGTERM would end the test run.
        deadline = time.monotonic() + 20
        while signal.getsignal(signal.SIGTERM) is before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_running, daemon=True)
    killer.start()
    started = time.monotonic()
    with clock.frozen(at(2025, 9, 29, 10)):
        call_command("run_sla_monitor", "--interval", "0.1", stdout=out, stderr=err)
    killer.join(timeout=5)

    assert time.monotonic() - started < 15
    lines = out.getvalue().splitlines()
    assert lines[0] == "时限监控已启动，每 0.1 秒一轮。"
    # Several rounds ran; only the first had work, so one summary line.
    assert lines[1:] == [
        "预警 0 条，超期 2 条，升级 1 次（通知承办单位负责人 1），督办单超期 0 张，失败 0 条",
        "时限监控已停止。",
    ]
    assert signal.getsignal(signal.SIGTERM) is before
    assert Escalation.objects.count() == 1
