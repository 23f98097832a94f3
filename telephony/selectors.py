"""Reads for telephony: who may drive calls, which call an event is about, and what the agent screen shows
at ringing. Ticket visibility comes from `ticketing.selectors.ticket_visible_to`, never from here."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from ticketing import selectors as ticket_selectors
from ticketing.models import Role, Ticket, User
from ticketing.services import INTAKE_ROLES
from ticketing.workflow import TERMINAL

from .models import AgentState, AgentStateKind, Call, CallStatus, TranscriptStatus

PREVIOUS_TICKETS_LIMIT = 10


def may_drive_calls(user: Any) -> bool:
    """Hotline centre staff (and the PBX integrations that act with a token of theirs) open and end calls."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.role in INTAKE_ROLES)
    )


def call_agent(*, user_id: int) -> User | None:
    """The agent a PBX names for a call: an active member of the hotline centre staff, or None."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user if user is not None and may_drive_calls(user) else None


def call_agent_id_by_username(*, username: str) -> int | None:
    """The id of the user a door's configuration names (`SIP_AGENT`), or None; `call_agent` then checks it."""
    return User.objects.filter(username=username).values_list("id", flat=True).first()


def call_detail(*, call_id: int) -> Call | None:
    """A call with its trail and transcript, for the agent screen (hotline centre staff see every call)."""
    return Call.objects.select_related("agent").prefetch_related("events", "segments").filter(pk=call_id).first()


def call_by_uuid(*, call_uuid: str) -> Call:
    """The call a door or the PBX names by its own id; raises Call.DoesNotExist."""
    return Call.objects.select_related("agent").get(call_uuid=call_uuid)


def caller_previous_tickets(
    *, user: User, phone: str, limit: int = PREVIOUS_TICKETS_LIMIT, exclude_ticket_id: int | None = None
) -> QuerySet[Ticket]:
    """The caller's earlier tickets that `user` may see, newest first: what the agent screen shows at ringing."""
    phone = phone.strip()
    if not phone:
        return Ticket.objects.none()
    visible = ticket_selectors.ticket_visible_to(user=user).filter(caller_phone=phone)
    if exclude_ticket_id is not None:
        visible = visible.exclude(pk=exclude_ticket_id)
    return visible.order_by("-created_at", "-id")[:limit]


def call_ticket_visible(*, call: Call, user: User) -> bool:
    """Whether the call has a linked ticket that `user` may see (and so may have read to the caller)."""
    if call.ticket_id is None:
        return False
    return ticket_selectors.ticket_visible_to(user=user).filter(pk=call.ticket_id).exists()


# Transcripts still owed: never made (no model at the time), cut short (a live one when the process died),
# or failed (retried on every run).
AWAITING_TRANSCRIPTION = (TranscriptStatus.PENDING, TranscriptStatus.LIVE, TranscriptStatus.FAILED)


def calls_awaiting_transcription(*, stale_before: datetime, limit: int | None = None) -> list[Call]:
    """Recorded calls with no final transcript that are over: ended, or started before `stale_before`
    and still open (their process died), oldest first."""
    waiting = (
        Call.objects.filter(transcript_status__in=AWAITING_TRANSCRIPTION)
        .exclude(audio_path="")
        .filter(Q(status=CallStatus.ENDED) | Q(started_at__lt=stale_before))
        .order_by("started_at", "id")
    )
    return list(waiting[:limit] if limit is not None else waiting)


# ---------------------------------------------------------------------------------------------------------
# agents and live calls

# Who watches the seats and the queue: the board's readers and the dispatchers.
AGENT_WATCH_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR, Role.DISPATCHER})
LIVE_STATUSES = (CallStatus.RINGING, CallStatus.ACTIVE, CallStatus.HELD)
# A call open for longer than this was left behind by a process that died (`transcribe_pending` ends it as
# recovered); it is not on anyone's line any more.
LIVE_CALL_MAX_HOURS = 8
AGENT_TICKETS_LIMIT = 50
STATE_ORDER: dict[str, int] = {
    AgentStateKind.ON_CALL: 0,
    AgentStateKind.WRAP_UP: 1,
    AgentStateKind.AVAILABLE: 2,
    AgentStateKind.AWAY: 3,
}


def wrap_up_seconds() -> int:
    return max(0, int(settings.AGENT_WRAP_UP_SECONDS))


@dataclass(frozen=True)
class AgentStateView:
    """An agent's state as it is now: a wrap-up whose time is up reads as available from the moment it ended,
    whether or not a write has settled it yet."""

    agent_id: int
    agent_name: str
    state: str
    since: datetime | None
    call: Call | None
    wrap_up_ends_at: datetime | None


def _view(row: AgentState, *, now: datetime) -> AgentStateView:
    name = str(row.agent)
    if row.state == AgentStateKind.WRAP_UP:
        ends = row.since + timedelta(seconds=wrap_up_seconds())
        if ends <= now:
            return AgentStateView(row.agent_id, name, AgentStateKind.AVAILABLE, ends, None, None)
        return AgentStateView(row.agent_id, name, row.state, row.since, row.call, ends)
    return AgentStateView(row.agent_id, name, row.state, row.since, row.call, None)


def agent_state_of(*, user: User, now: datetime) -> AgentStateView:
    """The user's own state; someone who never set one nor took a call is away (not signed in at a seat)."""
    row = AgentState.objects.select_related("agent", "call").filter(agent=user).first()
    if row is None:
        return AgentStateView(user.id, str(user), AgentStateKind.AWAY, None, None, None)
    return _view(row, now=now)


def may_watch_agents(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.role in AGENT_WATCH_ROLES)
    )


def agent_states(*, now: datetime) -> list[AgentStateView]:
    """Every active centre member who has a seat state: on a call first, then wrapping up, available, away;
    longest in the state first."""
    rows = AgentState.objects.select_related("agent", "call").filter(
        agent__is_active=True, agent__role__in=INTAKE_ROLES
    )
    views = [_view(row, now=now) for row in rows]
    return sorted(views, key=lambda v: (STATE_ORDER.get(v.state, 9), v.since or now, v.agent_id))


def live_calls(*, now: datetime) -> list[Call]:
    """Calls ringing, on the line or held, oldest first (the longest wait leads the queue)."""
    return list(
        Call.objects.select_related("agent")
        .filter(status__in=LIVE_STATUSES, started_at__gte=now - timedelta(hours=LIVE_CALL_MAX_HOURS))
        .order_by("started_at", "id")
    )


def agent_tickets(*, user: User, open_only: bool, limit: int = AGENT_TICKETS_LIMIT) -> QuerySet[Ticket]:
    """The agent's own work list: tickets they took in (drafts included), most recently changed first."""
    tickets = ticket_selectors.ticket_visible_to(user=user).filter(created_by=user)
    if open_only:
        tickets = tickets.exclude(status__in=TERMINAL)
    return tickets.select_related("lead_department").order_by("-updated_at", "-id")[:limit]


def current_call_of(*, user: User, now: datetime) -> Call | None:
    """The call the agent's desk shows: the one they are on or wrapping up."""
    return agent_state_of(user=user, now=now).call
