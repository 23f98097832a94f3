"""Reads for the citizen: finding a ticket by its number and query code, and what its status page shows.

The timeline is built from the stored events by `realtime.public_event`, the builder that also makes the live
messages and the websocket's catch-up, so the page, the API and the socket say the same thing. Nothing internal
leaves here: no staff, no notes, no return reasons, no other caller; the citizen's own phone only masked.
"""

from dataclasses import dataclass
from datetime import datetime

from hotline.realtime.events import PublicTicketUpdate

from . import public_guard
from .masking import mask_phone
from .models import Region, RegionLevel, Ticket, TicketEvent
from .realtime import PUBLIC_STATUS, department_names_for, public_event
from .selectors import category_tree, ticket_for_public
from .workflow import Status

# Each public step as the citizen reads it in the timeline.
STEP_LABELS = {
    "received": "诉求已受理",
    "dispatched": "已转交承办单位办理",
    "accepted": "承办单位已签收，正在办理",
    "extended": "办理期限已依规延长",
    "replied": "承办单位已答复",
    "closed": "已办结",
    "merged": "已与相同诉求合并办理",
    "transferred": "已转交其他渠道办理",
    "cancelled": "已撤销",
}
# The state in which the citizen may rate the reply.
RATEABLE = Status.CALLBACK


def public_ticket_lookup(*, number: str, query_code: str, address: str) -> Ticket | None:
    """The ticket for a number and its query code, or None. Every look-up counts against the client address's
    and the number's limits; a wrong code and an unknown number look the same, cost the same work, and both
    count towards the number's lockout. Raises TooManyRequests when a limit is reached or while the number is
    locked, whatever the code."""
    public_guard.throttle(
        [
            public_guard.ConfiguredRateThrottle("public_lookup", address),
            public_guard.ConfiguredRateThrottle("public_lookup_ticket", number),
        ],
        message="查询过于频繁，",
    )
    public_guard.lookup_check_lock(number)
    ticket = ticket_for_public(number=number, query_code=query_code)
    if ticket is None:
        public_guard.lookup_failed(number)
    return ticket


def keypad_ticket_lookup(*, number: str, query_code: str) -> Ticket | None:
    """The phone menu's look-up (keys on a call): the same lockout as the site, so calling again and again is
    no way around it. The call itself limits its tries; a locked number answers None, like a wrong code."""
    if public_guard.lookup_locked_for(number):
        return None
    ticket = ticket_for_public(number=number, query_code=query_code)
    if ticket is None:
        public_guard.lookup_failed(number)
    return ticket


@dataclass(frozen=True)
class PublicReply:
    text: str
    replied_at: datetime


@dataclass(frozen=True)
class PublicStatus:
    number: str
    status: str
    status_display: str
    appeal_type: str
    appeal_type_display: str
    category: str | None
    title: str
    content: str
    location: str
    created_at: datetime
    department: str | None
    reply: PublicReply | None
    can_rate: bool
    phone_masked: str
    timeline: list[PublicTicketUpdate]
    # The newest stored event of the ticket, public or not: where the page's websocket resumes.
    last_event_id: int


def ticket_public_status(*, ticket: Ticket) -> PublicStatus:
    ticket = Ticket.objects.select_related("lead_department", "category", "category__parent").get(pk=ticket.pk)
    events = list(TicketEvent.objects.filter(ticket=ticket).order_by("id"))
    names = department_names_for(events)
    timeline = [update for event in events if (update := public_event(event, ticket, names)) is not None]
    reply = None
    for update in timeline:
        if update.step == "replied" and update.reply:
            reply = PublicReply(text=update.reply, replied_at=update.occurred_at)
        elif update.step == "dispatched":
            # Handled again (reopened, reassigned): the earlier reply stays in the timeline only.
            reply = None
    department = ticket.lead_department
    return PublicStatus(
        number=ticket.number,
        status=ticket.status,
        status_display=PUBLIC_STATUS[Status(ticket.status)],
        appeal_type=ticket.appeal_type,
        appeal_type_display=ticket.get_appeal_type_display(),
        category=str(ticket.category) if ticket.category else None,
        title=ticket.title,
        content=ticket.content,
        location=ticket.location_text,
        created_at=ticket.created_at,
        department=department.name if department else None,
        reply=reply,
        can_rate=ticket.status == RATEABLE,
        phone_masked=mask_phone(ticket.caller_phone),
        timeline=timeline,
        last_event_id=max((e.id for e in events), default=0),
    )


def public_categories() -> list[tuple[str, list[tuple[int, str]]]]:
    """Active categories to pick from, grouped by the first level (a first level without children is its own
    choice)."""
    groups = []
    for top in category_tree():
        children = [(child.id, child.name) for child in top.children.all()]
        groups.append((top.name, children or [(top.id, top.name)]))
    return groups


def public_regions() -> list[tuple[int, str]]:
    """Districts (区县) to pick from, named with their city."""
    districts = Region.objects.filter(level=RegionLevel.DISTRICT).select_related("parent").order_by("code")
    return [(d.id, f"{d.parent.name}{d.name}" if d.parent else d.name) for d in districts]
