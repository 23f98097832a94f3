"""What the caller hears: the keypad menu, the prompt player, and prompts the agent asks for, over the WebSocket
audio door (the AudioSocket door's greeting and keys are covered in test_audiosocket_server.py)."""

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from hotline.asgi import application
from telephony import prompts, voice
from telephony.models import Call, CallEvent, Dtmf
from tests.helpers import make_ticket
from ticketing.workflow import Status

# --- the keypad menu, without I/O


def menu_with(tickets: dict[tuple[str, str], str]) -> voice.VoiceMenu:
    return voice.VoiceMenu(lambda number, code: tickets.get((number, code)))


def press(menu: voice.VoiceMenu, keys: str) -> list[str]:
    said: list[str] = []
    for key in keys:
        said += [prompt.name for prompt in menu.press(key)]
    return said


def test_keyed_numbers_are_read_as_ticket_numbers_of_a_hotline_line():
    assert voice.number_from_keys("1234520261122000123") == "12345-20261122-000123"
    assert voice.number_from_keys("889020261122000007") == "8890-20261122-000007"
    assert voice.number_from_keys("12345202611220001") is None  # too short
    assert voice.number_from_keys("9999920261122000123") is None  # no such line


def test_the_caller_hears_the_status_of_a_ticket_keyed_in_with_its_query_code():
    menu = menu_with({("12345-20261122-000123", "204816"): "办理中"})
    assert press(menu, "5") == []  # keys while talking to the agent are not answered
    assert press(menu, "*") == ["ask_number"]
    assert press(menu, "1234520261122000123#") == ["ask_code"]
    said = menu.press("2") + menu.press("0") + menu.press("4") + menu.press("8") + menu.press("1") + menu.press("6")
    assert said == []
    status = menu.press("#")
    assert [p.name for p in status] == ["ticket_status"] and "办理中" in status[0].text


def test_a_wrong_number_or_code_sounds_the_same_and_three_failures_lock_the_menu():
    menu = menu_with({("12345-20261122-000123", "204816"): "办理中"})
    asked = ["ask_number", "ask_code"]
    assert press(menu, "*123#") == ["ask_number", "bad_number"]
    assert press(menu, "*1234520261122000123#000000#") == [*asked, "not_found"]
    assert press(menu, "*1234520261122000999#204816#") == [*asked, "not_found"]
    assert press(menu, "*1234520261122000123#12345#") == [*asked, "locked"]  # third failure (a short code)
    # Even the right code gets no answer now: keying on cannot guess a code.
    assert press(menu, "*1234520261122000123#204816#") == ["locked", "locked", "locked"]


@pytest.mark.django_db
def test_the_menu_tells_what_the_public_status_page_tells(org):
    ticket = make_ticket(org, Status.DISPATCHED)
    draft = make_ticket(org, Status.DRAFT)
    assert voice.public_status(ticket.number, ticket.query_code) == "办理中"
    assert voice.public_status(ticket.number, "000000" if ticket.query_code != "000000" else "111111") is None
    assert voice.public_status(draft.number, draft.query_code) is None  # drafts are not public yet


# --- the player


async def test_the_player_sends_whole_frames_and_a_key_press_cuts_a_prompt_short(monkeypatch):
    sent: list[bytes] = []
    recorded: list[str] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    monkeypatch.setattr(voice.services, "call_prompt_played", lambda *, call_id, prompt: recorded.append(prompt))
    player = voice.PromptPlayer(call_id=1, sample_rate=8000, send=send)
    player.start(listen=False)
    player.say(voice.Prompt("greeting", prompts.greeting("12345")))
    while not sent:
        await asyncio.sleep(0.02)
    player.say(voice.ASK_NUMBER, interrupt=True)
    await player.idle()
    await player.close()

    assert all(len(frame) == 320 for frame in sent)
    assert recorded == ["ask_number"] == player.played  # the greeting was cut short, not recorded as heard
    greeting = len(prompts.to_pcm(prompts.render_prompt(prompts.greeting("12345")), sample_rate=8000))
    ask_number = len(prompts.to_pcm(prompts.render_prompt(voice.ASK_NUMBER.text), sample_rate=8000))
    assert len(sent) * 320 < greeting + ask_number
    assert len(sent) >= -(-ask_number // 320)


async def test_a_prompt_that_cannot_be_rendered_is_skipped_and_the_next_one_plays(monkeypatch):
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    def render(text: str) -> Any:
        if text == "坏":
            raise prompts.PromptUnavailable("no voice")
        return real_render(text)

    real_render = prompts.render_prompt
    monkeypatch.setattr(prompts, "render_prompt", render)
    monkeypatch.setattr(voice.services, "call_prompt_played", lambda **_: None)
    player = voice.PromptPlayer(call_id=1, sample_rate=16000, send=send)
    player.start(listen=False)
    player.say(voice.Prompt("broken", "坏"))
    player.say(voice.ASK_CODE)
    await player.idle()
    await player.close()
    assert player.played == ["ask_code"] and sent and all(len(frame) == 640 for frame in sent)


# --- over the WebSocket audio door, with the agent's API


class DoorClient:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.audio_frames = 0

    async def json(self, timeout: float = 30) -> dict[str, Any]:
        while True:
            output = await self.communicator.receive_output(timeout=timeout)
            if output.get("bytes") is not None:
                self.audio_frames += 1
                continue
            assert output["type"] == "websocket.send", output
            return dict(json.loads(output["text"]))

    async def send(self, message: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def drain_audio(self, seconds: float) -> None:
        """Keep reading prompt audio (a real client plays it) for a while."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    output = await self.communicator.receive_output(timeout=seconds)
                    if output.get("bytes") is not None:
                        self.audio_frames += 1
        except TimeoutError:
            pass


@pytest.fixture
async def door(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    opened: list[WebsocketCommunicator] = []

    async def open_door(user: Any, call_id: str, line: str = "12345") -> tuple[DoorClient, int]:
        token = (await sync_to_async(Token.objects.get_or_create)(user=user))[0].key
        communicator = WebsocketCommunicator(
            application, "/ws/audio/", headers=[(b"authorization", f"Token {token}".encode())]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        client = DoorClient(communicator)
        await client.send(
            {
                "type": "start",
                "call_id": call_id,
                "caller": "13912345678",
                "line": line,
                "agent": user.id,
                "sample_rate": 8000,
            }
        )
        started = await client.json()
        assert started["type"] == "started"
        return client, started["call"]

    yield open_door
    for communicator in opened:
        if not communicator.future.done():
            await communicator.disconnect(timeout=10)
    await sync_to_async(connections.close_all)()


async def prompts_heard(call_id: int, *, wanted: str, client: DoorClient, seconds: float = 30) -> list[str]:
    """The prompts recorded as heard on the call, once `wanted` is among them (reading audio meanwhile)."""
    for _ in range(int(seconds / 0.25)):
        heard = await sync_to_async(list)(
            CallEvent.objects.filter(call_id=call_id, kind="prompt").values_list("data__prompt", flat=True)
        )
        if wanted in heard:
            return heard
        await client.drain_audio(0.25)
    raise AssertionError(f"{wanted} was never heard; heard {heard}")


async def test_a_caller_keys_in_a_ticket_and_hears_its_status_over_the_websocket_door(org, door):
    ticket = await sync_to_async(make_ticket)(org, Status.DISPATCHED)
    client, call_id = await door(org.agent, "ivr-1")
    keys = "*" + ticket.number.replace("-", "") + "#" + ticket.query_code + "#"
    for key in keys:
        await client.send({"type": "dtmf", "digit": key})
    heard = await prompts_heard(call_id, wanted="ticket_status", client=client)
    # The greeting and the menu's questions were cut short by the keys; the answer was heard whole.
    assert heard == ["ticket_status"]
    assert client.audio_frames > 0
    digits = await sync_to_async(list)(Dtmf.objects.filter(call_id=call_id).values_list("digit", flat=True))
    assert "".join(digits) == keys
    await client.send({"type": "stop"})


async def test_a_bad_key_message_ends_the_call_with_its_reason(org, door):
    client, call_id = await door(org.agent, "ivr-2")
    await client.send({"type": "dtmf", "digit": "x"})
    error = await client.json()
    assert error["type"] == "error" and error["code"] == "invalid_dtmf"
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert call.status == "ended" and call.end_reason == "invalid_dtmf"


async def test_the_agent_has_the_caller_hear_the_ticket_number(org, door):
    client, call_id = await door(org.agent, "ivr-3")
    ticket = await sync_to_async(make_ticket)(org, Status.PENDING_DISPATCH)
    api = APIClient()
    await sync_to_async(api.force_authenticate)(org.agent)
    url = f"/api/v1/calls/{call_id}/prompts/"

    no_ticket = await sync_to_async(api.post)(url, {"prompt": "ticket_number"}, format="json")
    assert no_ticket.status_code == 409 and no_ticket.data["code"] == "no_ticket"
    await sync_to_async(Call.objects.filter(pk=call_id).update)(ticket=ticket)
    response = await sync_to_async(api.post)(url, {"prompt": "ticket_number"}, format="json")
    assert response.status_code == 202, response.data

    heard = await prompts_heard(call_id, wanted="ticket_number", client=client)
    assert heard[-1] == "ticket_number"
    await client.send({"type": "stop"})
    await client.json()
    ended = await sync_to_async(api.post)(url, {"prompt": "greeting"}, format="json")
    assert ended.status_code == 409 and ended.data["code"] == "no_audio_path"


@pytest.mark.django_db
def test_prompt_requests_are_checked(org):
    api = APIClient()
    api.force_authenticate(org.handler)
    assert api.post("/api/v1/calls/1/prompts/", {"prompt": "greeting"}, format="json").status_code == 403
    api.force_authenticate(org.agent)
    assert api.post("/api/v1/calls/999/prompts/", {"prompt": "greeting"}, format="json").status_code == 404
    bad = api.post("/api/v1/calls/999/prompts/", {"prompt": "sing"}, format="json")
    assert bad.status_code == 400 and "prompt" in bad.data["errors"]


def test_the_menu_shares_the_sites_lockout_so_calling_again_does_not_help(org, settings):
    settings.PUBLIC_LOOKUP_MAX_FAILURES = 3
    ticket = make_ticket(org, Status.DISPATCHED)
    wrong = "000000" if ticket.query_code != "000000" else "111111"
    for _call in range(3):  # three calls, one wrong code each
        assert voice.public_status(ticket.number, wrong) is None
    # Locked: the right code sounds like a wrong one until the lockout lapses.
    assert voice.public_status(ticket.number, ticket.query_code) is None
