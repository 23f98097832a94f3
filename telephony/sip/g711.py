"""G.711 (ITU-T) μ-law (PCMU) and A-law (PCMA) to and from 16-bit signed little-endian PCM, by table lookup.

Why our own: `audioop` is deprecated (gone in Python 3.13). rtpsynth, which sippy's RTP stack uses, has
μ-law only, and its encoder rounds a few values per segment differently from the ITU reference. The tables
here come from the ITU-T G.711 reference algorithm (the CCITT/Sun `g711.c` segment search), so encoding
matches every other G.711 implementation.

The encoders only look at the top 14 (μ-law) or 13 (A-law) bits of a sample, so a table indexed by the
shifted sample covers every 16-bit input. Decoding maps each code byte to its two PCM bytes.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2

_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for number, end in enumerate(ends):
        if value <= end:
            return number
    return len(ends)


def ulaw_encode_sample(sample: int) -> int:
    """ITU-T G.711 μ-law code of one 16-bit sample (reference algorithm; the tables are built from it)."""
    value = sample >> 2
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = _segment(value, _ULAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def ulaw_decode_sample(code: int) -> int:
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return _ULAW_BIAS - magnitude if code & 0x80 else magnitude - _ULAW_BIAS


def alaw_encode_sample(sample: int) -> int:
    """ITU-T G.711 A-law code of one 16-bit sample (reference algorithm; the tables are built from it)."""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = _segment(value, _ALAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= ((value >> 1) if segment < 2 else (value >> segment)) & 0x0F
    return code ^ mask


def alaw_decode_sample(code: int) -> int:
    code ^= 0x55
    magnitude = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    elif segment == 1:
        magnitude += 0x108
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


def _pcm_bytes(sample: int) -> bytes:
    return sample.to_bytes(2, "little", signed=True)


@dataclass(frozen=True)
class G711Law:
    """One companding law: its SDP name, static RTP payload type, and the lookup tables."""

    name: str
    payload_type: int
    shift: int  # how many low bits of a 16-bit sample the encoder ignores
    silence_code: int  # the code for a zero sample
    _decode: tuple[bytes, ...] = field(repr=False)
    _encode: bytes = field(repr=False)

    def decode(self, payload: bytes) -> bytes:
        """G.711 codes to 16-bit signed little-endian PCM (two bytes per code)."""
        return b"".join(map(self._decode.__getitem__, payload))

    def encode(self, pcm: bytes) -> bytes:
        """16-bit signed little-endian PCM to G.711 codes; a trailing odd byte is ignored."""
        samples = array("h")
        samples.frombytes(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])
        if sys.byteorder == "big":
            samples.byteswap()
        offset = 1 << (15 - self.shift)
        table = self._encode
        return bytes(table[(sample >> self.shift) + offset] for sample in samples)

    def silence(self, samples: int) -> bytes:
        return bytes([self.silence_code]) * samples


def _law(
    name: str, payload_type: int, shift: int, encode_sample: Callable[[int], int], decode_sample: Callable[[int], int]
) -> G711Law:
    top = 1 << (15 - shift)
    encode = bytes(encode_sample(index << shift) for index in range(-top, top))
    decode = tuple(_pcm_bytes(decode_sample(code)) for code in range(256))
    return G711Law(
        name=name,
        payload_type=payload_type,
        shift=shift,
        silence_code=encode_sample(0),
        _decode=decode,
        _encode=encode,
    )


PCMU = _law("PCMU", 0, 2, ulaw_encode_sample, ulaw_decode_sample)
PCMA = _law("PCMA", 8, 3, alaw_encode_sample, alaw_decode_sample)
LAWS = {law.name: law for law in (PCMU, PCMA)}
