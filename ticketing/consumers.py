"""Websocket subscriptions for ticket screens. Each one is authorized through the selectors; none writes.

| route | who | receives |
|---|---|---|
| ws/agent/ | centre staff | events of the tickets they took in (and, later, their calls) |
| ws/supervisor/ | supervisors, administrators, dispatchers | every ticket event, deadline marks |
| ws/departments/<id>/ | members of the department (a lead: its subtree), supervisors | its tickets' events |
| ws/tickets/<id>/ | anyone who may see the ticket | that ticket's events |
| ws/public/tickets/<number>/?code=… | the citizen | what the public status page may show |
"""

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Q

from hotline.realtime import groups
from hotline.realtime.consumers import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CatchUp,
    RealtimeConsumer,
    Refused,
)

from . import selectors
from .models import Department, Role, Ticket
from .public_guard import TooManyRequests
from .public_selectors import public_ticket_lookup
from .realtime import department_names_for, public_event, staff_event
from .services import INTAKE_ROLES

BOARD_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR, Role.DISPATCHER})


def _missed(scope: Q, after: int | None) -> selectors.MissedEvents:
    from datetime import timedelta

    return selectors.ticket_events_missed(
        scope=scope,
        after=after,
        grace=timedelta(seconds=settings.HOTLINE_CATCHUP_GRACE_SECONDS),
        limit=settings.HOTLINE_CATCHUP_LIMIT,
    )


@database_sync_to_async
def _staff_catch_up(scope: Q, after: int | None) -> CatchUp:
    missed = _missed(scope, after)
    return CatchUp([staff_event(e, e.ticket) for e in missed.events], missed.last_event_id, missed.truncated)


class StaffConsumer(RealtimeConsumer):
    scope_filter: Q

    @property
    def user(self) -> Any:
        return self.scope["user"]

    async def catch_up(self, after: int | None) -> CatchUp:
        return await _staff_catch_up(self.scope_filter, after)


class AgentConsumer(StaffConsumer):
    async def authorize(self) -> list[str]:
        if not (self.user.is_superuser or self.user.role in INTAKE_ROLES):
            raise Refused(CLOSE_FORBIDDEN, "只有热线中心人员可以订阅坐席消息。")
        self.scope_filter = Q(ticket__created_by_id=self.user.id)
        return [groups.agent(self.user.id)]


class SupervisorConsumer(StaffConsumer):
    async def authorize(self) -> list[str]:
        if not (self.user.is_superuser or self.user.role in BOARD_ROLES):
            raise Refused(CLOSE_FORBIDDEN, "只有督办、派单和管理人员可以订阅全部工单。")
        self.scope_filter = Q()
        return [groups.supervisors()]


@database_sync_to_async
def _department_subscription(user: Any, department_id: int) -> list[int]:
    if not Department.objects.filter(pk=department_id, is_active=True).exists():
        raise Refused(CLOSE_NOT_FOUND, "单位不存在。")
    everything = selectors.sees_everything(user)
    if not everything and department_id not in selectors.user_actionable_department_ids(user=user):
        raise Refused(CLOSE_FORBIDDEN, "不能订阅其他单位的工单。")
    # A lead (and the supervision) sees the department's whole subtree; a handler only the department.
    if everything or user.role == Role.DEPARTMENT_LEAD:
        return sorted(selectors.department_subtree_ids(department_ids=[department_id]))
    return [department_id]


class DepartmentConsumer(StaffConsumer):
    async def authorize(self) -> list[str]:
        department_ids = await _department_subscription(self.user, self.scope["url_route"]["kwargs"]["department_id"])
        self.scope_filter = Q(audience__department_id__in=department_ids)
        return [groups.department(d) for d in department_ids]


@database_sync_to_async
def _ticket_visible(user: Any, ticket_id: int) -> bool:
    return selectors.ticket_visible_to(user=user).filter(pk=ticket_id).exists()


class TicketConsumer(StaffConsumer):
    async def authorize(self) -> list[str]:
        ticket_id = self.scope["url_route"]["kwargs"]["ticket_id"]
        if not await _ticket_visible(self.user, ticket_id):
            raise Refused(CLOSE_NOT_FOUND, "工单不存在，或您无权查看。")
        self.scope_filter = Q(ticket_id=ticket_id)
        return [groups.ticket(ticket_id)]


@database_sync_to_async
def _public_ticket(number: str, code: str, address: str) -> Ticket | None:
    # The status page's rule: limits per address and number, and a wrong code counts towards the number's
    # lockout; a limited or locked number is refused (as not found), so the socket is no faster way to guess.
    try:
        return public_ticket_lookup(number=number, query_code=code, address=address)
    except TooManyRequests:
        return None


@database_sync_to_async
def _public_catch_up(ticket_id: int, after: int | None) -> CatchUp:
    missed = _missed(Q(ticket_id=ticket_id), after)
    names = department_names_for(missed.events)
    updates = [u for e in missed.events if (u := public_event(e, e.ticket, names)) is not None]
    return CatchUp(updates, missed.last_event_id, missed.truncated)


class PublicTicketConsumer(RealtimeConsumer):
    """The citizen's status page: the ticket number and its query code are the only credentials."""

    requires_user = False

    async def authorize(self) -> list[str]:
        number = self.scope["url_route"]["kwargs"]["number"]
        client = self.scope.get("client") or [""]
        ticket = await _public_ticket(number, self.query("code") or "", str(client[0] or ""))
        if ticket is None:
            raise Refused(CLOSE_NOT_FOUND, "工单编号或查询码不正确。")
        self.ticket_id = ticket.id
        return [groups.public_ticket(ticket.id)]

    async def catch_up(self, after: int | None) -> CatchUp:
        return await _public_catch_up(self.ticket_id, after)
