"""Asterisk AudioSocket wire protocol: frame codec, incremental decoder and an asyncio reader.

A frame is one type byte, a big-endian 16-bit payload length, then the payload. No server lives here;
the server closes a call on any `AudioSocketError` and logs its machine `reason`, and other calls go on.
"""

from __future__ import annotations

import asyncio
import enum
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

HEADER = struct.Struct(">BH")
MAX_PAYLOAD = 0xFFFF
SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * SAMPLE_WIDTH * FRAME_MS // 1000
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class FrameKind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10
    ERROR = 0xFF


@dataclass(frozen=True, slots=True)
class Hangup:
    kind: ClassVar[FrameKind] = FrameKind.HANGUP


@dataclass(frozen=True, slots=True)
class CallUuid:
    uuid: uuid.UUID
    kind: ClassVar[FrameKind] = FrameKind.UUID


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    kind: ClassVar[FrameKind] = FrameKind.DTMF


@dataclass(frozen=True, slots=True)
class Audio:
    """8 kHz, 16-bit signed little-endian, mono PCM."""

    pcm: bytes
    kind: ClassVar[FrameKind] = FrameKind.AUDIO


@dataclass(frozen=True, slots=True)
class Error:
    """Asterisk's error codes (0x01 hang-up, 0x02 frame forwarding, 0x04 memory) are passed through raw."""

    code: bytes
    kind: ClassVar[FrameKind] = FrameKind.ERROR


Frame = Hangup | CallUuid | Dtmf | Audio | Error


class AudioSocketError(Exception):
    """Base of every reason to end a call's connection; `reason` is a stable machine value for logs."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ProtocolError(AudioSocketError):
    """The peer sent bytes that are not a valid frame: unknown_type, bad_length, odd_audio_length,
    oversized or bad_payload. The stream cannot be resynchronised afterwards."""

    REASONS = frozenset({"unknown_type", "bad_length", "odd_audio_length", "oversized", "bad_payload"})

    def __init__(self, message: str, *, reason: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown protocol error reason {reason!r}")
        super().__init__(message, reason=reason)


class IdleTimeout(AudioSocketError):
    reason = "idle_timeout"


class ConnectionClosed(AudioSocketError):
    """EOF. `mid_frame` tells a truncated frame from a peer that closed between frames."""

    def __init__(self, message: str, *, mid_frame: bool) -> None:
        super().__init__(message, reason="eof_mid_frame" if mid_frame else "eof")
        self.mid_frame = mid_frame


# encoding


def _frame(kind: FrameKind, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit in one frame (max {MAX_PAYLOAD})")
    return HEADER.pack(kind, len(payload)) + payload


def encode_uuid(call_id: uuid.UUID) -> bytes:
    return _frame(FrameKind.UUID, call_id.bytes)


def encode_audio(pcm: bytes) -> bytes:
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError("audio must be whole 16-bit samples (even length)")
    return _frame(FrameKind.AUDIO, pcm)


def encode_hangup() -> bytes:
    return _frame(FrameKind.HANGUP, b"")


def encode_dtmf(digit: str) -> bytes:
    if digit not in DTMF_DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return _frame(FrameKind.DTMF, digit.encode("ascii"))


def encode_error(code: bytes) -> bytes:
    return _frame(FrameKind.ERROR, code)


def encode(frame: Frame) -> bytes:
    match frame:
        case Hangup():
            return encode_hangup()
        case CallUuid(uuid=call_id):
            return encode_uuid(call_id)
        case Dtmf(digit=digit):
            return encode_dtmf(digit)
        case Audio(pcm=pcm):
            return encode_audio(pcm)
        case Error(code=code):
            return encode_error(code)
    raise TypeError(f"not a frame: {frame!r}")


# decoding


def check_header(type_byte: int, length: int, *, max_payload: int = MAX_PAYLOAD) -> FrameKind:
    """Validate a header before its payload arrives, so a bad frame is rejected without buffering it."""
    try:
        kind = FrameKind(type_byte)
    except ValueError:
        raise ProtocolError(f"unknown frame type 0x{type_byte:02x}", reason="unknown_type") from None
    if length > max_payload:
        raise ProtocolError(f"{kind.name} payload of {length} bytes exceeds {max_payload}", reason="oversized")
    if kind is FrameKind.HANGUP and length != 0:
        raise ProtocolError(f"hang-up with a {length}-byte payload", reason="bad_length")
    if kind is FrameKind.UUID and length != 16:
        raise ProtocolError(f"call UUID of {length} bytes, expected 16", reason="bad_length")
    if kind is FrameKind.DTMF and length != 1:
        raise ProtocolError(f"DTMF of {length} bytes, expected 1", reason="bad_length")
    if kind is FrameKind.ERROR and length == 0:
        raise ProtocolError("error frame without an error code", reason="bad_length")
    if kind is FrameKind.AUDIO and length % SAMPLE_WIDTH:
        raise ProtocolError(f"audio payload of odd length {length}", reason="odd_audio_length")
    return kind


def parse_payload(kind: FrameKind, payload: bytes) -> Frame:
    if kind is FrameKind.HANGUP:
        return Hangup()
    if kind is FrameKind.UUID:
        return CallUuid(uuid.UUID(bytes=payload))
    if kind is FrameKind.DTMF:
        digit = payload.decode("ascii", errors="replace")
        if digit not in DTMF_DIGITS:
            raise ProtocolError(f"not a DTMF digit: {payload!r}", reason="bad_payload")
        return Dtmf(digit)
    if kind is FrameKind.AUDIO:
        return Audio(payload)
    return Error(payload)


class FrameDecoder:
    """Feed bytes as they arrive, in any pieces; get back every frame they complete.

    After a `ProtocolError` the decoder stays failed: frame boundaries are lost, so the call must end.
    """

    def __init__(self, *, max_payload: int = MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self._max_payload = max_payload
        self._failed: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back; non-zero at EOF means the peer cut a frame short."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        frames: list[Frame] = []
        try:
            while len(self._buffer) >= HEADER.size:
                type_byte, length = HEADER.unpack_from(self._buffer)
                kind = check_header(type_byte, length, max_payload=self._max_payload)
                end = HEADER.size + length
                if len(self._buffer) < end:
                    break
                payload = bytes(self._buffer[HEADER.size : end])
                del self._buffer[:end]
                frames.append(parse_payload(kind, payload))
        except ProtocolError as exc:
            self._failed = exc
            raise
        return frames


async def read_frame(reader: asyncio.StreamReader, *, idle_timeout: float, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Read one whole frame. The timeout covers the whole frame, so a peer that stalls half-way through
    a frame (a half-open connection) is caught just like a silent one."""
    header = b""
    try:
        async with asyncio.timeout(idle_timeout):
            header = await reader.readexactly(HEADER.size)
            type_byte, length = HEADER.unpack(header)
            kind = check_header(type_byte, length, max_payload=max_payload)
            payload = await reader.readexactly(length) if length else b""
    except TimeoutError:
        raise IdleTimeout(f"no complete frame within {idle_timeout} s") from None
    except asyncio.IncompleteReadError as exc:
        mid_frame = bool(header) or bool(exc.partial)
        raise ConnectionClosed(
            "connection closed" + (" in the middle of a frame" if mid_frame else ""), mid_frame=mid_frame
        ) from None
    return parse_payload(kind, payload)


def chunk_audio(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> Iterator[bytes]:
    """Split prompt audio into equal frames (20 ms by default) for paced playback; the last frame is
    padded with silence so every frame has the same duration."""
    if frame_bytes <= 0 or frame_bytes % SAMPLE_WIDTH:
        raise ValueError("frame_bytes must be a positive even number")
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError("audio must be whole 16-bit samples (even length)")
    for start in range(0, len(pcm), frame_bytes):
        chunk = pcm[start : start + frame_bytes]
        yield chunk if len(chunk) == frame_bytes else chunk + bytes(frame_bytes - len(chunk))
