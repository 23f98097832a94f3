"""Asterisk AudioSocket server: one TCP connection per call leg, decoded here and handed to `CallPipeline`.

Per connection: the call UUID frame comes first (anything else ends the connection), the call session is
created through the call services, prompts (the greeting, the keypad menu's answers, what the agent asks
to say) are played back over the same socket in real time by `voice.PromptPlayer`, audio goes to the
pipeline, DTMF is stored and given to the keypad menu, and a hang-up, EOF, protocol error or idle timeout
closes the call with a logged machine reason. A failure in one connection is logged with its call uuid and never reaches
another connection.

The caller number is not on the socket: Asterisk passes it through the CTI API, so it is stored empty here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from hotline.errors import ApplicationError

from . import audiosocket, callback, prompts, services, speech, voice
from .audiosocket import AudioSocketError
from .models import Call, Door
from .pipeline import CallPipeline

logger = logging.getLogger(__name__)

DEFAULT_IDLE_SECONDS = 10.0
BYTES_PER_MS = audiosocket.SAMPLE_RATE * audiosocket.SAMPLE_WIDTH // 1000


def audiosocket_line() -> str:
    """The hotline line AudioSocket calls arrive on (`AUDIOSOCKET_LINE`, default the first line)."""
    return str(getattr(settings, "AUDIOSOCKET_LINE", None) or settings.HOTLINE_LINES[0])


def idle_seconds() -> float:
    """How long a connection may go without a complete frame (`AUDIOSOCKET_IDLE_SECONDS`)."""
    configured = getattr(settings, "AUDIOSOCKET_IDLE_SECONDS", None)
    return float(configured) if configured else DEFAULT_IDLE_SECONDS


class AudioSocketServer:
    """Serves AudioSocket connections; `start()` binds, `stop()` ends every open call and closes the socket."""

    def __init__(self, *, play_greeting: bool = True) -> None:
        self.play_greeting = play_greeting
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, *, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host=host, port=port)
        logger.info("audiosocket: listening on %s:%s", host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self.handle(reader, writer)
        except asyncio.CancelledError:
            pass
        except Exception:
            # handle() logs its own failures; this is the last line of defence for the other calls.
            logger.exception("audiosocket: connection handler failed")
        finally:
            self._connections.discard(task)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        idle = idle_seconds()
        try:
            try:
                first = await audiosocket.read_frame(reader, idle_timeout=idle)
            except AudioSocketError as exc:
                logger.warning("audiosocket: connection from %s closed before a call uuid: %s", peer, exc.reason)
                return
            except ConnectionError:
                logger.warning("audiosocket: connection from %s reset before a call uuid", peer)
                return
            if not isinstance(first, audiosocket.CallUuid):
                logger.warning(
                    "audiosocket: connection from %s closed: first frame is %s, not a call uuid (expected_uuid)",
                    peer,
                    first.kind.name,
                )
                return
            await self._serve_call(str(first.uuid), reader, writer, idle=idle)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_call(
        self, call_uuid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, idle: float
    ) -> None:
        line = audiosocket_line()
        live = await sync_to_async(speech.has_usable_model, thread_sensitive=False)(line=line)
        try:
            call: Call = await sync_to_async(services.call_start)(
                call_uuid=call_uuid,
                door=Door.AUDIOSOCKET,
                hotline_line=line,
                caller_number="",
                live_transcript=live,
            )
            call = await sync_to_async(services.call_answer)(call_id=call.id)
        except ApplicationError as exc:
            logger.warning("audiosocket: call %s refused: %s (%s)", call_uuid, exc.message, exc.code)
            return
        try:
            pipeline = await CallPipeline.open(call)
        except Exception:
            logger.exception("audiosocket: call %s: the audio pipeline could not open", call_uuid)
            await sync_to_async(services.call_end)(call_id=call.id, reason="pipeline_error")
            return

        async def send(frame: bytes) -> None:
            writer.write(audiosocket.encode_audio(frame))
            await writer.drain()

        player = voice.PromptPlayer(call_id=call.id, sample_rate=audiosocket.SAMPLE_RATE, send=send)
        player.start()

        async def hang_up() -> None:
            writer.write(audiosocket.encode_hangup())
            await writer.drain()
            writer.close()  # Asterisk hangs up on the frame; closing ends the read loop either way

        # A call the automated callback placed (its UUID names the task) hears the callback dialogue.
        session = await callback.attach(call, pipeline=pipeline, player=player, hang_up=hang_up)
        if session is None and self.play_greeting:
            player.say(voice.Prompt("greeting", prompts.greeting(line)))
        reason = "server_error"
        cancelled = False
        try:
            reason = await self._receive(call, pipeline, player, reader, idle=idle, session=session)
        except asyncio.CancelledError:
            reason = "server_shutdown"
            cancelled = True
        except Exception:
            logger.exception("audiosocket: call %s failed", call_uuid)
        finally:
            await player.close()
            if session is not None:
                await session.close()
            log = logger.info if reason in ("hangup", "server_shutdown") else logger.warning
            log("audiosocket: call %s closing: %s", call_uuid, reason)
            try:
                await pipeline.close(reason=reason)
            except Exception:
                logger.exception("audiosocket: call %s: closing the pipeline failed", call_uuid)
        if cancelled:
            raise asyncio.CancelledError

    async def _receive(
        self,
        call: Call,
        pipeline: CallPipeline,
        player: voice.PromptPlayer,
        reader: asyncio.StreamReader,
        *,
        idle: float,
        session: callback.VoiceCallbackSession | None = None,
    ) -> str:
        """Feed frames to the pipeline and keys to the menu until the call ends; returns the reason it ended."""
        received_bytes = 0
        menu = voice.VoiceMenu(voice.public_status)
        while True:
            try:
                frame = await audiosocket.read_frame(reader, idle_timeout=idle)
            except AudioSocketError as exc:
                return exc.reason
            except ConnectionError:
                return "connection_reset"
            match frame:
                case audiosocket.Audio(pcm=pcm):
                    received_bytes += len(pcm)
                    await pipeline.audio(pcm)
                case audiosocket.Dtmf(digit=digit):
                    await sync_to_async(services.call_dtmf_add)(
                        call_id=call.id, digit=digit, at_ms=received_bytes // BYTES_PER_MS
                    )
                    if session is not None:
                        await session.press(digit)
                        continue
                    for prompt in await sync_to_async(menu.press)(digit):
                        player.say(prompt, interrupt=True)
                case audiosocket.Hangup():
                    return "hangup"
                case audiosocket.Error(code=code):
                    logger.warning("audiosocket: call %s: Asterisk sent error 0x%s", call.call_uuid, code.hex())
                    return "peer_error"
                case audiosocket.CallUuid():
                    logger.warning("audiosocket: call %s: a second call uuid frame was ignored", call.call_uuid)
