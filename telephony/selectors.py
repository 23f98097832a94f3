"""Reads for telephony: who may drive calls, which call an event is about, and what the agent screen shows
at ringing. Ticket visibility comes from `ticketing.selectors.ticket_visible_to`, never from here."""

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from ticketing import selectors as ticket_selectors
from ticketing.models import Ticket, User
from ticketing.services import INTAKE_ROLES

from .models import Call, CallStatus, TranscriptStatus

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
