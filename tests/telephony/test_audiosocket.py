import asyncio
import random
import struct
import uuid

import pytest

from telephony import audiosocket as a
from telephony.audiosocket import Audio, CallUuid, Dtmf, Error, FrameDecoder, Hangup, ProtocolError

CALL_ID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def _tone(frames: int) -> bytes:
    samples = [int(8000 * ((i % 40) / 20 - 1)) for i in range(frames * 160)]
    return struct.pack(f"<{len(samples)}h", *samples)


def _call_bytes() -> tuple[bytes, list[a.Frame]]:
    pcm = _tone(5)
    frames: list[a.Frame] = [
        CallUuid(CALL_ID),
        *(Audio(chunk) for chunk in a.chunk_audio(pcm)),
        Dtmf("#"),
        Audio(b""),
        Error(b"\x02"),
        Hangup(),
    ]
    return b"".join(a.encode(f) for f in frames), frames


def test_encodings_match_the_wire_format():
    assert a.encode_hangup() == b"\x00\x00\x00"
    assert a.encode_uuid(CALL_ID) == b"\x01\x00\x10" + CALL_ID.bytes
    assert a.encode_dtmf("7") == b"\x03\x00\x017"
    assert a.encode_audio(b"\x01\x02" * 160) == b"\x10\x01\x40" + b"\x01\x02" * 160


@pytest.mark.parametrize(
    "frame", [Hangup(), CallUuid(CALL_ID), Dtmf("0"), Dtmf("D"), Dtmf("*"), Audio(_tone(1)), Error(b"\x04")]
)
def test_round_trip(frame):
    decoded = FrameDecoder().feed(a.encode(frame))
    assert decoded == [frame]
    assert decoded[0].kind == frame.kind


def test_largest_audio_frame_round_trips():
    pcm = b"\x00\x01" * (0xFFFE // 2)
    assert FrameDecoder().feed(a.encode_audio(pcm)) == [Audio(pcm)]


def test_encoders_reject_what_cannot_be_sent():
    with pytest.raises(ValueError, match="even"):
        a.encode_audio(b"\x00")
    with pytest.raises(ValueError, match="fit"):
        a.encode_audio(bytes(0x10000))
    with pytest.raises(ValueError, match="DTMF"):
        a.encode_dtmf("E")


def test_decoding_byte_by_byte():
    data, frames = _call_bytes()
    decoder = FrameDecoder()
    decoded = []
    for i in range(len(data)):
        decoded += decoder.feed(data[i : i + 1])
    assert decoded == frames
    assert decoder.pending == 0


@pytest.mark.parametrize("seed", range(20))
def test_decoding_random_splits(seed):
    data, frames = _call_bytes()
    rng = random.Random(seed)
    decoder = FrameDecoder()
    decoded, position = [], 0
    while position < len(data):
        step = rng.randint(0, 700)
        decoded += decoder.feed(data[position : position + step])
        position += step
    assert decoded == frames
    assert decoder.pending == 0


def test_incomplete_frame_is_held_back():
    decoder = FrameDecoder()
    assert decoder.feed(a.encode_audio(_tone(1))[:100]) == []
    assert decoder.pending == 100


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x02\x00\x00", "unknown_type"),
        (b"\x11\x00\x02\x00\x00", "unknown_type"),
        (b"\x01\x00\x0f" + bytes(15), "bad_length"),
        (b"\x01\x00\x11" + bytes(17), "bad_length"),
        (b"\x03\x00\x02" + b"12", "bad_length"),
        (b"\x03\x00\x00", "bad_length"),
        (b"\x00\x00\x01\x00", "bad_length"),
        (b"\xff\x00\x00", "bad_length"),
        (b"\x10\x01\x41", "odd_audio_length"),
        (b"\x03\x00\x01" + b"x", "bad_payload"),
        (b"\x03\x00\x01" + b"\xff", "bad_payload"),
    ],
)
def test_protocol_error_reasons(data, reason):
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError) as exc_info:
        decoder.feed(data)
    assert exc_info.value.reason == reason


def test_bad_header_is_rejected_before_its_payload_arrives():
    with pytest.raises(ProtocolError) as exc_info:
        FrameDecoder().feed(b"\x10\xff\xff")
    assert exc_info.value.reason == "odd_audio_length"


def test_oversized_frame_is_rejected():
    decoder = FrameDecoder(max_payload=640)
    assert decoder.feed(a.encode_audio(bytes(640))) == [Audio(bytes(640))]
    with pytest.raises(ProtocolError) as exc_info:
        decoder.feed(b"\x10\x02\x82")
    assert exc_info.value.reason == "oversized"


def test_decoder_stays_failed_after_a_protocol_error():
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x42\x00\x00")
    with pytest.raises(ProtocolError) as exc_info:
        decoder.feed(a.encode_hangup())
    assert exc_info.value.reason == "unknown_type"


def test_frames_before_a_bad_one_are_not_lost_on_the_next_feed():
    decoder = FrameDecoder()
    assert decoder.feed(a.encode_uuid(CALL_ID)) == [CallUuid(CALL_ID)]
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x07\x00\x00")


def test_unknown_protocol_reason_is_a_programming_error():
    with pytest.raises(ValueError, match="reason"):
        ProtocolError("x", reason="whatever")


def test_chunk_audio_pads_the_last_frame():
    chunks = list(a.chunk_audio(b"\x01\x00" * 400))
    assert [len(c) for c in chunks] == [320, 320, 320]
    assert chunks[-1] == b"\x01\x00" * 80 + bytes(160)
    assert list(a.chunk_audio(b"")) == []
    assert [len(c) for c in a.chunk_audio(bytes(640), frame_bytes=160)] == [160] * 4
    with pytest.raises(ValueError, match="even"):
        list(a.chunk_audio(b"\x00\x00\x00"))
    with pytest.raises(ValueError, match="frame_bytes"):
        list(a.chunk_audio(bytes(4), frame_bytes=3))


# asyncio reader


async def test_read_frame_reads_frames_in_order():
    data, frames = _call_bytes()
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    decoded = [await a.read_frame(reader, idle_timeout=1) for _ in frames]
    assert decoded == frames
    with pytest.raises(a.ConnectionClosed) as exc_info:
        await a.read_frame(reader, idle_timeout=1)
    assert exc_info.value.reason == "eof"
    assert not exc_info.value.mid_frame


async def test_read_frame_idle_timeout_on_a_silent_connection():
    reader = asyncio.StreamReader()
    with pytest.raises(a.IdleTimeout) as exc_info:
        await a.read_frame(reader, idle_timeout=0.05)
    assert exc_info.value.reason == "idle_timeout"


async def test_read_frame_idle_timeout_on_a_half_sent_frame():
    reader = asyncio.StreamReader()
    reader.feed_data(a.encode_audio(bytes(320))[:50])
    with pytest.raises(a.IdleTimeout):
        await a.read_frame(reader, idle_timeout=0.05)


@pytest.mark.parametrize("cut", [1, 2, 3, 100])
async def test_read_frame_eof_mid_frame(cut):
    reader = asyncio.StreamReader()
    reader.feed_data(a.encode_audio(bytes(320))[:cut])
    reader.feed_eof()
    with pytest.raises(a.ConnectionClosed) as exc_info:
        await a.read_frame(reader, idle_timeout=1)
    assert exc_info.value.mid_frame
    assert exc_info.value.reason == "eof_mid_frame"


async def test_read_frame_protocol_error():
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x01\x00\x03abc")
    with pytest.raises(ProtocolError) as exc_info:
        await a.read_frame(reader, idle_timeout=1)
    assert exc_info.value.reason == "bad_length"


async def test_tcp_loopback_call():
    received: list[a.Frame] = []
    done = asyncio.Event()
    pcm = _tone(50)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                frame = await a.read_frame(reader, idle_timeout=2)
                received.append(frame)
                if isinstance(frame, Hangup):
                    break
        finally:
            writer.close()
            await writer.wait_closed()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(a.encode_uuid(CALL_ID))
        for chunk in a.chunk_audio(pcm):
            writer.write(a.encode_audio(chunk))
            await writer.drain()
        writer.write(a.encode_hangup())
        await writer.drain()
        await asyncio.wait_for(done.wait(), 5)
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()

    assert received[0] == CallUuid(CALL_ID)
    audio = received[1:-1]
    assert len(audio) == 50
    assert all(isinstance(f, Audio) and len(f.pcm) == 320 for f in audio)
    assert b"".join(f.pcm for f in audio if isinstance(f, Audio)) == pcm
    assert received[-1] == Hangup()
