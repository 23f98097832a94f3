"""The deadline sweep behind `manage.py run_sla_monitor`: warning and overdue marks, the escalation ladder,
and overdue supervision orders.

Several sweepers may run at once and any of them may be killed at any moment; all state is in the
database, and exactly-once rests on it, not on timing:

- a deadline mark is written by `services.ticket_mark_deadline`, which locks the ticket and looks for the
  same mark (deadline, mark, due time) before writing;
- a ladder step is taken by inserting its `Escalation` row first: the unique (ticket, step, due_at)
  constraint lets one insert through per deadline value, and the loser's savepoint rolls back before it
  has done anything;
- an overdue supervision order is marked by a conditional UPDATE (`overdue_marked_at IS NULL`), which one
  writer wins.

Locks are taken in one order everywhere, ticket first, then its supervision orders, so a sweeper and a
person working on the same ticket cannot deadlock. Nothing here logs caller data: ticket ids and numbers only.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet

from hotline import clock

from . import services
from .calendar import TZ, WorkingCalendar
from .models import (
    EVENT_DEADLINE,
    EVENT_ESCALATION,
    EVENT_SUPERVISION_OVERDUE,
    Escalation,
    EscalationAction,
    EscalationStep,
    SupervisionLevel,
    SupervisionOrder,
    SupervisionStatus,
    Ticket,
    TicketEvent,
)
from .selectors import working_calendar
from .supervision import count_urge_on_open_orders
from .workflow import TERMINAL

logger = logging.getLogger(__name__)

# Candidate tickets are read in pages of this many ids, so a backlog never loads into memory at once.
BATCH = 500

DEADLINE_LABELS = {"accept": "签收时限", "return": "退单时限", "reply": "答复时限"}


@dataclass
class SweepReport:
    warnings: int = 0
    overdue: int = 0
    # Ladder steps taken, by action.
    escalations: Counter[str] = field(default_factory=Counter)
    orders_overdue: int = 0
    # Tickets or orders whose handling raised; they are tried again next sweep.
    failed: int = 0
    # The sweep stopped early because the command was asked to stop.
    interrupted: bool = False

    @property
    def has_work(self) -> bool:
        return bool(self.warnings or self.overdue or self.escalations or self.orders_overdue or self.failed)

    def summary(self) -> str:
        steps = "，".join(
            f"{action.label} {self.escalations[action.value]}"
            for action in EscalationAction
            if self.escalations[action.value]
        )
        line = (
            f"预警 {self.warnings} 条，超期 {self.overdue} 条，升级 {sum(self.escalations.values())} 次"
            f"（{steps or '无'}），督办单超期 {self.orders_overdue} 张，失败 {self.failed} 条"
        )
        return line + ("（已中断）" if self.interrupted else "")


class _Stop(Exception):
    pass


def _iso(moment: datetime) -> str:
    # The same spelling `ticket_mark_deadline` stores, so stored marks can be matched against due times.
    return moment.astimezone(TZ).isoformat()


def _pages(query: QuerySet[Ticket], due_field: str) -> Iterator[list[tuple[int, datetime]]]:
    """(id, due time) of the query's tickets in id order, a page at a time (keyset, so rows that stop
    matching between pages are not skipped over)."""
    last = 0
    while True:
        page = list(query.filter(id__gt=last).order_by("id").values_list("id", due_field)[:BATCH])
        if not page:
            return
        yield page
        last = page[-1][0]


def sweep(*, should_stop: Callable[[], bool] = lambda: False) -> SweepReport:
    """One round: deadline marks, due ladder steps, overdue supervision orders. Each ticket's work is its
    own transaction; a failure is logged, counted and retried next round."""
    now = clock.now()
    calendar = working_calendar()
    report = SweepReport()

    def check_stop() -> None:
        if should_stop():
            raise _Stop

    try:
        _mark_deadlines(now=now, report=report, check_stop=check_stop)
        _take_due_steps(now=now, calendar=calendar, report=report, check_stop=check_stop)
        _mark_overdue_orders(now=now, report=report, check_stop=check_stop)
    except _Stop:
        report.interrupted = True
    return report


# ---------------------------------------------------------------------------------------------------------
# warning and overdue marks


def _marked(ticket_ids: list[int], *, deadline: str, mark: str) -> set[tuple[int, str]]:
    rows = TicketEvent.objects.filter(
        ticket_id__in=ticket_ids, kind=EVENT_DEADLINE, data__deadline=deadline, data__mark=mark
    ).values_list("ticket_id", "data")
    return {(ticket_id, data.get("due_at")) for ticket_id, data in rows}


def _mark_deadlines(*, now: datetime, report: SweepReport, check_stop: Callable[[], None]) -> None:
    for deadline, (states, warning_field, due_field) in services.DEADLINES.items():
        for mark, threshold_field in (("warning", warning_field), ("overdue", due_field)):
            if threshold_field is None:
                continue
            query = Ticket.objects.filter(status__in=states, **{f"{threshold_field}__lte": now})
            if mark == "warning":
                # Once the deadline has passed, the overdue mark says it; a late warning would be noise.
                query = query.filter(**{f"{due_field}__gt": now})
            for page in _pages(query, due_field):
                done = _marked([ticket_id for ticket_id, _due in page], deadline=deadline, mark=mark)
                for ticket_id, due in page:
                    if (ticket_id, _iso(due)) in done:
                        continue
                    check_stop()
                    try:
                        event = services.ticket_mark_deadline(ticket_id=ticket_id, deadline=deadline, mark=mark)
                    except Exception:
                        logger.exception("sla: marking %s %s of ticket %s failed", deadline, mark, ticket_id)
                        report.failed += 1
                        continue
                    if event is not None:
                        if mark == "warning":
                            report.warnings += 1
                        else:
                            report.overdue += 1


# ---------------------------------------------------------------------------------------------------------
# the escalation ladder


def step_due_at(step: EscalationStep, *, deadline_due_at: datetime, calendar: WorkingCalendar) -> datetime:
    """When `step` is due for a deadline that falls at `deadline_due_at`."""
    return calendar.add(deadline_due_at, step.after_working_days, "working_days")


def _take_due_steps(
    *, now: datetime, calendar: WorkingCalendar, report: SweepReport, check_stop: Callable[[], None]
) -> None:
    steps = EscalationStep.objects.filter(is_active=True).order_by("deadline", "after_working_days", "id")
    for step in steps:
        if step.deadline not in services.DEADLINES:
            logger.warning("sla: escalation step %s names an unknown deadline %r; skipped", step.id, step.deadline)
            continue
        states, _warning_field, due_field = services.DEADLINES[step.deadline]
        # A working day is a whole day of elapsed time, so a step N working days after a deadline is at least
        # N calendar days after it: deadlines later than that cannot have a due step yet.
        latest = now - timedelta(days=step.after_working_days)
        taken = Escalation.objects.filter(ticket=OuterRef("pk"), step=step, due_at=OuterRef(due_field))
        query = Ticket.objects.filter(status__in=states, **{f"{due_field}__lte": latest}).exclude(Exists(taken))
        for page in _pages(query, due_field):
            for ticket_id, due in page:
                if now < step_due_at(step, deadline_due_at=due, calendar=calendar):
                    continue
                check_stop()
                try:
                    escalation = take_step(ticket_id=ticket_id, step=step, due_at=due, now=now, calendar=calendar)
                except Exception:
                    logger.exception("sla: escalation step %s for ticket %s failed", step.id, ticket_id)
                    report.failed += 1
                    continue
                if escalation is not None:
                    report.escalations[step.action] += 1


@transaction.atomic
def take_step(
    *, ticket_id: int, step: EscalationStep, due_at: datetime, now: datetime, calendar: WorkingCalendar
) -> Escalation | None:
    """Take one ladder step for the deadline of `ticket_id` that falls at `due_at`; None when it is not (or
    no longer) due, or another sweeper has it."""
    # A ticket another transaction holds (a person acting on it, another sweeper) is left for the next round.
    ticket = Ticket.objects.select_for_update(skip_locked=True).filter(pk=ticket_id).first()
    if ticket is None:
        return None
    states, _warning_field, due_field = services.DEADLINES[step.deadline]
    # Rechecked under the lock: the ticket may have been accepted, suspended or extended since it was listed.
    if ticket.status not in states or getattr(ticket, due_field) != due_at:
        return None
    if now < step_due_at(step, deadline_due_at=due_at, calendar=calendar):
        return None
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(ticket=ticket, step=step, due_at=due_at, taken_at=now)
    except IntegrityError:
        # Another sweeper took this step for this deadline.
        return None

    data: dict[str, Any] = {
        "step": step.id,
        "action": step.action,
        "deadline": step.deadline,
        "due_at": _iso(due_at),
        "after_working_days": step.after_working_days,
        "department": ticket.lead_department_id,
        "order": None,
    }
    if step.action == EscalationAction.URGE:
        data["urged_orders"] = count_urge_on_open_orders(ticket=ticket, at=now)
    elif step.action == EscalationAction.NOTIFY_LEAD:
        # Addressed to the lead department's leads; the event reaches the department's screens.
        data["notify"] = "department_lead"
    elif step.action in (EscalationAction.SUPERVISION_ORDER, EscalationAction.FORMAL_NOTICE):
        order = _issue_order(ticket=ticket, step=step, now=now, calendar=calendar)
        escalation.supervision_order = order
        escalation.save(update_fields=["supervision_order"])
        data.update(
            order=order.id, level=order.level, formal_notice=order.formal_notice, order_due_at=_iso(order.due_at)
        )
        if order.formal_notice:
            data["notify"] = "supervisor_board"
    services._record(
        ticket=ticket,
        kind=EVENT_ESCALATION,
        actor=None,
        from_status=ticket.status,
        to_status=ticket.status,
        data=data,
    )
    logger.info("sla: ticket %s escalation step %s (%s) taken", ticket.number, step.id, step.action)
    return escalation


def _issue_order(*, ticket: Ticket, step: EscalationStep, now: datetime, calendar: WorkingCalendar) -> SupervisionOrder:
    if ticket.lead_department_id is None:
        # The states a deadline runs in all have a lead department; a ticket without one is corrupt.
        raise ValueError(f"ticket {ticket.id} has a running deadline but no lead department")
    formal = step.action == EscalationAction.FORMAL_NOTICE
    label = DEADLINE_LABELS.get(step.deadline, step.deadline)
    late = "已到期" if step.after_working_days == 0 else f"已超期 {step.after_working_days} 个工作日"
    return SupervisionOrder.objects.create(
        ticket=ticket,
        department_id=ticket.lead_department_id,
        level=SupervisionLevel.GOVERNMENT_OFFICE if formal else SupervisionLevel.CENTRE,
        formal_notice=formal,
        reason=f"{label}{late}，系统自动{'通报督办' if formal else '督办'}。",
        issued_by=None,
        issued_at=now,
        due_at=calendar.add(now, settings.SLA_SUPERVISION_DUE_WORKING_DAYS, "working_days"),
    )


# ---------------------------------------------------------------------------------------------------------
# supervision orders past their own deadline


def _mark_overdue_orders(*, now: datetime, report: SweepReport, check_stop: Callable[[], None]) -> None:
    # An order on a finished ticket no longer needs an answer, so it does not go overdue.
    query = (
        SupervisionOrder.objects.filter(status=SupervisionStatus.OPEN, due_at__lte=now, overdue_marked_at=None)
        .exclude(ticket__status__in=TERMINAL)
        .order_by("id")
    )
    last = 0
    while True:
        page = list(query.filter(id__gt=last).values_list("id", "ticket_id")[:BATCH])
        if not page:
            return
        last = page[-1][0]
        for order_id, ticket_id in page:
            check_stop()
            try:
                marked = mark_order_overdue(order_id=order_id, ticket_id=ticket_id, now=now)
            except Exception:
                logger.exception("sla: marking supervision order %s overdue failed", order_id)
                report.failed += 1
                continue
            if marked:
                report.orders_overdue += 1


@transaction.atomic
def mark_order_overdue(*, order_id: int, ticket_id: int, now: datetime) -> bool:
    """Mark an open supervision order past its due time, once per due time."""
    ticket = Ticket.objects.select_for_update(skip_locked=True).filter(pk=ticket_id).first()
    if ticket is None:
        return False
    # The condition is the guard: of two sweepers, one UPDATE matches the row and the other finds it marked.
    won = SupervisionOrder.objects.filter(
        pk=order_id, status=SupervisionStatus.OPEN, due_at__lte=now, overdue_marked_at=None
    ).update(overdue_marked_at=now)
    if not won:
        return False
    order = SupervisionOrder.objects.get(pk=order_id)
    services._record(
        ticket=ticket,
        kind=EVENT_SUPERVISION_OVERDUE,
        actor=None,
        from_status=ticket.status,
        to_status=ticket.status,
        data={
            "order": order.id,
            "level": order.level,
            "formal_notice": order.formal_notice,
            "department": order.department_id,
            "due_at": _iso(order.due_at),
        },
        extra_departments=[order.department_id],
    )
    logger.info("sla: ticket %s supervision order %s overdue", ticket.number, order.id)
    return True
