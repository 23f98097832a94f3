"""Agent seat states: available for the next call, on a call, wrapping one up, or away from the seat.

The calls set most of them: a call ringing at an agent's seat or answered there puts the agent on the call; the
caller hanging up starts the wrap-up (话后处理), which ends when the agent says so, when the ticket of the call is
completed at the desk, or after `AGENT_WRAP_UP_SECONDS` (read as over by the selectors, and settled by the next
write). The agent sets available, away and wrap-up at the desk; "on a call" comes only from a call.

Every change goes to the supervisors' board and to the agent's own desk (`agent.state`) after commit. The call
services call the hooks here inside their own transaction, so a call and its agent's state change together.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction

from hotline import clock
from hotline.errors import ApplicationError, Conflict, NotPermitted
from hotline.realtime import events as rt
from hotline.realtime import groups
from hotline.realtime.broadcast import broadcast_on_commit
from ticketing.models import User

from . import selectors
from .models import AgentState, AgentStateKind, Call, CallStatus

logger = logging.getLogger(__name__)

# What the agent may choose at the desk; on_call comes from the calls.
AGENT_CHOICES = frozenset({AgentStateKind.AVAILABLE, AgentStateKind.WRAP_UP, AgentStateKind.AWAY})


def _locked(agent_id: int) -> AgentState:
    """The agent's row, locked; made (as away: nobody said they are at the seat) the first time."""
    row = AgentState.objects.select_for_update().filter(agent_id=agent_id).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            AgentState.objects.create(agent_id=agent_id, state=AgentStateKind.AWAY, since=clock.now())
    except IntegrityError:
        pass  # made meanwhile by another request for the same agent
    return AgentState.objects.select_for_update().get(agent_id=agent_id)


def _expired_wrap_up(row: AgentState) -> bool:
    return (
        row.state == AgentStateKind.WRAP_UP
        and row.since + timedelta(seconds=selectors.wrap_up_seconds()) <= clock.now()
    )


def _broadcast(row: AgentState, *, call_uuid: str | None, reason: str) -> None:
    agent = User.objects.only("id", "username", "full_name").get(pk=row.agent_id)
    broadcast_on_commit(
        rt.AgentStateChanged(
            agent_id=row.agent_id,
            agent_name=str(agent),
            state=row.state,  # type: ignore[arg-type]
            since=row.since,
            call_id=call_uuid,
            reason=reason,
        ),
        groups.supervisors(),
        groups.agent(row.agent_id),
    )
    logger.info("agent %s is now %s (%s)", row.agent_id, row.state, reason)


def _change(row: AgentState, *, state: str, call: Call | None, reason: str) -> bool:
    """Move the row to `state`; tell the board and the desk after commit. False when nothing changed."""
    call_id = call.id if call is not None else None
    if row.state == state and row.call_id == call_id:
        return False
    row.state = state
    row.call = call
    row.since = clock.now()
    row.save(update_fields=["state", "call", "since"])
    _broadcast(row, call_uuid=call.call_uuid if call is not None else None, reason=reason)
    return True


@transaction.atomic
def agent_state_set(*, actor: User, state: str) -> AgentState:
    """The agent's own choice at the desk: available, away, or (more time for) wrap-up."""
    if not selectors.may_drive_calls(actor):
        raise NotPermitted("只有热线中心人员有坐席状态。")
    if state == AgentStateKind.ON_CALL:
        raise ApplicationError("“通话中”由来电自动设置，不能手动选择。", code="invalid_state", extra={"field": "state"})
    if state not in AGENT_CHOICES:
        raise ApplicationError("坐席状态无效。", code="invalid_state", extra={"field": "state"})
    row = _locked(actor.id)
    on_a_live_call = (
        row.state == AgentStateKind.ON_CALL
        and row.call_id is not None
        and Call.objects.filter(pk=row.call_id).exclude(status=CallStatus.ENDED).exists()
    )
    if on_a_live_call:
        raise Conflict("正在通话中，挂机后才能切换状态。", code="agent_on_call")
    if state == AgentStateKind.WRAP_UP and row.state == AgentStateKind.WRAP_UP:
        # Asked again: the agent wants more time for the same call, so its clock starts over.
        row.since = clock.now()
        row.save(update_fields=["since"])
        call_uuid = row.call.call_uuid if row.call is not None else None
        _broadcast(row, call_uuid=call_uuid, reason="agent")
        return row
    reason = "wrap_up_elapsed" if state == AgentStateKind.AVAILABLE and _expired_wrap_up(row) else "agent"
    _change(row, state=state, call=None, reason=reason)
    return row


def agent_call_assigned(*, call: Call, reason: str) -> None:
    """A call rings at the agent's seat or is answered or transferred there: the agent is on it, whatever they
    were doing (the PBX decides who gets a call). Called inside the call service's transaction."""
    if call.agent_id is None or call.status == CallStatus.ENDED:
        return
    row = _locked(call.agent_id)
    _change(row, state=AgentStateKind.ON_CALL, call=call, reason=reason)


def agent_call_released(*, call: Call, agent_id: int) -> None:
    """The call left the agent before it ended (transferred to another seat): they are free again."""
    row = _locked(agent_id)
    if row.call_id == call.id and row.state == AgentStateKind.ON_CALL:
        _change(row, state=AgentStateKind.AVAILABLE, call=None, reason="transferred")


def agent_call_ended(*, call: Call) -> None:
    """The caller hung up: the agent on this call starts its wrap-up (straight to available when the centre
    gives none). An agent on another call by now is left alone."""
    if call.agent_id is None:
        return
    row = _locked(call.agent_id)
    if row.call_id != call.id or row.state != AgentStateKind.ON_CALL:
        return
    if selectors.wrap_up_seconds() == 0:
        _change(row, state=AgentStateKind.AVAILABLE, call=None, reason="hung_up")
    else:
        _change(row, state=AgentStateKind.WRAP_UP, call=call, reason="hung_up")


def agent_ticket_completed(*, actor: User, ticket_id: int) -> None:
    """The agent finished the ticket of the call they are wrapping up (answered, dispatched, transferred,
    merged): the wrap-up is over. During the call, or for another ticket, nothing changes."""
    row = AgentState.objects.select_for_update().filter(agent_id=actor.id).first()
    if row is None or row.state != AgentStateKind.WRAP_UP or row.call_id is None:
        return
    if Call.objects.filter(pk=row.call_id, ticket_id=ticket_id).exists():
        _change(row, state=AgentStateKind.AVAILABLE, call=None, reason="ticket_completed")
