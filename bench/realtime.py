"""Benchmark of the department screens: delivery latency, loss, duplicates and memory per websocket.

    python bench/realtime.py --clients 1000 --processes 2    # two or more processes need REDIS_URL

It builds its own database (with DATABASE_URL, a PostgreSQL database `hotline_bench` on the same server,
dropped and recreated every run; without it, a SQLite file in a temporary directory), seeds the demo city,
starts Daphne processes on loopback, connects N screens as the demo user `units` over its departments and
over the processes, then creates and dispatches tickets through the HTTP API as `dispatcher`. For every
screen subscribed to the department a ticket is dispatched to, the latency is the arrival time minus the
event's `occurred_at`. A raw channel-layer round trip, measured in the same run with the same layer
configuration, is the floor the latency is compared with.

Everything talks to 127.0.0.1 only. Server output goes to log files in a temporary directory (its path is in
the table). The last line printed is one JSON object, for scripts that compare runs.
"""

import argparse
import asyncio
import functools
import json
import logging
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol, cast

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({"", "127.0.0.1", "localhost", "::1"})
BENCH_DATABASE = "hotline_bench"

# Demo accounts from `seed_demo`: `units` handles the 32 departments no other demo account covers.
SCREEN_USER = ("units", "demo-units-2026")
DISPATCH_USER = ("dispatcher", "demo-dispatcher-2026")

SERVER_START_TIMEOUT = 60.0
HTTP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
RAW_WARMUP = 20
# Enough that requests queue in the servers, not in the client, even when dispatch takes a second.
HTTP_WORKERS = 48

log = logging.getLogger("bench.realtime")


class BenchError(Exception):
    """A step failed; the message says which and why, and the run ends with the report."""


class Deadline:
    """The whole run is bounded in time: every step takes its timeout from what is left."""

    def __init__(self, seconds: float) -> None:
        self.ends_at = time.monotonic() + seconds

    def left(self, *, at_most: float | None = None) -> float:
        remaining = self.ends_at - time.monotonic()
        if remaining <= 0:
            raise BenchError("overall time limit reached (--timeout)")
        return remaining if at_most is None else min(remaining, at_most)


def progress(text: str) -> None:
    # Progress goes to stderr so that stdout holds only the report, ending with the JSON line.
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# database and environment


@dataclass(frozen=True)
class Database:
    url: str
    kind: str
    label: str


def _require_loopback(name: str, url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise BenchError(f"{name} points at {host!r}; this benchmark only talks to 127.0.0.1")


def prepare_database(workdir: Path, *, deadline: Deadline) -> Database:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        path = workdir / "bench.sqlite3"
        return Database(url=f"sqlite:///{path}", kind="sqlite", label=str(path))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise BenchError(f"DATABASE_URL must be a PostgreSQL URL (got scheme {parts.scheme!r}); unset it for SQLite")
    _require_loopback("DATABASE_URL", url)
    import psycopg
    from psycopg import sql

    given = parts.path.lstrip("/")
    # The database named in DATABASE_URL is only used to connect; the benchmark never writes to it.
    maintenance = given if given and given != BENCH_DATABASE else "postgres"
    try:
        with psycopg.connect(
            host=parts.hostname or None,
            port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username or "") or None,
            password=urllib.parse.unquote(parts.password or "") or None,
            dbname=maintenance,
            autocommit=True,
            connect_timeout=int(deadline.left(at_most=10)) or 1,
        ) as connection:
            name = sql.Identifier(BENCH_DATABASE)
            # FORCE ends sessions a killed earlier run may have left behind.
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
    except psycopg.Error as error:
        raise BenchError(f"could not recreate database {BENCH_DATABASE}: {error}") from error
    bench_url = urllib.parse.urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))
    return Database(url=bench_url, kind="postgresql", label=f"{BENCH_DATABASE} (recreated)")


def server_environment(*, database: Database, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "hotline.settings.local",
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database.url,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def manage(args: Sequence[str], *, env: dict[str, str], log_path: Path, deadline: Deadline) -> None:
    with log_path.open("ab") as output:
        try:
            result = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=deadline.left(at_most=300),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise BenchError(f"manage.py {' '.join(args)} timed out; see {log_path}") from error
    if result.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed (exit {result.returncode}):\n{tail(log_path)}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"    {line}" for line in text[-lines:])


def raise_open_files_limit(clients: int) -> None:
    # One descriptor per socket on each side, and the Daphne processes inherit this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = clients + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))


# ---------------------------------------------------------------------------------------------------------
# Daphne processes


@dataclass
class Server:
    index: int
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(f"Daphne {self.index} (port {self.port}) exited with {code}:\n{tail(self.log_path)}")


def free_ports(count: int, *, start: int) -> list[int]:
    ports: list[int] = []
    port = start
    while len(ports) < count:
        if port > 65535:
            raise BenchError(f"no {count} free ports from {start} up")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As Twisted binds: a port only in TIME_WAIT from an earlier run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports


def start_servers(servers: list[Server], count: int, *, port_base: int, env: dict[str, str], workdir: Path) -> None:
    """Start Daphne processes, appending each to `servers` as soon as it exists so that it is always stopped."""
    daphne = Path(sys.executable).with_name("daphne")
    for index, port in enumerate(free_ports(count, start=port_base)):
        log_path = workdir / f"daphne-{index}-{port}.log"
        with log_path.open("ab") as output:
            process = subprocess.Popen(
                [str(daphne), "-b", HOST, "-p", str(port), "hotline.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl+C reaches only the benchmark, which then stops them in order.
                start_new_session=True,
            )
        servers.append(Server(index=index, port=port, log_path=log_path, process=process))


def stop_servers(servers: Sequence[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=STOP_TIMEOUT)


def wait_until_serving(server: Server, *, deadline: Deadline) -> None:
    give_up = time.monotonic() + deadline.left(at_most=SERVER_START_TIMEOUT)
    while True:
        server.check_alive()
        try:
            status, _body = http_json("GET", f"{server.http}/", timeout=2)
        except OSError:
            status = 0
        if status:
            return
        if time.monotonic() > give_up:
            raise BenchError(
                f"Daphne {server.index} did not answer HTTP on port {server.port}:\n{tail(server.log_path)}"
            )
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------------------
# HTTP (urllib in worker threads: the venv has no async HTTP client and this load does not need one)

# No proxy handler: an http_proxy in the environment must not take loopback traffic elsewhere.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(
    method: str, url: str, *, token: str | None = None, body: Any = None, timeout: float = HTTP_TIMEOUT
) -> tuple[int, Any]:
    if urllib.parse.urlsplit(url).hostname != HOST:
        raise BenchError(f"refusing to call {url}: only {HOST} is allowed")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json; charset=utf-8"
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http to HOST only, checked above)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, _json_or_text(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json_or_text(error.read())


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:500].decode(errors="replace")


class Http:
    """Runs blocking HTTP calls in a small thread pool so the websocket clients keep being read."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-http")

    async def call(self, method: str, url: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(http_json, method, url, token=token, body=body))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


async def obtain_token(http: Http, server: Server, credentials: tuple[str, str]) -> str:
    username, password = credentials
    status, body = await http.call(
        "POST", f"{server.http}/api/v1/auth/token/", body={"username": username, "password": password}
    )
    if status != 200 or not isinstance(body, dict) or "token" not in body:
        raise BenchError(f"token for {username}: HTTP {status} {body}")
    return str(body["token"])


# ---------------------------------------------------------------------------------------------------------
# websocket clients


@dataclass(frozen=True)
class SeenEvent:
    """What the first client to receive an event read from it; every client gets the same payload."""

    event_id: int
    type: str
    transition: str | None
    ticket_id: int | None
    occurred_at: float | None


@dataclass
class EventRegistry:
    events: dict[int, SeenEvent] = field(default_factory=dict)
    by_ticket: dict[tuple[int, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    naive_timestamps: int = 0

    def note(self, event_id: int, message: dict[str, Any]) -> None:
        if event_id in self.events:
            return
        occurred_at: float | None = None
        raw = message.get("occurred_at")
        if isinstance(raw, str):
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                moment = None
            # A time without zone cannot be compared with the client clock; the protocol promises one.
            if moment is not None and moment.tzinfo is None:
                self.naive_timestamps += 1
            elif moment is not None:
                occurred_at = moment.timestamp()
        ticket_id = message.get("ticket_id")
        transition = message.get("transition")
        seen = SeenEvent(
            event_id=event_id,
            type=str(message.get("type")),
            transition=transition if isinstance(transition, str) else None,
            ticket_id=ticket_id if isinstance(ticket_id, int) else None,
            occurred_at=occurred_at,
        )
        self.events[event_id] = seen
        if seen.ticket_id is not None and seen.transition:
            self.by_ticket[(seen.ticket_id, seen.transition)].add(event_id)


@dataclass
class Client:
    index: int
    department_id: int
    server: Server
    first_seen: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    heartbeats: int = 0
    errors: list[str] = field(default_factory=list)
    other_types: Counter[str] = field(default_factory=Counter)
    catchup_count: int | None = None
    connected_in: float = 0.0
    ws: ClientConnection | None = None
    closed_early: str | None = None

    def on_message(self, raw: str | bytes, received_at: float, registry: EventRegistry) -> bool:
        """Record one message; True when it is `catchup.complete`."""
        message = json.loads(raw)
        if not isinstance(message, dict):
            self.errors.append(f"not an object: {str(raw)[:200]}")
            return False
        event_id = message.get("event_id")
        kind = message.get("type")
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            if event_id in self.first_seen:
                self.duplicates += 1
            else:
                self.first_seen[event_id] = received_at
                registry.note(event_id, message)
            return False
        if kind == "catchup.complete":
            count = message.get("count")
            self.catchup_count = count if isinstance(count, int) else None
            return True
        if kind == "heartbeat":
            self.heartbeats += 1
        elif kind == "error":
            self.errors.append(json.dumps(message, ensure_ascii=False)[:300])
        else:
            self.other_types[str(kind)] += 1
        return False


def screen_url(server: Server, department_id: int) -> str:
    return f"{server.ws}/ws/departments/{department_id}/"


async def open_screen(client: Client, *, token: str, registry: EventRegistry, timeout: float) -> None:
    """Connect and read up to `catchup.complete`; the socket is then left to `read_live`."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout):
        ws = await connect(
            screen_url(client.server, client.department_id),
            additional_headers={"Authorization": f"Token {token}"},
            # No Origin: a non-browser client; an Origin would have to match ALLOWED_HOSTS.
            origin=None,
            proxy=None,
            # Server pings keep the socket alive; client pings and compression would only add noise.
            ping_interval=None,
            compression=None,
            open_timeout=timeout,
            max_queue=None,
        )
        client.ws = ws
        async for raw in ws:
            if client.on_message(raw, time.time(), registry):
                break
        else:
            raise ConnectionClosed(ws.protocol.close_rcvd, ws.protocol.close_sent)
    client.connected_in = time.perf_counter() - started


async def read_live(client: Client, registry: EventRegistry, stopping: asyncio.Event) -> None:
    ws = client.ws
    assert ws is not None
    try:
        async for raw in ws:
            # Taken before parsing: the parse is the client's cost, not the delivery's.
            received_at = time.time()
            client.on_message(raw, received_at, registry)
    except ConnectionClosed:
        pass
    if not stopping.is_set():
        client.closed_early = f"code {ws.close_code} {ws.close_reason or ''}".strip()


def connect_failure(error: BaseException) -> str:
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code} at handshake"
    if isinstance(error, ConnectionClosed):
        code = error.rcvd.code if error.rcvd else None
        return f"closed with code {code} before catchup.complete"
    if isinstance(error, TimeoutError):
        return "timed out before catchup.complete"
    return f"{type(error).__name__}: {error}"


async def open_screens(
    clients: Sequence[Client], *, token: str, registry: EventRegistry, concurrency: int, timeout: float
) -> None:
    # Bounded concurrency: a burst of a thousand handshakes would overflow the listen backlog and measure
    # SYN retransmits instead of the server.
    gate = asyncio.Semaphore(concurrency)

    async def one(client: Client) -> None:
        async with gate:
            await open_screen(client, token=token, registry=registry, timeout=timeout)

    results = await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)
    failures = Counter(connect_failure(r) for r in results if isinstance(r, BaseException))
    if failures:
        summary = "; ".join(f"{count} × {reason}" for reason, count in failures.most_common())
        raise BenchError(f"{sum(failures.values())} of {len(clients)} screens did not connect: {summary}")


async def close_screens(clients: Sequence[Client]) -> None:
    sockets = [c.ws for c in clients if c.ws is not None]
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# ---------------------------------------------------------------------------------------------------------
# raw channel layer


class ChannelLayer(Protocol):
    async def new_channel(self, prefix: str = ...) -> str: ...
    async def group_add(self, group: str, channel: str) -> None: ...
    async def group_discard(self, group: str, channel: str) -> None: ...
    async def group_send(self, group: str, message: dict[str, Any]) -> None: ...
    async def receive(self, channel: str) -> dict[str, Any]: ...


def layer_from_settings() -> tuple[str, ChannelLayer]:
    """The layer the servers use, built the way Channels builds it, from the same settings and environment."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from django.utils.module_loading import import_string

    config = import_module("hotline.settings.base").CHANNEL_LAYERS["default"]
    backend: str = config["BACKEND"]
    return backend, cast(ChannelLayer, import_string(backend)(**config.get("CONFIG", {})))


async def raw_round_trips(layer: ChannelLayer, samples: int) -> list[float]:
    """Seconds from group_send to receive on a channel of that group, one message in flight at a time."""
    channel = await layer.new_channel()
    group = f"bench.raw.{uuid.uuid4().hex}"
    await layer.group_add(group, channel)
    times: list[float] = []
    try:
        for sequence in range(RAW_WARMUP + samples):
            started = time.perf_counter()
            await layer.group_send(group, {"type": "bench.ping", "sequence": sequence})
            try:
                async with asyncio.timeout(5):
                    message = await layer.receive(channel)
            except TimeoutError:
                raise BenchError(f"raw layer: message {sequence} not received within 5 s") from None
            elapsed = time.perf_counter() - started
            if message.get("sequence") != sequence:
                raise BenchError(f"raw layer: expected message {sequence}, got {message}")
            if sequence >= RAW_WARMUP:
                times.append(elapsed)
    finally:
        await layer.group_discard(group, channel)
        flush: Callable[[], Any] | None = getattr(layer, "flush", None)
        if flush is not None:
            # For Redis this also closes the layer's connections before the loop ends.
            await flush()
    return times


# ---------------------------------------------------------------------------------------------------------
# driving transitions


@dataclass
class Dispatch:
    sequence: int
    department_id: int
    audience: tuple[int, ...]
    ticket_id: int | None = None
    ok: bool = False
    error: str | None = None
    started: float = 0.0
    dispatch_ms: float = 0.0
    finished: float = 0.0
    stored_event_id: int | None = None


async def drive(
    *,
    http: Http,
    servers: Sequence[Server],
    token: str,
    departments: Sequence[int],
    audiences: dict[int, tuple[int, ...]],
    count: int,
    rate: float,
) -> list[Dispatch]:
    """Create and dispatch `count` tickets at a steady `rate`, each through the next server and department."""
    loop = asyncio.get_running_loop()

    async def one(dispatch: Dispatch, server: Server) -> None:
        try:
            await create_and_dispatch(dispatch, server)
        except OSError as error:
            # A refused or timed-out request is a failed transition, reported; the run goes on.
            dispatch.error = f"{type(error).__name__}: {error}"

    async def create_and_dispatch(dispatch: Dispatch, server: Server) -> None:
        dispatch.started = time.time()
        status, body = await http.call(
            "POST",
            f"{server.http}/api/v1/tickets/",
            token=token,
            body={
                "channel": "phone",
                "appeal_type": "complaint",
                "title": f"压测工单 {dispatch.sequence}：小区夜间施工噪音扰民",
                "content": "来电人反映小区旁工地每晚十点后仍在施工，噪音很大，影响休息，请相关部门核查处理。",
            },
        )
        if status != 201 or not isinstance(body, dict):
            dispatch.error = f"create: HTTP {status} {str(body)[:300]}"
            return
        dispatch.ticket_id = int(body["id"])
        sent = time.perf_counter()
        status, body = await http.call(
            "POST",
            f"{server.http}/api/v1/tickets/{dispatch.ticket_id}/transitions/dispatch/",
            token=token,
            body={"lead_department": dispatch.department_id},
        )
        dispatch.dispatch_ms = (time.perf_counter() - sent) * 1000
        dispatch.finished = time.time()
        if status != 200:
            dispatch.error = f"dispatch: HTTP {status} {str(body)[:300]}"
            return
        dispatch.ok = True

    dispatches: list[Dispatch] = []
    tasks: list[asyncio.Task[None]] = []
    begin = loop.time()
    for sequence in range(count):
        # Scheduled on a fixed clock, not after the previous one finished: a slow request does not lower
        # the offered rate.
        await asyncio.sleep(max(0.0, begin + sequence / rate - loop.time()))
        department_id = departments[sequence % len(departments)]
        dispatch = Dispatch(sequence=sequence, department_id=department_id, audience=audiences[department_id])
        dispatches.append(dispatch)
        tasks.append(asyncio.create_task(one(dispatch, servers[sequence % len(servers)])))
    await asyncio.gather(*tasks)
    return dispatches


async def stored_dispatch_events(http: Http, server: Server, token: str, dispatches: Sequence[Dispatch]) -> int:
    """Read each ticket's trail for the stored id of its dispatch event; returns how many reads failed."""
    failed = 0

    async def one(dispatch: Dispatch) -> None:
        nonlocal failed
        try:
            status, body = await http.call(
                "GET", f"{server.http}/api/v1/tickets/{dispatch.ticket_id}/timeline/", token=token
            )
        except OSError:
            status, body = 0, None
        ids = [e["id"] for e in body if e.get("kind") == "dispatch"] if status == 200 and isinstance(body, list) else []
        if len(ids) == 1:
            dispatch.stored_event_id = int(ids[0])
        else:
            failed += 1

    await asyncio.gather(*(one(d) for d in dispatches if d.ok))
    return failed


# ---------------------------------------------------------------------------------------------------------
# analysis and report


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


@dataclass
class Result:
    clients: int
    processes: int
    layer: str = ""
    layer_backend: str = ""
    database: str = ""
    transitions_asked: int = 0
    rate_asked: float = 0.0
    log_dir: str = ""
    error: str | None = None
    transitions: int = 0
    transition_errors: list[str] = field(default_factory=list)
    achieved_rate: float | None = None
    dispatch_http_p50_ms: float | None = None
    dispatch_http_p95_ms: float | None = None
    expected: int = 0
    deliveries: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lost: int = 0
    duplicates: int = 0
    misrouted: int = 0
    event_id_mismatches: int = 0
    protocol_mismatches: int = 0
    naive_timestamps: int = 0
    trail_read_failures: int = 0
    closed_early: int = 0
    closed_early_reasons: Counter[str] = field(default_factory=Counter)
    error_messages: list[str] = field(default_factory=list)
    server_log_errors: list[str] = field(default_factory=list)
    server_log_errors_at_stop: int = 0
    heartbeats: int = 0
    other_messages: Counter[str] = field(default_factory=Counter)
    raw_ms: list[float] = field(default_factory=list)
    rss_before: list[int] = field(default_factory=list)
    rss_after: list[int] = field(default_factory=list)
    # Share of one core used while dispatches were driven: on a small machine the client, the servers and
    # the database compete for the same cores, which the latency must be read against.
    cpu_servers: list[float] = field(default_factory=list)
    cpu_bench: float | None = None
    cpu_machine: float | None = None
    cpu_machine_before: float | None = None
    connect_s: float | None = None
    handshake_p95_ms: float | None = None
    departments: int = 0

    def kib_per_connection(self) -> float | None:
        if not self.rss_before or not self.rss_after or not self.clients:
            return None
        return (sum(self.rss_after) - sum(self.rss_before)) / 1024 / self.clients

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)
        raw = sorted(self.raw_ms)
        p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
        raw_p50, raw_p95, raw_p99 = (percentile(raw, q) for q in (50, 95, 99))

        def rounded(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(value, digits)

        def ratio(latency: float | None, floor: float | None) -> float | None:
            # Each latency percentile against the same percentile of the raw layer round trip.
            return rounded(latency / floor if latency is not None and floor else None, 1)

        return {
            "ok": self.error is None,
            "clients": self.clients,
            "processes": self.processes,
            "layer": self.layer,
            "database": self.database,
            "transitions": self.transitions,
            "expected_deliveries": self.expected,
            "deliveries": self.deliveries,
            "p50_ms": rounded(p50),
            "p95_ms": rounded(p95),
            "p99_ms": rounded(p99),
            "max_ms": rounded(latencies[-1] if latencies else None),
            "lost": self.lost,
            "duplicates": self.duplicates,
            "misrouted": self.misrouted,
            "event_id_mismatches": self.event_id_mismatches,
            "raw_p50_ms": rounded(raw_p50, 4),
            "raw_p95_ms": rounded(raw_p95, 4),
            "raw_p99_ms": rounded(raw_p99, 4),
            "p50_ratio_to_raw": ratio(p50, raw_p50),
            "p95_ratio_to_raw": ratio(p95, raw_p95),
            "p99_ratio_to_raw": ratio(p99, raw_p99),
            "kib_per_connection": rounded(self.kib_per_connection(), 1),
            "connect_s": rounded(self.connect_s, 2),
            "machine_cpu_while_driving": rounded(self.cpu_machine, 2),
            "rate_per_s": rounded(self.achieved_rate, 2),
            "closed_early": self.closed_early,
            "server_log_errors": len(self.server_log_errors),
            "error": self.error,
            "log_dir": self.log_dir,
        }


def report(result: Result) -> None:
    s = result.summary()

    def ms(value: Any) -> str:
        return "—" if value is None else f"{value:.2f}"

    handshake_p95 = ms(result.handshake_p95_ms)
    rss_before = sum(result.rss_before) / 2**20 if result.rss_before else 0.0
    rss_after = sum(result.rss_after) / 2**20 if result.rss_after else 0.0
    rows: list[tuple[str, str]] = [
        ("clients", f"{result.clients} over {result.departments} departments"),
        ("processes", str(result.processes)),
        ("layer", f"{result.layer} ({result.layer_backend})" if result.layer_backend else result.layer),
        ("database", result.database),
        (
            "transitions",
            f"{result.transitions} of {result.transitions_asked} dispatched"
            f" (rate {result.rate_asked:g}/s asked, {ms(result.achieved_rate)}/s achieved;"
            f" dispatch HTTP p50 {ms(result.dispatch_http_p50_ms)} ms, p95 {ms(result.dispatch_http_p95_ms)} ms)",
        ),
        ("deliveries", f"{result.deliveries} of {result.expected} expected"),
        ("latency p50/p95/p99", f"{ms(s['p50_ms'])} / {ms(s['p95_ms'])} / {ms(s['p99_ms'])} ms"),
        ("latency max", f"{ms(s['max_ms'])} ms"),
        (
            "raw layer p50/p95/p99",
            f"{s['raw_p50_ms'] or '—'} / {s['raw_p95_ms'] or '—'} / {s['raw_p99_ms'] or '—'} ms"
            f" ({len(result.raw_ms)} round trips)",
        ),
        (
            "latency / raw",
            " / ".join(
                "—" if s[k] is None else f"{s[k]}x"
                for k in ("p50_ratio_to_raw", "p95_ratio_to_raw", "p99_ratio_to_raw")
            )
            + " (p50 / p95 / p99)",
        ),
        ("lost", str(result.lost)),
        ("duplicates", str(result.duplicates)),
        (
            "protocol checks",
            f"misrouted {result.misrouted}, event_id ≠ stored {result.event_id_mismatches},"
            f" wrong type/transition {result.protocol_mismatches}, occurred_at without zone {result.naive_timestamps},"
            f" trail reads failed {result.trail_read_failures}",
        ),
        (
            "memory",
            "—"
            if s["kib_per_connection"] is None
            else f"{s['kib_per_connection']} KiB per connection (Daphne RSS {rss_before:.1f} → {rss_after:.1f} MiB)",
        ),
        (
            "connect time",
            "—"
            if result.connect_s is None
            else f"{result.connect_s:.2f} s for all (handshake to catchup.complete p95 {handshake_p95} ms)",
        ),
        (
            "cpu while driving",
            "—"
            if result.cpu_bench is None
            else ", ".join(f"daphne-{i} {c:.0%}" for i, c in enumerate(result.cpu_servers))
            + f", bench client {result.cpu_bench:.0%} (of one core);"
            + f" whole machine {result.cpu_machine or 0:.0%} of {os.cpu_count()} cores"
            + f" (before the run: {result.cpu_machine_before or 0:.0%})",
        ),
        ("closed early", f"{result.closed_early} {dict(result.closed_early_reasons) or ''}".strip()),
        ("other messages", f"heartbeats {result.heartbeats} {dict(result.other_messages) or ''}".strip()),
        ("logs", result.log_dir),
    ]
    if result.transition_errors:
        rows.append(("transition errors", "; ".join(result.transition_errors[:5])))
    if result.error_messages:
        rows.append(("error messages", f"{len(result.error_messages)}, first: {result.error_messages[0]}"))
    if result.server_log_errors:
        first_error = result.server_log_errors[0][:300]
        rows.append(("server log errors", f"{len(result.server_log_errors)} lines, first: {first_error}"))
    if result.server_log_errors_at_stop:
        rows.append(("errors while stopping", f"{result.server_log_errors_at_stop} log lines after SIGTERM"))
    if result.error:
        rows.append(("FAILED", result.error))
    width = max(len(name) for name, _value in rows)
    print("\nrealtime benchmark")
    print("-" * 72)
    for name, value in rows:
        lines = value.splitlines() or [""]
        print(f"{name:<{width}}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<{width}}  {line}")
    print("-" * 72)
    print(json.dumps(s, ensure_ascii=False), flush=True)


def analyse(
    result: Result, *, dispatches: Sequence[Dispatch], clients: Sequence[Client], registry: EventRegistry
) -> None:
    ours: dict[int, Dispatch] = {d.ticket_id: d for d in dispatches if d.ok and d.ticket_id is not None}
    for ticket_id, dispatch in ours.items():
        event_id = dispatch.stored_event_id
        delivered_ids = registry.by_ticket.get((ticket_id, "dispatch"), set())
        if event_id is None:
            # The trail could not be read; fall back to the id the screens received, if exactly one.
            event_id = next(iter(delivered_ids)) if len(delivered_ids) == 1 else None
        result.event_id_mismatches += len(delivered_ids - {event_id})
        seen = registry.events.get(event_id) if event_id is not None else None
        if seen is not None and (seen.type != "ticket.transitioned" or seen.transition != "dispatch"):
            result.protocol_mismatches += 1
        for index in dispatch.audience:
            result.expected += 1
            arrived = clients[index].first_seen.get(event_id) if event_id is not None else None
            if arrived is None:
                result.lost += 1
                continue
            result.deliveries += 1
            # Without a usable occurred_at (counted as a protocol problem) there is nothing to measure from.
            if seen is not None and seen.occurred_at is not None:
                result.latencies_ms.append((arrived - seen.occurred_at) * 1000)
    dispatch_events = {d.stored_event_id: d.department_id for d in ours.values() if d.stored_event_id is not None}
    for client in clients:
        result.duplicates += client.duplicates
        result.heartbeats += client.heartbeats
        result.other_messages.update(client.other_types)
        result.error_messages.extend(client.errors)
        result.misrouted += sum(
            1
            for event_id in client.first_seen
            if event_id in dispatch_events and dispatch_events[event_id] != client.department_id
        )
        if client.closed_early:
            result.closed_early += 1
            result.closed_early_reasons[client.closed_early] += 1
    result.naive_timestamps = registry.naive_timestamps


def log_size(server: Server) -> int:
    try:
        return server.log_path.stat().st_size
    except OSError:
        return 0


def server_log_errors(servers: Sequence[Server], *, split_at: dict[int, int]) -> tuple[list[str], list[str]]:
    """Error lines of the Daphne logs, before and after each log's `split_at` offset."""
    before: list[str] = []
    after: list[str] = []
    for server in servers:
        try:
            data = server.log_path.read_bytes()
        except OSError:
            continue
        offset = split_at.get(server.index, len(data))
        for found, chunk in ((before, data[:offset]), (after, data[offset:])):
            found.extend(
                f"daphne-{server.index}: {line}"
                for line in chunk.decode(errors="replace").splitlines()
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
            )
    return before, after


# ---------------------------------------------------------------------------------------------------------
# the run


async def measure(args: argparse.Namespace, result: Result, servers: Sequence[Server], deadline: Deadline) -> None:
    scope = asyncio.timeout(deadline.left())
    try:
        async with scope:
            await measure_steps(args, result, servers, deadline)
    except TimeoutError:
        if scope.expired():
            raise BenchError("overall time limit reached (--timeout)") from None
        raise


async def measure_steps(
    args: argparse.Namespace, result: Result, servers: Sequence[Server], deadline: Deadline
) -> None:
    http = Http(HTTP_WORKERS)
    clients: list[Client] = []
    stopping = asyncio.Event()
    readers: list[asyncio.Task[None]] = []
    try:
        first = servers[0]
        screen_token = await obtain_token(http, first, SCREEN_USER)
        dispatch_token = await obtain_token(http, first, DISPATCH_USER)
        status, me = await http.call("GET", f"{first.http}/api/v1/me/", token=screen_token)
        if status != 200 or not isinstance(me, dict):
            raise BenchError(f"GET /api/v1/me/ as {SCREEN_USER[0]}: HTTP {status} {me}")
        departments = [int(d["id"]) for d in me.get("departments", [])]
        if not departments:
            raise BenchError(f"{SCREEN_USER[0]} has no departments; did seed_demo run?")
        result.departments = len(departments)

        # Clients take processes in turn (i % P) and departments in turn per round of P, so every
        # department has screens on every process and each dispatch crosses processes.
        processes = len(servers)
        for index in range(args.clients):
            department_id = departments[(index // processes) % len(departments)]
            clients.append(Client(index=index, department_id=department_id, server=servers[index % processes]))
        audiences: dict[int, tuple[int, ...]] = {
            d: tuple(c.index for c in clients if c.department_id == d) for d in departments
        }
        registry = EventRegistry()

        # One screen per process first, so the RSS baseline already holds the code a first socket loads.
        progress("warming up one screen per process")
        warmups = [Client(index=-1, department_id=departments[0], server=s) for s in servers]
        try:
            await open_screens(
                warmups, token=screen_token, registry=EventRegistry(), concurrency=len(servers), timeout=30
            )
        finally:
            await close_screens(warmups)
        await asyncio.sleep(1)
        result.rss_before = [s.rss() for s in servers]

        progress(f"connecting {args.clients} screens")
        started = time.perf_counter()
        await open_screens(
            clients,
            token=screen_token,
            registry=registry,
            concurrency=args.connect_concurrency,
            timeout=deadline.left(at_most=args.connect_timeout),
        )
        result.connect_s = time.perf_counter() - started
        result.handshake_p95_ms = percentile(sorted(c.connected_in * 1000 for c in clients), 95)
        readers = [asyncio.create_task(read_live(c, registry, stopping)) for c in clients]
        await asyncio.sleep(1)
        result.rss_after = [s.rss() for s in servers]
        for server in servers:
            server.check_alive()

        progress(f"raw layer round trips ({args.raw_samples})")
        backend, layer = layer_from_settings()
        result.layer_backend = backend
        result.raw_ms = [t * 1000 for t in await raw_round_trips(layer, args.raw_samples)]

        progress(f"driving {args.transitions} dispatches at {args.rate}/s")
        cpu_started = time.monotonic()
        server_cpu = [s.cpu_seconds() for s in servers]
        bench_cpu = time.process_time()
        psutil.cpu_percent()  # starts the machine-wide interval read below
        dispatches = await drive(
            http=http,
            servers=servers,
            token=dispatch_token,
            departments=departments,
            audiences=audiences,
            count=args.transitions,
            rate=args.rate,
        )
        done = [d for d in dispatches if d.ok]
        wall = time.monotonic() - cpu_started
        result.cpu_servers = [(s.cpu_seconds() - before) / wall for s, before in zip(servers, server_cpu, strict=True)]
        result.cpu_bench = (time.process_time() - bench_cpu) / wall
        result.cpu_machine = psutil.cpu_percent() / 100
        result.transitions = len(done)
        result.transition_errors = [f"#{d.sequence}: {d.error}" for d in dispatches if d.error]
        if done:
            span = max(d.finished for d in done) - min(d.started for d in done)
            result.achieved_rate = len(done) / span if span > 0 else None
            http_ms = sorted(d.dispatch_ms for d in done)
            result.dispatch_http_p50_ms = percentile(http_ms, 50)
            result.dispatch_http_p95_ms = percentile(http_ms, 95)

        progress(f"grace period {args.grace:g} s")
        await asyncio.sleep(min(args.grace, deadline.left()))
        stopping.set()
        result.trail_read_failures = await stored_dispatch_events(http, first, dispatch_token, done)
        analyse(result, dispatches=dispatches, clients=clients, registry=registry)
    finally:
        stopping.set()
        await close_screens(clients)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        http.close()
        if clients:
            # Let the servers finish the disconnects (group_discard) before they are told to stop.
            await asyncio.sleep(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="websocket screens (default 100)")
    parser.add_argument("--processes", type=int, default=1, help="Daphne processes (default 1; 2+ need REDIS_URL)")
    parser.add_argument("--transitions", type=int, default=200, help="tickets created and dispatched (default 200)")
    parser.add_argument("--rate", type=float, default=20.0, help="dispatches started per second (default 20)")
    parser.add_argument("--port-base", type=int, default=8100, help="first port tried for Daphne (default 8100)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait after the last dispatch (default 5)")
    parser.add_argument("--raw-samples", type=int, default=200, help="raw channel-layer round trips (default 200)")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="handshakes in flight (default 50)")
    parser.add_argument("--connect-timeout", type=float, default=180.0, help="seconds to connect all (default 180)")
    parser.add_argument("--timeout", type=float, default=600.0, help="overall time limit in seconds (default 600)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.processes < 1 or args.transitions < 1 or args.rate <= 0 or args.raw_samples < 1:
        parser.error("--clients, --processes, --transitions, --raw-samples must be positive, --rate above zero")
    return args


def run(args: argparse.Namespace, result: Result, workdir: Path) -> None:
    deadline = Deadline(args.timeout)
    redis_url = os.environ.get("REDIS_URL", "")
    if args.processes >= 2 and not redis_url:
        raise BenchError(
            f"--processes {args.processes} needs REDIS_URL (e.g. redis://127.0.0.1:6379/0): the in-memory layer "
            "cannot carry events between processes"
        )
    if redis_url:
        _require_loopback("REDIS_URL", redis_url)
    result.layer = "redis" if redis_url else "memory"
    # Other work on the machine distorts every number; it is shown next to them.
    result.cpu_machine_before = psutil.cpu_percent(interval=1.0) / 100
    raise_open_files_limit(args.clients)

    database = prepare_database(workdir, deadline=deadline)
    result.database = f"{database.kind}: {database.label}"
    env = server_environment(database=database, redis_url=redis_url)
    setup_log = workdir / "setup.log"
    progress(f"migrating and seeding the demo city ({database.kind}); logs in {workdir}")
    manage(["migrate", "--noinput"], env=env, log_path=setup_log, deadline=deadline)
    manage(["seed_demo", "--tickets", "0"], env=env, log_path=setup_log, deadline=deadline)

    servers: list[Server] = []
    try:
        start_servers(servers, args.processes, port_base=args.port_base, env=env, workdir=workdir)
        progress("starting Daphne on ports " + ", ".join(str(s.port) for s in servers))
        for server in servers:
            wait_until_serving(server, deadline=deadline)
        asyncio.run(measure(args, result, servers, deadline))
    finally:
        # Errors logged while Daphne cancels what is still running at SIGTERM are not the run's errors.
        run_length = {server.index: log_size(server) for server in servers}
        stop_servers(servers)
        during, at_stop = server_log_errors(servers, split_at=run_length)
        result.server_log_errors = during
        result.server_log_errors_at_stop = len(at_stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    logging.basicConfig(
        filename=workdir / "bench.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # SIGTERM ends the run like Ctrl+C does, so the servers are stopped and the report still printed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = Result(
        clients=args.clients,
        processes=args.processes,
        transitions_asked=args.transitions,
        rate_asked=args.rate,
        log_dir=str(workdir),
    )
    try:
        run(args, result, workdir)
    except BenchError as error:
        result.error = str(error)
    except KeyboardInterrupt:
        result.error = "interrupted"
    except Exception as error:
        log.exception("benchmark failed")
        result.error = f"{type(error).__name__}: {error} (traceback in {workdir / 'bench.log'})"
    if result.error is None and (result.lost or result.transitions < args.transitions):
        result.error = f"{result.lost} deliveries lost, {args.transitions - result.transitions} dispatches failed"
    report(result)
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
