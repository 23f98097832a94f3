"""The CTI API: a PBX drives the agent screen over HTTP; ringing shows the caller's previous tickets."""

import pytest
from django.urls import include, path
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from telephony import services
from telephony.models import Call, CallEvent, CallStatus, Door, TranscriptStatus
from tests.helpers import make_ticket
from ticketing.workflow import Status

# This module is the URLconf of its own tests, so they do not depend on the project's URL wiring.
urlpatterns = [path("api/v1/", include("telephony.api.urls"))]

URL = "/api/v1/cti/events/"
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def urlconf(settings):  # type: ignore[no-untyped-def]
    settings.ROOT_URLCONF = __name__


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    """A PBX integration: a token of a hotline centre user, as any PBX would send it."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def event(kind: str, call_id: str = "pbx-1", **extra):  # type: ignore[no-untyped-def]
    return {"event": kind, "call_id": call_id, "caller": PHONE, "line": "12345", "agent_extension": "8001", **extra}


def test_ringing_creates_the_call_and_shows_the_callers_visible_tickets(org):
    older = make_ticket(org, caller_phone=PHONE, title="路灯不亮")
    newer = make_ticket(org, Status.DISPATCHED, caller_phone=PHONE, title="噪音扰民")
    make_ticket(org, Status.DRAFT, agent=org.other_agent, caller_phone=PHONE, title="别人的草稿")
    make_ticket(org, caller_phone="13800000000", title="别的来电人")

    response = token_client(org.agent).post(URL, event("ringing", agent=org.agent.id), format="json")

    assert response.status_code == 201, response.data
    call = Call.objects.get(call_uuid="pbx-1")
    assert call.door == Door.CTI and call.status == CallStatus.RINGING
    assert call.agent == org.agent and call.agent_extension == "8001" and call.caller_number == PHONE
    assert call.transcript_status == TranscriptStatus.UNAVAILABLE and call.audio_path == ""
    assert response.data["call"]["caller_masked"] == "139****5678"
    tickets = response.data["previous_tickets"]
    assert [t["number"] for t in tickets] == [newer.number, older.number]
    assert tickets[0] == {
        "id": newer.id,
        "number": newer.number,
        "status": "dispatched",
        "title": "噪音扰民",
        "created_at": tickets[0]["created_at"],
        "caller_phone_masked": "139****5678",
    }
    assert PHONE not in str(response.content, "utf-8")


def test_previous_tickets_are_the_last_ten_newest_first(org):
    made = [make_ticket(org, caller_phone=PHONE, title=f"诉求{i}") for i in range(11)]
    response = token_client(org.agent).post(URL, event("ringing"), format="json")
    assert [t["number"] for t in response.data["previous_tickets"]] == [t.number for t in reversed(made[1:])]


def test_what_ringing_shows_follows_ticket_visibility(org):
    make_ticket(org, caller_phone=PHONE)
    make_ticket(org, Status.DRAFT, agent=org.other_agent, caller_phone=PHONE)
    agent = token_client(org.agent).post(URL, event("ringing", "a"), format="json")
    supervisor = token_client(org.supervisor).post(URL, event("ringing", "b"), format="json")
    assert len(agent.data["previous_tickets"]) == 1
    assert len(supervisor.data["previous_tickets"]) == 2


def test_ringing_for_a_call_a_door_already_created_returns_it(org):
    existing = services.call_start(
        call_uuid="fork-1",
        door=Door.WEBSOCKET,
        hotline_line="8890",
        caller_number=PHONE,
        live_transcript=False,
    )
    make_ticket(org, caller_phone=PHONE)
    response = token_client(org.agent).post(URL, event("ringing", "fork-1"), format="json")
    assert response.status_code == 200
    assert response.data["call"]["id"] == existing.id and response.data["call"]["door"] == "websocket"
    assert len(response.data["previous_tickets"]) == 1
    assert Call.objects.count() == 1


def test_ringing_fills_in_the_agent_and_extension_a_door_did_not_know(org, django_capture_on_commit_callbacks):
    services.call_start(
        call_uuid="fork-2", door=Door.AUDIOSOCKET, hotline_line="12345", caller_number=PHONE, live_transcript=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(org.agent).post(URL, event("ringing", "fork-2", agent=org.agent.id), format="json")
    assert response.status_code == 200
    call = Call.objects.get(call_uuid="fork-2")
    assert call.agent == org.agent and call.agent_extension == "8001"
    filled = CallEvent.objects.filter(call=call, kind="ringing").last()
    assert filled is not None and filled.data == {"source": "cti", "filled": ["agent", "agent_extension"]}

    # A second ringing naming someone else does not take the call from the agent who has it.
    token_client(org.agent).post(URL, event("ringing", "fork-2", agent=org.other_agent.id), format="json")
    call.refresh_from_db()
    assert call.agent == org.agent


def test_held_resumed_and_transferred_are_kept_in_the_calls_trail(org):
    client = token_client(org.agent)
    client.post(URL, event("ringing", agent=org.agent.id), format="json")
    client.post(URL, event("answered"), format="json")

    held = client.post(URL, event("held"), format="json")
    assert held.status_code == 200 and held.data["call"]["status"] == "held"
    resumed = client.post(URL, event("answered"), format="json")
    assert resumed.data["call"]["status"] == "active"
    transferred = client.post(
        URL, event("transferred", agent=org.other_agent.id, agent_extension="8002"), format="json"
    )
    assert transferred.status_code == 200
    assert transferred.data["call"]["agent"] == org.other_agent.id
    assert transferred.data["call"]["agent_extension"] == "8002"
    client.post(URL, event("hungup"), format="json")

    trail = list(CallEvent.objects.filter(call__call_uuid="pbx-1").values_list("kind", "agent_extension"))
    assert trail == [
        ("ringing", "8001"),
        ("answered", "8001"),
        ("held", "8001"),
        ("resumed", "8001"),
        ("transferred", "8002"),
        ("hungup", "8002"),
    ]
    moved = CallEvent.objects.get(call__call_uuid="pbx-1", kind="transferred")
    assert moved.data == {"from": {"agent": org.agent.id, "agent_extension": "8001"}}


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        (["held"], "call_not_active"),  # still ringing
        (["answered", "hungup", "held"], "call_not_active"),
        (["answered", "hungup", "transferred"], "call_ended"),
    ],
)
def test_holding_or_transferring_a_call_that_cannot_be_is_a_conflict(org, steps, code):
    client = token_client(org.agent)
    client.post(URL, event("ringing"), format="json")
    *before, last = steps
    for step in before:
        client.post(URL, event(step), format="json")
    response = client.post(URL, event(last, agent_extension="8003"), format="json")
    assert response.status_code == 409 and response.data["code"] == code


def test_a_transfer_needs_a_target(org):
    client = token_client(org.agent)
    client.post(URL, event("ringing"), format="json")
    client.post(URL, event("answered"), format="json")
    response = client.post(URL, event("transferred", agent_extension=""), format="json")
    assert response.status_code == 400 and response.data["code"] == "transfer_target_missing"


def test_answered_then_hungup_update_the_call(org):
    client = token_client(org.agent)
    client.post(URL, event("ringing"), format="json")

    answered = client.post(URL, event("answered"), format="json")
    assert answered.status_code == 200 and answered.data["call"]["status"] == "active"
    hungup = client.post(URL, event("hungup"), format="json")
    again = client.post(URL, event("hungup"), format="json")

    assert hungup.status_code == again.status_code == 200
    call = Call.objects.get(call_uuid="pbx-1")
    assert call.status == CallStatus.ENDED and call.end_reason == "hungup"
    assert call.answered_at is not None and call.ended_at is not None and call.answered_at <= call.ended_at
    assert "previous_tickets" not in hungup.data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event("dialled"), "event"),
        (event("ringing", colour="red"), "colour"),
        (event("ringing", line=""), "line"),
        ({"event": "ringing", "call_id": "x", "caller": PHONE}, "line"),
        (event("ringing", agent="abc"), "agent"),
        ({"event": "answered"}, "call_id"),
    ],
)
def test_bad_input_is_refused_in_the_error_shape(org, body, field):
    response = token_client(org.agent).post(URL, body, format="json")
    assert response.status_code == 400
    assert response.data["code"] == "invalid" and field in response.data["errors"]
    assert not Call.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(org):
    response = token_client(org.agent).post(URL, ["ringing"], format="json")
    assert response.status_code == 400 and response.data["code"] == "invalid"


def test_unknown_line_agent_and_call_are_clear_errors(org):
    client = token_client(org.agent)
    line = client.post(URL, event("ringing", line="110"), format="json")
    assert line.status_code == 400 and line.data["code"] == "unknown_hotline_line"
    agent = client.post(URL, event("ringing", agent=org.handler.id), format="json")
    assert agent.status_code == 400 and agent.data["code"] == "unknown_agent"
    missing = client.post(URL, event("answered", "nobody"), format="json")
    assert missing.status_code == 404 and missing.data["code"] == "not_found"
    assert not Call.objects.exists()


def test_unauthenticated_is_401(org):
    response = APIClient().post(URL, event("ringing"), format="json")
    assert response.status_code == 401
    assert response.data["code"] == "not_authenticated"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    assert bad.post(URL, event("ringing"), format="json").status_code == 401
    assert not Call.objects.exists()


def test_department_staff_may_not_drive_calls(org):
    response = token_client(org.handler).post(URL, event("ringing"), format="json")
    assert response.status_code == 403 and response.data["code"] == "not_permitted"
    assert not Call.objects.exists()


def test_the_agent_screen_reads_a_call_with_its_trail_transcript_and_the_callers_history(org):
    earlier = make_ticket(org, caller_phone=PHONE, title="路灯不亮")
    draft = make_ticket(org, Status.DRAFT, caller_phone=PHONE, title="本次通话")
    call = services.call_start(
        call_uuid="seen-1",
        door=Door.WEBSOCKET,
        hotline_line="12345",
        caller_number=PHONE,
        agent=org.agent,
        live_transcript=True,
    )
    services.call_segment_add(call_id=call.id, index=0, text="路灯 又 坏 了", start_ms=100, end_ms=1500)
    Call.objects.filter(pk=call.pk).update(ticket=draft)

    response = token_client(org.agent).get(f"/api/v1/calls/{call.id}/")
    assert response.status_code == 200, response.data
    body = response.data
    assert body["call_id"] == "seen-1" and body["caller_masked"] == "139****5678" and body["ticket"] == draft.id
    assert [e["kind"] for e in body["events"]] == ["ringing"]
    assert [s["text"] for s in body["segments"]] == ["路灯 又 坏 了"]
    assert [t["number"] for t in body["previous_tickets"]] == [earlier.number]  # not the call's own draft
    assert PHONE not in str(response.content, "utf-8")

    # Another agent sees the call but not someone else's draft.
    other = token_client(org.other_agent).get(f"/api/v1/calls/{call.id}/")
    assert other.data["ticket"] is None
    assert token_client(org.handler).get(f"/api/v1/calls/{call.id}/").status_code == 403
    assert token_client(org.agent).get("/api/v1/calls/999999/").status_code == 404
