"""Every message a screen can receive, one strict class per type (the wire protocol of the websockets).

Ticket events carry `event_id`, the id of the stored ticket event they come from: clients deduplicate by
it and reconnect with the last one they saw. Live delivery and catch-up build the same payload from the
same stored event (`ticketing.realtime`), so a reconnecting screen cannot tell them apart.

Call, transcript and suggestion events are not stored as ticket events; the telephony, knowledge-base and
routing apps send them.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class RealtimeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


class TicketEventBase(RealtimeEvent):
    event_id: int
    ticket_id: int
    number: str
    occurred_at: datetime


class TicketCreated(TicketEventBase):
    type: Literal["ticket.created"] = "ticket.created"
    status: str
    hotline_line: str
    channel: str
    appeal_type: str
    urgency: str
    title: str
    created_by_id: int | None


class TicketTransitioned(TicketEventBase):
    """A transition of the table; `data` is the stored machine data (reasons, departments, deadlines)."""

    type: Literal["ticket.transitioned"] = "ticket.transitioned"
    transition: str
    from_status: str
    to_status: str
    actor_id: int | None
    lead_department_id: int | None
    data: dict[str, Any]


class TicketUpdated(TicketEventBase):
    type: Literal["ticket.updated"] = "ticket.updated"
    fields: list[str]
    actor_id: int | None


class TicketNoteAdded(TicketEventBase):
    """An internal note or a department's interim reply; never shown to the public."""

    type: Literal["ticket.note"] = "ticket.note"
    author_id: int | None
    text: str


class TicketDeadlineMarked(TicketEventBase):
    type: Literal["ticket.deadline"] = "ticket.deadline"
    mark: Literal["warning", "overdue"]
    deadline: Literal["accept", "return", "reply"]
    due_at: datetime
    lead_department_id: int | None


class TicketActivity(TicketEventBase):
    """Trail entries that change no field a screen shows: a contact looked up, a ticket merged in."""

    type: Literal["ticket.activity"] = "ticket.activity"
    kind: str
    actor_id: int | None
    data: dict[str, Any]


class PublicTicketUpdate(RealtimeEvent):
    """What a citizen's status page may see: no staff, no notes, no caller data."""

    type: Literal["public.ticket"] = "public.ticket"
    event_id: int
    number: str
    step: str
    status: str
    status_display: str
    department: str | None
    reply: str | None
    occurred_at: datetime


class CallStarted(RealtimeEvent):
    type: Literal["call.started"] = "call.started"
    call_id: str
    hotline_line: str
    caller_masked: str
    agent_id: int | None
    started_at: datetime


class CallEnded(RealtimeEvent):
    type: Literal["call.ended"] = "call.ended"
    call_id: str
    ended_at: datetime
    ticket_id: int | None


class CallStateChanged(RealtimeEvent):
    """Answered, held, resumed or transferred: the call's new status and who has it now."""

    type: Literal["call.state"] = "call.state"
    call_id: str
    event: Literal["answered", "held", "resumed", "transferred"]
    status: str
    agent_id: int | None
    agent_extension: str
    occurred_at: datetime


class CallAlert(RealtimeEvent):
    """Words in the transcript that call for an immediate transfer (fire, gas leak, someone hurt ...)."""

    type: Literal["call.alert"] = "call.alert"
    call_id: str
    kind: str
    words: list[str]
    text: str
    occurred_at: datetime


class AgentStateChanged(RealtimeEvent):
    """An agent's seat state (available, on_call, wrap_up, away) for the supervisors' board and the agent's own
    desk; `call_id` is the call they are on or wrapping up, `reason` what changed it (the agent, ringing,
    answered, hung_up, transferred, wrap_up_elapsed, ticket_completed)."""

    type: Literal["agent.state"] = "agent.state"
    agent_id: int
    agent_name: str
    state: Literal["available", "on_call", "wrap_up", "away"]
    since: datetime
    call_id: str | None
    reason: str


class TranscriptPartial(RealtimeEvent):
    """What the caller is saying now; `audio_ms` is how far into the call's audio this guess reaches."""

    type: Literal["transcript.partial"] = "transcript.partial"
    call_id: str
    text: str
    audio_ms: int


class TranscriptFinal(RealtimeEvent):
    type: Literal["transcript.final"] = "transcript.final"
    call_id: str
    segment_id: int
    text: str
    start_ms: int
    end_ms: int


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    title: str
    score: float
    reason: str
    # The passage that matched, HTML-escaped with the matched words in <mark>…</mark>.
    snippet: str = ""


class RoutingSuggestion(RealtimeEvent):
    """Departments for a request (best first, `score` the confidence in [0, 1], `reason` why). The fields
    after `departments` were added with the routing app and have defaults, so older senders stay valid:
    `outcome` is what routing did or would do (auto_dispatched, preselected, manual, emergency,
    legal_route), `external_target` the emergency number or legal route, `script` what to tell the caller,
    `rules` the names of the rules that fired, `duplicates` open tickets this one may repeat (`id` a ticket)."""

    type: Literal["routing.suggestion"] = "routing.suggestion"
    call_id: str | None
    ticket_id: int | None
    departments: list[Suggestion]
    outcome: str = ""
    external_target: str = ""
    script: str = ""
    rules: list[str] = []
    duplicates: list[Suggestion] = []


class ProactiveAlertRaised(RealtimeEvent):
    """未诉先办: `count` tickets about one place and category within `window_days` days, to the supervisors."""

    type: Literal["routing.proactive_alert"] = "routing.proactive_alert"
    alert_id: int
    region_id: int
    region_name: str
    category_id: int
    category_name: str
    ticket_ids: list[int]
    count: int
    window_days: int
    text: str
    raised_at: datetime


class KnowledgeSuggestion(RealtimeEvent):
    type: Literal["knowledge.suggestion"] = "knowledge.suggestion"
    call_id: str | None
    ticket_id: int | None
    articles: list[Suggestion]


class CatchupComplete(RealtimeEvent):
    type: Literal["catchup.complete"] = "catchup.complete"
    last_event_id: int
    count: int
    # More was missed than one catch-up sends: the screen should reload its state over HTTP.
    truncated: bool = False


class Heartbeat(RealtimeEvent):
    type: Literal["heartbeat"] = "heartbeat"
    at: datetime


class Pong(RealtimeEvent):
    type: Literal["pong"] = "pong"


class ErrorMessage(RealtimeEvent):
    type: Literal["error"] = "error"
    code: str
    detail: str


EVENT_TYPES: dict[str, type[RealtimeEvent]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        TicketCreated,
        TicketTransitioned,
        TicketUpdated,
        TicketNoteAdded,
        TicketDeadlineMarked,
        TicketActivity,
        PublicTicketUpdate,
        CallStarted,
        CallEnded,
        CallStateChanged,
        CallAlert,
        AgentStateChanged,
        TranscriptPartial,
        TranscriptFinal,
        RoutingSuggestion,
        ProactiveAlertRaised,
        KnowledgeSuggestion,
        CatchupComplete,
        Heartbeat,
        Pong,
        ErrorMessage,
    )
}


def parse(payload: dict[str, Any]) -> RealtimeEvent:
    """Validate a received payload against its type's schema (for tests and clients written in Python)."""
    return EVENT_TYPES[payload["type"]].model_validate(payload)
