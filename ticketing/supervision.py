"""Supervision (督办) and urging (催办): writes, in the style of `services`.

A supervision order asks the lead department for an answer by its own deadline; supervisors issue, close
and escalate orders (level 1 hotline centre, 2 government office, 3 government leader), the supervised
department answers them. An urge is a reminder to the handler. Each write locks the ticket first and then
its orders (the order the sweeper in `sla` keeps too) and goes on the ticket's trail.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from hotline import clock
from hotline.errors import ApplicationError, Conflict, InvalidTransition, NotFound, NotPermitted

from .models import (
    DEPARTMENT_ROLES,
    EVENT_SUPERVISION_CLOSED,
    EVENT_SUPERVISION_ESCALATED,
    EVENT_SUPERVISION_ISSUED,
    EVENT_SUPERVISION_RESPONDED,
    EVENT_URGED,
    SupervisionLevel,
    SupervisionOrder,
    SupervisionStatus,
    Ticket,
    TicketEvent,
    User,
)
from .selectors import user_actionable_department_ids, working_calendar
from .services import DEADLINES, DISPATCH_ROLES, SUPERVISION_ROLES, _lock_visible, _record, _require_text
from .supervision_selectors import supervision_order_visible_to
from .workflow import PAUSED, Status

logger = logging.getLogger(__name__)

REASON_MAX_LENGTH = 1000
RESPONSE_MAX_LENGTH = 5000
MAX_DUE_WORKING_DAYS = 30
TOP_LEVEL = max(SupervisionLevel.values)


def supervisable_states() -> frozenset[str]:
    """States in which a department holds the ticket: a deadline runs, or the clock is paused."""
    states: set[str] = set(PAUSED)
    for deadline_states, _warning_field, _due_field in DEADLINES.values():
        states.update(deadline_states)
    return frozenset(states)


def _has_role(actor: User, roles: frozenset[str]) -> bool:
    return bool(actor.is_authenticated and actor.is_active and (actor.is_superuser or actor.role in roles))


def _require_held_by_department(ticket: Ticket, *, action: str) -> None:
    if ticket.lead_department_id is None or ticket.status not in supervisable_states():
        raise InvalidTransition(
            f"工单当前状态为「{Status(ticket.status).label}」，不在承办单位办理中，不能{action}。",
            extra={"status": ticket.status},
        )


def _limited(value: str, *, field_name: str, message: str, limit: int) -> str:
    value = _require_text(value, field_name=field_name, message=message)
    if len(value) > limit:
        raise ApplicationError(f"不能超过 {limit} 个字。", code="too_long", extra={"field": field_name})
    return value


def _order_due(now: datetime, working_days: int) -> datetime:
    return working_calendar().add(now, working_days, "working_days")


def _order_data(order: SupervisionOrder) -> dict[str, object]:
    return {
        "order": order.id,
        "level": order.level,
        "formal_notice": order.formal_notice,
        "department": order.department_id,
        "due_at": order.due_at.isoformat(),
    }


def _lock_order(*, order_id: int, actor: User) -> tuple[Ticket, SupervisionOrder]:
    """The order's ticket and the order, locked in that order; NotFound when the actor may not see the order."""
    ticket_id = SupervisionOrder.objects.filter(pk=order_id).values_list("ticket_id", flat=True).first()
    if ticket_id is None or not supervision_order_visible_to(user=actor).filter(pk=order_id).exists():
        raise NotFound("督办单不存在，或您无权查看。")
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    order = SupervisionOrder.objects.select_for_update().get(pk=order_id)
    return ticket, order


def count_urge_on_open_orders(*, ticket: Ticket, at: datetime) -> list[int]:
    """Count a reminder on the ticket's open orders (the caller holds the ticket's lock); their ids."""
    orders = SupervisionOrder.objects.select_for_update().filter(ticket=ticket, status=SupervisionStatus.OPEN)
    ids = sorted(orders.values_list("id", flat=True))
    if ids:
        SupervisionOrder.objects.filter(id__in=ids).update(urge_count=F("urge_count") + 1, last_urged_at=at)
    return ids


@transaction.atomic
def supervision_order_issue(
    *, ticket_id: int, actor: User, reason: str, due_working_days: int, level: int = SupervisionLevel.CENTRE
) -> SupervisionOrder:
    """A supervisor orders the lead department to answer by a deadline of its own."""
    if not _has_role(actor, SUPERVISION_ROLES):
        raise NotPermitted("只有督办人员可以发起督办。")
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    _require_held_by_department(ticket, action="督办")
    reason = _limited(reason, field_name="reason", message="请填写督办事由。", limit=REASON_MAX_LENGTH)
    if level not in SupervisionLevel.values:
        raise ApplicationError("督办级别无效。", code="invalid_choice", extra={"field": "level"})
    if not 1 <= due_working_days <= MAX_DUE_WORKING_DAYS:
        raise ApplicationError(
            f"反馈时限为 1 至 {MAX_DUE_WORKING_DAYS} 个工作日。",
            code="invalid_due",
            extra={"field": "due_working_days"},
        )
    if SupervisionOrder.objects.filter(ticket=ticket, status=SupervisionStatus.OPEN).exists():
        raise Conflict("该工单已有督办中的督办单，请催办或提级督办。", code="supervision_order_open")
    assert ticket.lead_department_id is not None
    now = clock.now()
    order = SupervisionOrder.objects.create(
        ticket=ticket,
        department_id=ticket.lead_department_id,
        level=level,
        reason=reason,
        issued_by=actor,
        issued_at=now,
        due_at=_order_due(now, due_working_days),
    )
    _record(
        ticket=ticket,
        kind=EVENT_SUPERVISION_ISSUED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={**_order_data(order), "reason": reason},
    )
    logger.info("supervision order %s issued on ticket %s by user %s", order.id, ticket.number, actor.pk)
    return order


@transaction.atomic
def supervision_order_respond(*, order_id: int, actor: User, response: str) -> SupervisionOrder:
    """The supervised department answers the order."""
    ticket, order = _lock_order(order_id=order_id, actor=actor)
    if actor.role not in DEPARTMENT_ROLES or order.department_id not in user_actionable_department_ids(user=actor):
        raise NotPermitted("只有被督办单位可以反馈督办单。")
    if order.status != SupervisionStatus.OPEN:
        raise InvalidTransition(
            f"督办单当前状态为「{SupervisionStatus(order.status).label}」，不能反馈。", extra={"status": order.status}
        )
    response = _limited(response, field_name="response", message="请填写反馈内容。", limit=RESPONSE_MAX_LENGTH)
    order.response = response
    order.responded_by = actor
    order.responded_at = clock.now()
    order.status = SupervisionStatus.ANSWERED
    order.save(update_fields=["response", "responded_by", "responded_at", "status"])
    _record(
        ticket=ticket,
        kind=EVENT_SUPERVISION_RESPONDED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={**_order_data(order), "response": response, "late": order.responded_at > order.due_at},
        extra_departments=[order.department_id],
    )
    return order


@transaction.atomic
def supervision_order_close(*, order_id: int, actor: User, note: str = "") -> SupervisionOrder:
    """A supervisor ends the order (answered well enough, or no longer needed)."""
    if not _has_role(actor, SUPERVISION_ROLES):
        raise NotPermitted("只有督办人员可以结束督办。")
    ticket, order = _lock_order(order_id=order_id, actor=actor)
    if order.status == SupervisionStatus.CLOSED:
        raise InvalidTransition("督办单已结束。", extra={"status": order.status})
    note = note.strip()
    if len(note) > REASON_MAX_LENGTH:
        raise ApplicationError(f"不能超过 {REASON_MAX_LENGTH} 个字。", code="too_long", extra={"field": "note"})
    previous = order.status
    order.status = SupervisionStatus.CLOSED
    order.closed_by = actor
    order.closed_at = clock.now()
    order.save(update_fields=["status", "closed_by", "closed_at"])
    _record(
        ticket=ticket,
        kind=EVENT_SUPERVISION_CLOSED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={**_order_data(order), "note": note, "answered": previous == SupervisionStatus.ANSWERED},
        extra_departments=[order.department_id],
    )
    return order


@transaction.atomic
def supervision_order_escalate(*, order_id: int, actor: User, reason: str) -> SupervisionOrder:
    """Move the order up one level with a fresh deadline; the department answers again."""
    if not _has_role(actor, SUPERVISION_ROLES):
        raise NotPermitted("只有督办人员可以提级督办。")
    ticket, order = _lock_order(order_id=order_id, actor=actor)
    if order.status == SupervisionStatus.CLOSED:
        raise InvalidTransition("督办单已结束，不能提级。", extra={"status": order.status})
    if order.level >= TOP_LEVEL:
        raise Conflict("督办单已是最高级别（政府领导督办），不能再提级。", code="top_level")
    reason = _limited(reason, field_name="reason", message="提级督办必须说明理由。", limit=REASON_MAX_LENGTH)
    previous = {"from_level": order.level, "previous_due_at": order.due_at.isoformat(), "previous_status": order.status}
    now = clock.now()
    order.level += 1
    order.status = SupervisionStatus.OPEN
    order.due_at = _order_due(now, settings.SLA_SUPERVISION_DUE_WORKING_DAYS)
    # The earlier answer stays on the trail; the order now waits for an answer at the new level, and may go
    # overdue again against the new deadline.
    order.response = ""
    order.responded_by = None
    order.responded_at = None
    order.overdue_marked_at = None
    order.save(
        update_fields=["level", "status", "due_at", "response", "responded_by", "responded_at", "overdue_marked_at"]
    )
    _record(
        ticket=ticket,
        kind=EVENT_SUPERVISION_ESCALATED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={**_order_data(order), **previous, "reason": reason},
        extra_departments=[order.department_id],
    )
    logger.info("supervision order %s escalated to level %s by user %s", order.id, order.level, actor.pk)
    return order


@transaction.atomic
def ticket_urge(*, ticket_id: int, actor: User, message: str) -> TicketEvent:
    """A reminder to the handling department (催办), counted on the ticket's open supervision orders."""
    if not _has_role(actor, DISPATCH_ROLES):
        raise NotPermitted("只有派单员和督办人员可以催办。")
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    _require_held_by_department(ticket, action="催办")
    message = _limited(message, field_name="message", message="请填写催办内容。", limit=REASON_MAX_LENGTH)
    orders = count_urge_on_open_orders(ticket=ticket, at=clock.now())
    return _record(
        ticket=ticket,
        kind=EVENT_URGED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={"department": ticket.lead_department_id, "message": message, "orders": orders},
    )
