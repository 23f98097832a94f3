"""Agent seat states: set by the calls (ringing or answered at the seat: on a call; hung up: wrap-up; transferred
away: available), by the agent at the desk, and read as available once the wrap-up time is up. Every change
reaches the supervisors and the agent's own desk as `agent.state`; the live calls and the queue are read over
the API with the caller's number masked."""

from datetime import datetime, timedelta

import pytest
from django.urls import reverse

from hotline import clock
from hotline.errors import ApplicationError
from hotline.realtime import events as rt
from telephony import agents, selectors, services
from telephony.models import AgentState, AgentStateKind, Call
from tests.races import needs_postgres, race
from ticketing.calendar import TZ

CALLER = "13812345678"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)


@pytest.fixture
def sent(monkeypatch, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """The agent.state events broadcast after commit, as (payload, groups), each checked against its schema."""
    captured: list[tuple[dict, list[str]]] = []

    def send_now(event, groups):  # type: ignore[no-untyped-def]
        if event.type == "agent.state":
            payload = event.model_dump(mode="json")
            assert rt.parse(payload) == event
            captured.append((payload, list(groups)))

    monkeypatch.setattr("hotline.realtime.broadcast.send_now", send_now)
    return captured


def ring(org, *, call_uuid="seat-1", agent=None, door="audiosocket") -> Call:  # type: ignore[no-untyped-def]
    return services.call_start(
        call_uuid=call_uuid,
        door=door,
        hotline_line="12345",
        caller_number=CALLER,
        agent=agent if agent is not None else org.agent,
        live_transcript=False,
    )


def state_of(user) -> selectors.AgentStateView:  # type: ignore[no-untyped-def]
    return selectors.agent_state_of(user=user, now=clock.now())


def test_a_call_puts_the_agent_on_it_and_the_hang_up_starts_the_wrap_up(
    org, sent, settings, django_capture_on_commit_callbacks
):
    settings.AGENT_WRAP_UP_SECONDS = 30
    with clock.frozen(T0), django_capture_on_commit_callbacks(execute=True):
        call = ring(org)
    assert state_of(org.agent).state == AgentStateKind.ON_CALL
    assert state_of(org.agent).call == call
    payload, groups = sent[-1]
    assert payload == {
        "type": "agent.state",
        "agent_id": org.agent.id,
        "agent_name": str(org.agent),
        "state": "on_call",
        "since": "2026-03-02T09:00:00+08:00",
        "call_id": "seat-1",
        "reason": "ringing",
    }
    assert groups == ["supervisors", f"agent.{org.agent.id}"]

    # Answering the call the agent is already on changes nothing, and says nothing.
    with django_capture_on_commit_callbacks(execute=True):
        services.call_answer(call_id=call.id)
    assert len(sent) == 1

    with clock.frozen(T0 + timedelta(minutes=3)), django_capture_on_commit_callbacks(execute=True):
        services.call_end(call_id=call.id, reason="hangup")
    payload, _ = sent[-1]
    assert (payload["state"], payload["reason"], payload["call_id"]) == ("wrap_up", "hung_up", "seat-1")
    with clock.frozen(T0 + timedelta(minutes=3, seconds=29)):
        view = state_of(org.agent)
        assert view.state == AgentStateKind.WRAP_UP and view.call == call
        assert view.wrap_up_ends_at == T0 + timedelta(minutes=3, seconds=30)
    # Time is up: read as available from the moment the wrap-up ended, before anything is written.
    with clock.frozen(T0 + timedelta(minutes=4)):
        view = state_of(org.agent)
        assert (view.state, view.since, view.call) == (
            AgentStateKind.AVAILABLE,
            T0 + timedelta(minutes=3, seconds=30),
            None,
        )
        # The desk settles it; the trail says why.
        with django_capture_on_commit_callbacks(execute=True):
            agents.agent_state_set(actor=org.agent, state="available")
    assert (sent[-1][0]["state"], sent[-1][0]["reason"]) == ("available", "wrap_up_elapsed")
    assert AgentState.objects.get(agent=org.agent).call is None


def test_without_wrap_up_time_the_hang_up_frees_the_agent_at_once(
    org, sent, settings, django_capture_on_commit_callbacks
):
    settings.AGENT_WRAP_UP_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        call = ring(org)
        services.call_end(call_id=call.id, reason="hangup")
    assert [p["state"] for p, _ in sent] == ["on_call", "available"]
    assert state_of(org.agent).state == AgentStateKind.AVAILABLE


def test_the_agent_ends_the_wrap_up_early_or_asks_for_more_time(
    org, sent, settings, django_capture_on_commit_callbacks
):
    settings.AGENT_WRAP_UP_SECONDS = 60
    with clock.frozen(T0):
        call = ring(org)
        services.call_end(call_id=call.id, reason="hangup")
    with clock.frozen(T0 + timedelta(seconds=50)), django_capture_on_commit_callbacks(execute=True):
        agents.agent_state_set(actor=org.agent, state="wrap_up")
    # More time: the same call, the clock starts again.
    with clock.frozen(T0 + timedelta(seconds=100)):
        view = state_of(org.agent)
        assert view.state == AgentStateKind.WRAP_UP and view.call == call
    assert (sent[-1][0]["state"], sent[-1][0]["call_id"], sent[-1][0]["reason"]) == ("wrap_up", call.call_uuid, "agent")
    with clock.frozen(T0 + timedelta(seconds=101)), django_capture_on_commit_callbacks(execute=True):
        agents.agent_state_set(actor=org.agent, state="available")
    assert (sent[-1][0]["state"], sent[-1][0]["reason"]) == ("available", "agent")


def test_a_transfer_frees_the_first_agent_and_puts_the_second_on_the_call(
    org, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call = ring(org)
        services.call_answer(call_id=call.id)
        services.call_transfer(call_id=call.id, agent_id=org.other_agent.id, agent_extension="8002")
    assert state_of(org.agent).state == AgentStateKind.AVAILABLE
    assert state_of(org.other_agent).state == AgentStateKind.ON_CALL
    assert [(p["agent_id"], p["state"], p["reason"]) for p, _ in sent] == [
        (org.agent.id, "on_call", "ringing"),
        (org.agent.id, "available", "transferred"),
        (org.other_agent.id, "on_call", "transferred"),
    ]
    # The hang-up now starts the second agent's wrap-up, not the first one's.
    services.call_end(call_id=call.id, reason="hangup")
    assert state_of(org.other_agent).state == AgentStateKind.WRAP_UP
    assert state_of(org.agent).state == AgentStateKind.AVAILABLE


def test_an_old_call_ending_leaves_an_agent_on_a_newer_call_alone(org):
    first = ring(org, call_uuid="seat-old")
    second = ring(org, call_uuid="seat-new")
    services.call_end(call_id=first.id, reason="hangup")
    view = state_of(org.agent)
    assert view.state == AgentStateKind.ON_CALL and view.call == second


def test_ringing_reported_by_the_pbx_for_a_door_call_puts_the_named_agent_on_it(org):
    door_call = services.call_start(
        call_uuid="fork-9", door="websocket", hotline_line="12345", caller_number=CALLER, live_transcript=False
    )
    assert state_of(org.agent).state == AgentStateKind.AWAY  # never at a seat yet
    services.call_ring(
        call_uuid="fork-9", hotline_line="12345", caller_number=CALLER, agent_id=org.agent.id, agent_extension="8001"
    )
    view = state_of(org.agent)
    assert view.state == AgentStateKind.ON_CALL and view.call == door_call


def test_what_the_agent_may_and_may_not_choose(org):
    with pytest.raises(ApplicationError) as refused:
        agents.agent_state_set(actor=org.agent, state="on_call")
    assert refused.value.code == "invalid_state"
    with pytest.raises(ApplicationError) as refused:
        agents.agent_state_set(actor=org.agent, state="lunch")
    assert refused.value.code == "invalid_state"
    call = ring(org)
    with pytest.raises(ApplicationError) as refused:
        agents.agent_state_set(actor=org.agent, state="away")
    assert refused.value.code == "agent_on_call"
    assert state_of(org.agent).state == AgentStateKind.ON_CALL
    services.call_end(call_id=call.id, reason="hangup")
    agents.agent_state_set(actor=org.agent, state="away")
    assert state_of(org.agent).state == AgentStateKind.AWAY
    with pytest.raises(ApplicationError) as refused:
        agents.agent_state_set(actor=org.handler, state="available")
    assert refused.value.code == "not_permitted"


# --- the API -----------------------------------------------------------------------------------------------


def test_the_agents_own_state_over_the_api(org, api_as):
    client = api_as(org.agent)
    url = reverse("agent-my-state")
    body = client.get(url).json()
    assert (body["state"], body["state_display"], body["since"], body["call"]) == ("away", "暂离", None, None)

    body = client.post(url, {"state": "available"}, format="json").json()
    assert (body["state"], body["state_display"]) == ("available", "空闲")
    ring(org)
    body = client.get(url).json()
    assert body["state"] == "on_call" and body["call"]["call_id"] == "seat-1"
    assert body["call"]["caller_masked"] == "138****5678"

    response = client.post(url, {"state": "on_call"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_state" and "来电自动设置" in response.json()["detail"]
    response = client.post(url, {"state": "away"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"code": "agent_on_call", "detail": "正在通话中，挂机后才能切换状态。"}
    response = client.post(url, {"state": "away", "extra": 1}, format="json")
    assert response.status_code == 400 and "extra" in response.json()["errors"]

    assert api_as(org.handler).get(url).status_code == 403


def test_supervisors_see_every_seat_and_agents_do_not(org, api_as, django_assert_max_num_queries, settings):
    settings.AGENT_WRAP_UP_SECONDS = 30
    with clock.frozen(T0):
        call = ring(org)
        agents.agent_state_set(actor=org.other_agent, state="available")
        agents.agent_state_set(actor=org.dispatcher, state="away")
        other = ring(org, call_uuid="seat-2", agent=org.supervisor)
        services.call_end(call_id=other.id, reason="hangup")
    url = reverse("agent-states")
    client = api_as(org.supervisor)
    with clock.frozen(T0 + timedelta(seconds=10)), django_assert_max_num_queries(4):
        body = client.get(url).json()
    rows = [(a["agent_name"], a["state"], a["call"]["call_id"] if a["call"] else None) for a in body["agents"]]
    assert rows == [
        (str(org.agent), "on_call", call.call_uuid),
        (str(org.supervisor), "wrap_up", "seat-2"),
        (str(org.other_agent), "available", None),
        (str(org.dispatcher), "away", None),
    ]
    assert body["agents"][1]["wrap_up_ends_at"] == "2026-03-02T09:00:30+08:00"
    assert api_as(org.dispatcher).get(url).status_code == 200
    response = api_as(org.agent).get(url)
    assert response.status_code == 403 and response.json()["code"] == "not_permitted"


def test_live_calls_and_the_queue_with_numbers_masked(org, api_as, django_assert_max_num_queries):
    waiting = services.call_start(
        call_uuid="queue-1", door="cti", hotline_line="8890", caller_number="13900001111", live_transcript=False
    )
    talking = ring(org)
    services.call_answer(call_id=talking.id)
    done = ring(org, call_uuid="seat-done", agent=org.other_agent)
    services.call_end(call_id=done.id, reason="hangup")
    with clock.frozen(clock.now() - timedelta(hours=12)):
        forgotten = ring(org, call_uuid="seat-dead", agent=org.supervisor)
    url = reverse("calls-live")
    with django_assert_max_num_queries(3):
        body = api_as(org.agent).get(url).json()
    assert body["queue_length"] == 1
    rows = [
        (c["call_id"], c["status"], c["status_display"], c["caller_masked"], c["agent_name"]) for c in body["calls"]
    ]
    assert rows == [
        ("queue-1", "ringing", "振铃", "139****1111", ""),
        ("seat-1", "active", "通话中", "138****5678", str(org.agent)),
    ]
    assert "13900001111" not in str(body) and "13812345678" not in str(body)
    assert forgotten.call_uuid not in str(body) and waiting.call_uuid in str(body)
    assert api_as(org.handler).get(url).status_code == 403


def test_the_agents_work_list_holds_their_own_tickets(org, api_as, django_assert_max_num_queries):
    from tests.helpers import make_ticket
    from ticketing.workflow import Status

    mine_open = make_ticket(org, Status.DISPATCHED)
    mine_closed = make_ticket(org, Status.CANCELLED)
    make_ticket(org, Status.PENDING_DISPATCH, agent=org.other_agent)
    url = reverse("agent-my-tickets")
    client = api_as(org.agent)
    with django_assert_max_num_queries(3):
        body = client.get(url).json()
    assert [t["id"] for t in body] == [mine_closed.id, mine_open.id]
    assert body[1]["caller_phone"] == "138****5678" and body[1]["lead_department"] == org.bureau.name
    assert [t["id"] for t in client.get(url, {"open": "true"}).json()] == [mine_open.id]
    assert client.get(url, {"open": "maybe"}).status_code == 400


# --- races (PostgreSQL) ------------------------------------------------------------------------------------


@needs_postgres
def test_a_seat_made_by_two_requests_at_once_is_one_row(org, transactional_db):
    results = race([lambda: agents.agent_state_set(actor=org.agent, state="available")] * 2)
    assert [type(r).__name__ for r in results] == ["AgentState", "AgentState"]
    assert AgentState.objects.filter(agent=org.agent).count() == 1


@needs_postgres
def test_the_agent_going_away_as_a_call_rings_ends_on_the_call(org, transactional_db):
    results = race(
        [
            lambda: agents.agent_state_set(actor=org.agent, state="away"),
            lambda: ring(org, call_uuid="seat-race"),
        ]
    )
    # Either the agent went away first and the call took the seat anyway, or the call came first and going away
    # was refused: never away with a call ringing at the seat.
    assert isinstance(results[1], Call)
    assert isinstance(results[0], AgentState) or getattr(results[0], "code", None) == "agent_on_call"
    view = state_of(org.agent)
    assert view.state == AgentStateKind.ON_CALL and view.call == results[1]
