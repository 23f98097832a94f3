"""Placing an outbound call through Asterisk's Manager Interface (AMI): the automated callback's dial step.

One short AMI session per call: read the banner, `Login` (with call events on, so Asterisk reports how the
call went), `Originate` asynchronously to a dialplan context that hands the answered callee to our
AudioSocket door with the call's UUID, wait for the `OriginateResponse` event carrying our ActionID, then
`Logoff`. AMI is a line protocol: each message is `Key: Value` lines ended by an empty line (CRLF).

`originate()` returns how the call went (answered, or the reason it was not); it raises `AmiError` when the
call could not be placed at all (the PBX unreachable, the login or the action refused), so that the caller
can tell "the citizen did not answer" from "the citizen was never called".
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 5038
CONNECT_TIMEOUT_SECONDS = 5.0
REPLY_TIMEOUT_SECONDS = 10.0
# How long after the ring time the event may still take (Asterisk sends it when the ringing ends).
EVENT_MARGIN_SECONDS = 15.0
MAX_LINE = 8192

# Reason codes of OriginateResponse: the last control frame Asterisk saw on the new channel.
REASONS = {0: "failed", 1: "hung_up", 3: "no_answer", 4: "answered", 5: "busy", 8: "congestion"}


class AmiError(Exception):
    """The call could not be placed. `reason`: unreachable, login_refused, originate_refused, protocol."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"AmiConfig(host={self.host!r}, port={self.port}, username={self.username!r})"


def parse_url(url: str) -> AmiConfig:
    """`tcp://user:secret@host:5038` (user and secret percent-encoded when they hold special characters)."""
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or parts.username is None or parts.password is None:
        raise ValueError("CALLBACK_AMI_URL must look like tcp://user:secret@host:5038")
    return AmiConfig(
        host=parts.hostname,
        port=parts.port or DEFAULT_PORT,
        username=unquote(parts.username),
        secret=unquote(parts.password),
    )


@dataclass(frozen=True)
class OriginateResult:
    answered: bool
    # answered, no_answer, busy, congestion, hung_up, failed; "unknown" when the AMI session ended before
    # Asterisk said (the call may still be under way).
    reason: str
    code: int | None = None
    uniqueid: str = ""


Message = dict[str, str]


def encode(fields: list[tuple[str, str]]) -> bytes:
    lines = []
    for key, value in fields:
        if any(c in f"{key}{value}" for c in "\r\n"):
            # A line break would let a value start an action of its own.
            raise AmiError(f"AMI field {key} holds a line break", reason="protocol")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


async def read_message(reader: asyncio.StreamReader) -> Message:
    message: Message = {}
    while True:
        line = await reader.readline()
        if not line:
            raise AmiError("AMI connection closed", reason="unreachable")
        if len(line) > MAX_LINE:
            raise AmiError("AMI line too long", reason="protocol")
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            if message:
                return message
            continue
        key, sep, value = text.partition(":")
        if sep:
            message[key.strip()] = value.strip()


class AmiSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, config: AmiConfig) -> AmiSession:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(config.host, config.port), timeout=CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError) as exc:
            raise AmiError(f"cannot reach AMI at {config.host}:{config.port}: {exc}", reason="unreachable") from None
        session = cls(reader, writer)
        try:
            banner = await asyncio.wait_for(reader.readline(), timeout=REPLY_TIMEOUT_SECONDS)
        except TimeoutError:
            await session.close()
            raise AmiError("no AMI banner", reason="unreachable") from None
        if not banner.startswith(b"Asterisk Call Manager"):
            await session.close()
            raise AmiError("not an AMI server (no banner)", reason="protocol")
        return session

    async def send(self, fields: list[tuple[str, str]]) -> None:
        self.writer.write(encode(fields))
        await self.writer.drain()

    async def reply_to(self, action_id: str, *, timeout: float) -> Message:
        """The response to our action; events and other replies meanwhile are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await read_message(self.reader)
                if "Response" in message and message.get("ActionID") == action_id:
                    return message

    async def event(self, name: str, action_id: str, *, timeout: float) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                message = await read_message(self.reader)
                if message.get("Event") == name and message.get("ActionID") == action_id:
                    return message

    async def login(self, config: AmiConfig) -> None:
        action_id = _action_id()
        # Call events only: OriginateResponse is one of them, and the rest of a busy PBX's traffic is not.
        await self.send(
            [
                ("Action", "Login"),
                ("ActionID", action_id),
                ("Username", config.username),
                ("Secret", config.secret),
                ("Events", "call"),
            ]
        )
        try:
            reply = await self.reply_to(action_id, timeout=REPLY_TIMEOUT_SECONDS)
        except TimeoutError:
            raise AmiError("no answer to AMI login", reason="unreachable") from None
        if reply.get("Response") != "Success":
            raise AmiError(f"AMI login refused: {reply.get('Message', '')}", reason="login_refused")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send([("Action", "Logoff"), ("ActionID", _action_id())]), timeout=1)
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), timeout=1)


def _action_id() -> str:
    return f"hotline-{secrets.token_hex(8)}"


async def originate(
    config: AmiConfig,
    *,
    channel: str,
    context: str,
    exten: str,
    caller_id: str,
    variables: dict[str, str],
    ring_seconds: int,
) -> OriginateResult:
    """Dial `channel`; when answered, Asterisk runs `context`,`exten`,1 with `variables` set on the channel."""
    session = await AmiSession.connect(config)
    try:
        await session.login(config)
        action_id = _action_id()
        fields = [
            ("Action", "Originate"),
            ("ActionID", action_id),
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", "1"),
            ("CallerID", caller_id),
            ("Timeout", str(ring_seconds * 1000)),
            ("Async", "true"),
            *(("Variable", f"{name}={value}") for name, value in variables.items()),
        ]
        await session.send(fields)
        try:
            reply = await session.reply_to(action_id, timeout=REPLY_TIMEOUT_SECONDS)
        except TimeoutError:
            raise AmiError("no answer to Originate", reason="unreachable") from None
        if reply.get("Response") != "Success":
            raise AmiError(f"Originate refused: {reply.get('Message', '')}", reason="originate_refused")
        try:
            event = await session.event("OriginateResponse", action_id, timeout=ring_seconds + EVENT_MARGIN_SECONDS)
        except (TimeoutError, AmiError):
            # Queued, but we did not hear how it went: the call may still be under way.
            return OriginateResult(answered=False, reason="unknown")
        code_text = event.get("Reason", "")
        code = int(code_text) if code_text.isdigit() else None
        answered = event.get("Response") == "Success"
        reason = "answered" if answered else REASONS.get(code if code is not None else -1, "failed")
        return OriginateResult(answered=answered, reason=reason, code=code, uniqueid=event.get("Uniqueid", ""))
    finally:
        await session.close()
