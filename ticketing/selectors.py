"""Reads. The one definition of who may see which ticket lives here (`ticket_visible_to`); lists,
details, timelines, services and websocket subscriptions all use it."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max, Prefetch, Q, QuerySet

from .calendar import WorkingCalendar
from .models import (
    DEPARTMENT_ROLES,
    CalendarDay,
    Category,
    Department,
    Region,
    Role,
    Ticket,
    TicketEvent,
    User,
)
from .workflow import Status


def _subtree_ids(table: str, root_ids: Iterable[int]) -> set[int]:
    roots = sorted(set(root_ids))
    if not roots:
        return set()
    placeholders = ", ".join(["%s"] * len(roots))
    # A recursive CTE works the same on SQLite and PostgreSQL and keeps no derived path to maintain.
    # `table` is a model's own table name, never input; the ids are bound parameters.
    sql = (
        f"WITH RECURSIVE subtree(id) AS ("  # noqa: S608
        f" SELECT id FROM {table} WHERE id IN ({placeholders})"
        f" UNION SELECT t.id FROM {table} t JOIN subtree s ON t.parent_id = s.id"
        f") SELECT id FROM subtree"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, roots)
        return {row[0] for row in cursor.fetchall()}


def department_subtree_ids(*, department_ids: Iterable[int]) -> set[int]:
    return _subtree_ids(Department._meta.db_table, department_ids)


def region_subtree_ids(*, region_ids: Iterable[int]) -> set[int]:
    return _subtree_ids(Region._meta.db_table, region_ids)


def user_department_ids(*, user: User) -> set[int]:
    return set(user.departments.values_list("id", flat=True))


def user_actionable_department_ids(*, user: User) -> set[int]:
    """Departments whose tickets the user may act on: their own, and for a lead the whole subtree."""
    if not user.is_authenticated or user.role not in DEPARTMENT_ROLES:
        return set()
    own = user_department_ids(user=user)
    if user.role == Role.DEPARTMENT_LEAD:
        return department_subtree_ids(department_ids=own)
    return own


def acts_for_lead_department(*, user: User, ticket: Ticket) -> bool:
    """Whether `user` takes the lead department's steps on `ticket` (accept, return, reply, hand down): a
    member of the lead department, or a lead above it. The services and the pages ask this one rule."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.role in DEPARTMENT_ROLES
        and ticket.lead_department_id is not None
        and ticket.lead_department_id in user_actionable_department_ids(user=user)
    )


def lead_department_unit_ids(*, ticket: Ticket) -> set[int]:
    """The active sub-units below the ticket's lead department: where its work may be handed down."""
    if ticket.lead_department_id is None:
        return set()
    below = department_subtree_ids(department_ids=[ticket.lead_department_id]) - {ticket.lead_department_id}
    return set(Department.objects.filter(id__in=below, is_active=True).values_list("id", flat=True))


def sees_everything(user: User) -> bool:
    return bool(user.is_superuser or user.role in (Role.SUPERVISOR, Role.ADMINISTRATOR))


def ticket_visible_to(*, user: User) -> QuerySet[Ticket]:
    """Tickets `user` may see.

    - supervisors and administrators: all;
    - agents and dispatchers: all but other people's drafts (a draft belongs to the call it is being
      taken on). Agents answer progress calls, take repeat calls to merge and make callbacks on any
      ticket; caller data stays masked, and revealing it is on the trail;
    - department handlers: tickets led, assisted or handed down (as the handling unit) to their own
      departments;
    - department leads: the same for their departments' whole subtrees.
    """
    tickets = Ticket.objects.all()
    if not user.is_authenticated or not user.is_active:
        return tickets.none()
    if sees_everything(user):
        return tickets
    if user.role in (Role.AGENT, Role.DISPATCHER):
        return tickets.filter(~Q(status=Status.DRAFT) | Q(created_by=user))
    if user.role in DEPARTMENT_ROLES:
        departments = user_actionable_department_ids(user=user)
        if not departments:
            return tickets.none()
        assisted = Ticket.assisting_departments.through.objects.filter(department_id__in=departments).values(
            "ticket_id"
        )
        return tickets.filter(
            Q(lead_department_id__in=departments) | Q(handling_unit_id__in=departments) | Q(id__in=assisted)
        )
    return tickets.none()


@dataclass(frozen=True)
class TicketFilters:
    status: list[str] | None = None
    hotline_line: str | None = None
    channel: str | None = None
    appeal_type: str | None = None
    urgency: str | None = None
    category_id: int | None = None
    department_id: int | None = None
    region_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    overdue: bool | None = None
    search: str | None = None


def ticket_list(*, user: User, filters: TicketFilters | None = None, now: datetime | None = None) -> QuerySet[Ticket]:
    filters = filters or TicketFilters()
    tickets = ticket_visible_to(user=user).select_related("category", "category__parent", "region", "lead_department")
    if filters.status:
        tickets = tickets.filter(status__in=filters.status)
    if filters.hotline_line:
        tickets = tickets.filter(hotline_line=filters.hotline_line)
    if filters.channel:
        tickets = tickets.filter(channel=filters.channel)
    if filters.appeal_type:
        tickets = tickets.filter(appeal_type=filters.appeal_type)
    if filters.urgency:
        tickets = tickets.filter(urgency=filters.urgency)
    if filters.category_id:
        tickets = tickets.filter(Q(category_id=filters.category_id) | Q(category__parent_id=filters.category_id))
    if filters.department_id:
        tickets = tickets.filter(lead_department_id__in=department_subtree_ids(department_ids=[filters.department_id]))
    if filters.region_id:
        tickets = tickets.filter(region_id__in=region_subtree_ids(region_ids=[filters.region_id]))
    if filters.created_after:
        tickets = tickets.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        tickets = tickets.filter(created_at__lt=filters.created_before)
    if filters.overdue is not None and now is not None:
        late = Q(status=Status.DISPATCHED, accept_due_at__lt=now) | Q(status=Status.ACCEPTED, reply_due_at__lt=now)
        tickets = tickets.filter(late) if filters.overdue else tickets.exclude(late)
    if filters.search:
        tickets = tickets.filter(
            Q(title__icontains=filters.search) | Q(number=filters.search) | Q(location_text__icontains=filters.search)
        )
    return tickets


def ticket_detail(*, user: User, ticket_id: int) -> Ticket:
    """Raises Ticket.DoesNotExist when the ticket is missing or not visible: both look the same."""
    return (
        ticket_visible_to(user=user)
        .select_related(
            "category",
            "category__parent",
            "region",
            "lead_department",
            "created_by",
            "merged_into",
            "duplicate_of",
            "reopened_from",
            "deadline_policy",
        )
        .prefetch_related(Prefetch("assisting_departments", queryset=Department.objects.order_by("id")))
        .get(pk=ticket_id)
    )


def ticket_timeline(*, user: User, ticket_id: int, after_id: int | None = None) -> QuerySet[TicketEvent]:
    ticket = ticket_visible_to(user=user).filter(pk=ticket_id)
    if not ticket.exists():
        raise Ticket.DoesNotExist
    events = TicketEvent.objects.filter(ticket_id=ticket_id).select_related("actor").order_by("id")
    if after_id is not None:
        events = events.filter(id__gt=after_id)
    return events


def working_calendar() -> WorkingCalendar:
    overrides = dict(CalendarDay.objects.values_list("date", "is_working_day"))
    return WorkingCalendar(overrides=overrides, working_hours=settings.HOTLINE_WORKING_HOURS)


def category_tree() -> QuerySet[Category]:
    return (
        Category.objects.filter(parent__isnull=True, is_active=True)
        .prefetch_related(Prefetch("children", queryset=Category.objects.filter(is_active=True)))
        .order_by("sort_order", "id")
    )


def department_list(*, accepts_dispatch: bool | None = None) -> QuerySet[Department]:
    departments = Department.objects.filter(is_active=True).select_related("parent")
    if accepts_dispatch is not None:
        departments = departments.filter(accepts_dispatch=accepts_dispatch)
    return departments


def region_list(*, parent_id: int | None = None, level: int | None = None) -> QuerySet[Region]:
    regions = Region.objects.all()
    if parent_id is not None:
        regions = regions.filter(parent_id=parent_id)
    if level is not None:
        regions = regions.filter(level=level)
    return regions


@dataclass(frozen=True)
class MissedEvents:
    events: list[TicketEvent]
    # 0 before any event exists, so clients always have a number to resume from.
    last_event_id: int
    truncated: bool


def ticket_events_missed(*, scope: Q, after: int | None, grace: timedelta, limit: int) -> MissedEvents:
    """Stored events in `scope` that a screen which last saw `after` has not received, in id order.

    Ids are taken when a row is inserted, so a slow transaction can commit a smaller id after a larger one
    was delivered; events with a smaller id written within `grace` before the last seen one are sent again
    (clients drop the duplicates by id). Without `after` (a first connect) nothing is missed: the screen
    loads its state over HTTP and starts from the newest id.
    """
    if after is None:
        # Newest within the subscription: a citizen's page must not learn the whole hotline's volume.
        newest = TicketEvent.objects.filter(scope).aggregate(newest=Max("id"))["newest"]
        return MissedEvents(events=[], last_event_id=newest or 0, truncated=False)
    missed = Q(id__gt=after)
    anchor = TicketEvent.objects.filter(id=after).values_list("created_at", flat=True).first()
    if anchor is not None and grace:
        missed |= Q(id__lt=after, created_at__gte=anchor - grace)
    rows = list(
        TicketEvent.objects.filter(scope & missed).select_related("ticket").distinct().order_by("id")[: limit + 1]
    )
    truncated = len(rows) > limit
    rows = rows[:limit]
    last = max((e.id for e in rows), default=after)
    return MissedEvents(events=rows, last_event_id=max(last, after), truncated=truncated)


def ticket_for_public(*, number: str, query_code: str) -> Ticket | None:
    """The ticket a citizen may follow: the number and its query code must both match (compared in constant
    time); drafts are not public yet. A wrong code and an unknown number look the same."""
    import hmac

    ticket = Ticket.objects.filter(number=number).exclude(status=Status.DRAFT).first()
    if ticket is None or not hmac.compare_digest(ticket.query_code.encode(), query_code.encode()):
        return None
    return ticket
