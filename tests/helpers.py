"""Drive tickets through the real services to any state."""

from typing import Any

from ticketing import services
from ticketing.models import Ticket
from ticketing.services import TicketInput
from ticketing.workflow import Status, Transition

TICKET_FIELDS = {
    "channel": "phone",
    "appeal_type": "complaint",
    "title": "小区夜间施工噪音扰民",
    "content": "幸福小区东门工地每天夜里十一点后还在施工，噪音很大，影响休息。",
    "location_text": "幸福小区东门",
    "caller_name": "张三",
    "caller_phone": "13812345678",
}


def ticket_payload(**overrides: Any) -> dict[str, Any]:
    """A create request body for the API."""
    return {**TICKET_FIELDS, **overrides}


def ticket_input(**overrides: Any) -> TicketInput:
    """The same request as the services take it."""
    return TicketInput(**{"hotline_line": "12345", **TICKET_FIELDS, **overrides})


def transition_body(org, transition: Transition, *, into_ticket_id: int = 1) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A body each transition endpoint accepts, so only the ticket's state or the actor can refuse it."""
    return {
        Transition.SUBMIT: {},
        Transition.INSTANT_REPLY: {"reply_text": "已告知办理渠道。"},
        Transition.DISPATCH: {"lead_department": org.bureau.id},
        Transition.ACCEPT: {},
        Transition.RETURN: {"reason": "不属于本单位职责。"},
        Transition.APPROVE_RETURN: {"note": "同意退单。"},
        Transition.REJECT_RETURN: {"reason": "属于本单位职责，请办理。"},
        Transition.REASSIGN: {"lead_department": org.other_bureau.id, "reason": "职责调整。"},
        Transition.REQUEST_EXTENSION: {"working_days": 3, "reason": "需要现场勘查。"},
        Transition.APPROVE_EXTENSION: {"note": "同意。"},
        Transition.REJECT_EXTENSION: {"note": "理由不充分。"},
        Transition.SUSPEND: {"reason": "等待来电人提供购房合同。"},
        Transition.RESUME: {"note": "材料已补齐。"},
        Transition.REPLY: {"reply_text": "已责令停止夜间施工。", "result": "solved"},
        Transition.APPROVE_REPLY: {},
        Transition.REJECT_REPLY: {"reason": "答复不完整。"},
        Transition.CLOSE: {"satisfaction": "satisfied"},
        Transition.REOPEN: {"comment": "问题没有解决。"},
        Transition.MERGE: {"into_ticket": into_ticket_id},
        Transition.TRANSFER: {"target": "110"},
        Transition.CANCEL: {"reason": "来电人撤回诉求。"},
    }[transition]


def make_ticket(org, status: Status = Status.PENDING_DISPATCH, *, department=None, agent=None, **overrides) -> Ticket:  # type: ignore[no-untyped-def]
    """A ticket in `status`, made and moved by the org's users through services.

    `department` is the lead department for states past dispatch (default: org.bureau).
    """
    agent = agent or org.agent
    department = department or org.bureau
    handler = org.handler_for(department)
    draft = status == Status.DRAFT
    ticket = services.ticket_create(data=ticket_input(**overrides), actor=agent, draft=draft)
    if status in (Status.DRAFT, Status.PENDING_DISPATCH):
        return ticket
    if status == Status.MERGED:
        into = services.ticket_create(data=ticket_input(title="并单目标"), actor=agent)
        return services.ticket_merge(ticket_id=ticket.id, actor=agent, into_ticket_id=into.id)
    if status == Status.TRANSFERRED:
        return services.ticket_transfer(ticket_id=ticket.id, actor=agent, target="110")
    if status == Status.CANCELLED:
        return services.ticket_cancel(ticket_id=ticket.id, actor=agent, reason="来电人撤回诉求")
    ticket = services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=department.id)
    if status == Status.DISPATCHED:
        return ticket
    if status == Status.RETURN_PENDING:
        return services.ticket_return(ticket_id=ticket.id, actor=handler, reason="不属于本单位职责。")
    ticket = services.ticket_accept(ticket_id=ticket.id, actor=handler)
    if status == Status.ACCEPTED:
        return ticket
    if status == Status.SUSPENDED:
        return services.ticket_suspend(ticket_id=ticket.id, actor=handler, reason="等待来电人提供购房合同。")
    ticket = services.ticket_reply(
        ticket_id=ticket.id, actor=handler, reply_text="已责令停止夜间施工。", result="solved"
    )
    if status == Status.REPLIED:
        return ticket
    ticket = services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)
    if status == Status.CALLBACK:
        return ticket
    ticket = services.ticket_close(ticket_id=ticket.id, actor=org.agent, satisfaction="satisfied")
    assert ticket.status == Status.CLOSED == status
    return ticket
