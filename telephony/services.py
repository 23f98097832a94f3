"""Writes on calls. Every door (AudioSocket, WebSocket audio, SIP, CTI) calls these; none writes models.

Call and transcript events go to the agent's screen and the supervisor board after commit; partial
transcripts are not stored (only final segments are), so they are sent at once.
"""

import logging
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from hotline import clock
from hotline.errors import ApplicationError, Conflict, NotFound
from hotline.realtime import events as rt
from hotline.realtime import groups
from hotline.realtime.broadcast import broadcast_on_commit
from ticketing.masking import mask_phone
from ticketing.models import User

from . import agents, selectors
from .models import Call, CallEvent, CallEventKind, CallStatus, Door, Dtmf, TranscriptSegment, TranscriptStatus

logger = logging.getLogger(__name__)

DTMF_DIGITS = frozenset("0123456789*#ABCD")


def _call_groups(call: Call) -> list[str]:
    names = [groups.supervisors()]
    if call.agent_id:
        names.append(groups.agent(call.agent_id))
    return names


def _trail(call: Call, kind: str, *, data: dict[str, object] | None = None) -> CallEvent:
    return CallEvent.objects.create(
        call=call,
        kind=kind,
        occurred_at=clock.now(),
        agent_id=call.agent_id,
        agent_extension=call.agent_extension,
        data=data or {},
    )


def _state_changed(call: Call, event: str, *, extra_groups: tuple[str, ...] = ()) -> None:
    broadcast_on_commit(
        rt.CallStateChanged(
            call_id=call.call_uuid,
            event=event,  # type: ignore[arg-type]
            status=call.status,
            agent_id=call.agent_id,
            agent_extension=call.agent_extension,
            occurred_at=clock.now(),
        ),
        *_call_groups(call),
        *extra_groups,
    )


def _fill_draft_on_commit(call: Call) -> None:
    """The agent is known now: what was heard before gets its ticket draft. After commit and robust, so a
    failing fill is logged and never undoes the call event."""
    from . import drafting  # drafting raises alerts through these services

    call_id = call.id
    transaction.on_commit(lambda: drafting.call_draft_fill(call_id=call_id), robust=True)


def recording_path(call: Call) -> Path:
    """Where the call's audio is written: under MEDIA_ROOT, by day, named by the call id."""
    return Path(settings.MEDIA_ROOT) / call.audio_path


@transaction.atomic
def call_start(
    *,
    call_uuid: str,
    door: str,
    hotline_line: str,
    caller_number: str,
    agent: User | None = None,
    agent_extension: str = "",
    sample_rate: int = 8000,
    live_transcript: bool,
) -> Call:
    """A call arrives. `live_transcript` says whether a speech model is there to transcribe it as it goes;
    without one the call still works, its audio is recorded and it waits for `transcribe_pending`."""
    if door not in Door.values:
        raise ApplicationError("未知的接入方式。", code="invalid_door")
    if hotline_line not in settings.HOTLINE_LINES:
        raise ApplicationError(f"热线号码 {hotline_line} 未开通。", code="unknown_hotline_line")
    now = clock.now()
    has_audio = door != Door.CTI
    try:
        with transaction.atomic():
            call = Call.objects.create(
                call_uuid=call_uuid,
                door=door,
                hotline_line=hotline_line,
                caller_number=caller_number.strip(),
                agent=agent,
                agent_extension=agent_extension,
                status=CallStatus.RINGING,
                started_at=now,
                sample_rate=sample_rate,
                audio_path=f"calls/{now:%Y/%m/%d}/{call_uuid}.wav" if has_audio else "",
                transcript_status=(
                    TranscriptStatus.LIVE
                    if has_audio and live_transcript
                    else TranscriptStatus.PENDING
                    if has_audio
                    else TranscriptStatus.UNAVAILABLE
                ),
            )
    except IntegrityError:
        raise ApplicationError("该通话已存在。", code="duplicate_call", extra={"call_uuid": call_uuid}) from None
    _trail(call, CallEventKind.RINGING, data={"door": door})
    broadcast_on_commit(
        rt.CallStarted(
            call_id=call.call_uuid,
            hotline_line=hotline_line,
            caller_masked=mask_phone(call.caller_number),
            agent_id=call.agent_id,
            started_at=now,
        ),
        *_call_groups(call),
    )
    agents.agent_call_assigned(call=call, reason="ringing")
    logger.info("call %s started on %s via %s", call.call_uuid, hotline_line, door)
    return call


def agent_for_call(*, user_id: int | None) -> User | None:
    """The agent a door or the PBX names for a call: none, or active hotline centre staff."""
    if user_id is None:
        return None
    agent = selectors.call_agent(user_id=user_id)
    if agent is None:
        raise ApplicationError("坐席不存在或不是热线中心人员。", code="unknown_agent", extra={"field": "agent"})
    return agent


def call_ring(
    *, call_uuid: str, hotline_line: str, caller_number: str, agent_id: int | None, agent_extension: str
) -> tuple[Call, bool]:
    """The PBX reports ringing: the call a door already created (an audio fork can start first), or a new
    audio-less CTI call. Returns the call and whether this created it. For a call a door created, the PBX
    knows what the door did not: the agent and extension are filled in where the door left them blank."""
    agent = agent_for_call(user_id=agent_id)
    if Call.objects.filter(call_uuid=call_uuid).exists():
        return _ring_existing(call_uuid=call_uuid, agent=agent, agent_extension=agent_extension), False
    try:
        call = call_start(
            call_uuid=call_uuid,
            door=Door.CTI,
            hotline_line=hotline_line,
            caller_number=caller_number,
            agent=agent,
            agent_extension=agent_extension,
            live_transcript=False,
        )
    except ApplicationError as error:
        # The same ringing reported twice at once: the other request created it.
        if error.code != "duplicate_call":
            raise
        return _ring_existing(call_uuid=call_uuid, agent=agent, agent_extension=agent_extension), False
    return call, True


@transaction.atomic
def _ring_existing(*, call_uuid: str, agent: User | None, agent_extension: str) -> Call:
    call = Call.objects.select_for_update().get(call_uuid=call_uuid)
    changed = []
    if agent is not None and call.agent_id is None:
        call.agent = agent
        changed.append("agent")
    if agent_extension and not call.agent_extension:
        call.agent_extension = agent_extension
        changed.append("agent_extension")
    if changed:
        call.save(update_fields=changed)
        _trail(call, CallEventKind.RINGING, data={"source": "cti", "filled": changed})
        if agent is not None and "agent" in changed:
            # The agent's screen learns of the call now, as it would have at the start.
            broadcast_on_commit(
                rt.CallStarted(
                    call_id=call.call_uuid,
                    hotline_line=call.hotline_line,
                    caller_masked=mask_phone(call.caller_number),
                    agent_id=call.agent_id,
                    started_at=call.started_at,
                ),
                groups.agent(agent.id),
            )
            agents.agent_call_assigned(call=call, reason="ringing")
            _fill_draft_on_commit(call)
    return call


def _locked(call_id: int) -> Call:
    try:
        return Call.objects.select_for_update().get(pk=call_id)
    except Call.DoesNotExist:
        raise NotFound("通话不存在。") from None


@transaction.atomic
def call_answer(*, call_id: int) -> Call:
    """Ringing to active (answered), or held to active (resumed); an answer seen twice changes nothing."""
    call = _locked(call_id)
    if call.status == CallStatus.RINGING:
        call.status = CallStatus.ACTIVE
        call.answered_at = clock.now()
        call.save(update_fields=["status", "answered_at"])
        _trail(call, CallEventKind.ANSWERED)
        _state_changed(call, "answered")
        agents.agent_call_assigned(call=call, reason="answered")
    elif call.status == CallStatus.HELD:
        call.status = CallStatus.ACTIVE
        call.save(update_fields=["status"])
        _trail(call, CallEventKind.RESUMED)
        _state_changed(call, "resumed")
    return call


@transaction.atomic
def call_hold(*, call_id: int) -> Call:
    call = _locked(call_id)
    if call.status == CallStatus.HELD:
        return call
    if call.status != CallStatus.ACTIVE:
        raise Conflict("只有通话中的电话可以保持。", code="call_not_active", extra={"status": call.status})
    call.status = CallStatus.HELD
    call.save(update_fields=["status"])
    _trail(call, CallEventKind.HELD)
    _state_changed(call, "held")
    return call


@transaction.atomic
def call_transfer(*, call_id: int, agent_id: int | None, agent_extension: str) -> Call:
    """The PBX moved the call to another seat: the new agent's screen gets it, the old one is told."""
    call = _locked(call_id)
    if call.status == CallStatus.ENDED:
        raise Conflict("通话已结束，不能转接。", code="call_ended")
    if agent_id is None and not agent_extension:
        raise ApplicationError("转接必须给出目标坐席或分机。", code="transfer_target_missing", extra={"field": "agent"})
    agent = agent_for_call(user_id=agent_id)
    previous = {"agent": call.agent_id, "agent_extension": call.agent_extension}
    old_agent_id = call.agent_id if call.agent_id and call.agent_id != agent_id else None
    old_groups = (groups.agent(old_agent_id),) if old_agent_id else ()
    call.agent = agent
    call.agent_extension = agent_extension
    call.save(update_fields=["agent", "agent_extension"])
    _trail(call, CallEventKind.TRANSFERRED, data={"from": previous})
    _state_changed(call, "transferred", extra_groups=old_groups)
    if old_agent_id:
        agents.agent_call_released(call=call, agent_id=old_agent_id)
    agents.agent_call_assigned(call=call, reason="transferred")
    if agent is not None:
        _fill_draft_on_commit(call)
    logger.info("call %s transferred to extension %s", call.call_uuid, agent_extension or "-")
    return call


@transaction.atomic
def call_prompt_played(*, call_id: int, prompt: str) -> CallEvent:
    """A spoken prompt went out to the caller (greeting, ticket number, status, callback question)."""
    return _trail(_locked(call_id), CallEventKind.PROMPT, data={"prompt": prompt})


@transaction.atomic
def call_alert(*, call_id: int, kind: str, words: list[str], text: str) -> CallEvent:
    """Raise an alert on the agent's screen (emergency words heard: transfer at once) and keep it in the trail."""
    call = _locked(call_id)
    event = _trail(call, CallEventKind.ALERT, data={"kind": kind, "words": words})
    broadcast_on_commit(
        rt.CallAlert(call_id=call.call_uuid, kind=kind, words=words, text=text, occurred_at=event.occurred_at),
        *_call_groups(call),
    )
    logger.warning("call %s: %s alert raised", call.call_uuid, kind)
    return event


@transaction.atomic
def call_end(*, call_id: int, reason: str) -> Call:
    """Idempotent: a hang-up seen twice (PBX event and socket close) ends the call once."""
    call = _locked(call_id)
    if call.status == CallStatus.ENDED:
        return call
    call.status = CallStatus.ENDED
    call.ended_at = clock.now()
    call.end_reason = reason[:64]
    call.save(update_fields=["status", "ended_at", "end_reason"])
    _trail(call, CallEventKind.HUNG_UP, data={"reason": call.end_reason})
    broadcast_on_commit(
        rt.CallEnded(call_id=call.call_uuid, ended_at=call.ended_at, ticket_id=call.ticket_id), *_call_groups(call)
    )
    agents.agent_call_ended(call=call)
    logger.info("call %s ended: %s", call.call_uuid, call.end_reason)
    return call


def call_partial(*, call_id: int, text: str, audio_ms: int) -> None:
    """What the caller is saying now; shown on the agent's screen, not stored. The agent is read each time:
    ringing or a transfer may have given the call to someone since it started."""
    call = Call.objects.only("id", "call_uuid", "agent_id").filter(pk=call_id).first()
    if call is None:
        return
    broadcast_on_commit(rt.TranscriptPartial(call_id=call.call_uuid, text=text, audio_ms=audio_ms), *_call_groups(call))


@transaction.atomic
def call_segment_add(*, call_id: int, index: int, text: str, start_ms: int, end_ms: int) -> TranscriptSegment:
    """A final transcript segment; the same index again (a retried worker) keeps the first."""
    call = _locked(call_id)
    if end_ms < start_ms:
        raise ApplicationError("片段结束时间早于开始时间。", code="invalid_segment")
    segment, created = TranscriptSegment.objects.get_or_create(
        call=call, index=index, defaults={"text": text, "start_ms": start_ms, "end_ms": end_ms}
    )
    if created:
        broadcast_on_commit(
            rt.TranscriptFinal(
                call_id=call.call_uuid, segment_id=segment.id, text=text, start_ms=start_ms, end_ms=end_ms
            ),
            *_call_groups(call),
        )
    return segment


@transaction.atomic
def call_dtmf_add(*, call_id: int, digit: str, at_ms: int) -> Dtmf:
    if digit not in DTMF_DIGITS or len(digit) != 1:
        raise ApplicationError("无效的按键。", code="invalid_dtmf")
    return Dtmf.objects.create(call=_locked(call_id), digit=digit, at_ms=at_ms)


@transaction.atomic
def call_transcript_status_set(*, call_id: int, status: str) -> Call:
    if status not in TranscriptStatus.values:
        raise ApplicationError("无效的转写状态。", code="invalid_transcript_status")
    call = _locked(call_id)
    call.transcript_status = status
    call.save(update_fields=["transcript_status"])
    return call
