"""The automated voice callback: the dialogue over the WebSocket audio door and the AudioSocket door (prompts
rendered by pyttsx3 come back as audio, keys answer), the speech path (a recognizer that hears Mandarin is
stood in for: only a Korean Vosk model is available here, so the transcript text is given), the dialogue's
timing without I/O, and placing the calls through a fake Asterisk AMI over loopback (no real Asterisk here).
"""

import asyncio
import io
import json
import socketserver
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import django.db
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from hotline import clock
from hotline.asgi import application
from telephony import audiosocket, callback, originate, speech
from telephony.audiosocket_server import AudioSocketServer
from telephony.models import Call, CallEvent, Direction
from telephony.voice import Prompt
from tests.helpers import make_ticket
from ticketing import callbacks
from ticketing.calendar import TZ
from ticketing.models import CallbackTask, Ticket, TicketEvent
from ticketing.workflow import Status

RATE = 8000
FRAME = RATE // 50 * 2


@pytest.fixture
def voice_settings(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    settings.CALLBACK_DEFAULT_METHOD = "voice"
    settings.CALLBACK_MAX_ATTEMPTS = 3
    settings.CALLBACK_VOICE_ANSWER_SECONDS = 0.2
    return settings


def dialled_task(org) -> tuple[Ticket, CallbackTask, str]:  # type: ignore[no-untyped-def]
    """A ticket waiting for its voice callback, whose call the automated caller has just placed."""
    ticket = make_ticket(org, Status.CALLBACK)
    task = CallbackTask.objects.get(ticket=ticket, status="pending")
    task = callbacks.callback_voice_dial(task_id=task.id)
    return ticket, task, callback.call_uuid_for(task_id=task.id, attempt=task.attempts)


def trail(ticket: Ticket) -> list[dict[str, Any]]:
    return [e.data for e in TicketEvent.objects.filter(ticket=ticket, kind="callback").order_by("id")]


# --- the call's UUID names the task ---------------------------------------------------------------------


def test_a_call_uuid_names_its_task_and_attempt_and_cannot_be_forged():
    made = callback.call_uuid_for(task_id=4711, attempt=2)
    assert callback.task_from_call_uuid(made) == (4711, 2)
    assert callback.task_from_call_uuid(made.upper()) == (4711, 2)  # how a PBX may write it
    raw = bytearray(uuid.UUID(made).bytes)
    raw[5] ^= 1  # another task id under the same signature
    assert callback.task_from_call_uuid(str(uuid.UUID(bytes=bytes(raw)))) is None
    assert callback.task_from_call_uuid(str(uuid.uuid4())) is None
    assert callback.task_from_call_uuid("fork-1") is None


def test_spoken_answers_are_read_from_the_transcript():
    assert callback.satisfaction_from_speech("嗯 满意 挺 好 的") == "satisfied"
    assert callback.satisfaction_from_speech("基本 满意 吧") == "fairly_satisfied"
    assert callback.satisfaction_from_speech("不 满意 路灯 还是 不 亮") == "dissatisfied"
    assert callback.satisfaction_from_speech("我 不太 满意") == "dissatisfied"
    assert callback.satisfaction_from_speech("喂 你好 哪位") is None


def test_a_long_reply_is_read_up_to_a_sentence_end():
    reply = "经现场核查，施工单位已停止夜间作业。" + "我局将持续跟踪并依法处理相关投诉事项。" * 10
    said = callback.summary(reply, limit=60)
    assert said.endswith("。") and len(said) <= 60 and said.startswith("经现场核查")
    assert callback.summary("已处理。") == "已处理。"


# --- the dialogue, without a door ----------------------------------------------------------------------------


class FakePlayer:
    """Says everything at once; keeps what was said."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def say(self, prompt: Prompt, *, interrupt: bool = False) -> None:
        self.said.append(prompt.name)

    async def idle(self) -> None:
        await asyncio.sleep(0)


async def session_for(org) -> tuple[callback.VoiceCallbackSession, FakePlayer, list[str], Ticket]:  # type: ignore[no-untyped-def]
    ticket, task, _call_uuid = await sync_to_async(dialled_task)(org)
    context = await sync_to_async(callback._bind_call)(call_id=0, task_id=task.id, attempt=task.attempts)
    player, hung = FakePlayer(), []

    async def hang_up() -> None:
        hung.append("hung up")

    session = callback.VoiceCallbackSession(call_id=0, task_id=task.id, context=context, player=player, hang_up=hang_up)
    return session, player, hung, ticket


async def settled(session: callback.VoiceCallbackSession) -> None:
    for _ in range(200):
        if session._ending is not None and session._ending.done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the session did not finish")


@pytest.mark.django_db(transaction=True)
async def test_silence_repeats_the_question_once_then_counts_as_unanswered(org, voice_settings):
    session, player, hung, ticket = await session_for(org)
    await session.start()
    await settled(session)
    assert player.said == [
        "callback_intro",
        "callback_question",
        "callback_no_answer",
        "callback_question",
        "callback_goodbye",
    ]
    assert hung == ["hung up"] and session.outcome == "unanswered"
    task = await sync_to_async(CallbackTask.objects.get)(pk=session.task_id)
    assert (task.status, task.attempts) == ("pending", 1)  # dialled again in a later round
    events = await sync_to_async(trail)(ticket)
    assert (events[-1]["action"], events[-1]["reason"]) == ("unanswered", "no_answer")
    await session.close()  # the door always closes: nothing is counted twice
    assert len(await sync_to_async(trail)(ticket)) == len(events)
    await sync_to_async(django.db.connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_wrong_key_asks_again_and_the_next_key_answers(org, voice_settings):
    voice_settings.CALLBACK_VOICE_ANSWER_SECONDS = 30
    session, player, hung, ticket = await session_for(org)
    await session.start()
    await session.press("9")
    await session.press("2")
    await settled(session)
    assert player.said == [
        "callback_intro",
        "callback_question",
        "callback_invalid_key",
        "callback_question",
        "callback_thanks",
    ]
    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert (ticket.status, ticket.satisfaction) == (Status.CLOSED, "fairly_satisfied")
    assert "按键 2" in ticket.satisfaction_comment and hung == ["hung up"]
    await sync_to_async(django.db.connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_call_for_a_task_answered_meanwhile_only_says_goodbye(org, voice_settings, api):
    session, player, _hung, ticket = await session_for(org)
    # The citizen rated online while the phone was ringing.
    response = await sync_to_async(api.post)(
        f"/api/v1/public/tickets/{ticket.number}/rating/",
        {"query_code": ticket.query_code, "satisfaction": "satisfied"},
        format="json",
    )
    assert response.status_code == 200
    await session.start()
    await session.press("3")
    await settled(session)
    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert (ticket.status, ticket.satisfaction) == (Status.CLOSED, "satisfied")  # the key changed nothing
    assert player.said[-1] == "callback_goodbye" and session.outcome == "finished"
    await sync_to_async(django.db.connections.close_all)()


# --- over the WebSocket audio door ----------------------------------------------------------------------


class DoorClient:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.audio_frames = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def json(self, timeout: float = 60) -> dict[str, Any]:
        while True:
            output = await self.communicator.receive_output(timeout=timeout)
            if output.get("bytes") is not None:
                self.audio_frames += 1
                continue
            if output["type"] == "websocket.close":
                return {"type": "closed", "code": output.get("code", 1000)}
            return dict(json.loads(output["text"]))

    async def until_audio(self, timeout: float = 60) -> None:
        """The callee hears something: prompt audio comes back."""
        async with asyncio.timeout(timeout):
            while self.audio_frames == 0:
                output = await self.communicator.receive_output(timeout=timeout)
                if output.get("bytes") is not None:
                    assert len(output["bytes"]) == FRAME
                    self.audio_frames += 1


@pytest.fixture
async def door(transactional_db, voice_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    opened: list[WebsocketCommunicator] = []

    async def open_door(user: Any, call_id: str) -> tuple[DoorClient, int]:
        token = (await sync_to_async(Token.objects.get_or_create)(user=user))[0].key
        communicator = WebsocketCommunicator(
            application, "/ws/audio/", headers=[(b"authorization", f"Token {token}".encode())]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        client = DoorClient(communicator)
        start = {"type": "start", "call_id": call_id, "caller": "", "line": "12345", "agent": None}
        await client.send({**start, "sample_rate": RATE})
        started = await client.json()
        assert started["type"] == "started", started
        return client, started["call"]

    yield open_door
    for communicator in opened:
        if not communicator.future.done():
            await communicator.disconnect(timeout=10)
    await sync_to_async(django.db.connections.close_all)()


async def prompts_heard(call_id: int) -> list[str]:
    return await sync_to_async(list)(
        CallEvent.objects.filter(call_id=call_id, kind="prompt").order_by("id").values_list("data__prompt", flat=True)
    )


async def test_pressing_3_reopens_the_ticket_to_its_department(org, door):
    ticket, task, call_uuid = await sync_to_async(dialled_task)(org)
    client, call_id = await door(org.agent, call_uuid)
    await client.until_audio()
    await client.send({"type": "dtmf", "digit": "3"})
    # The callee hears the answer acknowledged, then we hang up.
    assert await client.json() == {"type": "stopped", "call": call_id}

    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert (ticket.status, ticket.lead_department_id, ticket.reopen_count) == (Status.DISPATCHED, org.bureau.id, 1)
    assert "按键 3" in ticket.satisfaction_comment and "不满意" in ticket.satisfaction_comment
    task = await sync_to_async(CallbackTask.objects.get)(pk=task.pk)
    assert (task.status, task.satisfaction, task.finished_by) == ("done", "dissatisfied", None)
    reopen = await sync_to_async(TicketEvent.objects.get)(ticket=ticket, kind="reopen")
    assert reopen.actor_id is None
    heard = await prompts_heard(call_id)
    assert heard[-1] == "callback_reopened" and "callback_intro" not in heard  # the key cut the intro short
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert (call.direction, call.ticket_id, call.status) == (Direction.OUTBOUND, ticket.id, "ended")


async def test_pressing_1_closes_the_ticket_as_satisfied(org, door):
    ticket, _task, call_uuid = await sync_to_async(dialled_task)(org)
    client, call_id = await door(org.agent, call_uuid)
    await client.until_audio()
    await client.send({"type": "dtmf", "digit": "1"})
    assert await client.json() == {"type": "stopped", "call": call_id}
    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert (ticket.status, ticket.satisfaction) == (Status.CLOSED, "satisfied")
    assert (await prompts_heard(call_id))[-1] == "callback_thanks"
    events = await sync_to_async(trail)(ticket)
    assert [(e["action"], e["method"]) for e in events] == [("dialled", "voice"), ("answered", "voice")]


@pytest.mark.parametrize(("max_attempts", "status"), [(3, Status.CALLBACK), (1, Status.CLOSED)])
async def test_hanging_up_without_an_answer_is_recorded_as_unreachable(org, door, voice_settings, max_attempts, status):
    voice_settings.CALLBACK_MAX_ATTEMPTS = max_attempts
    ticket, task, call_uuid = await sync_to_async(dialled_task)(org)
    client, call_id = await door(org.agent, call_uuid)
    await client.until_audio()
    await client.send({"type": "stop"})
    assert await client.json() == {"type": "stopped", "call": call_id}
    task = await sync_to_async(CallbackTask.objects.get)(pk=task.pk)
    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert ticket.status == status and task.attempts == 1
    assert task.status == ("pending" if status == Status.CALLBACK else "unreachable")
    events = await sync_to_async(trail)(ticket)
    assert (events[-1]["action"], events[-1]["reason"]) == ("unanswered", "hung_up")


class HearsMandarin:
    """Stands in for a Mandarin recognizer: the first chunk of audio is heard as `TEXT`."""

    TEXT = "嗯 不 满意 路灯 还是 不 亮"

    def __init__(self, model: Any, *, sample_rate: int, start_ms: int = 0) -> None:
        self.said = False

    def feed(self, pcm: bytes) -> list[Any]:
        if self.said:
            return []
        self.said = True
        return [speech.Segment(index=0, text=self.TEXT, start_ms=0, end_ms=200, words=())]

    def finish(self) -> list[Any]:
        return []


async def test_a_spoken_answer_in_the_transcript_is_recorded(org, door, monkeypatch):
    monkeypatch.setattr(speech, "usable_model", lambda **kwargs: object())
    monkeypatch.setattr(speech, "StreamingTranscriber", HearsMandarin)
    ticket, _task, call_uuid = await sync_to_async(dialled_task)(org)
    client, call_id = await door(org.agent, call_uuid)
    await client.until_audio()
    for _ in range(15):  # 300 ms of the callee speaking
        await client.communicator.send_to(bytes_data=bytes(FRAME))
    assert await client.json() == {"type": "stopped", "call": call_id}
    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert ticket.status == Status.DISPATCHED
    assert ticket.satisfaction_comment == "语音自动回访：群众口头回答「嗯不满意路灯还是不亮」。"
    segments = await sync_to_async(lambda: list(Call.objects.get(pk=call_id).segments.values_list("text", flat=True)))()
    assert segments == [HearsMandarin.TEXT]


async def test_a_stale_call_hears_that_the_callback_is_over(org, door):
    _ticket, task, call_uuid = await sync_to_async(dialled_task)(org)
    await sync_to_async(callbacks.callback_unreachable)(task_id=task.id, actor=None, reason="stalled")
    client, call_id = await door(org.agent, call_uuid)
    assert await client.json() == {"type": "stopped", "call": call_id}
    assert client.audio_frames > 0
    assert await prompts_heard(call_id) == ["callback_finished"]
    task = await sync_to_async(CallbackTask.objects.get)(pk=task.pk)
    assert (task.status, task.attempts) == ("pending", 1)  # nothing more counted


# --- over the AudioSocket door (where Asterisk hands the answered call) -------------------------------------


@pytest.fixture
async def audiosocket_server(transactional_db, voice_settings) -> AsyncIterator[AudioSocketServer]:  # type: ignore[no-untyped-def]
    server = AudioSocketServer()
    await server.start(host="127.0.0.1", port=0)
    yield server
    await server.stop()
    await sync_to_async(django.db.connections.close_all)()


async def test_asterisk_hands_the_answered_call_to_the_audiosocket_door(org, audiosocket_server):
    ticket, _task, call_uuid = await sync_to_async(dialled_task)(org)
    reader, writer = await asyncio.open_connection("127.0.0.1", audiosocket_server.port)
    writer.write(audiosocket.encode_uuid(uuid.UUID(call_uuid)))
    await writer.drain()
    decoder = audiosocket.FrameDecoder()
    received: list[audiosocket.Frame] = []
    async with asyncio.timeout(60):
        while not any(isinstance(f, audiosocket.Audio) for f in received):
            received += decoder.feed(await reader.read(4096))
        writer.write(audiosocket.encode_dtmf("2"))
        await writer.drain()
        while data := await reader.read(65536):
            received += decoder.feed(data)
    writer.close()
    assert isinstance(received[-1], audiosocket.Hangup)  # we hung up after thanking
    ticket = await sync_to_async(Ticket.objects.get)(pk=ticket.pk)
    assert (ticket.status, ticket.satisfaction) == (Status.CLOSED, "fairly_satisfied")


# --- placing the calls through AMI (a fake Asterisk over loopback) -------------------------------------------


class FakeAmi(socketserver.ThreadingTCPServer):
    """Speaks enough AMI: a banner, Login, Originate (queued, then an unrelated event and OriginateResponse),
    Logoff. `outcome` is (Response, Reason) of the OriginateResponse event."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, login_ok: bool = True, outcome: tuple[str, str] = ("Success", "4")) -> None:
        super().__init__(("127.0.0.1", 0), FakeAmiHandler)
        self.login_ok = login_ok
        self.outcome = outcome
        self.actions: list[list[tuple[str, str]]] = []

    @property
    def url(self) -> str:
        return f"tcp://hotline:s%40cret@127.0.0.1:{self.server_address[1]}"


class FakeAmiHandler(socketserver.StreamRequestHandler):
    server: FakeAmi

    def send(self, *fields: tuple[str, str]) -> None:
        self.wfile.write(("".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode())

    def handle(self) -> None:
        self.wfile.write(b"Asterisk Call Manager/9.0.0\r\n")
        while True:
            fields: list[tuple[str, str]] = []
            while line := self.rfile.readline().decode().rstrip("\r\n"):
                key, _, value = line.partition(": ")
                fields.append((key, value))
            if not fields:
                return
            self.server.actions.append(fields)
            action, action_id = dict(fields)["Action"], dict(fields).get("ActionID", "")
            if action == "Login":
                ok = self.server.login_ok
                message = "Authentication accepted" if ok else "Authentication failed"
                self.send(("Response", "Success" if ok else "Error"), ("ActionID", action_id), ("Message", message))
                if not ok:
                    return
            elif action == "Originate":
                self.send(
                    ("Response", "Success"), ("ActionID", action_id), ("Message", "Originate successfully queued")
                )
                self.send(("Event", "Newchannel"), ("Channel", "PJSIP/carrier-00000001"))
                response, reason = self.server.outcome
                self.send(
                    ("Event", "OriginateResponse"),
                    ("ActionID", action_id),
                    ("Response", response),
                    ("Reason", reason),
                    ("Uniqueid", "1700000000.1"),
                )
            elif action == "Logoff":
                self.send(("Response", "Goodbye"), ("ActionID", action_id))
                return


@pytest.fixture
def fake_ami(voice_settings) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    servers: list[FakeAmi] = []

    def start(**kwargs: Any) -> FakeAmi:
        server = FakeAmi(**kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        voice_settings.CALLBACK_AMI_URL = server.url
        return server

    voice_settings.CALLBACK_VOICE_HOURS = ("00:00", "00:00")  # around the clock
    voice_settings.CALLBACK_DIAL = "PJSIP/{number}@carrier"
    voice_settings.CALLBACK_RING_SECONDS = 25
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def pending_voice_task(org) -> tuple[Ticket, CallbackTask]:  # type: ignore[no-untyped-def]
    ticket = make_ticket(org, Status.CALLBACK)
    return ticket, CallbackTask.objects.get(ticket=ticket, status="pending", method="voice")


def actions_named(ami: FakeAmi, name: str) -> list[dict[str, Any]]:
    found = []
    for fields in ami.actions:
        if dict(fields)["Action"] == name:
            found.append({**dict(fields), "Variable": [v for k, v in fields if k == "Variable"]})
    return found


@pytest.mark.django_db(transaction=True)
def test_the_caller_originates_to_the_callback_context_with_the_tasks_uuid(org, fake_ami):
    ami = fake_ami()
    _ticket, task = pending_voice_task(org)
    call_command("run_voice_callbacks", "--once", stdout=(out := io.StringIO()))
    task.refresh_from_db()
    assert (task.status, task.attempts) == ("calling", 1)  # the door records the answer
    (login,) = actions_named(ami, "Login")
    assert (login["Username"], login["Secret"], login["Events"]) == ("hotline", "s@cret", "call")
    (placed,) = actions_named(ami, "Originate")
    assert placed["Channel"] == "PJSIP/13812345678@carrier"
    assert (placed["Context"], placed["Exten"], placed["Priority"]) == ("hotline-callback", "s", "1")
    assert (placed["CallerID"], placed["Timeout"], placed["Async"]) == ("12345", "25000", "true")
    call_uuid = callback.call_uuid_for(task_id=task.id, attempt=1)
    assert placed["Variable"] == [f"CALLBACK_UUID={call_uuid}", f"CALLBACK_TASK={task.id}"]
    assert actions_named(ami, "Logoff")
    assert json.loads(out.getvalue().strip())["answered"] == 1
    assert "13812345678" not in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_no_answer_waits_for_the_next_try_and_the_last_one_closes_the_ticket(org, fake_ami, voice_settings):
    fake_ami(outcome=("Failure", "3"))
    voice_settings.CALLBACK_MAX_ATTEMPTS = 2
    ticket, task = pending_voice_task(org)
    call_command("run_voice_callbacks", "--once", stdout=io.StringIO())
    task.refresh_from_db()
    assert (task.status, task.attempts) == ("pending", 1)
    assert trail(ticket)[-1] == {
        "action": "unanswered",
        "task": task.id,
        "method": "voice",
        "attempts": 1,
        "reason": "no_answer",
        "final": False,
    }
    call_command("run_voice_callbacks", "--once", stdout=io.StringIO())  # too early to call again
    task.refresh_from_db()
    assert task.attempts == 1
    voice_settings.CALLBACK_VOICE_RETRY_MINUTES = 0
    call_command("run_voice_callbacks", "--once", stdout=io.StringIO())
    task.refresh_from_db()
    ticket.refresh_from_db()
    assert (task.status, task.attempts, ticket.status, ticket.satisfaction) == ("unreachable", 2, "closed", "")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", ["login_refused", "unreachable"])
def test_a_pbx_that_cannot_place_the_call_does_not_count_an_attempt(org, fake_ami, voice_settings, failure):
    if failure == "login_refused":
        fake_ami(login_ok=False)
    else:
        probe = fake_ami()
        probe.shutdown()
        probe.server_close()  # nothing listens there any more
    ticket, task = pending_voice_task(org)
    call_command("run_voice_callbacks", "--once", stdout=(out := io.StringIO()))
    task.refresh_from_db()
    assert (task.status, task.attempts) == ("pending", 0)
    assert (trail(ticket)[-1]["action"], trail(ticket)[-1]["reason"]) == ("requeued", failure)
    assert json.loads(out.getvalue().strip())["requeued"] == 1


@pytest.mark.django_db(transaction=True)
def test_calls_are_placed_only_in_calling_hours_and_stalled_calls_count_as_unanswered(org, fake_ami, voice_settings):
    ami = fake_ami()
    now = clock.now().astimezone(TZ)
    later = [(now + timedelta(hours=h)).strftime("%H:%M") for h in (2, 3)]
    voice_settings.CALLBACK_VOICE_HOURS = tuple(later)
    voice_settings.CALLBACK_VOICE_CALL_TIMEOUT_SECONDS = 300
    _ticket, waiting = pending_voice_task(org)
    stalled_ticket, stalled = pending_voice_task(org)
    with clock.frozen(now - timedelta(minutes=10)):
        callbacks.callback_voice_dial(task_id=stalled.id)
    call_command("run_voice_callbacks", "--once", stdout=(out := io.StringIO()))
    report = json.loads(out.getvalue().strip())
    assert report["outside_hours"] is True and report["stalled"] == 1 and report["dialled"] == 0
    assert actions_named(ami, "Originate") == []
    waiting.refresh_from_db()
    stalled.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    assert (stalled.status, stalled.attempts) == ("pending", 1)
    assert (trail(stalled_ticket)[-1]["action"], trail(stalled_ticket)[-1]["reason"]) == ("unanswered", "stalled")


def test_the_caller_needs_the_ami_address(settings):
    settings.CALLBACK_AMI_URL = ""
    with pytest.raises(CommandError, match="CALLBACK_AMI_URL"):
        call_command("run_voice_callbacks", "--once")
    settings.CALLBACK_AMI_URL = "http://asterisk:5038"
    with pytest.raises(CommandError, match="tcp://"):
        call_command("run_voice_callbacks", "--once")


def test_ami_values_cannot_smuggle_in_an_action():
    with pytest.raises(originate.AmiError):
        originate.encode([("Channel", "PJSIP/1@x\r\nAction: Command")])
    assert "s3cret" not in repr(originate.parse_url("tcp://u:s3cret@pbx"))
    assert originate.parse_url("tcp://u:s3cret@pbx").port == 5038


def test_calling_hours_may_pass_midnight(settings):
    settings.CALLBACK_VOICE_HOURS = ("20:00", "08:00")
    at = lambda h: datetime(2025, 6, 13, h, 30, tzinfo=TZ)  # noqa: E731
    assert callback.within_calling_hours(at(23)) and callback.within_calling_hours(at(7))
    assert not callback.within_calling_hours(at(12))
    settings.CALLBACK_VOICE_HOURS = ("09:00", "20:00")
    assert callback.within_calling_hours(at(12)) and not callback.within_calling_hours(at(20))
