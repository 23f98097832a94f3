"""Reads for callback work (回访): the agents' list, one task, and the automated caller's queue.

Who may do callbacks is decided here and nowhere else; which tickets they see is `ticket_visible_to`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from .models import CALLBACK_OPEN, CallbackMethod, CallbackStatus, CallbackTask, Role, User
from .selectors import ticket_visible_to
from .workflow import Status

# The hotline centre makes callbacks; departments never call the citizen about their own answer.
CALLBACK_ROLES = frozenset({Role.AGENT, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMINISTRATOR})
# Who may hand a task someone else holds back to the queue (an agent who went home with it).
CALLBACK_OVERSEER_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})


def may_do_callbacks(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and (user.is_superuser or user.role in CALLBACK_ROLES))


def may_oversee_callbacks(user: User) -> bool:
    return bool(may_do_callbacks(user) and (user.is_superuser or user.role in CALLBACK_OVERSEER_ROLES))


@dataclass(frozen=True)
class CallbackFilters:
    # None: the open ones (pending and calling).
    status: Iterable[str] | None = None
    method: str | None = None
    mine: bool = False


def callback_tasks_visible_to(*, user: User) -> QuerySet[CallbackTask]:
    if not may_do_callbacks(user):
        return CallbackTask.objects.none()
    return CallbackTask.objects.filter(ticket__in=ticket_visible_to(user=user).values("id"))


def callback_task_list(*, user: User, filters: CallbackFilters | None = None) -> QuerySet[CallbackTask]:
    """Callback tasks for the list, the most urgent first: those due soonest, then the oldest."""
    filters = filters or CallbackFilters()
    tasks = callback_tasks_visible_to(user=user).select_related(
        "ticket", "ticket__lead_department", "assigned_to", "finished_by"
    )
    statuses = list(filters.status) if filters.status else list(CALLBACK_OPEN)
    tasks = tasks.filter(status__in=statuses)
    if filters.method:
        tasks = tasks.filter(method=filters.method)
    if filters.mine:
        tasks = tasks.filter(Q(assigned_to=user) | Q(finished_by=user))
    return tasks.order_by("due_at", "created_at", "id")


def callback_task_get(*, user: User, task_id: int) -> CallbackTask:
    """Raises CallbackTask.DoesNotExist when missing or not visible: both look the same."""
    return callback_task_list(user=user, filters=CallbackFilters(status=CallbackStatus.values)).get(pk=task_id)


def callback_open_task(*, ticket_id: int) -> CallbackTask | None:
    return CallbackTask.objects.filter(ticket_id=ticket_id, status__in=CALLBACK_OPEN).first()


def callback_voice_due(*, now: datetime, retry_after: timedelta, limit: int) -> list[int]:
    """Voice tasks the automated caller should dial now: pending, the ticket still waiting for its callback,
    never dialled or last dialled at least `retry_after` ago; oldest first."""
    due = (
        CallbackTask.objects.filter(
            method=CallbackMethod.VOICE, status=CallbackStatus.PENDING, ticket__status=Status.CALLBACK
        )
        .filter(Q(started_at__isnull=True) | Q(started_at__lte=now - retry_after))
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return list(due)


def callback_voice_stalled(*, now: datetime, timeout: timedelta) -> list[int]:
    """Voice tasks marked calling longer ago than a call can last: the call never reached a door, or the
    process serving it died. The automated caller counts them as unanswered."""
    return list(
        CallbackTask.objects.filter(
            method=CallbackMethod.VOICE, status=CallbackStatus.CALLING, started_at__lt=now - timeout
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


@dataclass(frozen=True)
class VoiceCallbackContext:
    """What the automated caller says and dials for one task."""

    task_id: int
    attempt: int
    status: str
    method: str
    ticket_id: int
    ticket_status: str
    hotline_line: str
    title: str
    reply_text: str
    caller_phone: str


def callback_voice_context(*, task_id: int) -> VoiceCallbackContext | None:
    task = CallbackTask.objects.select_related("ticket").filter(pk=task_id).first()
    if task is None:
        return None
    ticket = task.ticket
    return VoiceCallbackContext(
        task_id=task.id,
        attempt=task.attempts,
        status=task.status,
        method=task.method,
        ticket_id=ticket.id,
        ticket_status=ticket.status,
        hotline_line=ticket.hotline_line,
        title=ticket.title,
        reply_text=ticket.reply_text,
        caller_phone=ticket.caller_phone,
    )
