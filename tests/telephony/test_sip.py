"""The SIP door without a phone: the G.711 codec, SDP offer/answer, RTP ingest, request screening, and the
live server driven by a raw SIP caller over loopback UDP (rejections, a caller's BYE, DTMF, idle and broken
RTP, shutdown). The end-to-end call with a real SIP phone is in test_sip_baresip.py.

Live tests point `VOSK_MODEL_PATH` at nothing, so calls are recorded without a live transcript and the tests
do not depend on (or wait for) the speech model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import wave
from array import array
from pathlib import Path
from typing import Any

import django.db
import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from rtpsynth.RtpUtils import ulaw2linear
from sippy.MsgBody import MsgBody
from sippy.SdpBody import SdpBody
from sippy.SipContentType import SipContentType
from sippy.SipRequest import SipRequest

from telephony import services
from telephony.models import Call, CallStatus, Door, TranscriptStatus
from telephony.sip import g711
from telephony.sip.g711 import PCMA, PCMU
from telephony.sip.rtp import BROKEN_RTP_LIMIT, CHUNK_BYTES, RtpIngest, sippy_codec
from telephony.sip.sdp import OfferRejected, answer_sdp, choose_media, offer_sdp
from telephony.sip.server import SipServer, call_uuid_for, parse_listen

from .sip_peers import RawSipCaller, wait_for

# --- G.711 ---------------------------------------------------------------------------------------------------

# Values of the ITU-T G.711 tables (also in every G.711 implementation, e.g. CCITT/Sun g711.c, audioop).
ULAW_DECODED = {0x00: -32124, 0x0F: -16764, 0x7E: -8, 0x7F: 0, 0x80: 32124, 0xFE: 8, 0xFF: 0}
ALAW_DECODED = {0x00: -5504, 0x2A: -32256, 0x55: -8, 0x80: 5504, 0xAA: 32256, 0xD5: 8}
ULAW_ENCODED = {0: 0xFF, -1: 0x7E, 32767: 0x80, -32768: 0x00, 1000: 0xCE, -1000: 0x4E}
ALAW_ENCODED = {0: 0xD5, -1: 0x55, 32767: 0xAA, -32768: 0x2A, 1000: 0xFA, -1000: 0x7A}


def pcm(samples: list[int]) -> bytes:
    return array("h", samples).tobytes()


def samples(data: bytes) -> list[int]:
    values = array("h")
    values.frombytes(data)
    return values.tolist()


@pytest.mark.parametrize(("law", "decoded"), [(PCMU, ULAW_DECODED), (PCMA, ALAW_DECODED)])
def test_g711_decodes_the_itu_table_values(law, decoded):
    codes = bytes(decoded)
    assert samples(law.decode(codes)) == list(decoded.values())


@pytest.mark.parametrize(("law", "encoded"), [(PCMU, ULAW_ENCODED), (PCMA, ALAW_ENCODED)])
def test_g711_encodes_the_itu_table_values(law, encoded):
    assert law.encode(pcm(list(encoded))) == bytes(encoded.values())


def test_our_ulaw_decoder_agrees_with_rtpsynths_on_every_code():
    assert samples(PCMU.decode(bytes(range(256)))) == list(ulaw2linear(bytes(range(256))))


@pytest.mark.parametrize("law", [PCMU, PCMA])
def test_g711_round_trip_is_stable_and_the_tables_match_the_reference_algorithm(law):
    every_code = bytes(range(256))
    decoded = law.decode(every_code)
    # Decoding then encoding gives the code back (μ-law has two codes for zero: 0x7F comes back as 0xFF).
    assert law.encode(decoded) == bytes(0xFF if law is PCMU and code == 0x7F else code for code in every_code)
    # The tables are the reference algorithm, for every 16-bit sample.
    every_sample = list(range(-32768, 32768))
    encode_sample = g711.ulaw_encode_sample if law is PCMU else g711.alaw_encode_sample
    assert law.encode(pcm(every_sample)) == bytes(encode_sample(sample) for sample in every_sample)
    # Every code but μ-law's second zero decodes to a level of its own.
    assert len(set(samples(decoded))) == (255 if law is PCMU else 256)


@pytest.mark.parametrize("law", [PCMU, PCMA])
def test_g711_keeps_speech_level_audio_above_35_db(law):
    # A 1 kHz tone at about -10 dBFS: G.711's signal-to-quantization-noise ratio is about 38 dB.
    tone = [round(10000 * math.sin(2 * math.pi * 1000 * n / 8000 + 0.3)) for n in range(8000)]
    back = samples(law.decode(law.encode(pcm(tone))))
    noise = sum((a - b) ** 2 for a, b in zip(tone, back, strict=True))
    assert 10 * math.log10(sum(a * a for a in tone) / noise) > 35


def test_g711_silence_and_odd_input():
    assert PCMU.silence(3) == b"\xff\xff\xff" and PCMA.silence(2) == b"\xd5\xd5"
    assert PCMU.encode(pcm([0, 0]) + b"\x01") == b"\xff\xff"
    assert PCMU.decode(b"") == b"" and PCMA.encode(b"") == b""


# --- SDP -------------------------------------------------------------------------------------------------------


def sdp_text(*media: str, session: str = "") -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0"]
    if session:
        lines.append(session)
    for block in media:
        lines.extend(block.strip().splitlines())
    return "\r\n".join(lines) + "\r\n"


BARESIP_AUDIO = """
m=audio 36930 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=ptime:20
"""


def offer(text: str) -> Any:
    return offer_sdp(MsgBody(text))


def test_the_callers_first_g711_format_is_chosen_with_dtmf():
    choice = choose_media(offer(sdp_text(BARESIP_AUDIO)))
    assert (choice.law, choice.payload_type, choice.telephone_event) == (PCMU, 0, 101)
    assert choice.remote == ("192.0.2.10", 36930) and choice.direction == "sendrecv"
    pcma_first = choose_media(offer(sdp_text("m=audio 4000 RTP/AVP 111 8 0\r\na=rtpmap:111 opus/48000/2")))
    assert (pcma_first.law, pcma_first.payload_type, pcma_first.telephone_event) == (PCMA, 8, None)


def test_a_dynamic_payload_mapped_to_g711_is_accepted():
    choice = choose_media(
        offer(sdp_text("m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000\r\na=rtpmap:97 pcma/8000"))
    )
    assert (choice.law, choice.payload_type) == (PCMA, 97)


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (sdp_text("m=audio 4000 RTP/AVP 111 9\r\na=rtpmap:111 opus/48000/2"), 488, "no_common_codec"),
        (sdp_text("m=audio 4000 RTP/SAVP 0 8"), 488, "no_common_codec"),
        (sdp_text("m=audio 0 RTP/AVP 0 8"), 488, "no_common_codec"),
        (sdp_text("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000"), 488, "no_common_codec"),
        (sdp_text("m=video 5000 RTP/AVP 96"), 488, "no_common_codec"),
        ("v=0\r\ns=-\r\nm=audio 4000 RTP/AVP 0\r\n", 488, "bad_sdp"),
    ],
)
def test_an_offer_without_usable_g711_audio_is_refused_with_488(body, code, reason):
    with pytest.raises(OfferRejected) as refused:
        choose_media(offer(body))
    assert (refused.value.code, refused.value.reason) == (code, reason)


def test_a_missing_or_foreign_body_is_refused():
    with pytest.raises(OfferRejected) as missing:
        offer_sdp(None)
    assert (missing.value.code, missing.value.reason) == (488, "no_offer")
    text_plain = SipContentType("text/plain")
    text_plain.parse()
    with pytest.raises(OfferRejected) as not_sdp:
        offer_sdp(MsgBody("hello", mtype=text_plain))
    assert (not_sdp.value.code, not_sdp.value.reason) == (415, "not_sdp")


def test_the_answer_keeps_one_line_per_offered_stream_and_mirrors_the_direction():
    sdp = offer(
        sdp_text("m=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000", BARESIP_AUDIO.replace("sendrecv", "sendonly"))
    )
    choice = choose_media(sdp)
    assert choice.section == 1 and choice.direction == "recvonly"
    answer = SdpBody(answer_sdp(sdp, choice, address="198.51.100.7", port=12000))
    video, audio = answer.sections
    assert video.m_header.port == 0 and video.m_header.stype == "video"
    assert (audio.m_header.port, audio.m_header.formats) == (12000, [0, 101])
    assert audio.c_header.addr == "198.51.100.7"
    attributes = {str(header) for header in audio.a_headers}
    assert {"rtpmap:0 PCMU/8000", "rtpmap:101 telephone-event/8000", "ptime:20", "recvonly"} <= attributes


# --- RTP ingest ------------------------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.audio: list[bytes] = []
        self.dtmf: list[tuple[str, int]] = []
        self.broken: list[int] = []

    def rtp_audio(self, pcm: bytes) -> None:
        self.audio.append(pcm)

    def rtp_dtmf(self, digit: str, at_ms: int) -> None:
        self.dtmf.append((digit, at_ms))

    def rtp_broken(self, broken_packets: int) -> None:
        self.broken.append(broken_packets)


def ingest(law=PCMU, payload_type=0, telephone_event=101) -> tuple[RtpIngest, Sink]:  # type: ignore[no-untyped-def]
    params = type("Params", (), {"codec": sippy_codec(law, payload_type), "telephone_event": telephone_event})()
    sink = Sink()
    return RtpIngest(params, sink), sink


def packet(seq: int, timestamp: int, payload: bytes, payload_type: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq & 0xFFFF, timestamp, 0x1234) + payload


def test_ingest_decodes_in_100_ms_pieces_and_close_returns_the_rest():
    rtp, sink = ingest()
    codes = bytes(range(256)) * 5  # 1280 samples: 8 packets of 160
    for number in range(8):
        rtp.rtp_received(packet(10 + number, 1000 + 160 * number, codes[160 * number : 160 * (number + 1)]), None, 0.0)
    rest = rtp.close()
    assert all(len(piece) == CHUNK_BYTES for piece in sink.audio)
    assert b"".join(sink.audio) + rest == PCMU.decode(codes)
    assert rtp.close() == b""
    rtp.rtp_received(packet(18, 2280, codes[:160]), None, 0.0)
    assert len(b"".join(sink.audio)) + len(rest) == 2 * len(codes)


def test_ingest_pads_lost_packets_with_silence_and_ignores_sequence_spent_on_dtmf():
    rtp, sink = ingest()
    tone = PCMU.encode(pcm([3000] * 160))
    sent = [n for n in range(20) if n not in (5, 6)]  # two packets lost
    for n in sent:
        rtp.rtp_received(packet(100 + n, 160 * n, tone), None, 0.0)
    # A DTMF event (same SSRC and sequence space, timestamp not advanced) between audio packets.
    rtp.rtp_received(packet(120, 160 * 20, struct.pack("!BBH", 5, 0x0A, 160), payload_type=101), None, 0.0)
    rtp.rtp_received(packet(121, 160 * 20, struct.pack("!BBH", 5, 0x8A, 320), payload_type=101), None, 0.0)
    for n in range(20, 30):
        rtp.rtp_received(packet(102 + n, 160 * n, tone), None, 0.0)
    audio = samples(b"".join(sink.audio) + rtp.close())
    assert len(audio) == 30 * 160
    assert audio[5 * 160 : 7 * 160] == [0] * 320 and audio[7 * 160] != 0
    assert set(audio[20 * 160 :]) == {audio[0]}
    # Reported once, at its RTP time: 20 packets of 20 ms after the first.
    assert sink.dtmf == [("5", 400)]


def test_ingest_reports_broken_rtp_once_after_the_limit_and_ignores_other_payloads():
    rtp, sink = ingest()
    for _ in range(BROKEN_RTP_LIMIT - 1):
        rtp.rtp_received(b"garbage that is not RTP at all", None, 0.0)
    rtp.rtp_received(packet(1, 0, b"\x0d" * 4, payload_type=13), None, 0.0)  # comfort noise: not audio, not broken
    assert sink.broken == []
    rtp.rtp_received(b"\x00" * 5, None, 0.0)
    assert sink.broken == [BROKEN_RTP_LIMIT]
    for _ in range(100):
        rtp.rtp_received(b"\xff" * 40, None, 0.0)
    assert sink.broken == [BROKEN_RTP_LIMIT]
    assert rtp.stats.broken == BROKEN_RTP_LIMIT + 100 and rtp.stats.other_payload == 1


def test_valid_audio_resets_the_broken_count():
    rtp, sink = ingest()
    for round_number in range(3):
        for _ in range(BROKEN_RTP_LIMIT - 1):
            rtp.rtp_received(b"junk", None, 0.0)
        rtp.rtp_received(packet(round_number, 160 * round_number, b"\xff" * 160), None, 0.0)
    assert sink.broken == []


# --- screening INVITEs -----------------------------------------------------------------------------------------


def invite(line: str = "12345", body: str | None = None, content_type: str = "application/sdp") -> Any:
    body = sdp_text(BARESIP_AUDIO) if body is None else body
    text = "\r\n".join(
        [
            f"INVITE sip:{line}@127.0.0.1:5060 SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds",
            "Max-Forwards: 70",
            "From: <sip:13912345678@127.0.0.1>;tag=1928301774",
            f"To: <sip:{line}@127.0.0.1:5060>",
            "Call-ID: a84b4c76e66710@pc33",
            "CSeq: 314159 INVITE",
            "Contact: <sip:13912345678@127.0.0.1:5070>",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "",
            body,
        ]
    )
    return SipRequest(text)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (invite(line="110"), 404),
        (invite(line="12345", body=sdp_text("m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2")), 488),
        (invite(line="12345", content_type="text/plain", body="hello"), 415),
    ],
    ids=["unknown line", "no G.711", "not SDP"],
)
def test_invites_we_cannot_take_are_refused_before_any_call_exists(request_, code, caplog):
    caplog.set_level(logging.INFO, logger="telephony.sip.server")
    server = SipServer(host="127.0.0.1", port=0)
    response, cancel, no_ack = server._request(request_, None)
    assert response.getSCode()[0] == code and cancel is None and no_ack is None
    assert server.active_calls == 0
    assert "13912345678" not in caplog.text and "139****5678" in caplog.text


def test_an_in_dialog_request_without_a_dialog_gets_481():
    request = invite()
    request.getHFBody("to").setTag("gone")
    response, _, _ = SipServer(host="127.0.0.1", port=0)._request(request, None)
    assert response.getSCode()[0] == 481


def test_listen_and_call_ids():
    assert parse_listen("192.0.2.1:5060") == ("192.0.2.1", 5060)
    assert parse_listen(" sip.example.org:5080 ") == ("sip.example.org", 5080)
    for bad in ("5060", "host:", ":5060", "host:70000", "host:abc"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    assert call_uuid_for("abc@host") == "abc@host"
    long_id = "x" * 100
    assert len(call_uuid_for(long_id)) == 64 and call_uuid_for(long_id) == call_uuid_for(long_id)


# --- the live server, driven by a raw SIP caller --------------------------------------------------------------


@pytest.fixture
async def server(settings, tmp_path, transactional_db):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    settings.VOSK_MODEL_PATH = str(tmp_path / "no-model")
    settings.SIP_RTP_IDLE_SECONDS = 1.0
    server = SipServer(host="127.0.0.1", port=0, play_greeting=False)
    await server.start()
    yield server
    await server.stop()
    await sync_to_async(django.db.connections.close_all)()


@pytest.fixture
async def caller(server):  # type: ignore[no-untyped-def]
    callers: list[RawSipCaller] = []

    async def make(**options: Any) -> RawSipCaller:
        peer = RawSipCaller(server.port, **options)
        await peer.open()
        callers.append(peer)
        return peer

    yield make
    for peer in callers:
        peer.close()


async def get_call(call_uuid: str) -> Call:
    return await sync_to_async(Call.objects.get)(call_uuid=call_uuid)


async def call_of(call_uuid: str, **lookup: Any) -> Call | None:
    return await sync_to_async(Call.objects.filter(call_uuid=call_uuid, **lookup).first)()


async def ended(call_uuid: str) -> Call | None:
    call = await sync_to_async(Call.objects.filter(call_uuid=call_uuid, status=CallStatus.ENDED).first)()
    return call


def recording(settings, call: Call) -> bytes:  # type: ignore[no-untyped-def]
    with wave.open(str(Path(settings.MEDIA_ROOT) / call.audio_path)) as recorded:
        assert (recorded.getframerate(), recorded.getsampwidth(), recorded.getnchannels()) == (8000, 2, 1)
        return recorded.readframes(recorded.getnframes())


async def test_unknown_line_and_unusable_offer_get_clean_rejections_and_no_call(server, caller):
    unknown = await caller(line="110")
    assert (await unknown.invite()).status == 404
    opus_only = await caller(payloads="111", rtpmap=["111 opus/48000/2"])
    assert (await opus_only.invite()).status == 488
    assert not await sync_to_async(Call.objects.exists)()


async def test_a_call_is_answered_recorded_and_ended_by_the_callers_bye(server, caller, settings):
    peer = await caller(payloads="8 0 101", rtpmap=["8 PCMA/8000", "0 PCMU/8000", "101 telephone-event/8000"])
    answer = await peer.invite()
    assert answer.status == 200 and "a=rtpmap:8 PCMA/8000" in answer.body
    tone = [round(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(8000)]  # one second
    await peer.send_audio(PCMA.encode(pcm(tone[:4000])), payload_type=8)
    peer.send_dtmf("7")
    await peer.send_audio(PCMA.encode(pcm(tone[4000:])), payload_type=8)
    assert (await peer.hang_up()).status == 200

    call = await wait_for(lambda: ended(peer.call_id), timeout=10)
    assert call.door == Door.SIP and call.hotline_line == "12345" and call.caller_number == "13800138000"
    assert call.end_reason == "hangup" and call.answered_at is not None
    assert call.transcript_status == TranscriptStatus.PENDING  # no model: transcribed later
    # Every sample the caller sent is on disk, in order, including what the jitter buffer still held at BYE.
    assert recording(settings, call) == PCMA.decode(PCMA.encode(pcm(tone)))
    digits = await sync_to_async(lambda: list(call.dtmf.values_list("digit", "at_ms")))()
    assert digits == [("7", 500)]


async def test_a_silent_caller_and_a_garbage_caller_end_alone_with_their_reasons(server, caller, settings, caplog):
    caplog.set_level(logging.INFO, logger="telephony.sip.server")
    silent, garbage, good = await caller(), await caller(), await caller()
    assert [(await peer.invite()).status for peer in (silent, garbage, good)] == [200, 200, 200]
    half_second = PCMU.encode(pcm([1000] * 4000))

    async def go_silent() -> None:
        await silent.send_audio(half_second)
        await silent.expect_bye(timeout=10)

    async def send_garbage() -> None:
        await garbage.send_audio(half_second)
        for _ in range(BROKEN_RTP_LIMIT):
            garbage.send_datagram(b"\x00garbage, not RTP\x00")
            await asyncio.sleep(0.005)
        await garbage.expect_bye(timeout=10)

    async def talk() -> None:
        for _ in range(6):
            await good.send_audio(half_second)
        await good.hang_up()

    await asyncio.gather(go_silent(), send_garbage(), talk())
    by_reason = {}
    for peer in (silent, garbage, good):
        call = await wait_for(lambda peer=peer: ended(peer.call_id), timeout=10)
        by_reason[call.end_reason] = len(recording(settings, call)) // 2
    # The silent caller's half second and the garbage caller's valid half second are all on disk.
    assert by_reason == {"rtp_timeout": 4000, "bad_rtp": 4000, "hangup": 24000}
    assert f"{silent.call_id} closing: rtp_timeout" in caplog.text
    assert f"{garbage.call_id} closing: bad_rtp" in caplog.text


async def test_the_keypad_menu_answers_over_rtp_and_hold_is_recorded(server, caller):
    peer = await caller(payloads="0 101", rtpmap=["0 PCMU/8000", "101 telephone-event/8000"])
    assert (await peer.invite()).status == 200
    quiet = PCMU.encode(pcm([0] * 1600))  # 200 ms
    await peer.send_audio(quiet)
    assert peer.heard() == []  # no greeting in these tests: anything heard now is the menu
    peer.send_dtmf("*")
    spoken = 0
    for _ in range(30):  # up to 6 s for the prompt to be rendered and start
        await peer.send_audio(quiet)
        spoken += sum(1 for packet in peer.heard() if packet[1] & 0x7F == 0 and set(packet[12:]) - {0xFF, 0x7F})
        if spoken >= 25:
            break
    assert spoken >= 25, "the menu's prompt (请输入工单编号) was not heard over RTP"

    assert (await peer.reinvite("sendonly")).status == 200
    held = await wait_for(lambda: call_of(peer.call_id, status=CallStatus.HELD), timeout=5)
    await asyncio.sleep(1.5)  # longer than SIP_RTP_IDLE_SECONDS: a held caller need not send RTP
    assert (await peer.reinvite("sendrecv")).status == 200
    await wait_for(lambda: call_of(peer.call_id, status=CallStatus.ACTIVE), timeout=5)
    await peer.send_audio(quiet)
    assert (await peer.hang_up()).status == 200

    call = await wait_for(lambda: ended(peer.call_id), timeout=10)
    assert held.id == call.id and call.end_reason == "hangup"
    trail = await sync_to_async(lambda: list(call.events.values_list("kind", flat=True)))()
    assert trail[:2] == ["ringing", "answered"] and "held" in trail and "resumed" in trail
    assert trail.index("held") < trail.index("resumed") and trail[-1] == "hungup"
    digits = await sync_to_async(lambda: list(call.dtmf.values_list("digit", "at_ms")))()
    assert digits == [("*", 200)]


async def test_an_error_in_one_calls_handling_ends_only_that_call(server, caller, monkeypatch, settings):
    real_dtmf_add = services.call_dtmf_add

    def failing_dtmf_add(*, call_id: int, digit: str, at_ms: int) -> Any:
        if digit == "9":
            raise RuntimeError("disk full")
        return real_dtmf_add(call_id=call_id, digit=digit, at_ms=at_ms)

    monkeypatch.setattr(services, "call_dtmf_add", failing_dtmf_add)
    failing = await caller(payloads="0 101", rtpmap=["0 PCMU/8000", "101 telephone-event/8000"])
    other = await caller(payloads="0 101", rtpmap=["0 PCMU/8000", "101 telephone-event/8000"])
    assert (await failing.invite()).status == 200 and (await other.invite()).status == 200
    tone = PCMU.encode(pcm([2000] * 1600))
    await asyncio.gather(failing.send_audio(tone), other.send_audio(tone))
    failing.send_dtmf("9")
    bye = asyncio.create_task(failing.expect_bye(timeout=10))
    for _ in range(5):
        await other.send_audio(tone)
    other.send_dtmf("1")
    await other.send_audio(tone)
    assert (await bye).method == "BYE"
    assert (await other.hang_up()).status == 200

    broken = await wait_for(lambda: ended(failing.call_id), timeout=10)
    fine = await wait_for(lambda: ended(other.call_id), timeout=10)
    assert broken.end_reason == "server_error" and len(recording(settings, broken)) == 3200
    assert fine.end_reason == "hangup" and len(recording(settings, fine)) == 7 * 3200
    assert await sync_to_async(lambda: list(fine.dtmf.values_list("digit", flat=True)))() == ["1"]


async def test_shutdown_ends_open_calls_with_a_bye_and_a_reason(server, caller):
    peer = await caller()
    assert (await peer.invite()).status == 200
    await peer.send_audio(PCMU.encode(pcm([500] * 1600)))
    bye = asyncio.create_task(peer.expect_bye(timeout=10))
    await server.stop()
    assert (await bye).method == "BYE"
    call = await get_call(peer.call_id)
    assert call.status == CallStatus.ENDED and call.end_reason == "server_shutdown"


# --- the command -----------------------------------------------------------------------------------------------


def test_run_sip_refuses_a_bad_address_and_an_agent_who_cannot_take_calls(org):
    with pytest.raises(CommandError, match="HOST:PORT"):
        call_command("run_sip", listen="nowhere")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("run_sip", listen="127.0.0.1:0", agent="nobody")
    with pytest.raises(CommandError, match="坐席不存在或不是热线中心人员"):
        call_command("run_sip", listen="127.0.0.1:0", agent=org.handler.username)
