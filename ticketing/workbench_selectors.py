"""Reads for the department workbench and for handling one ticket beside its transitions: which
workbenches a user may open, a workbench's inbox (nearest deadline first) and counts, who may take the lead
department's steps, the sub-units a ticket may be handed to, assisting parts and attachments.

Which tickets anyone sees is `selectors.ticket_visible_to`; everything here narrows it, never widens it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, DateTimeField, F, Max, Prefetch, Q, QuerySet, Value, When

from .models import (
    AssistingReply,
    Department,
    ExtensionRequest,
    ExtensionStatus,
    Role,
    Ticket,
    TicketAttachment,
    TicketEventDepartment,
    User,
)
from .selectors import (
    acts_for_lead_department,
    department_subtree_ids,
    lead_department_unit_ids,
    ticket_visible_to,
    user_actionable_department_ids,
)
from .workflow import Status

# States in which a ticket sits on a department's desk, and the deadline that runs in each. None: no clock
# runs (suspended waits on the citizen, replied waits on the centre's review).
WORKBENCH_DEADLINES: dict[str, str | None] = {
    Status.DISPATCHED: "accept",
    Status.ACCEPTED: "reply",
    # The reply clock keeps running while the centre reviews a return.
    Status.RETURN_PENDING: "reply",
    Status.SUSPENDED: None,
    Status.REPLIED: None,
}
# The inbox lists at most this many tickets, the nearest deadlines first; the counts cover them all.
WORKBENCH_LIMIT = 200


@dataclass(frozen=True)
class DepartmentNode:
    """A department in a tree listing; `depth` counts from the listing's top."""

    id: int
    code: str
    name: str
    depth: int


def _tree_order(departments: Iterable[Department]) -> list[DepartmentNode]:
    rows = sorted(departments, key=lambda d: (d.code, d.id))
    present = {d.id for d in rows}
    children: dict[int | None, list[Department]] = {}
    for department in rows:
        parent = department.parent_id if department.parent_id in present else None
        children.setdefault(parent, []).append(department)
    ordered: list[DepartmentNode] = []

    def walk(parent: int | None, depth: int) -> None:
        for department in children.get(parent, []):
            ordered.append(DepartmentNode(department.id, department.code, department.name, depth))
            walk(department.id, depth + 1)

    walk(None, 0)
    return ordered


def workbench_departments(*, user: User) -> list[DepartmentNode]:
    """Departments whose workbench `user` may open, depth first: a handler's own departments; a lead's own
    and every department below them."""
    ids = user_actionable_department_ids(user=user)
    return _tree_order(Department.objects.filter(id__in=ids, is_active=True))


def workbench_scope(*, user: User, department_id: int) -> set[int]:
    """The departments whose tickets the workbench of `department_id` shows `user`: the department, and for
    a lead its subtree, as its websocket subscribes. Raises Department.DoesNotExist when `user` may not open
    that workbench (missing and forbidden look the same)."""
    allowed = user_actionable_department_ids(user=user)
    if department_id not in allowed or not Department.objects.filter(pk=department_id, is_active=True).exists():
        raise Department.DoesNotExist
    if user.role == Role.DEPARTMENT_LEAD:
        return department_subtree_ids(department_ids=[department_id]) & allowed
    return {department_id}


def _running(fields: dict[str, str]) -> Case:
    """The value of the running deadline's field (`fields` maps a deadline to a ticket field)."""
    whens = [
        When(status__in=[s for s, d in WORKBENCH_DEADLINES.items() if d == deadline], then=F(field))
        for deadline, field in fields.items()
    ]
    return Case(*whens, default=Value(None), output_field=DateTimeField())


def workbench_tickets(*, user: User, department_ids: set[int]) -> QuerySet[Ticket]:
    """Tickets on the desks of `department_ids` (led, handed down or assisted), visible to `user`, the
    nearest running deadline first and tickets without one last. Annotated with `workbench_due_at` and
    `workbench_warning_at` (the running deadline and its warning time)."""
    assisted = Ticket.assisting_departments.through.objects.filter(department_id__in=department_ids).values("ticket_id")
    return (
        ticket_visible_to(user=user)
        .filter(
            Q(lead_department_id__in=department_ids) | Q(handling_unit_id__in=department_ids) | Q(id__in=assisted),
            status__in=list(WORKBENCH_DEADLINES),
        )
        .annotate(
            workbench_due_at=_running({"accept": "accept_due_at", "reply": "reply_due_at"}),
            workbench_warning_at=_running({"accept": "accept_warning_at", "reply": "reply_warning_at"}),
        )
        .select_related("category", "category__parent", "region", "lead_department", "handling_unit")
        .order_by(F("workbench_due_at").asc(nulls_last=True), "id")
    )


@dataclass(frozen=True)
class WorkbenchInbox:
    department: Department
    department_ids: frozenset[int]
    # Nearest deadline first, at most WORKBENCH_LIMIT.
    tickets: list[Ticket]
    # Per state, plus "warning", "overdue" and "total", over all the tickets (not only those listed).
    counts: dict[str, int]
    # The newest stored event for these departments when the inbox was read: a screen resumes from it.
    last_event_id: int
    now: datetime


def workbench_inbox(*, user: User, department_id: int, now: datetime) -> WorkbenchInbox:
    """The inbox of one workbench. Raises Department.DoesNotExist as `workbench_scope` does."""
    scope = workbench_scope(user=user, department_id=department_id)
    # Read before the tickets: whatever commits later has a larger id (or falls in the catch-up grace),
    # so the socket resuming from here misses nothing the list did not show.
    last = TicketEventDepartment.objects.filter(department_id__in=scope).aggregate(last=Max("event_id"))["last"]
    tickets = workbench_tickets(user=user, department_ids=scope)
    counts = tickets.order_by().aggregate(
        **{state: Count("id", filter=Q(status=state)) for state in WORKBENCH_DEADLINES},
        overdue=Count("id", filter=Q(workbench_due_at__lte=now)),
        warning=Count("id", filter=Q(workbench_warning_at__lte=now, workbench_due_at__gt=now)),
    )
    counts["total"] = sum(counts[state] for state in WORKBENCH_DEADLINES)
    return WorkbenchInbox(
        department=Department.objects.get(pk=department_id),
        department_ids=frozenset(scope),
        tickets=list(
            tickets.prefetch_related(Prefetch("assisting_departments", queryset=Department.objects.order_by("id")))[
                :WORKBENCH_LIMIT
            ]
        ),
        counts=counts,
        last_event_id=last or 0,
        now=now,
    )


def ticket_may_lead(*, user: User, ticket: Ticket) -> bool:
    return acts_for_lead_department(user=user, ticket=ticket)


def handing_units_for(*, user: User, ticket: Ticket) -> list[DepartmentNode]:
    """The sub-units of the lead department that `user` may hand `ticket` to; empty when they may not."""
    if not acts_for_lead_department(user=user, ticket=ticket):
        return []
    return _tree_order(Department.objects.filter(id__in=lead_department_unit_ids(ticket=ticket)))


def _require_visible(*, user: User, ticket_id: int) -> None:
    if not ticket_visible_to(user=user).filter(pk=ticket_id).exists():
        raise Ticket.DoesNotExist


def ticket_assisting_replies(*, user: User, ticket_id: int) -> QuerySet[AssistingReply]:
    """Raises Ticket.DoesNotExist when the ticket is missing or not visible."""
    _require_visible(user=user, ticket_id=ticket_id)
    return AssistingReply.objects.filter(ticket_id=ticket_id).select_related("department", "author").order_by("id")


def ticket_attachments(*, user: User, ticket_id: int) -> QuerySet[TicketAttachment]:
    """Raises Ticket.DoesNotExist when the ticket is missing or not visible."""
    _require_visible(user=user, ticket_id=ticket_id)
    return (
        TicketAttachment.objects.filter(ticket_id=ticket_id).select_related("department", "uploaded_by").order_by("id")
    )


def ticket_attachment(*, user: User, ticket_id: int, attachment_id: int) -> TicketAttachment:
    """One attachment, for download. Raises TicketAttachment.DoesNotExist when it or its ticket is missing
    or the ticket is not visible to `user`: all look the same."""
    if not ticket_visible_to(user=user).filter(pk=ticket_id).exists():
        raise TicketAttachment.DoesNotExist
    return TicketAttachment.objects.get(pk=attachment_id, ticket_id=ticket_id)


@dataclass(frozen=True)
class TicketHandling:
    """What the workbench shows and offers beside a ticket's detail."""

    ticket: Ticket
    may_lead: bool
    handing_units: list[DepartmentNode]
    # The ticket's assisting departments that `user` writes for.
    own_assisting: list[Department]
    assisting_replies: list[AssistingReply]
    attachments: list[TicketAttachment]
    pending_extension: ExtensionRequest | None


def ticket_handling(*, user: User, ticket_id: int) -> TicketHandling:
    """Raises Ticket.DoesNotExist when the ticket is missing or not visible."""
    ticket = (
        ticket_visible_to(user=user)
        .select_related("lead_department", "handling_unit", "deadline_policy")
        .prefetch_related(Prefetch("assisting_departments", queryset=Department.objects.order_by("id")))
        .get(pk=ticket_id)
    )
    own = user_actionable_department_ids(user=user)
    return TicketHandling(
        ticket=ticket,
        may_lead=ticket_may_lead(user=user, ticket=ticket),
        handing_units=handing_units_for(user=user, ticket=ticket),
        own_assisting=[d for d in ticket.assisting_departments.all() if d.id in own],
        assisting_replies=list(
            AssistingReply.objects.filter(ticket=ticket).select_related("department", "author").order_by("id")
        ),
        attachments=list(
            TicketAttachment.objects.filter(ticket=ticket).select_related("department", "uploaded_by").order_by("id")
        ),
        pending_extension=ticket.extensions.filter(status=ExtensionStatus.PENDING).first(),
    )
