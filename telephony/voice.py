"""What the caller hears, the same over every door: the keypad menu and the prompt player.

`VoiceMenu` is the keypad dialogue of one call, with no I/O: the caller presses * to check a ticket, keys
its number (the digits without hyphens) and #, then its six-digit query code and #, and hears its status.
A wrong number or code sounds the same (as on the public status page), and after `MAX_LOOKUPS` failed
look-ups the menu stops answering for this call, so the code cannot be guessed by keying on.

`PromptPlayer` speaks prompts to one caller, one after another, paced at 20 ms frames in real time over
whatever the door gives it (`send`, a coroutine taking one frame at the call's sample rate). A key press
cuts short what is being said (callers key ahead of a prompt they know), so the menu's answers interrupt. Prompts come
from the menu, from the door (the greeting) and from the agent's screen (`POST /api/v1/calls/{id}/prompts/`,
delivered to the door on the call's channel-layer group). A prompt that cannot be rendered is logged and
skipped; it never ends the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from hotline.errors import Conflict, NotFound

from . import prompts, selectors, services
from .models import Call, CallStatus, Door

logger = logging.getLogger(__name__)

FRAME_MS = 20
SAMPLE_WIDTH = 2
MAX_LOOKUPS = 3
QUERY_CODE_DIGITS = 6
SAY_MESSAGE = "call.say"
CLOSE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    text: str


ASK_NUMBER = Prompt("ask_number", prompts.digits_to_chinese("查询工单办理进度，请输入工单编号，以井号键结束。"))
ASK_CODE = Prompt("ask_code", "请输入六位查询码，以井号键结束。")
NOT_FOUND = Prompt("not_found", "工单编号或查询码不正确，请核对后按星号键重新查询。")
BAD_NUMBER = Prompt("bad_number", "工单编号位数不对，请按星号键重新输入。")
LOCKED = Prompt("locked", "查询次数过多，请稍后再试，或直接向话务员说明。")


def number_from_keys(keys: str) -> str | None:
    """The ticket number the caller keyed: line digits, then the 8-digit date and 6-digit sequence, as in
    12345-20261122-000123 (keyed 1234520261122000123). None if no hotline line fits."""
    for line in sorted(settings.HOTLINE_LINES, key=len, reverse=True):
        rest = keys[len(line) :]
        if keys.startswith(line) and len(rest) == 14 and rest.isdigit():
            return f"{line}-{rest[:8]}-{rest[8:]}"
    return None


Lookup = Callable[[str, str], str | None]


class VoiceMenu:
    """The keypad dialogue of one call. `press(digit)` returns the prompts to say now; `lookup(number, code)`
    gives the public status of the ticket, or None when the number and code do not match."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.state = "idle"
        self.keys = ""
        self.number = ""
        self.failures = 0

    def press(self, digit: str) -> list[Prompt]:
        if self.failures >= MAX_LOOKUPS:
            return [LOCKED] if digit in "*#" else []
        if digit == "*":
            self.state, self.keys, self.number = "number", "", ""
            return [ASK_NUMBER]
        if self.state == "idle":
            return []  # keys pressed while talking to the agent are stored, not answered
        if digit != "#":
            if digit.isdigit() and len(self.keys) < 24:
                self.keys += digit
            return []
        keys, self.keys = self.keys, ""
        if self.state == "number":
            number = number_from_keys(keys)
            if number is None:
                self.state = "idle"
                return [BAD_NUMBER]
            self.number, self.state = number, "code"
            return [ASK_CODE]
        self.state = "idle"
        status = self.lookup(self.number, keys) if len(keys) == QUERY_CODE_DIGITS else None
        if status is None:
            self.failures += 1
            return [LOCKED] if self.failures >= MAX_LOOKUPS else [NOT_FOUND]
        return [Prompt("ticket_status", prompts.ticket_status(status))]


def public_status(number: str, query_code: str) -> str | None:
    """The lookup the menu uses: what the public status page would show for this number and code."""
    from ticketing.public_selectors import keypad_ticket_lookup
    from ticketing.realtime import PUBLIC_STATUS
    from ticketing.workflow import Status

    ticket = keypad_ticket_lookup(number=number, query_code=query_code)
    return None if ticket is None else PUBLIC_STATUS[Status(ticket.status)]


def call_group(call_id: int) -> str:
    """The channel-layer group a door listens on for prompts the agent asks it to say."""
    return f"call.{call_id}.voice"


async def say_to_call(call_id: int, prompt: Prompt) -> None:
    """Ask the door serving this call to say a prompt (the agent's screen uses this through the API)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    await layer.group_send(call_group(call_id), {"type": SAY_MESSAGE, "prompt": prompt.name, "text": prompt.text})


def call_prompt_request(*, call_id: int, actor: Any, prompt: str) -> Prompt:
    """The agent has the caller hear a prompt (greeting, the linked ticket's number or query code, the
    satisfaction question): checked here, said by the door serving the call, kept in the trail once heard."""
    call = Call.objects.select_related("ticket").filter(pk=call_id).first()
    if call is None:
        raise NotFound("通话不存在。")
    if call.door == Door.CTI or call.status == CallStatus.ENDED:
        raise Conflict("该通话没有可播放语音的音频通道。", code="no_audio_path", extra={"status": call.status})
    ticket = call.ticket
    if prompt in ("ticket_number", "query_code") and (
        ticket is None or not selectors.call_ticket_visible(call=call, user=actor)
    ):
        raise Conflict("该通话尚未关联工单。", code="no_ticket")
    text = {
        "greeting": lambda: prompts.greeting(call.hotline_line),
        "ticket_number": lambda: prompts.ticket_number(ticket.number if ticket else ""),
        "query_code": lambda: prompts.query_code(ticket.query_code if ticket else ""),
        "satisfaction_question": prompts.satisfaction_question,
    }[prompt]()
    said = Prompt(prompt, text)
    async_to_sync(say_to_call)(call.id, said)
    return said


class PromptPlayer:
    """Speaks prompts to one caller in order, in real time. `start()`, `say()` as often as needed, `close()`."""

    def __init__(self, *, call_id: int, sample_rate: int, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.call_id = call_id
        self.sample_rate = sample_rate
        self.send = send
        self.frame_bytes = sample_rate * SAMPLE_WIDTH * FRAME_MS // 1000
        self._queue: asyncio.Queue[tuple[int, Prompt]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._generation = 0  # bumped by an interrupting prompt: older prompts stop or are dropped
        self.played: list[str] = []

    def start(self, *, listen: bool = True) -> None:
        self._task = asyncio.create_task(self._run())
        if listen:
            self._listener = asyncio.create_task(self._listen())

    def say(self, prompt: Prompt, *, interrupt: bool = False) -> None:
        """Queue `prompt`; with `interrupt`, stop what is being said and drop what was waiting."""
        if interrupt:
            self._generation += 1
        self._queue.put_nowait((self._generation, prompt))

    async def idle(self) -> None:
        """Wait until everything asked so far has been said (for tests and for hanging up after a prompt)."""
        await self._queue.join()

    async def close(self) -> None:
        """Stop speaking and listening. Bounded: a channel layer that does not let go (Redis) cannot hold up
        the end of the call."""
        tasks = [task for task in (self._listener, self._task) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, stuck = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_SECONDS)
            if stuck:
                logger.warning("voice: call %s: %s task(s) did not stop in time", self.call_id, len(stuck))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            generation, prompt = await self._queue.get()
            if generation != self._generation:
                self._queue.task_done()
                continue
            try:
                pcm = await sync_to_async(self._render, thread_sensitive=False)(prompt.text)
            except Exception:
                logger.exception("voice: call %s: prompt %s could not be rendered; skipped", self.call_id, prompt.name)
                self._queue.task_done()
                continue
            try:
                started = loop.time()
                for number, start in enumerate(range(0, len(pcm), self.frame_bytes)):
                    if generation != self._generation:
                        break
                    frame = pcm[start : start + self.frame_bytes]
                    frame += bytes(self.frame_bytes - len(frame))
                    # Paced against the start, not frame by frame, so scheduling delays do not add up.
                    delay = started + number * FRAME_MS / 1000 - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await self.send(frame)
                else:
                    self.played.append(prompt.name)
                    await sync_to_async(services.call_prompt_played)(call_id=self.call_id, prompt=prompt.name)
            except (ConnectionError, RuntimeError) as exc:
                logger.info("voice: call %s: prompt %s stopped, connection gone (%s)", self.call_id, prompt.name, exc)
            finally:
                self._queue.task_done()

    def _render(self, text: str) -> bytes:
        return prompts.to_pcm(prompts.render_prompt(text), sample_rate=self.sample_rate)

    async def _listen(self) -> None:
        """Prompts the agent asks for arrive on the call's group (across processes with the Redis layer)."""
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel()
        group = call_group(self.call_id)
        await layer.group_add(group, channel)
        try:
            while True:
                message: dict[str, Any] = await layer.receive(channel)
                if message.get("type") == SAY_MESSAGE:
                    self.say(Prompt(str(message.get("prompt", "")), str(message.get("text", ""))))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(layer.group_discard(group, channel), timeout=CLOSE_TIMEOUT_SECONDS)
