"""The WebSocket audio door, in the style of FreeSWITCH mod_audio_fork / jambonz.

Protocol, one call per socket:
1. a JSON text message {"type": "start", "call_id", "caller", "line", "agent": id or null, "sample_rate": 8000|16000};
2. binary frames of 16-bit signed little-endian mono PCM at that rate, and {"type": "dtmf", "digit": "5"}
   for keys the caller presses;
3. {"type": "stop"}.

Prompts (the greeting, the keypad menu's answers, what the agent asks to say) come back as binary frames of
the same format, 20 ms each, in real time: the bidirectional streaming of jambonz' `listen` verb.

Replies are JSON: {"type": "started", "call": id}, {"type": "stopped", "call": id} and
{"type": "error", "code", "detail"}. Authentication follows the realtime base (`hotline.realtime.consumers`)
but is stricter: a PBX has no browser session, so only `Authorization: Token <key>` of hotline centre staff
is accepted. Close codes: 4400 a malformed or out-of-order message (the call, if started, is ended cleanly),
4401 not signed in or a bad token, 4403 not allowed (role, or an Origin not in ALLOWED_HOSTS). A bad message
closes only this socket's call; other calls go on.
"""

import json
import logging
from typing import Any, Literal

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from hotline.errors import ApplicationError
from hotline.realtime.consumers import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    Refused,
    check_origin_and_auth,
)

from . import callback, prompts, selectors, services, speech, voice
from .models import Call, Door
from .pipeline import CallPipeline

logger = logging.getLogger(__name__)

CLOSE_INTERNAL_ERROR = 1011


class StartMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["start"]
    call_id: StrictStr = Field(min_length=1, max_length=64)
    caller: StrictStr = Field(max_length=32)
    line: StrictStr = Field(min_length=1, max_length=16)
    agent: StrictInt | None = None
    sample_rate: Literal[8000, 16000]


def check_origin_and_token(scope: dict[str, Any]) -> None:
    """The realtime rule, token only (a PBX has no browser session), then the role; raises Refused."""
    check_origin_and_auth(scope, requires_user=True, token_only=True)
    if not selectors.may_drive_calls(scope.get("user")):
        raise Refused(CLOSE_FORBIDDEN, "只有热线中心人员或其授权的交换机可以接入通话音频。")


@database_sync_to_async
def _start_call(start: StartMessage, live_transcript: bool) -> Call:
    return services.call_start(
        call_uuid=start.call_id,
        door=Door.WEBSOCKET,
        hotline_line=start.line,
        caller_number=start.caller,
        agent=services.agent_for_call(user_id=start.agent),
        sample_rate=start.sample_rate,
        live_transcript=live_transcript,
    )


class AudioStreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.pipeline: CallPipeline | None = None
        self.player: voice.PromptPlayer | None = None
        self.menu = voice.VoiceMenu(voice.public_status)
        self.callback: callback.VoiceCallbackSession | None = None
        self.finished = False
        # Accept first: a close code is only delivered on an accepted socket.
        await self.accept()
        try:
            check_origin_and_token(self.scope)
        except Refused as refused:
            logger.info("audio websocket: refused (%s): %s", refused.code, refused.reason)
            await self._fail(refused.code, str(refused.code), refused.reason, end_reason="")

    async def disconnect(self, code: int) -> None:
        player = getattr(self, "player", None)
        if player is not None:
            await player.close()
        session = getattr(self, "callback", None)
        if session is not None:
            await session.close()
        pipeline = getattr(self, "pipeline", None)
        if pipeline is not None:
            await pipeline.close(reason="disconnected")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finished:
            return
        if bytes_data is not None:
            await self._audio(bytes_data)
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "start" and self.pipeline is None:
            await self._start(message)
        elif kind == "stop" and self.pipeline is not None:
            await self._stop()
        elif kind == "dtmf" and self.pipeline is not None:
            await self._dtmf(message)
        elif kind == "start":
            await self._bad("duplicate_start", "通话已经开始。")
        elif kind in ("stop", "dtmf"):
            await self._bad(f"{kind}_before_start", "通话尚未开始。")
        else:
            await self._bad("unknown_message", '只支持 {"type": "start"}、{"type": "dtmf"} 与 {"type": "stop"}。')

    async def _start(self, message: dict[str, Any]) -> None:
        try:
            start = StartMessage.model_validate(message)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in error["loc"]) for error in exc.errors()})
            await self._bad("invalid_start", f"开始消息有误：{', '.join(fields)}。")
            return
        live = await sync_to_async(speech.has_usable_model, thread_sensitive=False)(line=start.line)
        try:
            call = await _start_call(start, live)
        except ApplicationError as error:
            await self._bad(error.code, error.message)
            return
        try:
            self.pipeline = await CallPipeline.open(call)
        except Exception:
            logger.exception("audio websocket: call %s could not open its pipeline", call.call_uuid)
            await database_sync_to_async(services.call_end)(call_id=call.id, reason="pipeline_error")
            await self._fail(CLOSE_INTERNAL_ERROR, "pipeline_error", "通话录音无法开始。", end_reason="")
            return
        await self.send(text_data=json.dumps({"type": "started", "call": call.id}))
        self.player = voice.PromptPlayer(call_id=call.id, sample_rate=call.sample_rate, send=self._play)
        self.player.start()
        # A call the automated callback placed hears the callback dialogue instead of the greeting.
        self.callback = await callback.attach(call, pipeline=self.pipeline, player=self.player, hang_up=self._stop)
        if self.callback is None:
            self.player.say(voice.Prompt("greeting", prompts.greeting(call.hotline_line)))

    async def _play(self, frame: bytes) -> None:
        if self.finished:
            raise ConnectionError("the call is over")
        await self.send(bytes_data=frame)

    async def _dtmf(self, message: dict[str, Any]) -> None:
        assert self.pipeline is not None
        digit = message.get("digit")
        if set(message) != {"type", "digit"} or not isinstance(digit, str) or digit not in services.DTMF_DIGITS:
            await self._bad("invalid_dtmf", "按键消息有误：digit 必须是 0-9、*、#、A-D 之一。")
            return
        call = self.pipeline.call
        recorder = self.pipeline.recorder
        at_ms = recorder.duration_ms if recorder is not None else 0
        await database_sync_to_async(services.call_dtmf_add)(call_id=call.id, digit=digit, at_ms=at_ms)
        if self.callback is not None:
            await self.callback.press(digit)
            return
        assert self.player is not None
        for prompt in await database_sync_to_async(self.menu.press)(digit):
            self.player.say(prompt, interrupt=True)

    async def _audio(self, pcm: bytes) -> None:
        if self.pipeline is None:
            await self._bad("frame_before_start", "请先发送开始消息。")
        elif len(pcm) % speech.SAMPLE_WIDTH:
            await self._bad("odd_length_frame", "音频帧长度必须是偶数字节（16 位 PCM）。")
        else:
            await self.pipeline.audio(pcm)

    async def _stop(self) -> None:
        assert self.pipeline is not None
        if self.finished:
            return  # the callback hung up after the caller had already stopped
        if self.player is not None:
            await self.player.close()
        if self.callback is not None:
            await self.callback.close()
        await self.pipeline.close(reason="stop")
        self.finished = True
        await self.send(text_data=json.dumps({"type": "stopped", "call": self.pipeline.call.id}))
        await self.close()

    async def _bad(self, code: str, detail: str) -> None:
        await self._fail(CLOSE_BAD_REQUEST, code, detail, end_reason=code)

    async def _fail(self, close_code: int, code: str, detail: str, *, end_reason: str) -> None:
        """Tell the client why, end this socket's call cleanly (with the reason logged on it), and close."""
        self.finished = True
        if self.player is not None:
            await self.player.close()
        if self.callback is not None:
            await self.callback.close()
        if self.pipeline is not None:
            logger.info("audio websocket: call %s closed: %s", self.pipeline.call.call_uuid, code)
            await self.pipeline.close(reason=end_reason or code)
        await self.send(text_data=json.dumps({"type": "error", "code": code, "detail": detail}, ensure_ascii=False))
        await self.close(code=close_code)
