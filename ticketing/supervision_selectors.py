"""Reads of supervision orders. Who may see which order is defined here once, for the list, the detail, the
ticket's orders and the services.

Department users see the orders addressed to the departments whose tickets they may act on (their own;
a department lead also the subtree), the same scope as their tickets, so an order never shows a ticket its
reader could not open.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from .models import DEPARTMENT_ROLES, Role, SupervisionOrder, SupervisionStatus, User
from .selectors import department_subtree_ids, sees_everything, user_actionable_department_ids


def supervision_order_visible_to(*, user: User) -> QuerySet[SupervisionOrder]:
    """Supervisors and administrators: all; dispatchers (who urge and reassign): all; department users:
    orders addressed to their departments (a lead: the subtree); agents: none."""
    orders = SupervisionOrder.objects.all()
    if not user.is_authenticated or not user.is_active:
        return orders.none()
    if sees_everything(user) or user.role == Role.DISPATCHER:
        return orders
    if user.role in DEPARTMENT_ROLES:
        return orders.filter(department_id__in=user_actionable_department_ids(user=user))
    return orders.none()


def overdue_q(now: datetime) -> Q:
    """Orders still waiting for an answer whose own deadline has passed."""
    return Q(status=SupervisionStatus.OPEN, due_at__lte=now)


@dataclass(frozen=True)
class SupervisionOrderFilters:
    status: str | None = None
    department_id: int | None = None
    ticket_id: int | None = None
    level: int | None = None
    overdue: bool | None = None


def supervision_order_list(
    *, user: User, filters: SupervisionOrderFilters | None = None, now: datetime | None = None
) -> QuerySet[SupervisionOrder]:
    filters = filters or SupervisionOrderFilters()
    orders = supervision_order_visible_to(user=user).select_related(
        "ticket", "department", "issued_by", "responded_by", "closed_by"
    )
    if filters.status:
        orders = orders.filter(status=filters.status)
    if filters.department_id:
        orders = orders.filter(department_id__in=department_subtree_ids(department_ids=[filters.department_id]))
    if filters.ticket_id:
        orders = orders.filter(ticket_id=filters.ticket_id)
    if filters.level:
        orders = orders.filter(level=filters.level)
    if filters.overdue is not None and now is not None:
        orders = orders.filter(overdue_q(now)) if filters.overdue else orders.exclude(overdue_q(now))
    return orders.order_by("-issued_at", "-id")


def supervision_order_detail(*, user: User, order_id: int) -> SupervisionOrder:
    """Raises SupervisionOrder.DoesNotExist when the order is missing or not visible: both look the same."""
    return (
        supervision_order_visible_to(user=user)
        .select_related("ticket", "department", "issued_by", "responded_by", "closed_by")
        .get(pk=order_id)
    )
