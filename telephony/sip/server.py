"""The SIP user agent: answers INVITEs to a hotline line, exchanges G.711 over RTP, hands PCM to `CallPipeline`.

Per call: the Request-URI user must be a line in `HOTLINE_LINES` (else 404), the offer must carry PCMU or
PCMA (else 488, see `sdp.py`). The call session is started through the call services (door `sip`, the caller
number from the From header, the agent named by `SIP_AGENT` or `--agent`), the audio pipeline is opened, and
only then is the call answered (200 OK with our SDP), so no audio arrives before there is somewhere to record
it. What the caller hears goes through `voice.PromptPlayer` as on the other doors (the greeting, the keypad
menu's answers to RFC 4733 DTMF, prompts the agent asks for), frame by frame into sippy's RTP writer. A
re-INVITE that puts the call on hold (sendonly, inactive, or no address) is recorded as held, and resuming as
answered again; while held, the caller need not send RTP for up to `HOLD_IDLE_SECONDS`.

The call ends on the caller's BYE (`hangup`) or CANCEL (`cancelled`), on `SIP_RTP_IDLE_SECONDS` without RTP
(`rtp_timeout`: a silent or vanished caller; we send BYE), on a run of broken datagrams (`bad_rtp`), a
missing ACK (`no_ack`), an error in its handling (`server_error`) or shutdown (`server_shutdown`); the reason
is logged and stored on the call. Before the recording is closed, RTP still on its way is waited for and the
jitter buffer is flushed into it. One call's failure never reaches another call.

Threading model. Four kinds of threads meet here; each object belongs to exactly one of them.

1. The sippy reactor ("sip-reactor"): sippy's `EventDispatcher2` (`ED2`, a process-wide singleton) runs its
   loop here. Every sippy SIP object (transaction manager, `UA`, timers) is created and touched only on
   this thread: sippy's timers push onto an unlocked heap and check the thread they run on. sippy's own UDP
   threads read the SIP socket and queue datagrams onto the reactor with `ED2.callFromThread`, and so do we
   (`SipServer.in_reactor`) to answer, reject or hang up from the asyncio side. `ED2` remembers the thread
   that imported it, so the reactor thread re-binds `ED2.my_ident` to itself, as sippy's own Infernos does.
   Hence one `SipServer` per process.
2. rtpsynth's `RtpServer` thread (C, one for all calls) receives RTP and calls `RtpIngest` (in `rtp.py`),
   which decodes G.711 and hands PCM over; rtpsynth's `RtpProc` thread paces the packets we play.
3. The asyncio loop (the command's main thread, or the test's loop): one task per call owns its
   `CallPipeline`, its `PromptPlayer` and menu, and its end. The other threads reach it only through
   `loop.call_soon_threadsafe`, which puts an event on the call's `asyncio.Queue`: audio, DTMF, hold or
   resume, broken RTP, or the caller's hang-up.
4. Django's sync thread and the ASR pool, reached from the task through `sync_to_async` and the pipeline,
   exactly as for the other doors: the ORM is never touched from the reactor or RTP threads.

So no lock guards call state: the reactor-side fields (`ua`, `answered`, `hanging_up`, `held`, and the
server's set of calls) are only touched on the reactor, the rest only on the loop, and the two talk in
messages. The one shared object is the call's `RtpIngest`, which has its own lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import threading
from _thread import get_ident
from collections.abc import Callable
from typing import Any

import sippy.SipTransactionManager
from asgiref.sync import sync_to_async
from django.conf import settings
from sippy.CCEvents import CCEventConnect, CCEventFail, CCEventUpdate
from sippy.Core.EventDispatcher import ED2
from sippy.MsgBody import MsgBody
from sippy.SipConf import SipConf
from sippy.SipTransactionManager import SipTransactionManager
from sippy.UA import UA

from hotline.errors import ApplicationError
from ticketing.masking import mask_phone
from ticketing.models import User

from .. import prompts, selectors, services, speech, voice
from ..models import Call, Door
from ..pipeline import CallPipeline
from .g711 import SAMPLE_RATE
from .rtp import MediaEndpoint
from .sdp import MediaChoice, OfferRejected, answer_sdp, choose_media, offer_sdp

logger = logging.getLogger(__name__)

USER_AGENT = "hotline-sip"
DEFAULT_LISTEN = "127.0.0.1:5060"
DEFAULT_RTP_IDLE_SECONDS = 10.0
DEFAULT_RTP_PORTS = (10000, 20000)
DEFAULT_MAX_CALLS = 60
IDLE_CHECK_SECONDS = 0.5
# A caller who holds the call (re-INVITE sendonly/inactive) need not send RTP; a hold longer than this ends it.
HOLD_IDLE_SECONDS = 300.0
# At the end of a call, RTP sent just before the BYE may still be on its way (rtpsynth polls its sockets every
# 5 ms): the recording is closed once RTP has been quiet this long, or after the longest wait.
DRAIN_QUIET_SECONDS = 0.1
DRAIN_MAX_SECONDS = 0.5
# Reasons that come from the caller's side: we do not send BYE for them.
REMOTE_REASONS = frozenset({"hangup", "cancelled"})
# "Any address" (SIP_LISTEN or an SDP connection line): not an address to bind RTP to or to send RTP to.
UNSPECIFIED_ADDRESSES = frozenset({"", "0.0.0.0"})  # noqa: S104


def parse_listen(value: str) -> tuple[str, int]:
    """ "HOST:PORT" (IPv4 address or host name) to (host, port); ValueError if malformed."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def listen_setting() -> tuple[str, int]:
    return parse_listen(str(getattr(settings, "SIP_LISTEN", None) or DEFAULT_LISTEN))


def rtp_idle_seconds() -> float:
    configured = getattr(settings, "SIP_RTP_IDLE_SECONDS", None)
    return float(configured) if configured else DEFAULT_RTP_IDLE_SECONDS


def rtp_ports() -> tuple[int, int]:
    low, high = getattr(settings, "SIP_RTP_PORTS", None) or DEFAULT_RTP_PORTS
    return int(low), int(high)


def max_calls() -> int:
    configured = getattr(settings, "SIP_MAX_CALLS", None)
    return int(configured) if configured else DEFAULT_MAX_CALLS


def agent_user_id(username: str) -> int | None:
    """The id of the user named by `SIP_AGENT`/`--agent`, or None when there is no such user."""
    return selectors.call_agent_id_by_username(username=username)


def call_uuid_for(sip_call_id: str) -> str:
    """Our call id: the SIP Call-ID, or a digest of it when it is longer than the column."""
    if len(sip_call_id) <= 64:
        return sip_call_id
    return "sip-" + hashlib.sha256(sip_call_id.encode()).hexdigest()[:60]


class _SipMessageLog:
    """sippy's message log (`_sip_logger`), reduced to the start line at DEBUG: whole messages carry caller
    numbers in From, which must not reach the logs in clear."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        lines = "".join(str(part) for part in args).splitlines()
        logger.debug("sip: %s %s", lines[0] if lines else "", lines[1] if len(lines) > 1 else "")


def _dump_exception(message: str, f: Any = None, extra: Any = None) -> None:
    # sippy prints an unparsable message in full (`extra`) to stdout; log the error without it.
    logger.warning("sip: %s", message, exc_info=True)


# One SIP server per process: sippy's event dispatcher is a process-wide singleton.
_claim = threading.Lock()


class SipServer:
    """Serves SIP calls on `host:port` (UDP). `start()` binds and runs the reactor; `stop()` ends every open
    call with `server_shutdown` and releases the port."""

    def __init__(self, *, host: str, port: int, agent_username: str = "", play_greeting: bool = True) -> None:
        self.host = host
        self.requested_port = port
        self.agent_username = agent_username
        self.play_greeting = play_greeting
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.accepting = False
        self._thread: threading.Thread | None = None
        self._reactor_running = False
        self._sippy_config: dict[str, Any] = {}
        self._calls: set[SipCall] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # lifecycle (asyncio side)

    async def start(self) -> None:
        if not _claim.acquire(blocking=False):
            raise RuntimeError("a SIP server is already running in this process (sippy's dispatcher is global)")
        self.loop = asyncio.get_running_loop()
        ready: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._reactor_main, args=(ready,), name="sip-reactor", daemon=True)
        self._thread.start()
        try:
            self.host, self.port = await asyncio.wrap_future(ready)
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            _claim.release()
            raise
        self.accepting = True
        logger.info("sip: listening on %s:%s (UDP)", self.host, self.port)

    async def stop(self) -> None:
        self.accepting = False
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._thread is not None:
            # Queued after the calls' BYEs: the reactor sends those before it stops.
            self.in_reactor(ED2.breakLoop, 0)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            _claim.release()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    # the reactor thread

    def _reactor_main(self, ready: concurrent.futures.Future[tuple[str, int]]) -> None:
        ED2.my_ident = get_ident()
        sippy.SipTransactionManager.dump_exception = _dump_exception
        SipConf.my_uaname = USER_AGENT
        try:
            config: dict[str, Any] = {
                # On "any address" sippy needs its own placeholder, so that it answers each peer from (and names
                # in Contact) the local address that routes to that peer, not 0.0.0.0.
                "_sip_address": SipConf.my_address if self.host in UNSPECIFIED_ADDRESSES else self.host,
                "_sip_port": self.requested_port,
                "_sip_logger": _SipMessageLog(),
            }
            manager = SipTransactionManager(config, self._request)
            config["_sip_tm"] = manager
            udp_server = next(iter(manager.l4r.cache_l2s.values()))
            host, port = udp_server.uopts.laddress[:2]
        except BaseException as exc:
            ready.set_exception(exc)
            self._forget_timers()
            return
        self._sippy_config = config
        self._reactor_running = True
        ready.set_result((str(host), int(port)))
        try:
            ED2.loop()
        except BaseException:
            logger.exception("sip: the reactor stopped on an error")
        finally:
            self._reactor_running = False
            try:
                manager.shutdown()
            finally:
                self._forget_timers()
            logger.info("sip: reactor stopped")

    @staticmethod
    def _forget_timers() -> None:
        # Timers of this server's transactions and dialogs (up to 32 s) must not fire into the next one.
        for listener in ED2.tlisteners:
            listener.cleanup()
        ED2.tlisteners = []
        ED2.twasted = 0

    def in_reactor(self, function: Callable[..., Any], *args: Any) -> None:
        """Run `function(*args)` on the reactor thread, from any thread; a failure is logged there."""
        if self._reactor_running:
            ED2.callFromThread(self._guarded, function, args)

    def _guarded(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if not self._reactor_running:
            return
        try:
            function(*args)
        except Exception:
            logger.exception("sip: %s failed on the reactor", getattr(function, "__qualname__", function))

    def _request(self, req: Any, transaction: Any) -> Any:
        """sippy's callback for a request outside any dialog (reactor thread)."""
        method = req.getMethod()
        try:
            if req.getHFBody("to").getTag() is not None:
                return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
            if method == "OPTIONS":
                return (req.genResponse(200, "OK"), None, None)
            if method != "INVITE":
                return (req.genResponse(501, "Not Implemented"), None, None)
            return self._invite(req, transaction)
        except Exception:
            logger.exception("sip: %s could not be handled", method)
            return (req.genResponse(500, "Server Internal Error"), None, None)

    def _invite(self, req: Any, transaction: Any) -> Any:
        sip_call_id = str(req.getHFBody("call-id"))
        line = str(req.getRURI().username or "")
        caller = str(req.getHFBody("from").getUrl().username or "")[:32]
        masked = mask_phone(caller)
        if line not in settings.HOTLINE_LINES:
            logger.info("sip: INVITE from %s to %r refused: not a hotline line (404)", masked, line)
            return (req.genResponse(404, "Not Found"), None, None)
        try:
            sdp = offer_sdp(req.getBody())
            choice = choose_media(sdp)
        except OfferRejected as exc:
            logger.info("sip: INVITE from %s to %s refused: %s (%s)", masked, line, exc.reason, exc.code)
            return (req.genResponse(exc.code, exc.phrase), None, None)
        if not self.accepting or self.loop is None:
            return (req.genResponse(503, "Service Unavailable"), None, None)
        if len(self._calls) >= max_calls():
            logger.warning("sip: INVITE from %s to %s refused: %s calls open (486)", masked, line, len(self._calls))
            return (req.genResponse(486, "Busy Here"), None, None)
        call = SipCall(self, sip_call_id=sip_call_id, line=line, caller=caller, choice=choice)
        try:
            call.open_media(sdp, local_address=None if self.host in UNSPECIFIED_ADDRESSES else self.host)
        except Exception:
            logger.exception("sip: call %s: no RTP port could be opened (503)", call.call_uuid)
            return (req.genResponse(503, "Service Unavailable"), None, None)
        assert call.media is not None
        try:
            ua = UA(self._sippy_config, event_cb=call.on_ua_event, disc_cbs=(call.on_ua_disconnected,))
            call.ua = ua
            response = ua.recvRequest(req, transaction)
        except BaseException:
            call.media.close()
            raise
        if response is not None:
            _, cancel, _ = response
            response = (None, cancel, call.on_no_ack)
        self._calls.add(call)
        logger.info(
            "sip: call %s from %s to line %s, %s/%s, RTP %s:%s",
            call.call_uuid,
            masked,
            line,
            choice.law.name,
            choice.payload_type,
            call.media.local_address,
            call.media.port,
        )
        self.loop.call_soon_threadsafe(self._spawn, call)
        return response

    # back on the asyncio loop

    def _spawn(self, call: SipCall) -> None:
        if not self.accepting:
            # The INVITE came in just as `stop()` began: refuse it rather than start a call no one will end.
            self.in_reactor(call.reject, 503, "Service Unavailable")
            if call.media is not None:
                call.media.close()
            self.forget(call)
            return
        task = asyncio.get_running_loop().create_task(call.run(), name=f"sip-call-{call.call_uuid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, call: SipCall) -> None:
        # `_calls` belongs to the reactor, like every other piece of SIP state.
        self.in_reactor(self._calls.discard, call)


class SipCall:
    """One SIP call: the reactor side (`ua`, answering, hanging up) and the asyncio side (`run`)."""

    def __init__(self, server: SipServer, *, sip_call_id: str, line: str, caller: str, choice: MediaChoice):
        assert server.loop is not None
        self.server = server
        self.loop = server.loop
        self.sip_call_id = sip_call_id
        self.call_uuid = call_uuid_for(sip_call_id)
        self.line = line
        self.caller = caller
        self.choice = choice
        self.answer_text = ""
        self.media: MediaEndpoint | None = None
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        # reactor side
        self.ua: Any = None
        self.answered = False
        self.hanging_up = False
        self.remote_gone = False
        self.held = False

    # --- reactor side ---------------------------------------------------------------------------------

    def open_media(self, sdp: Any, *, local_address: str | None) -> None:
        self.media = MediaEndpoint(
            local_address=local_address,
            remote=self.choice.remote,
            law=self.choice.law,
            payload_type=self.choice.payload_type,
            telephone_event=self.choice.telephone_event,
            ports=rtp_ports(),
            sink=self,
        )
        self.answer_text = answer_sdp(sdp, self.choice, address=self.media.local_address, port=self.media.port)

    def on_ua_event(self, event: Any, ua: Any) -> None:
        if not isinstance(event, CCEventUpdate):
            return
        try:
            self._reoffer(event)
        except Exception:
            # Refuse this re-INVITE and keep the call as it was: sippy must not be left waiting for our answer.
            logger.exception("sip: call %s: re-INVITE could not be handled", self.call_uuid)
            self.ua.recvEvent(CCEventFail((500, "Server Internal Error")))

    def on_ua_disconnected(self, ua: Any, rtime: Any, origin: Any, *rest: Any) -> None:
        if self.hanging_up or self.remote_gone:
            return
        self.remote_gone = True
        self._post("ended", "hangup" if self.answered else "cancelled")

    def on_no_ack(self) -> None:
        if self.hanging_up or self.remote_gone:
            return
        self._post("ended", "no_ack")
        self.hang_up()

    def answer(self, done: asyncio.Future[bool]) -> None:
        ok = False
        try:
            if not self.remote_gone and not self.hanging_up and not self.ua.isDead():
                self.ua.recvEvent(CCEventConnect((200, "OK", MsgBody(self.answer_text))))
                ok = self.answered = bool(self.ua.isConnected())
        finally:
            self.loop.call_soon_threadsafe(_resolve, done, ok)

    def reject(self, code: int, phrase: str) -> None:
        if not self.remote_gone and not self.answered and not self.ua.isDead():
            self.hanging_up = True
            self.ua.recvEvent(CCEventFail((code, phrase)))

    def hang_up(self) -> None:
        if self.remote_gone or self.hanging_up or self.ua.isDead():
            return
        self.hanging_up = True
        if self.answered:
            self.ua.disconnect()
        else:
            self.ua.recvEvent(CCEventFail((480, "Temporarily Unavailable")))

    def _reoffer(self, event: Any) -> None:
        """A re-INVITE: keep the codec, follow the caller's new RTP address, answer again."""
        try:
            sdp = offer_sdp(event.getData())
            choice = choose_media(sdp)
            if (choice.law, choice.payload_type) != (self.choice.law, self.choice.payload_type):
                raise OfferRejected(488, "Not Acceptable Here", "codec_change")
        except OfferRejected as exc:
            logger.info("sip: call %s: re-INVITE refused: %s", self.call_uuid, exc.reason)
            self.ua.recvEvent(CCEventFail((exc.code, exc.phrase)))
            return
        assert self.media is not None
        if choice.remote != self.choice.remote and choice.remote[0] not in UNSPECIFIED_ADDRESSES:
            self.media.retarget(choice.remote)
            self.choice = choice
        answer = answer_sdp(sdp, choice, address=self.media.local_address, port=self.media.port)
        self.ua.recvEvent(CCEventConnect((200, "OK", MsgBody(answer))))
        # The caller's offer says sendonly or inactive (we answer recvonly or inactive), or names no address.
        held = choice.direction in ("recvonly", "inactive") or choice.remote[0] in UNSPECIFIED_ADDRESSES
        if held != self.held:
            self.held = held
            self._post("hold", held)

    # --- RTP thread (rtp.MediaSink) --------------------------------------------------------------------

    def rtp_audio(self, pcm: bytes) -> None:
        self._post("audio", pcm)

    def rtp_dtmf(self, digit: str, at_ms: int) -> None:
        self._post("dtmf", (digit, at_ms))

    def rtp_broken(self, broken_packets: int) -> None:
        self._post("broken", broken_packets)

    def _post(self, kind: str, value: Any) -> None:
        # From the reactor or RTP thread to the call's task.
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    # --- asyncio side ----------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:
            # _run logs and closes its own failures; this is the last line of defence for the other calls.
            logger.exception("sip: call %s failed", self.call_uuid)
        finally:
            if self.media is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.media.close)
            self.server.forget(self)

    def _refuse(self, code: int, phrase: str) -> None:
        self.server.in_reactor(self.reject, code, phrase)

    async def _run(self) -> None:
        start: asyncio.Future[Call] | None = None
        try:
            live = await sync_to_async(speech.has_usable_model, thread_sensitive=False)(line=self.line)
            start = asyncio.ensure_future(sync_to_async(self._start_session)(live))
            call = await asyncio.shield(start)
        except asyncio.CancelledError:
            self._refuse(503, "Service Unavailable")
            if start is not None:
                # The session may be written already: end it rather than leave it ringing.
                with contextlib.suppress(Exception):
                    started = await start
                    await sync_to_async(services.call_end)(call_id=started.id, reason="server_shutdown")
            raise
        except ApplicationError as exc:
            logger.warning("sip: call %s refused: %s (%s)", self.call_uuid, exc.message, exc.code)
            self._refuse(500, "Server Internal Error")
            return
        except Exception:
            logger.exception("sip: call %s: the call session could not start", self.call_uuid)
            self._refuse(500, "Server Internal Error")
            return
        try:
            pipeline = await CallPipeline.open(call)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                logger.exception("sip: call %s: the audio pipeline could not open", self.call_uuid)
            reason = "server_shutdown" if isinstance(exc, asyncio.CancelledError) else "pipeline_error"
            await sync_to_async(services.call_end)(call_id=call.id, reason=reason)
            self._refuse(500, "Server Internal Error")
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        await self._converse(call, pipeline)

    def _start_session(self, live_transcript: bool) -> Call:
        return services.call_start(
            call_uuid=self.call_uuid,
            door=Door.SIP,
            hotline_line=self.line,
            caller_number=self.caller,
            agent=self._agent(),
            sample_rate=SAMPLE_RATE,
            live_transcript=live_transcript,
        )

    def _agent(self) -> User | None:
        username = self.server.agent_username
        if not username:
            return None
        user_id = agent_user_id(username)
        try:
            agent = services.agent_for_call(user_id=user_id) if user_id is not None else None
        except ApplicationError:
            agent = None
        if agent is None:
            # A citizen's call is taken even when the configured agent is wrong; the log says why no one has it.
            logger.warning("sip: agent %r is not active hotline centre staff; call taken without an agent", username)
        return agent

    async def _converse(self, call: Call, pipeline: CallPipeline) -> None:
        assert self.media is not None
        reason = "server_error"
        cancelled = False
        player = voice.PromptPlayer(call_id=call.id, sample_rate=SAMPLE_RATE, send=self._play)
        try:
            done: asyncio.Future[bool] = self.loop.create_future()
            self.server.in_reactor(self.answer, done)
            if not await done:
                # The caller gave up (CANCEL) while the session was being set up.
                reason = "cancelled"
            else:
                self.media.ingest.touch()
                await sync_to_async(services.call_answer)(call_id=call.id)
                player.start()
                if self.server.play_greeting:
                    player.say(voice.Prompt("greeting", prompts.greeting(self.line)))
                reason = await self._receive(call, pipeline, player)
        except asyncio.CancelledError:
            reason = "server_shutdown"
            cancelled = True
        except Exception:
            logger.exception("sip: call %s failed", self.call_uuid)
        finally:
            if reason not in REMOTE_REASONS:
                self.server.in_reactor(self.hang_up)
            await player.close()
            log = logger.info if reason in ("hangup", "cancelled", "server_shutdown") else logger.warning
            log("sip: call %s closing: %s", self.call_uuid, reason)
            await self._finish(call, pipeline, reason)
        if cancelled:
            raise asyncio.CancelledError

    async def _play(self, frame: bytes) -> None:
        """`PromptPlayer`'s output: one 20 ms frame, handed to sippy's RTP writer (which keeps the packet pace)."""
        if self.media is None or self.media.closed:
            raise ConnectionError("the call's RTP is closed")
        self.media.play(frame)

    async def _receive(self, call: Call, pipeline: CallPipeline, player: voice.PromptPlayer) -> str:
        """Feed the call's audio to the pipeline and its keys to the menu until it ends; returns the reason."""
        assert self.media is not None
        menu = voice.VoiceMenu(voice.public_status)
        idle = rtp_idle_seconds()
        held = False
        while True:
            try:
                kind, value = await asyncio.wait_for(self.events.get(), timeout=min(idle, IDLE_CHECK_SECONDS))
            except TimeoutError:
                if self.media.ingest.idle_seconds() >= (HOLD_IDLE_SECONDS if held else idle):
                    return "rtp_timeout"
                continue
            if kind == "audio":
                await pipeline.audio(value)
            elif kind == "dtmf":
                digit, at_ms = value
                await sync_to_async(services.call_dtmf_add)(call_id=call.id, digit=digit, at_ms=at_ms)
                for prompt in await sync_to_async(menu.press)(digit):
                    player.say(prompt, interrupt=True)
            elif kind == "hold":
                held = bool(value)
                try:
                    await sync_to_async(services.call_hold if held else services.call_answer)(call_id=call.id)
                except ApplicationError as exc:
                    logger.warning("sip: call %s: hold/resume not recorded: %s", self.call_uuid, exc.code)
            elif kind == "broken":
                logger.warning("sip: call %s: %s broken RTP datagrams in a row", self.call_uuid, value)
                return "bad_rtp"
            elif kind == "ended":
                return str(value)

    async def _finish(self, call: Call, pipeline: CallPipeline, reason: str) -> None:
        """Everything the caller said reaches the recording before the call is closed, whatever the reason."""
        assert self.media is not None
        try:
            deadline = self.loop.time() + DRAIN_MAX_SECONDS
            while self.media.ingest.idle_seconds() < DRAIN_QUIET_SECONDS and self.loop.time() < deadline:
                await asyncio.sleep(0.02)
            rest = await asyncio.to_thread(self.media.close)
            stats = self.media.ingest.stats
            logger.info(
                "sip: call %s RTP: %s packets, %s broken, %s other, %s gaps padded",
                self.call_uuid,
                stats.packets,
                stats.broken,
                stats.other_payload,
                stats.gaps,
            )
            while not self.events.empty():
                kind, value = self.events.get_nowait()
                if kind == "audio":
                    await pipeline.audio(value)
            await pipeline.audio(rest)
        except Exception:
            logger.exception("sip: call %s: the last audio could not be recorded", self.call_uuid)
        try:
            await pipeline.close(reason=reason)
        except Exception:
            logger.exception("sip: call %s: closing the pipeline failed", self.call_uuid)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
