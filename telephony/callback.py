"""The automated voice callback (语音自动回访): placing the calls and the dialogue on each one.

Placing: `dial_round()` (run by `manage.py run_voice_callbacks`) counts voice calls that never reported
back as unanswered, then, within `CALLBACK_VOICE_HOURS`, takes the pending voice tasks that are due, marks
each calling (one more attempt, `ticketing.callbacks.callback_voice_dial`) and originates the call through
Asterisk's AMI (`originate.py`). The call's UUID names the task: it carries the task id and the attempt,
signed with SECRET_KEY, so a door knows which task a call is for and a stale or forged UUID is refused.
Asterisk's dialplan hands the answered callee to the AudioSocket door with that UUID; a WebSocket audio
stream started with it as its `call_id` is served the same way.

On the call (`attach()`, called by the door when the call starts): the callee hears the ticket and a summary
of the reply, then "满意请按1，基本满意请按2，不满意请按3" (pyttsx3). Keys (DTMF over the door) or speech (the
keywords 满意 / 基本满意 / 不满意 in a final transcript segment) answer it; a wrong key or silence repeats
the question once. The answer is recorded through `callback_record` (dissatisfied reopens the ticket, the
comment saying it came by keypad or quoting what was said); no answer, or a hang-up before one, through
`callback_unreachable`. Then the caller thanks the callee and hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from hotline import clock
from hotline.errors import ApplicationError
from ticketing import callbacks
from ticketing.calendar import TZ
from ticketing.callback_selectors import (
    VoiceCallbackContext,
    callback_voice_context,
    callback_voice_due,
    callback_voice_stalled,
)
from ticketing.masking import mask_phone
from ticketing.models import CallbackMethod, CallbackStatus, Satisfaction
from ticketing.workflow import Status

from . import originate, prompts, speech
from .models import Call, Direction
from .voice import Prompt

logger = logging.getLogger(__name__)

UUID_SALT = "telephony.callback.call-uuid"
# The question is asked at most this many times (once, then once more after silence or a wrong key).
MAX_QUESTIONS = 2
REPLY_SUMMARY_CHARS = 120

# --- the call's UUID ---------------------------------------------------------------------------------------


def _signature(head: bytes) -> bytes:
    return salted_hmac(UUID_SALT, head, algorithm="sha256").digest()[:8]


def call_uuid_for(*, task_id: int, attempt: int) -> str:
    """16 bytes: the task id (6), the attempt (2) and their signature (8), written as a UUID."""
    head = task_id.to_bytes(6, "big") + attempt.to_bytes(2, "big")
    return str(uuid.UUID(bytes=head + _signature(head)))


def task_from_call_uuid(call_uuid: str) -> tuple[int, int] | None:
    """(task id, attempt) for a UUID made by `call_uuid_for`, or None for any other call."""
    try:
        raw = uuid.UUID(call_uuid).bytes
    except ValueError:
        return None
    head, signature = raw[:8], raw[8:]
    if not constant_time_compare(signature, _signature(head)):
        return None
    return int.from_bytes(head[:6], "big"), int.from_bytes(head[6:], "big")


# --- what is said --------------------------------------------------------------------------------------------

QUESTION = Prompt(
    "callback_question",
    prompts.digits_to_chinese("满意请按1，基本满意请按2，不满意请按3。您也可以直接说满意、基本满意或不满意。"),
)
NO_ANSWER = Prompt("callback_no_answer", "没有收到您的选择。")
INVALID_KEY = Prompt("callback_invalid_key", "按键无效。")
THANKS = Prompt("callback_thanks", "感谢您的评价，再见。")
REOPENED = Prompt("callback_reopened", "您的意见已记录，我们将督促承办单位重新办理。感谢您的反馈，再见。")
GOODBYE = Prompt("callback_goodbye", "感谢您的接听，再见。")
FINISHED = Prompt("callback_finished", "本次回访已结束，感谢您的接听，再见。")

KEYS = {"1": Satisfaction.SATISFIED, "2": Satisfaction.FAIRLY_SATISFIED, "3": Satisfaction.DISSATISFIED}
KEY_COMMENTS = {
    Satisfaction.SATISFIED: "语音自动回访：群众按键 1 选择「满意」。",
    Satisfaction.FAIRLY_SATISFIED: "语音自动回访：群众按键 2 选择「基本满意」。",
    Satisfaction.DISSATISFIED: "语音自动回访：群众按键 3 选择「不满意」，未说明具体原因，请承办单位电话联系了解。",
}
# Most specific first: 不满意 and 基本满意 both contain 满意.
SPOKEN = [
    (Satisfaction.DISSATISFIED, ("不满意", "不太满意", "不大满意", "不是很满意", "不怎么满意")),
    (Satisfaction.FAIRLY_SATISFIED, ("基本满意", "比较满意", "还算满意")),
    (Satisfaction.SATISFIED, ("满意",)),
]


def summary(text: str, limit: int = REPLY_SUMMARY_CHARS) -> str:
    """The reply as read out: whole when short, else up to the last sentence end within `limit`."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = max(text.rfind(mark, 0, limit) for mark in "。！？；")
    return text[: cut + 1] if cut > limit // 3 else text[:limit] + "……"


def intro(context: VoiceCallbackContext) -> Prompt:
    line = prompts.digits_to_chinese(context.hotline_line)
    reply = summary(context.reply_text)
    return Prompt(
        "callback_intro",
        f"您好，这里是{line}政务服务便民热线，现在对您反映的问题进行回访。您反映的「{context.title}」，"
        f"承办单位答复：{reply}",
    )


def satisfaction_from_speech(text: str) -> str | None:
    said = speech.compact(text)
    for satisfaction, words in SPOKEN:
        if any(word in said for word in words):
            return satisfaction
    return None


# --- the dialogue on one call ------------------------------------------------------------------------------


class Speaker(Protocol):
    """What the session needs of the door's prompt player."""

    def say(self, prompt: Prompt, *, interrupt: bool = False) -> None: ...

    async def idle(self) -> None: ...


@dataclass
class VoiceCallbackSession:
    """The callback dialogue of one call. The door calls `start()` when the call is up, `press(digit)` for each
    key, `heard(text)` for each final transcript segment and `close()` when the call ends (always)."""

    call_id: int
    task_id: int | None
    context: VoiceCallbackContext | None
    player: Speaker
    hang_up: Callable[[], Awaitable[None]]
    asked: int = 0
    done: bool = False
    outcome: str = ""
    _timer: asyncio.Task[None] | None = field(default=None, repr=False)
    _ending: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        if self.context is None:
            # A call for a task that has since been answered another way, or already counted.
            self.done, self.outcome = True, "finished"
            self._end_with(FINISHED)
            return
        self.player.say(intro(self.context))
        self._ask(None)

    async def press(self, digit: str) -> None:
        if self.done:
            return
        satisfaction = KEYS.get(digit)
        if satisfaction is None:
            if self.asked < MAX_QUESTIONS:
                self._ask(INVALID_KEY, interrupt=True)
            else:
                await self._unanswered("invalid_keys", interrupt=True)
            return
        await self._answer(satisfaction, KEY_COMMENTS[satisfaction], via="keypad")

    async def heard(self, text: str) -> None:
        if self.done:
            return
        satisfaction = satisfaction_from_speech(text)
        if satisfaction is None:
            return
        said = speech.compact(text)[:200]
        await self._answer(satisfaction, f"语音自动回访：群众口头回答「{said}」。", via="speech")

    async def close(self) -> None:
        """The call ended. Without an answer by then, the attempt counts as unanswered."""
        for task in (self._timer, self._ending):
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()
        if not self.done:
            self.done = True
            await self._record_unanswered("hung_up")

    # internals

    def _ask(self, prefix: Prompt | None, *, interrupt: bool = False) -> None:
        self.asked += 1
        if prefix is not None:
            self.player.say(prefix, interrupt=interrupt)
            interrupt = False
        self.player.say(QUESTION, interrupt=interrupt)
        self._restart_timer()

    def _restart_timer(self) -> None:
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = asyncio.create_task(self._wait_for_answer())

    async def _wait_for_answer(self) -> None:
        await self.player.idle()
        await asyncio.sleep(float(settings.CALLBACK_VOICE_ANSWER_SECONDS))
        if self.done:
            return
        if self.asked < MAX_QUESTIONS:
            self._ask(NO_ANSWER)
        else:
            await self._unanswered("no_answer", interrupt=False)

    async def _answer(self, satisfaction: str, comment: str, *, via: str) -> None:
        self.done = True
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        assert self.task_id is not None
        try:
            await sync_to_async(callbacks.callback_record)(
                task_id=self.task_id, actor=None, satisfaction=satisfaction, comment=comment
            )
        except ApplicationError as error:
            # Answered meanwhile another way (the citizen rated online) or counted as stalled.
            logger.info("voice callback: task %s: answer by %s not recorded (%s)", self.task_id, via, error.code)
            self.outcome = "finished"
            self._end_with(GOODBYE)
            return
        self.outcome = satisfaction
        logger.info("voice callback: task %s answered by %s", self.task_id, via)
        self._end_with(REOPENED if satisfaction == Satisfaction.DISSATISFIED else THANKS)

    async def _unanswered(self, reason: str, *, interrupt: bool) -> None:
        self.done = True
        await self._record_unanswered(reason)
        self._end_with(GOODBYE, interrupt=interrupt)

    async def _record_unanswered(self, reason: str) -> None:
        assert self.task_id is not None
        self.outcome = "unanswered"
        try:
            await sync_to_async(callbacks.callback_unreachable)(task_id=self.task_id, actor=None, reason=reason)
        except ApplicationError as error:
            logger.info("voice callback: task %s: no answer not recorded (%s)", self.task_id, error.code)

    def _end_with(self, prompt: Prompt, *, interrupt: bool = True) -> None:
        async def farewell() -> None:
            self.player.say(prompt, interrupt=interrupt)
            await self.player.idle()
            await self.hang_up()

        self._ending = asyncio.create_task(farewell())


class FinalTextSink(Protocol):
    on_final: Callable[[str], Awaitable[None]] | None


def _bind_call(*, call_id: int, task_id: int, attempt: int) -> VoiceCallbackContext | None:
    """The task this call was placed for, if it still waits for this very call; the call is marked outbound
    and linked to the ticket either way, so its trail shows what it was."""
    context = callback_voice_context(task_id=task_id)
    if context is None:
        return None
    Call.objects.filter(pk=call_id).update(direction=Direction.OUTBOUND, ticket_id=context.ticket_id)
    current = (
        context.method == CallbackMethod.VOICE
        and context.status == CallbackStatus.CALLING
        and context.attempt == attempt
        and context.ticket_status == Status.CALLBACK
    )
    return context if current else None


async def attach(
    call: Call, *, pipeline: FinalTextSink, player: Speaker, hang_up: Callable[[], Awaitable[None]]
) -> VoiceCallbackSession | None:
    """For a call the automated caller placed: start the callback dialogue (instead of the greeting) and
    return it; None for every other call."""
    found = task_from_call_uuid(call.call_uuid)
    if found is None:
        return None
    task_id, attempt = found
    context = await sync_to_async(_bind_call)(call_id=call.id, task_id=task_id, attempt=attempt)
    if context is None:
        logger.info("voice callback: call %s is for task %s, which no longer waits for it", call.call_uuid, task_id)
    session = VoiceCallbackSession(call_id=call.id, task_id=task_id, context=context, player=player, hang_up=hang_up)
    pipeline.on_final = session.heard
    await session.start()
    return session


# --- placing the calls ---------------------------------------------------------------------------------------


@dataclass
class RoundReport:
    stalled: int = 0
    dialled: int = 0
    answered: int = 0
    unanswered: int = 0
    requeued: int = 0
    unknown: int = 0
    skipped: int = 0
    outside_hours: bool = False
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str, reason: str = "") -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if reason:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


def within_calling_hours(now: datetime) -> bool:
    """CALLBACK_VOICE_HOURS in local time; a window may pass midnight, and equal ends mean all day."""
    start, end = (time.fromisoformat(value) for value in settings.CALLBACK_VOICE_HOURS)
    local = now.astimezone(TZ).time()
    if start <= end:
        return start == end or start <= local < end
    return local >= start or local < end


def dialable(phone: str) -> str:
    """The digits to dial (a leading + kept); empty when there is nothing to dial."""
    phone = phone.strip()
    digits = re.sub(r"\D", "", phone)
    return ("+" + digits if phone.startswith("+") else digits) if len(digits) >= 3 else ""


def ami_config() -> originate.AmiConfig:
    url = settings.CALLBACK_AMI_URL
    if not url:
        raise ApplicationError("未配置 CALLBACK_AMI_URL，无法发起语音回访。", code="callback_ami_missing")
    try:
        return originate.parse_url(url)
    except ValueError:
        raise ApplicationError(
            "CALLBACK_AMI_URL 格式应为 tcp://用户名:密码@主机:5038。", code="callback_ami_invalid"
        ) from None


async def _dial(task_id: int, config: originate.AmiConfig, report: RoundReport) -> None:
    try:
        task = await sync_to_async(callbacks.callback_voice_dial)(task_id=task_id)
    except ApplicationError:
        report.count("skipped")  # another caller took it, or it was answered meanwhile
        return
    context = await sync_to_async(callback_voice_context)(task_id=task_id)
    assert context is not None
    report.count("dialled")
    number = dialable(context.caller_phone)
    if not number:
        await sync_to_async(callbacks.callback_unreachable)(task_id=task_id, actor=None, reason="no_number")
        report.count("unanswered", "no_number")
        return
    call_uuid = call_uuid_for(task_id=task_id, attempt=task.attempts)
    try:
        result = await originate.originate(
            config,
            channel=settings.CALLBACK_DIAL.format(number=number),
            context=settings.CALLBACK_CONTEXT,
            exten="s",
            caller_id=context.hotline_line,
            variables={"CALLBACK_UUID": call_uuid, "CALLBACK_TASK": str(task_id)},
            ring_seconds=int(settings.CALLBACK_RING_SECONDS),
        )
    except originate.AmiError as error:
        logger.warning("voice callback: task %s not dialled: %s (%s)", task_id, error, error.reason)
        await sync_to_async(callbacks.callback_voice_requeue)(task_id=task_id, reason=error.reason)
        report.count("requeued", error.reason)
        return
    logger.info("voice callback: task %s to %s: %s", task_id, mask_phone(number), result.reason)
    if result.answered:
        report.count("answered")  # the door serving the call records the answer
    elif result.reason == "unknown":
        report.count("unknown")  # counted as stalled later if no door ever hears of it
    else:
        try:
            await sync_to_async(callbacks.callback_unreachable)(task_id=task_id, actor=None, reason=result.reason)
        except ApplicationError as error:
            logger.info("voice callback: task %s: no answer not recorded (%s)", task_id, error.code)
        report.count("unanswered", result.reason)


async def dial_round(*, now: datetime | None = None, limit: int = 100) -> RoundReport:
    """One pass of the automated caller. Safe with several running: each task is taken under a row lock."""
    now = now or clock.now()
    report = RoundReport()
    config = ami_config()
    timeout = timedelta(seconds=float(settings.CALLBACK_VOICE_CALL_TIMEOUT_SECONDS))
    for task_id in await sync_to_async(callback_voice_stalled)(now=now, timeout=timeout):
        with contextlib.suppress(ApplicationError):
            await sync_to_async(callbacks.callback_unreachable)(task_id=task_id, actor=None, reason="stalled")
            report.count("stalled")
    if not within_calling_hours(now):
        report.outside_hours = True
        return report
    retry = timedelta(minutes=float(settings.CALLBACK_VOICE_RETRY_MINUTES))
    due = await sync_to_async(callback_voice_due)(now=now, retry_after=retry, limit=limit)
    gate = asyncio.Semaphore(max(int(settings.CALLBACK_VOICE_CONCURRENCY), 1))

    async def one(task_id: int) -> None:
        async with gate:
            await _dial(task_id, config, report)

    await asyncio.gather(*(one(task_id) for task_id in due))
    return report


def describe(report: RoundReport) -> dict[str, Any]:
    return {
        "stalled": report.stalled,
        "dialled": report.dialled,
        "answered": report.answered,
        "unanswered": report.unanswered,
        "requeued": report.requeued,
        "unknown": report.unknown,
        "skipped": report.skipped,
        "outside_hours": report.outside_hours,
        "reasons": dict(sorted(report.reasons.items())),
    }
