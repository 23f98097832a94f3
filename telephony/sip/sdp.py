"""SDP offer/answer for the SIP door (RFC 3264): pick PCMU or PCMA from the caller's offer and write the answer.

The offer is parsed by sippy (`MsgBody` → `SdpBody`). We take the first audio stream over plain RTP/AVP with
an IPv4 address and a non-zero port, and in it the first format, in the caller's order of preference, that is
G.711 at 8 kHz: static payload 0 (PCMU) or 8 (PCMA), or a dynamic payload mapped to PCMU/8000 or PCMA/8000.
RFC 4733 telephone-event (DTMF) is accepted alongside when offered. Anything else is refused with 488, with a
machine reason for the log. The answer keeps one m= line per offered stream (RFC 3264 §6); the streams we do
not take get port 0.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from sippy.SdpMedia import MTAudio

from .g711 import LAWS, SAMPLE_RATE, G711Law

PTIME_MS = 20
STATIC_PAYLOADS = {0: "PCMU/8000", 8: "PCMA/8000"}
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_session_ids = itertools.count(int(time.time()))


class OfferRejected(Exception):
    """The INVITE's offer cannot be answered: `code`/`phrase` go back to the caller, `reason` to the log."""

    def __init__(self, code: int, phrase: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.phrase = phrase
        self.reason = reason


@dataclass(frozen=True)
class MediaChoice:
    law: G711Law
    payload_type: int
    remote: tuple[str, int]  # where the caller wants our RTP
    section: int  # index of the chosen m= line in the offer
    direction: str  # our direction in the answer
    telephone_event: int | None  # the payload type of RFC 4733 DTMF, when offered


def offer_sdp(body: Any) -> Any:
    """The parsed SDP (sippy `SdpBody`) of an INVITE's body (sippy `MsgBody`); refuses what is not SDP."""
    if body is None:
        raise OfferRejected(488, "Not Acceptable Here", "no_offer")
    if body.getType() != "application/sdp":
        raise OfferRejected(415, "Unsupported Media Type", "not_sdp")
    try:
        body.parse()
    except Exception:
        raise OfferRejected(488, "Not Acceptable Here", "bad_sdp") from None
    return body.content


def _rtpmap(section: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    for header in section.a_headers:
        if header.name == "rtpmap" and header.value:
            payload, _, encoding = header.value.strip().partition(" ")
            if payload.isdigit():
                names[int(payload)] = encoding.strip().upper()
    return names


def _direction(sdp: Any, section: Any) -> str:
    for headers in (section.a_headers, sdp.a_headers):
        for header in headers:
            if header.value is None and header.name in ANSWER_DIRECTION:
                return ANSWER_DIRECTION[header.name]
    return "sendrecv"


def _g711(encoding: str) -> G711Law | None:
    name, _, rest = encoding.partition("/")
    rate, _, channels = rest.partition("/")
    if rate != str(SAMPLE_RATE) or channels not in ("", "1"):
        return None
    return LAWS.get(name.upper())


def choose_media(sdp: Any) -> MediaChoice:
    """The stream and codec we answer with; raises OfferRejected (488) when the offer has no G.711 audio."""
    for index, section in enumerate(sdp.sections):
        media, connection = section.m_header, section.c_header
        if media.type is not MTAudio or media.port == 0 or media.transport.upper() != "RTP/AVP":
            continue
        if connection is None or connection.atype.upper() != "IP4":
            continue
        names = {**STATIC_PAYLOADS, **_rtpmap(section)}
        law = payload_type = None
        for candidate in media.formats:
            law = _g711(names.get(candidate, ""))
            if law is not None:
                payload_type = candidate
                break
        if law is None or payload_type is None:
            continue
        events = [pt for pt in media.formats if names.get(pt, "").startswith("TELEPHONE-EVENT/8000")]
        return MediaChoice(
            law=law,
            payload_type=payload_type,
            remote=(connection.addr, media.port),
            section=index,
            direction=_direction(sdp, section),
            telephone_event=events[0] if events else None,
        )
    raise OfferRejected(488, "Not Acceptable Here", "no_common_codec")


def answer_sdp(sdp: Any, choice: MediaChoice, *, address: str, port: int) -> str:
    """Our answer to `sdp`: the chosen stream at `address:port`, every other offered stream refused (port 0)."""
    session = next(_session_ids)
    lines = ["v=0", f"o=- {session} {session} IN IP4 {address}", "s=-", f"c=IN IP4 {address}", "t=0 0"]
    for index, section in enumerate(sdp.sections):
        media = section.m_header
        if index != choice.section:
            formats = " ".join(str(value) for value in media.formats) or "0"
            lines.append(f"m={media.stype} 0 {media.transport} {formats}")
            continue
        payloads = [choice.payload_type]
        if choice.telephone_event is not None:
            payloads.append(choice.telephone_event)
        lines.append(f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt in payloads)}")
        lines.append(f"a=rtpmap:{choice.payload_type} {choice.law.name}/{SAMPLE_RATE}")
        if choice.telephone_event is not None:
            lines.append(f"a=rtpmap:{choice.telephone_event} telephone-event/{SAMPLE_RATE}")
            lines.append(f"a=fmtp:{choice.telephone_event} 0-15")
        lines.append(f"a=ptime:{PTIME_MS}")
        lines.append(f"a={choice.direction}")
    return "\r\n".join(lines) + "\r\n"
