"""Stored ticket events as realtime messages, and who receives them.

The same functions build the payload when an event is broadcast after commit and when a reconnecting
screen catches up from the database, so both paths deliver identical messages.
"""

from collections.abc import Iterable
from typing import Any

from hotline.realtime import events as rt
from hotline.realtime import groups

from .models import (
    EVENT_CREATED,
    EVENT_DEADLINE,
    EVENT_NOTE,
    EVENT_UPDATED,
    Department,
    Ticket,
    TicketEvent,
)
from .workflow import Status, Transition

TRANSITIONS = frozenset(Transition.values)

# What a citizen reads for each state (plain language; no internal review steps).
PUBLIC_STATUS = {
    Status.DRAFT: "受理中",
    Status.PENDING_DISPATCH: "已受理，等待转交",
    Status.RETURN_PENDING: "办理中",
    Status.DISPATCHED: "办理中",
    Status.ACCEPTED: "办理中",
    Status.SUSPENDED: "办理中，等待您补充材料或约定时间",
    Status.REPLIED: "办理中",
    Status.CALLBACK: "已答复",
    Status.CLOSED: "已办结",
    Status.MERGED: "已与相同诉求合并办理",
    Status.TRANSFERRED: "已转交其他渠道",
    Status.CANCELLED: "已撤销",
}

# Trail entries a citizen sees, and the step each one is. Everything else (returns, internal review,
# notes, extensions asked but not granted, contact look-ups) stays internal.
PUBLIC_STEPS = {
    Transition.SUBMIT.value: "received",
    Transition.DISPATCH.value: "dispatched",
    Transition.REASSIGN.value: "dispatched",
    Transition.REOPEN.value: "dispatched",
    Transition.ACCEPT.value: "accepted",
    Transition.APPROVE_EXTENSION.value: "extended",
    Transition.APPROVE_REPLY.value: "replied",
    Transition.INSTANT_REPLY.value: "replied",
    Transition.CLOSE.value: "closed",
    Transition.MERGE.value: "merged",
    Transition.TRANSFER.value: "transferred",
    Transition.CANCEL.value: "cancelled",
}


def staff_event(event: TicketEvent, ticket: Ticket) -> rt.RealtimeEvent:
    common: dict[str, Any] = {
        "event_id": event.id,
        "ticket_id": ticket.id,
        "number": ticket.number,
        "occurred_at": event.created_at,
    }
    if event.kind == EVENT_CREATED:
        return rt.TicketCreated(
            **common,
            status=event.to_status,
            hotline_line=event.data["hotline_line"],
            channel=event.data["channel"],
            appeal_type=event.data["appeal_type"],
            urgency=event.data["urgency"],
            title=event.data["title"],
            created_by_id=event.actor_id,
        )
    if event.kind in TRANSITIONS:
        return rt.TicketTransitioned(
            **common,
            transition=event.kind,
            from_status=event.from_status,
            to_status=event.to_status,
            actor_id=event.actor_id,
            lead_department_id=event.data.get("lead_department"),
            data=event.data,
        )
    if event.kind == EVENT_UPDATED:
        return rt.TicketUpdated(**common, fields=event.data.get("fields", []), actor_id=event.actor_id)
    if event.kind == EVENT_NOTE:
        return rt.TicketNoteAdded(**common, author_id=event.actor_id, text=event.data.get("text", ""))
    if event.kind == EVENT_DEADLINE:
        return rt.TicketDeadlineMarked(
            **common,
            mark=event.data["mark"],
            deadline=event.data["deadline"],
            due_at=event.data["due_at"],
            lead_department_id=event.data.get("department"),
        )
    return rt.TicketActivity(**common, kind=event.kind, actor_id=event.actor_id, data=event.data)


def public_step(event: TicketEvent) -> str | None:
    if event.kind == EVENT_CREATED:
        # A draft becomes visible to the citizen when intake submits it.
        return "received" if event.to_status != Status.DRAFT else None
    return PUBLIC_STEPS.get(event.kind)


def public_event(event: TicketEvent, ticket: Ticket, department_names: dict[int, str]) -> rt.PublicTicketUpdate | None:
    step = public_step(event)
    if step is None:
        return None
    department_id = event.data.get("lead_department") or event.data.get("department")
    return rt.PublicTicketUpdate(
        event_id=event.id,
        number=ticket.number,
        step=step,
        status=event.to_status,
        status_display=PUBLIC_STATUS[Status(event.to_status)],
        department=department_names.get(department_id) if department_id else None,
        reply=event.data.get("reply_text") if step == "replied" else None,
        occurred_at=event.created_at,
    )


def department_names_for(events: Iterable[TicketEvent]) -> dict[int, str]:
    ids = {e.data.get("lead_department") or e.data.get("department") for e in events}
    ids.discard(None)
    return dict(Department.objects.filter(id__in=ids).values_list("id", "name"))


def staff_groups(ticket: Ticket, department_ids: Iterable[int]) -> list[str]:
    names = [groups.ticket(ticket.id), groups.supervisors()]
    if ticket.created_by_id:
        names.append(groups.agent(ticket.created_by_id))
    names.extend(groups.department(d) for d in sorted(set(department_ids)))
    return names
