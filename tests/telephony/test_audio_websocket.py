"""The WebSocket audio door (mod_audio_fork / jambonz style) through the real ASGI stack, the real Korean model
and a real clip: start message, 20 ms binary PCM frames, stop."""

import asyncio
import json
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from hotline.realtime import groups
from hotline.realtime.auth import TokenAuthMiddleware
from telephony import speech
from telephony.models import Call, CallStatus, Door, TranscriptStatus
from telephony.ws_urls import websocket_urlpatterns

SHARED = Path(__file__).resolve().parents[3] / "shared"
CLIP = SHARED / "audio" / "ko" / "ko_picovoice_rhino_within_context.wav"
RATE = 16000
FRAME_BYTES = RATE // 50 * 2  # 20 ms of 16-bit mono
PATH = "ws/audio/"

# The same middleware stack as hotline.asgi.websocket_application, over this app's routes only.
application = AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))

needs_clip = pytest.mark.skipif(not CLIP.exists(), reason=f"Korean test clip not found at {CLIP} (../shared/audio/ko)")


def clip_pcm() -> bytes:
    with wave.open(str(CLIP)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (RATE, 1, 2)
        return clip.readframes(clip.getnframes())


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def start_message(call_id: str = "fork-1", **overrides: Any) -> str:
    message = {"type": "start", "call_id": call_id, "caller": "13912345678", "line": "12345", "agent": None}
    return json.dumps({**message, "sample_rate": RATE, **overrides})


class Socket:
    """One door client. Prompt audio (binary frames) is gathered in `played`; the JSON messages are returned."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.played: list[bytes] = []

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            output = await self.communicator.receive_output(timeout=timeout)
            if output.get("bytes") is not None:
                self.played.append(output["bytes"])
                continue
            assert output["type"] == "websocket.send", output
            return dict(json.loads(output["text"]))

    async def closed_with(self, timeout: float = 10) -> tuple[list[dict[str, Any]], int]:
        """The JSON messages before the close, and the close code."""
        messages = []
        while True:
            output = await self.communicator.receive_output(timeout=timeout)
            if output["type"] == "websocket.close":
                return messages, output.get("code", 1000)
            if output.get("bytes") is not None:
                self.played.append(output["bytes"])
                continue
            messages.append(json.loads(output["text"]))


@pytest.fixture
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
async def connect(transactional_db, media) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    opened: list[WebsocketCommunicator] = []

    async def open_socket(*, user: Any = None, token: str | None = None) -> Socket:
        headers = []
        if user is not None:
            token = (await sync_to_async(Token.objects.get_or_create)(user=user))[0].key
        if token is not None:
            headers.append((b"authorization", f"Token {token}".encode()))
        communicator = WebsocketCommunicator(application, PATH, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        return Socket(communicator)

    yield open_socket
    for communicator in opened:
        if not communicator.future.done():
            await communicator.disconnect(timeout=10)
    # The ORM ran on worker threads; their connections must not outlive the test database.
    await sync_to_async(connections.close_all)()


async def get_call(call_uuid: str) -> Call:
    return await sync_to_async(Call.objects.select_related("agent").get)(call_uuid=call_uuid)


async def segment_text(call: Call) -> str:
    texts = await sync_to_async(list)(call.segments.order_by("index").values_list("text", flat=True))
    return speech.compact(" ".join(texts))


@needs_clip
async def test_a_streamed_call_is_recorded_and_transcribed(org, connect, media):
    pcm = clip_pcm()
    socket = await connect(user=org.agent)
    await socket.communicator.send_to(text_data=start_message(agent=org.agent.id))
    started = await socket.receive(timeout=30)
    assert started["type"] == "started"
    for frame in frames(pcm):
        await socket.communicator.send_to(bytes_data=frame)
    await socket.send_json({"type": "stop"})
    messages, code = await socket.closed_with(timeout=60)

    assert messages == [{"type": "stopped", "call": started["call"]}] and code == 1000
    call = await get_call("fork-1")
    assert call.id == started["call"] and call.door == Door.WEBSOCKET and call.agent_id == org.agent.id
    assert call.status == CallStatus.ENDED and call.end_reason == "stop"
    assert call.transcript_status == TranscriptStatus.DONE and call.sample_rate == RATE
    with wave.open(str(media / call.audio_path)) as recording:
        assert recording.getframerate() == RATE
        assert recording.getnframes() * 2 == len(pcm)
    assert "파란" in await segment_text(call)  # 파란색, or 파란 팩 (see test_pipeline.KEYWORD)


@needs_clip
async def test_partials_reach_the_agents_group_while_streaming_in_real_time(org, connect):
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(groups.agent(org.agent.id), channel)
    transcript: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        while True:
            event = (await layer.receive(channel))["event"]
            if event["type"] in ("transcript.partial", "transcript.final"):
                transcript.set_result(event)
                return

    listener = asyncio.create_task(listen())
    socket = await connect(user=org.agent)
    await socket.communicator.send_to(text_data=start_message("fork-paced", agent=org.agent.id))
    assert (await socket.receive(timeout=30))["type"] == "started"
    began = time.monotonic()
    sent_ms = 0
    for index, frame in enumerate(frames(clip_pcm())):
        if transcript.done():
            break
        # A live caller: frame i is complete only 20 ms after frame i-1.
        await asyncio.sleep(max(0.0, began + (index + 1) * 0.02 - time.monotonic()))
        await socket.communicator.send_to(bytes_data=frame)
        sent_ms += 20
    arrived_while_streaming = transcript.done()
    await socket.send_json({"type": "stop"})
    await socket.closed_with(timeout=60)
    listener.cancel()
    await layer.group_discard(groups.agent(org.agent.id), channel)

    assert arrived_while_streaming, "no transcript event reached the agent's group before the clip ended"
    event = transcript.result()
    assert event["call_id"] == "fork-paced" and event["text"]
    assert sent_ms < 4600


@needs_clip
async def test_a_disconnect_ends_the_call_and_keeps_the_audio(org, connect, media):
    socket = await connect(user=org.dispatcher)
    await socket.communicator.send_to(text_data=start_message("fork-gone"))
    await socket.receive(timeout=30)
    for frame in frames(clip_pcm())[:50]:
        await socket.communicator.send_to(bytes_data=frame)
    await socket.communicator.disconnect(timeout=30)
    call = await get_call("fork-gone")
    assert call.status == CallStatus.ENDED and call.end_reason == "disconnected"
    with wave.open(str(media / call.audio_path)) as recording:
        assert recording.getnframes() == 50 * FRAME_BYTES // 2


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "unknown_message"),
        (json.dumps({"type": "hello"}), "unknown_message"),
        (json.dumps(["start"]), "unknown_message"),
        (json.dumps({"type": "stop"}), "stop_before_start"),
        (start_message(call_id=""), "invalid_start"),
        (start_message(sample_rate=44100), "invalid_start"),
        (start_message(agent="7"), "invalid_start"),
        (start_message(codec="opus"), "invalid_start"),
        (json.dumps({"type": "start", "call_id": "x"}), "invalid_start"),
        (start_message(line="110"), "unknown_hotline_line"),
        (start_message(agent=999999), "unknown_agent"),
    ],
)
async def test_a_malformed_start_closes_with_4400_and_creates_nothing(org, connect, message, code):
    socket = await connect(user=org.agent)
    await socket.communicator.send_to(text_data=message)
    messages, close_code = await socket.closed_with()
    assert close_code == 4400
    assert messages[0]["type"] == "error" and messages[0]["code"] == code and messages[0]["detail"]
    assert not await sync_to_async(Call.objects.exists)()


async def test_audio_before_start_closes_with_4400_and_creates_nothing(org, connect):
    socket = await connect(user=org.agent)
    await socket.communicator.send_to(bytes_data=b"\x00\x00" * 160)
    messages, close_code = await socket.closed_with()
    assert close_code == 4400 and messages[0]["code"] == "frame_before_start"
    assert not await sync_to_async(Call.objects.exists)()


async def test_an_odd_length_frame_closes_only_that_call_cleanly(org, connect, media):
    bad = await connect(user=org.agent)
    good = await connect(user=org.other_agent)
    await bad.communicator.send_to(text_data=start_message("fork-bad"))
    await good.communicator.send_to(text_data=start_message("fork-good"))
    assert (await bad.receive(timeout=30))["type"] == "started"
    assert (await good.receive(timeout=30))["type"] == "started"
    silence = b"\x00\x00" * (FRAME_BYTES // 2)
    await bad.communicator.send_to(bytes_data=silence)
    await bad.communicator.send_to(bytes_data=silence + b"\x00")
    messages, close_code = await bad.closed_with()
    assert close_code == 4400 and messages[-1]["code"] == "odd_length_frame"

    await good.communicator.send_to(bytes_data=silence)
    await good.send_json({"type": "stop"})
    assert (await good.closed_with(timeout=30))[1] == 1000

    broken, fine = await get_call("fork-bad"), await get_call("fork-good")
    assert broken.status == CallStatus.ENDED and broken.end_reason == "odd_length_frame"
    assert (media / broken.audio_path).stat().st_size == 44 + len(silence)
    assert fine.status == CallStatus.ENDED and fine.end_reason == "stop"


async def test_a_second_start_is_refused_and_ends_the_call(org, connect):
    socket = await connect(user=org.agent)
    await socket.communicator.send_to(text_data=start_message("fork-twice"))
    await socket.receive(timeout=30)
    await socket.communicator.send_to(text_data=start_message("fork-other"))
    messages, close_code = await socket.closed_with()
    assert close_code == 4400 and messages[-1]["code"] == "duplicate_start"
    assert (await get_call("fork-twice")).status == CallStatus.ENDED
    assert not await sync_to_async(Call.objects.filter(call_uuid="fork-other").exists)()


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_without_a_valid_token_the_socket_closes_with_4401(org, connect, token):
    socket = await connect(token=token)
    messages, close_code = await socket.closed_with()
    assert close_code == 4401 and messages[0]["type"] == "error"
    await socket.communicator.send_to(text_data=start_message())
    assert not await sync_to_async(Call.objects.exists)()


async def test_a_department_handler_is_refused_with_4403(org, connect):
    socket = await connect(user=org.handler)
    messages, close_code = await socket.closed_with()
    assert close_code == 4403 and messages[0]["code"] == "4403"
    assert not await sync_to_async(Call.objects.exists)()
