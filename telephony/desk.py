"""What the agent desk does in one step: each action is one transaction over the ticketing (and knowledge-base)
services, and finishes the agent's wrap-up when it completes the ticket of the call being wrapped up.

- instant reply: the ticket is answered and closed; the article the answer came from is recorded as used;
- dispatch: a draft is submitted and sent to the lead department with its assisting departments (the agent on
  the call dispatches; the dispatchers work the queue of what was submitted without a department);
- transfer: an emergency to 110/119/120/122, or a matter with a legal route (litigation, arbitration,
  petition, disclosure);
- merge: a repeat call joins the open ticket it repeats.

`call_ticket_create` makes the call's ticket from the desk's form when the transcript did not (a call without
audio, or before anyone spoke), linked to the call like the draft the filler makes.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from hotline.errors import Conflict, NotFound, NotPermitted
from knowledge_base import services as kb_services
from ticketing import selectors as ticket_selectors
from ticketing import services as ticket_services
from ticketing.models import Channel, Ticket, User
from ticketing.workflow import Status

from . import agents, selectors
from .models import Call

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeskResult:
    ticket: Ticket
    # dispatched, instant_reply, transferred, merged
    outcome: str
    message: str


def _require_staff(actor: User) -> None:
    if not selectors.may_drive_calls(actor):
        raise NotPermitted("坐席工作台供热线中心人员使用。")


def _status(*, ticket_id: int, actor: User) -> str:
    status = ticket_selectors.ticket_visible_to(user=actor).filter(pk=ticket_id).values_list("status", flat=True)
    found = status.first()
    if found is None:
        raise NotFound("工单不存在，或您无权查看。")
    return found


@transaction.atomic
def desk_instant_reply(*, ticket_id: int, actor: User, reply_text: str, article_id: int | None) -> DeskResult:
    _require_staff(actor)
    ticket = ticket_services.ticket_instant_reply(ticket_id=ticket_id, actor=actor, reply_text=reply_text)
    if article_id is not None:
        kb_services.article_use_record(article_id=article_id, ticket_id=ticket.id, actor=actor)
    agents.agent_ticket_completed(actor=actor, ticket_id=ticket.id)
    return DeskResult(ticket, "instant_reply", f"工单 {ticket.number} 已即时答复办结。")


@transaction.atomic
def desk_dispatch(
    *, ticket_id: int, actor: User, lead_department_id: int, assisting_department_ids: Sequence[int], note: str
) -> DeskResult:
    _require_staff(actor)
    if _status(ticket_id=ticket_id, actor=actor) == Status.DRAFT:
        ticket_services.ticket_submit(ticket_id=ticket_id, actor=actor)
    ticket = ticket_services.ticket_dispatch(
        ticket_id=ticket_id,
        actor=actor,
        lead_department_id=lead_department_id,
        assisting_department_ids=assisting_department_ids,
        note=note,
    )
    assert ticket.lead_department is not None
    outcome, message = "dispatched", f"工单 {ticket.number} 已派至{ticket.lead_department.name}。"
    agents.agent_ticket_completed(actor=actor, ticket_id=ticket_id)
    return DeskResult(ticket, outcome, message)


@transaction.atomic
def desk_transfer(*, ticket_id: int, actor: User, target: str, note: str) -> DeskResult:
    _require_staff(actor)
    ticket = ticket_services.ticket_transfer(ticket_id=ticket_id, actor=actor, target=target, note=note)
    agents.agent_ticket_completed(actor=actor, ticket_id=ticket.id)
    return DeskResult(ticket, "transferred", f"工单 {ticket.number} 已转{ticket.get_external_target_display()}。")


@transaction.atomic
def desk_merge(*, ticket_id: int, actor: User, into_ticket_id: int, note: str) -> DeskResult:
    _require_staff(actor)
    ticket = ticket_services.ticket_merge(ticket_id=ticket_id, actor=actor, into_ticket_id=into_ticket_id, note=note)
    agents.agent_ticket_completed(actor=actor, ticket_id=ticket.id)
    into = ticket.merged_into
    assert into is not None
    return DeskResult(ticket, "merged", f"工单 {ticket.number} 已并入 {into.number}。")


@transaction.atomic
def call_ticket_create(*, call_id: int, actor: User, data: ticket_services.TicketInput) -> Ticket:
    """The call's ticket from the desk's form, as a draft linked to the call. A call has one ticket: when the
    filler (or another desk) made it first, the answer is a conflict naming it."""
    _require_staff(actor)
    call = Call.objects.select_for_update().filter(pk=call_id).first()
    if call is None:
        raise NotFound("通话不存在。")
    if call.ticket_id is not None:
        raise Conflict("该通话已有工单。", code="call_has_ticket", extra={"ticket": call.ticket_id})
    ticket = ticket_services.ticket_create(
        data=ticket_services.TicketInput(
            hotline_line=call.hotline_line,
            channel=Channel.PHONE,
            appeal_type=data.appeal_type,
            title=data.title,
            content=data.content,
            urgency=data.urgency,
            category_id=data.category_id,
            region_id=data.region_id,
            location_text=data.location_text,
            caller_name=data.caller_name,
            caller_phone=data.caller_phone or call.caller_number,
            caller_confidential=data.caller_confidential,
            extra={"call_id": call.call_uuid},
        ),
        actor=actor,
        draft=True,
    )
    call.ticket = ticket
    # The filler goes on writing as this agent, into the fields it finds empty (it wrote none of these).
    call.draft_fields = {**(call.draft_fields or {}), "owner": actor.id, "set": {}}
    call.save(update_fields=["ticket", "draft_fields"])
    logger.info("call %s: ticket %s created at the desk", call.call_uuid, ticket.number)
    return ticket
