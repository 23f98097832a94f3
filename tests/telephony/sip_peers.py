"""Callers for the SIP door's tests: a real SIP phone (baresip) and a raw SIP caller that can misbehave.

`Baresip` runs Debian's baresip 1.0.0 with a config of its own in a temporary directory: G.711 only, the
microphone is a WAV file (`aufile`; baresip hangs up once it has played it), what it hears is written to WAV
(`sndfile`), and `net_interface 127.0.0.1` so that its SDP offers the loopback address. It dials from the
command line (`-e "/dial …"`), which in 1.0.0 needs the `menu` module, and `account` to load its account.

`RawSipCaller` speaks just enough SIP over UDP (INVITE, ACK, BYE, and 200 OK to the server's BYE) and sends
whatever RTP it is told to: valid G.711 packets, RFC 4733 DTMF, garbage, or nothing at all.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

BARESIP = "baresip"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")


def convert_to_8k(source: Path, target: Path) -> Path:
    """The clip as 8 kHz mono 16-bit WAV (baresip's aufile only plays files at the codec's rate)."""
    command = ["sox", str(source), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(target)]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return target


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (8000, 1, 2)
        return clip.readframes(clip.getnframes())


class Baresip:
    """One baresip process that dials `uri` at start and plays `source` (8 kHz WAV) into the call."""

    def __init__(self, directory: Path, *, source: Path, caller: str):
        self.directory = directory
        self.source = source
        self.caller = caller
        self.heard = directory / "heard"
        self.process: asyncio.subprocess.Process | None = None
        self.output = ""

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.heard.mkdir(exist_ok=True)
        config = f"""
poll_method epoll
sip_listen 127.0.0.1:0
net_interface 127.0.0.1
call_local_timeout 30
audio_player aubridge,nil
audio_source aufile,{self.source}
audio_alert aubridge,nil
jitter_buffer_delay 1-5
module_path {BARESIP_MODULES}
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
snd_path {self.heard}
module_tmp uuid.so
module_tmp account.so
module_app menu.so
"""
        (self.directory / "config").write_text(config.lstrip())
        # regint=0: no REGISTER, the account only names the caller.
        (self.directory / "accounts").write_text(f"<sip:{self.caller}@127.0.0.1>;regint=0\n")

    async def dial(self, uri: str) -> None:
        self.write_config()
        self.process = await asyncio.create_subprocess_exec(
            BARESIP,
            "-f",
            str(self.directory),
            "-e",
            f"/dial {uri}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def stop(self) -> str:
        """End the process (it stays up after a call) and return what it printed."""
        if self.process is None:
            return self.output
        if self.process.returncode is None:
            self.process.terminate()
        try:
            out, _ = await asyncio.wait_for(self.process.communicate(), timeout=10)
        except TimeoutError:
            self.process.kill()
            out, _ = await self.process.communicate()
        self.output = out.decode(errors="replace").replace("\r", "\n")
        return self.output

    def heard_pcm(self) -> bytes:
        """What baresip decoded from our RTP (sndfile's `dump-…-dec.wav`)."""
        files = sorted(self.heard.glob("*-dec.wav"))
        assert files, f"baresip wrote no decoded audio to {self.heard}"
        return wav_pcm(files[-1])


def baresip_installed() -> bool:
    return shutil.which(BARESIP) is not None and (BARESIP_MODULES / "g711.so").is_file()


# --- a raw SIP caller --------------------------------------------------------------------------------------


@dataclass
class SipMessage:
    start: str
    headers: dict[str, str]
    body: str

    @property
    def status(self) -> int:
        return int(self.start.split()[1]) if self.start.startswith("SIP/2.0") else 0

    @property
    def method(self) -> str:
        return "" if self.start.startswith("SIP/2.0") else self.start.split()[0]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}


def parse_message(data: bytes) -> SipMessage:
    head, _, body = data.decode().partition("\r\n\r\n")
    start, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        key = COMPACT.get(name.strip().lower(), name.strip().lower())
        headers.setdefault(key, value.strip())
    return SipMessage(start, headers, body)


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


@dataclass
class RawSipCaller:
    """A SIP caller on 127.0.0.1 that we drive step by step."""

    server_port: int
    line: str = "12345"
    caller: str = "13800138000"
    payloads: str = "0 8"
    rtpmap: list[str] = field(default_factory=lambda: ["0 PCMU/8000", "8 PCMA/8000"])
    call_id: str = field(default_factory=lambda: f"raw-{secrets.token_hex(8)}")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(6))

    def __post_init__(self) -> None:
        self.sip: asyncio.DatagramTransport | None = None
        self.rtp: asyncio.DatagramTransport | None = None
        self.inbox = _Inbox()
        self.rtp_inbox = _Inbox()
        self.sip_port = self.rtp_port = 0
        self.to_header = ""
        self.remote_target = ""
        self.server_rtp: tuple[str, int] | None = None
        self.answer: SipMessage | None = None
        self._cseq = 1
        self._seq = 1000
        self._timestamp = 160_000
        self._ssrc = secrets.randbits(32)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.sip, _ = await loop.create_datagram_endpoint(lambda: self.inbox, local_addr=("127.0.0.1", 0))
        self.rtp, _ = await loop.create_datagram_endpoint(lambda: self.rtp_inbox, local_addr=("127.0.0.1", 0))
        self.sip_port = self.sip.get_extra_info("sockname")[1]
        self.rtp_port = self.rtp.get_extra_info("sockname")[1]

    def close(self) -> None:
        for transport in (self.sip, self.rtp):
            if transport is not None:
                transport.close()

    def _send(self, text: str) -> None:
        assert self.sip is not None
        self.sip.sendto(text.encode(), ("127.0.0.1", self.server_port))

    def _via(self) -> str:
        return f"SIP/2.0/UDP 127.0.0.1:{self.sip_port};branch=z9hG4bK{secrets.token_hex(8)};rport"

    def offer(self, direction: str = "sendrecv") -> str:
        lines = [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio {self.rtp_port} RTP/AVP {self.payloads}",
            *(f"a=rtpmap:{entry}" for entry in self.rtpmap),
            f"a={direction}",
        ]
        return "\r\n".join(lines) + "\r\n"

    def request(self, method: str, uri: str, cseq: int, *, to: str, body: str = "") -> str:
        headers = [
            f"{method} {uri} SIP/2.0",
            f"Via: {self._via()}",
            "Max-Forwards: 70",
            f"From: <sip:{self.caller}@127.0.0.1>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.caller}@127.0.0.1:{self.sip_port}>",
        ]
        if body:
            headers.append("Content-Type: application/sdp")
        headers.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(headers) + "\r\n\r\n" + body

    async def receive(self, timeout: float = 10) -> SipMessage:
        return parse_message(await asyncio.wait_for(self.inbox.queue.get(), timeout))

    async def invite(self, *, body: str | None = None, timeout: float = 15) -> SipMessage:
        """Send INVITE; return the final response (ACKed when it is a 2xx)."""
        uri = f"sip:{self.line}@127.0.0.1:{self.server_port}"
        self._send(self.request("INVITE", uri, 1, to=f"<{uri}>", body=self.offer() if body is None else body))
        while True:
            response = await self.receive(timeout)
            if response.status >= 200:
                break
        self.to_header = response.header("to")
        if 200 <= response.status < 300:
            self.answer = response
            contact = response.header("contact")
            self.remote_target = contact[contact.index("<") + 1 : contact.index(">")]
            self._send(self.request("ACK", self.remote_target, 1, to=self.to_header))
            media = next(line for line in response.body.splitlines() if line.startswith("m=audio"))
            address = next(line for line in response.body.splitlines() if line.startswith("c="))
            self.server_rtp = (address.split()[-1], int(media.split()[1]))
        return response

    async def reinvite(self, direction: str) -> SipMessage:
        """A re-INVITE in the dialog with our offer in `direction` (sendonly or inactive holds the call)."""
        self._cseq += 1
        body = self.offer(direction)
        self._send(self.request("INVITE", self.remote_target, self._cseq, to=self.to_header, body=body))
        while True:
            response = await self.receive()
            if response.status >= 200:
                break
        if 200 <= response.status < 300:
            self._send(self.request("ACK", self.remote_target, self._cseq, to=self.to_header))
        return response

    async def hang_up(self) -> SipMessage:
        self._cseq += 1
        self._send(self.request("BYE", self.remote_target, self._cseq, to=self.to_header))
        while True:
            response = await self.receive()
            if response.status >= 200:
                return response

    async def expect_bye(self, timeout: float = 15) -> SipMessage:
        """Wait for the server's BYE and answer it 200 OK."""
        while True:
            request = await self.receive(timeout)
            if request.method == "BYE":
                break
        reply = [
            "SIP/2.0 200 OK",
            f"Via: {request.header('via')}",
            f"From: {request.header('from')}",
            f"To: {request.header('to')}",
            f"Call-ID: {request.header('call-id')}",
            f"CSeq: {request.header('cseq')}",
            "Content-Length: 0",
        ]
        self._send("\r\n".join(reply) + "\r\n\r\n")
        return request

    # RTP

    def send_datagram(self, data: bytes) -> None:
        assert self.rtp is not None and self.server_rtp is not None
        self.rtp.sendto(data, self.server_rtp)

    def rtp_packet(self, payload: bytes, *, payload_type: int = 0, marker: bool = False, advance: bool = True) -> bytes:
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | payload_type, self._seq & 0xFFFF, self._timestamp, self._ssrc
        )
        self._seq += 1
        if advance:
            self._timestamp += len(payload)
        return header + payload

    async def send_audio(self, g711: bytes, *, payload_type: int = 0, frame: int = 160, paced: bool = True) -> int:
        """Send G.711 codes as 20 ms RTP packets, at real-time pace; returns the number of packets."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        count = 0
        for number, offset in enumerate(range(0, len(g711), frame)):
            if paced:
                delay = started + number * 0.02 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.send_datagram(self.rtp_packet(g711[offset : offset + frame], payload_type=payload_type))
            count += 1
        return count

    def heard(self) -> list[bytes]:
        """The RTP packets the server has sent us so far."""
        packets = []
        while not self.rtp_inbox.queue.empty():
            packets.append(self.rtp_inbox.queue.get_nowait())
        return packets

    def send_dtmf(self, digit: str, *, payload_type: int = 101) -> None:
        """One RFC 4733 event: three packets with the same timestamp, the last with the end bit, sent thrice."""
        event = "0123456789*#ABCD".index(digit)
        for number, duration in enumerate((160, 320, 480, 480, 480)):
            end = 0x80 if number >= 2 else 0
            payload = struct.pack("!BBH", event, end | 10, duration)
            self.send_datagram(self.rtp_packet(payload, payload_type=payload_type, marker=number == 0, advance=False))


async def wait_for(predicate, *, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns something truthy; returns it."""
    async with asyncio.timeout(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await asyncio.sleep(interval)
