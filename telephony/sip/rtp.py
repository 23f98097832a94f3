"""RTP for the SIP door, on sippy's own RTP stack (`sippy.Rtp`, built on rtpsynth).

sippy gives us the UDP side: `RTPEPoint` binds a port from a range on rtpsynth's `RtpServer` (one C thread
multiplexing every call's socket), drops datagrams that do not come from the address the caller's SDP
named, and, for playback, `RTPOutputWorker` hands 20 ms packets to rtpsynth's `RtpProc` thread, which paces
them. We plug in our G.711 codec (`g711.py`) as the sippy codec class, and replace sippy's `RTPInStream` by
`RtpIngest`, because a hotline must account for every packet instead of asserting on them:

- a datagram that is not RTP version 2 (or that rtpsynth cannot parse) counts as broken; `BROKEN_RTP_LIMIT`
  of them (one second of 20 ms packets) with no valid audio between them end the call (`bad_rtp`);
- RTP of another payload type (comfort noise, RTCP multiplexed on the port) keeps the call alive but is
  not audio; RFC 4733 telephone-event packets become DTMF digits;
- valid audio goes through rtpsynth's jitter buffer (reorders, drops duplicates); a gap in RTP timestamps
  (lost packets) of up to `MAX_GAP_SAMPLES` becomes silence so that transcript times stay true to the call,
  a longer jump (a new stream) is logged and not padded;
- decoded PCM is handed over in `CHUNK_MS` pieces, and `close()` flushes what the jitter buffer and the last
  partial piece still hold, so the recording keeps the call's last words.

Every `RtpIngest` method that rtpsynth's thread calls catches its own exceptions: one call's bad packet
never reaches the RTP thread that serves the other calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from rtpsynth.RtpJBuf import RTPFrameType, RtpJBuf, RTPParseError
from sippy.Rtp.Codecs.GenCodec import GenCodec
from sippy.Rtp.Conf import RTPConf
from sippy.Rtp.Core.AudioChunk import AudioChunk, pcm16_to_bytes
from sippy.Rtp.EPoint import RTPEPoint
from sippy.Rtp.Handlers import RTPHandlers
from sippy.Rtp.Params import RTPParams

from .g711 import SAMPLE_RATE, SAMPLE_WIDTH, G711Law
from .sdp import PTIME_MS

logger = logging.getLogger(__name__)

CHUNK_MS = 100
CHUNK_BYTES = SAMPLE_RATE * SAMPLE_WIDTH * CHUNK_MS // 1000
FRAME_SAMPLES = SAMPLE_RATE * PTIME_MS // 1000
JITTER_PACKETS = 8  # sippy's default: 160 ms of 20 ms packets before the first one comes out
BROKEN_RTP_LIMIT = 50
MAX_GAP_SAMPLES = SAMPLE_RATE  # one second
DTMF_EVENTS = "0123456789*#ABCD"
LOCK_TIMEOUT_SECONDS = 0.02


class MediaSink(Protocol):
    """Where a call's RTP ends up. Called on rtpsynth's RTP thread: implementations only hand over."""

    def rtp_audio(self, pcm: bytes) -> None: ...

    def rtp_dtmf(self, digit: str, at_ms: int) -> None: ...

    def rtp_broken(self, broken_packets: int) -> None: ...


class _G711Codec(GenCodec):
    """sippy's codec interface over our G.711 tables (used by sippy's RTP writer for playback)."""

    law: G711Law
    srate = SAMPLE_RATE
    crate = SAMPLE_RATE

    def encode(self, chunk: Any) -> bytes:
        return self.law.encode(pcm16_to_bytes(chunk.audio))

    def decode(self, payload: bytes, resample: bool = True, sample_rate: int | None = None) -> Any:
        return AudioChunk(self.law.decode(payload), SAMPLE_RATE)

    def e2d_frames(self, enframes: int, out_srate: int | None = None) -> int:
        return enframes

    def d2e_frames(self, dnframes: int, in_srate: int | None = None) -> int:
        return dnframes

    def silence(self, nframes: int) -> bytes:
        return self.law.silence(nframes)


@cache
def sippy_codec(law: G711Law, payload_type: int) -> type[_G711Codec]:
    """A sippy codec class for `law` sent with `payload_type` (static 0/8, or the caller's dynamic number)."""
    return type(f"{law.name}Codec{payload_type}", (_G711Codec,), {"law": law, "ptype": payload_type, "ename": law.name})


@dataclass
class IngestStats:
    packets: int = 0
    broken: int = 0
    other_payload: int = 0
    gaps: int = 0


class RtpIngest:
    """Incoming RTP of one call, in place of sippy's `RTPInStream` (same constructor and methods)."""

    def __init__(self, rtp_params: Any, sink: MediaSink):
        codec = rtp_params.codec
        self.law: G711Law = codec.law
        self.payload_type: int = codec.ptype
        self.telephone_event: int | None = getattr(rtp_params, "telephone_event", None)
        self.sink = sink
        self.stats = IngestStats()
        self._lock = threading.Lock()
        self._jitter = RtpJBuf(JITTER_PACKETS)
        self._pending = bytearray()
        self._samples_out = 0
        self._next_timestamp: int | None = None
        self._closed = False
        self._broken_in_a_row = 0
        self._reported_broken = False
        self._last_event_ts: int | None = None
        self._first_timestamp: int | None = None
        self.last_packet_at = time.monotonic()

    # sippy's RTPInStream interface

    def rtp_received(self, data: bytes, address: Any, rtime: float) -> None:
        try:
            self._received(data, rtime)
        except Exception:
            logger.exception("sip: RTP packet from %s could not be handled; packet dropped", address)

    def stream_update(self) -> None:
        with self._lock:
            # A new offer (re-INVITE) may restart sequence numbers: start a fresh jitter buffer.
            self._pending += self._decode(self._jitter.flush())
            self._jitter = RtpJBuf(JITTER_PACKETS)
            self._next_timestamp = None

    def stream_connect(self, audio_in: Callable[..., Any]) -> None:
        raise NotImplementedError("the SIP door does not reconnect a call's audio to another sink")

    # ours

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_packet_at

    def touch(self) -> None:
        """Count idle time from now (the call was just answered)."""
        self.last_packet_at = time.monotonic()

    def close(self) -> bytes:
        """Stop taking packets; returns the audio still held (jitter buffer and the last partial piece)."""
        with self._lock:
            if self._closed:
                return b""
            self._closed = True
            self._pending += self._decode(self._jitter.flush())
            rest, self._pending = bytes(self._pending), bytearray()
            return rest

    def _received(self, data: bytes, rtime: float) -> None:
        # The sink is called under the lock, so `close()` cannot slip its flush in between and reorder audio.
        with self._lock:
            if self._closed:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                self._broken()
                return
            payload_type = data[1] & 0x7F
            if payload_type == self.payload_type:
                try:
                    frames = self._jitter.udp_in(data, rtime)
                except RTPParseError:
                    self._broken()
                    return
                self._valid()
                if self._first_timestamp is None:
                    self._first_timestamp = int.from_bytes(data[4:8], "big")
                self._pending += self._decode(frames)
                audio = self._take_chunks()
                if audio:
                    self.sink.rtp_audio(audio)
            elif payload_type == self.telephone_event:
                self._valid()
                digit = self._dtmf(data)
                if digit is not None:
                    self.sink.rtp_dtmf(*digit)
            else:
                # Neither audio nor broken: alive, but no excuse for the broken datagrams around it.
                self.last_packet_at = time.monotonic()
                self.stats.other_payload += 1

    def _valid(self) -> None:
        self.last_packet_at = time.monotonic()
        self.stats.packets += 1
        self._broken_in_a_row = 0

    def _broken(self) -> None:
        """Count a broken datagram; the sink hears of it once, when the limit is reached."""
        self.stats.broken += 1
        self._broken_in_a_row += 1
        if self._broken_in_a_row >= BROKEN_RTP_LIMIT and not self._reported_broken:
            self._reported_broken = True
            self.sink.rtp_broken(self._broken_in_a_row)

    def _decode(self, frames: list[Any]) -> bytes:
        out = bytearray()
        for frame in frames:
            content = frame.content
            # Gaps are measured on RTP timestamps, not taken from the jitter buffer's erasure frames: those
            # also count sequence numbers spent on DTMF packets, and report a bogus gap from sequence 0 when
            # flushed before their first frame.
            if content.type == RTPFrameType.ERS:
                continue
            timestamp = content.frame.rtp.info.ts
            payload = frame.rtp_data
            if self._next_timestamp is not None:
                gap = (timestamp - self._next_timestamp) & 0xFFFFFFFF
                if 0 < gap <= MAX_GAP_SAMPLES:
                    self.stats.gaps += 1
                    out += bytes(gap * SAMPLE_WIDTH)
                elif MAX_GAP_SAMPLES < gap < 0x80000000:
                    logger.info("sip: RTP timestamp jump of %s samples; not padded", gap)
            out += self.law.decode(payload)
            self._next_timestamp = (timestamp + len(payload)) & 0xFFFFFFFF
        self._samples_out += len(out) // SAMPLE_WIDTH
        return bytes(out)

    def _take_chunks(self) -> bytes:
        usable = len(self._pending) - len(self._pending) % CHUNK_BYTES
        if not usable:
            return b""
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        return chunk

    def _dtmf(self, data: bytes) -> tuple[str, int] | None:
        """An RFC 4733 event, reported once per event (its packets share one RTP timestamp), with its time in
        the call: its timestamp counted from the first audio packet's (they share one clock)."""
        header = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= header + 4:  # header extension
            header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
        payload = data[header:]
        timestamp = int.from_bytes(data[4:8], "big")
        if len(payload) < 4 or payload[0] >= len(DTMF_EVENTS) or timestamp == self._last_event_ts:
            return None
        self._last_event_ts = timestamp
        offset = None if self._first_timestamp is None else (timestamp - self._first_timestamp) & 0xFFFFFFFF
        if offset is None or offset >= 0x80000000:
            offset = self._samples_out
        return DTMF_EVENTS[payload[0]], offset * 1000 // SAMPLE_RATE


class _Handlers(RTPHandlers):
    rtp_instream_cls = RtpIngest


class MediaEndpoint:
    """One call's RTP port: receives through `RtpIngest`, plays prompts through sippy's paced writer."""

    def __init__(
        self,
        *,
        local_address: str | None,
        remote: tuple[str, int],
        law: G711Law,
        payload_type: int,
        telephone_event: int | None,
        ports: tuple[int, int],
        sink: MediaSink,
    ):
        self._params = self._rtp_params(remote, law=law, payload_type=payload_type, telephone_event=telephone_event)
        if local_address is not None:
            self._params.rtp_laddr = local_address
        # Without a fixed address sippy takes the local address that routes to the caller.
        self.local_address = str(self._params.rtp_laddr)
        self._endpoint = RTPEPoint(RTPConf(*ports), self._params, sink, _Handlers())
        self.ingest: RtpIngest = self._endpoint.rsess
        self.port = int(self._params.rtp_lport)
        self.closed = False

    @staticmethod
    def _rtp_params(remote: tuple[str, int], *, law: G711Law, payload_type: int, telephone_event: int | None) -> Any:
        params = RTPParams(remote, out_ptime=PTIME_MS, out_sr=SAMPLE_RATE)
        params.codec = sippy_codec(law, payload_type)
        params.telephone_event = telephone_event
        # sippy drops a packet when the endpoint's lock is not free within this time; 1 ms (its default) is
        # shorter than a GIL switch, and a dropped packet is a gap in the recording.
        params.rtp_received_lock_timeout = LOCK_TIMEOUT_SECONDS
        return params

    def retarget(self, remote: tuple[str, int]) -> None:
        """The caller moved its RTP (re-INVITE): send there, and take packets from there only."""
        ingest = self.ingest
        params = self._rtp_params(
            remote, law=ingest.law, payload_type=ingest.payload_type, telephone_event=ingest.telephone_event
        )
        self._endpoint.update(params)

    def play(self, pcm: bytes) -> None:
        """Queue 8 kHz PCM for playback; sippy's writer sends it as 20 ms packets in real time (one packet per
        tick of rtpsynth's `RtpProc` thread), so whoever calls this may hand it a prompt at once or frame by
        frame."""
        step = FRAME_SAMPLES * SAMPLE_WIDTH
        for offset in range(0, len(pcm) - len(pcm) % SAMPLE_WIDTH, step):
            self._endpoint.soundout(AudioChunk(pcm[offset : offset + step], SAMPLE_RATE))

    def close(self) -> bytes:
        """Stop receiving and sending, release the port; returns the audio the ingest still held."""
        rest = self.ingest.close()
        if not self.closed:
            self.closed = True
            self._endpoint.shutdown()
        return rest
