"""Writes on callback work (回访): asking the citizen whether the reply satisfied them.

A task is opened when a ticket enters `callback` (`callback_open`, called by `ticket_approve_reply` in the
same transaction), for an agent's call or the automated voice caller (`CALLBACK_DEFAULT_METHOD`), due in
`CALLBACK_DUE_WORKING_DAYS` working days. Three paths answer it: an agent's call (claim, call, record), the
automated voice call (telephony) and the citizen's own rating on the public page. Whichever answers first
wins: it closes the ticket (satisfied, fairly satisfied) or reopens it to the same lead department with
fresh deadlines (dissatisfied), and every other open task of the ticket is cancelled. After
`CALLBACK_MAX_ATTEMPTS` calls nobody answered, the ticket closes as unreachable.

Lock order, everywhere: the ticket, then its task; so a rating and a call answering at once queue on the
ticket instead of deadlocking. Every step is on the ticket's trail as a `callback` event with machine data.
The system (the public page, the voice caller) acts as actor None, as the deadline sweeper does.
"""

import hmac
import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from hotline import clock
from hotline.errors import ApplicationError, Conflict, InvalidTransition, NotFound, NotPermitted

from .callback_selectors import may_do_callbacks, may_oversee_callbacks
from .models import (
    CALLBACK_OPEN,
    EVENT_CALLBACK,
    CallbackMethod,
    CallbackStatus,
    CallbackTask,
    Satisfaction,
    Ticket,
    User,
)
from .selectors import working_calendar
from .services import _lock_visible, _record, _require_text, ticket_close, ticket_reopen
from .workflow import Status

logger = logging.getLogger(__name__)

COMMENT_MAX_LENGTH = 1000
# What the trail says of a task that another path made unnecessary.
CANCELLED_BY_ANSWER = "answered_elsewhere"
CANCELLED_BY_TRANSITION = "ticket_left_callback"


# ---------------------------------------------------------------------------------------------------------
# shared steps


def _require_caller(actor: User) -> None:
    if not may_do_callbacks(actor):
        raise NotPermitted("只有热线中心人员可以回访。")


def _lock_ticket(*, ticket_id: int, actor: User | None) -> Ticket:
    if actor is not None:
        return _lock_visible(ticket_id=ticket_id, actor=actor)
    # The system acts on its own authority (the caller checked the query code, or placed the call).
    try:
        return Ticket.objects.select_for_update().get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("工单不存在。") from None


def _lock_task(*, task_id: int, actor: User | None) -> tuple[Ticket, CallbackTask]:
    ticket_id = CallbackTask.objects.filter(pk=task_id).values_list("ticket_id", flat=True).first()
    if ticket_id is None:
        raise NotFound("回访任务不存在，或您无权查看。")
    ticket = _lock_ticket(ticket_id=ticket_id, actor=actor)
    task = CallbackTask.objects.select_for_update().get(pk=task_id)
    return ticket, task


def _event(ticket: Ticket, actor: User | None, action: str, task: CallbackTask, **data: Any) -> None:
    _record(
        ticket=ticket,
        kind=EVENT_CALLBACK,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={"action": action, "task": task.id, "method": task.method, "attempts": task.attempts, **data},
    )


def _require_open(ticket: Ticket, task: CallbackTask) -> None:
    """A task that is no longer open, or whose ticket no longer waits for a callback, cannot be worked on."""
    if task.status not in CALLBACK_OPEN or ticket.status != Status.CALLBACK:
        raise Conflict(
            "该回访已结束（已由其他途径回访、已办结或已重办）。",
            code="callback_finished",
            extra={"status": task.status, "ticket_status": ticket.status},
        )


def _require_holder(task: CallbackTask, actor: User) -> None:
    if task.status != CallbackStatus.CALLING or task.assigned_to_id != actor.id:
        raise Conflict("请先领取该回访任务。", code="callback_not_claimed", extra={"status": task.status})


def _cancel_others(ticket: Ticket, *, keep: CallbackTask | None, actor: User | None) -> list[int]:
    """Cancel the ticket's open tasks other than `keep`; returns their ids."""
    others = CallbackTask.objects.select_for_update().filter(ticket=ticket, status__in=CALLBACK_OPEN)
    if keep is not None:
        others = others.exclude(pk=keep.pk)
    cancelled = []
    now = clock.now()
    for task in others:
        task.status = CallbackStatus.CANCELLED
        task.finished_at = now
        task.finished_by = actor
        task.save(update_fields=["status", "finished_at", "finished_by"])
        cancelled.append(task.id)
    return cancelled


def _clean_comment(comment: str) -> str:
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ApplicationError(
            f"回访意见不能超过 {COMMENT_MAX_LENGTH} 个字。", code="too_long", extra={"field": "comment"}
        )
    return comment


def _check_satisfaction(satisfaction: str, comment: str) -> str:
    if satisfaction not in Satisfaction.values:
        raise ApplicationError("满意度无效。", code="invalid_choice", extra={"field": "satisfaction"})
    comment = _clean_comment(comment)
    if satisfaction == Satisfaction.DISSATISFIED:
        # The department is told why when the ticket comes back to it.
        comment = _require_text(comment, field_name="comment", message="请记录群众不满意的原因。")
    return comment


def _conclude(
    *, ticket: Ticket, task: CallbackTask, actor: User | None, satisfaction: str, comment: str, **data: Any
) -> CallbackTask:
    """The citizen answered through `task`: finish it, cancel the others, close or reopen the ticket."""
    now = clock.now()
    task.status = CallbackStatus.DONE
    task.satisfaction = satisfaction
    task.comment = comment
    task.finished_at = now
    task.finished_by = actor
    if task.started_at is None:
        task.started_at = now
    task.save(
        update_fields=["status", "satisfaction", "comment", "finished_at", "finished_by", "started_at", "attempts"]
    )
    cancelled = _cancel_others(ticket, keep=task, actor=actor)
    outcome = "reopened" if satisfaction == Satisfaction.DISSATISFIED else "closed"
    _event(ticket, actor, "answered", task, satisfaction=satisfaction, outcome=outcome, cancelled=cancelled, **data)
    if satisfaction == Satisfaction.DISSATISFIED:
        ticket_reopen(ticket_id=ticket.id, actor=actor, comment=comment)
    else:
        ticket_close(ticket_id=ticket.id, actor=actor, satisfaction=satisfaction, comment=comment)
    return task


# ---------------------------------------------------------------------------------------------------------
# opening and settling, called by the ticket transitions


def callback_open(*, ticket: Ticket) -> CallbackTask:
    """Open the callback task of a ticket entering `callback` (inside `ticket_approve_reply`'s transaction,
    with the ticket locked)."""
    method = settings.CALLBACK_DEFAULT_METHOD
    if method not in (CallbackMethod.AGENT, CallbackMethod.VOICE):
        raise ApplicationError(
            "回访方式配置有误：CALLBACK_DEFAULT_METHOD 只能是 agent 或 voice。", code="callback_misconfigured"
        )
    if method == CallbackMethod.VOICE and not ticket.caller_phone.strip():
        # Nothing to dial: an agent finds another way (the citizen may also rate online).
        method = CallbackMethod.AGENT
    # A task left open by an earlier round (the ticket closed or reopened outside the callback services
    # before this guard existed) must not block the new one.
    _cancel_others(ticket, keep=None, actor=None)
    now = clock.now()
    return CallbackTask.objects.create(
        ticket=ticket,
        method=method,
        created_at=now,
        due_at=working_calendar().add(now, settings.CALLBACK_DUE_WORKING_DAYS, "working_days"),
    )


def callback_settle(*, ticket: Ticket, actor: User | None) -> list[int]:
    """The ticket left `callback` by a transition (closed or reopened directly): its open tasks are moot.
    Called by `ticket_close` and `ticket_reopen`; the transition's own event is the trail."""
    return _cancel_others(ticket, keep=None, actor=actor)


# ---------------------------------------------------------------------------------------------------------
# an agent's call


@transaction.atomic
def callback_claim(*, task_id: int, actor: User) -> CallbackTask:
    """An agent takes a pending task to call the citizen; a second agent gets a 409."""
    _require_caller(actor)
    ticket, task = _lock_task(task_id=task_id, actor=actor)
    _require_open(ticket, task)
    if task.method != CallbackMethod.AGENT:
        raise Conflict("该回访任务由语音自动回访处理，不能人工领取。", code="not_agent_task")
    if task.status != CallbackStatus.PENDING:
        mine = task.assigned_to_id == actor.id
        raise Conflict(
            "您已领取该回访任务。" if mine else "该回访任务已由其他话务员领取。",
            code="callback_already_claimed",
            extra={"assigned_to": task.assigned_to_id},
        )
    task.status = CallbackStatus.CALLING
    task.assigned_to = actor
    task.started_at = clock.now()
    task.save(update_fields=["status", "assigned_to", "started_at"])
    _event(ticket, actor, "claimed", task)
    return task


@transaction.atomic
def callback_release(*, task_id: int, actor: User) -> CallbackTask:
    """Give a claimed task back to the queue: the holder, or a supervisor for a task someone left behind."""
    _require_caller(actor)
    ticket, task = _lock_task(task_id=task_id, actor=actor)
    _require_open(ticket, task)
    if task.method != CallbackMethod.AGENT or task.status != CallbackStatus.CALLING:
        raise Conflict("该回访任务未被领取。", code="callback_not_claimed", extra={"status": task.status})
    if task.assigned_to_id != actor.id and not may_oversee_callbacks(actor):
        raise NotPermitted("只能退回自己领取的回访任务。")
    holder = task.assigned_to_id
    task.status = CallbackStatus.PENDING
    task.assigned_to = None
    task.save(update_fields=["status", "assigned_to"])
    _event(ticket, actor, "released", task, holder=holder)
    return task


def _lock_calling_task(*, task_id: int, actor: User | None) -> tuple[Ticket, CallbackTask]:
    """The open task being called now: by `actor`, who claimed it, or (None) by the voice caller."""
    if actor is not None:
        _require_caller(actor)
    ticket, task = _lock_task(task_id=task_id, actor=actor)
    _require_open(ticket, task)
    if actor is None:
        if task.method != CallbackMethod.VOICE or task.status != CallbackStatus.CALLING:
            raise Conflict("该回访任务不在语音回访中。", code="callback_not_calling", extra={"status": task.status})
    else:
        _require_holder(task, actor)
    return ticket, task


@transaction.atomic
def callback_record(*, task_id: int, actor: User | None, satisfaction: str, comment: str = "") -> CallbackTask:
    """The citizen answered the call. `actor` is the agent who claimed the task, or None for the automated
    voice call placed for it. Satisfied or fairly satisfied closes the ticket; dissatisfied (with the
    reason) reopens it to the same lead department with fresh deadlines."""
    ticket, task = _lock_calling_task(task_id=task_id, actor=actor)
    comment = _check_satisfaction(satisfaction, comment)
    if task.method == CallbackMethod.AGENT:
        task.attempts += 1
    return _conclude(ticket=ticket, task=task, actor=actor, satisfaction=satisfaction, comment=comment)


@transaction.atomic
def callback_unreachable(*, task_id: int, actor: User | None, reason: str = "no_answer") -> CallbackTask:
    """Nobody answered (or nobody could say how satisfied they were). The task goes back to the queue for
    another call; after `CALLBACK_MAX_ATTEMPTS` calls the ticket closes as unreachable.

    Attempts count calls placed: an agent's when recorded here, the voice caller's when it dials."""
    ticket, task = _lock_calling_task(task_id=task_id, actor=actor)
    if actor is not None:
        task.attempts += 1
    final = task.attempts >= settings.CALLBACK_MAX_ATTEMPTS
    if final:
        task.status = CallbackStatus.UNREACHABLE
        task.finished_at = clock.now()
        task.finished_by = actor
    else:
        task.status = CallbackStatus.PENDING
        task.assigned_to = None
    task.save(update_fields=["status", "attempts", "assigned_to", "finished_at", "finished_by"])
    _event(ticket, actor, "unanswered", task, reason=reason[:32], final=final)
    if final:
        _cancel_others(ticket, keep=task, actor=actor)
        ticket_close(ticket_id=ticket.id, actor=actor, satisfaction=None)
    return task


# ---------------------------------------------------------------------------------------------------------
# the automated voice caller (telephony places the call)


@transaction.atomic
def callback_voice_dial(*, task_id: int) -> CallbackTask:
    """Mark a pending voice task as being called (one more attempt) before the call is placed. Safe with
    several callers running: the second one to lock the task finds it calling and gets a 409."""
    ticket, task = _lock_task(task_id=task_id, actor=None)
    _require_open(ticket, task)
    if task.method != CallbackMethod.VOICE or task.status != CallbackStatus.PENDING:
        raise Conflict("该回访任务不在待语音回访状态。", code="callback_not_pending", extra={"status": task.status})
    task.status = CallbackStatus.CALLING
    task.attempts += 1
    task.started_at = clock.now()
    task.save(update_fields=["status", "attempts", "started_at"])
    _event(ticket, None, "dialled", task)
    return task


@transaction.atomic
def callback_voice_requeue(*, task_id: int, reason: str) -> CallbackTask:
    """The call could not be placed at all (the PBX is unreachable or refused it): the citizen was not
    called, so the attempt does not count. The task waits for the next round."""
    ticket, task = _lock_task(task_id=task_id, actor=None)
    _require_open(ticket, task)
    if task.method != CallbackMethod.VOICE or task.status != CallbackStatus.CALLING:
        raise Conflict("该回访任务不在语音回访中。", code="callback_not_calling", extra={"status": task.status})
    task.status = CallbackStatus.PENDING
    task.attempts = max(task.attempts - 1, 0)
    task.save(update_fields=["status", "attempts"])
    _event(ticket, None, "requeued", task, reason=reason[:32])
    return task


# ---------------------------------------------------------------------------------------------------------
# the citizen's own rating


@transaction.atomic
def callback_public_rate(*, number: str, query_code: str, satisfaction: str, comment: str = "") -> CallbackTask:
    """The citizen rates the reply on the public page with the ticket number and its query code. A wrong
    number and a wrong code give the same answer; only a ticket waiting for its callback can be rated."""
    ticket_id = Ticket.objects.filter(number=number).exclude(status=Status.DRAFT).values_list("id", flat=True).first()
    ticket = _lock_ticket(ticket_id=ticket_id, actor=None) if ticket_id is not None else None
    if ticket is None or not hmac.compare_digest(ticket.query_code.encode(), (query_code or "").encode()):
        raise NotFound("工单编号或查询码不正确。", code="ticket_not_found")
    if ticket.status != Status.CALLBACK:
        raise InvalidTransition(
            "该工单当前不在待评价阶段，无法评价。", code="not_awaiting_rating", extra={"status": ticket.status}
        )
    comment = _check_satisfaction(satisfaction, comment)
    # Made finished at once: the open task it outruns is cancelled by `_conclude`, and at most one task
    # per ticket may be open.
    task = CallbackTask.objects.create(
        ticket=ticket, method=CallbackMethod.PUBLIC, status=CallbackStatus.DONE, created_at=clock.now()
    )
    return _conclude(ticket=ticket, task=task, actor=None, satisfaction=satisfaction, comment=comment)
