import pytest

from hotline.errors import ApplicationError
from hotline.realtime import events as rt
from telephony import services
from telephony.models import CallStatus, TranscriptStatus


@pytest.fixture
def sent(monkeypatch):  # type: ignore[no-untyped-def]
    """What the services broadcast, as (event, groups), with on-commit callbacks run."""
    captured: list[tuple[rt.RealtimeEvent, list[str]]] = []
    monkeypatch.setattr(
        "hotline.realtime.broadcast.send_now", lambda event, groups: captured.append((event, list(groups)))
    )
    return captured


def start(org, **overrides):  # type: ignore[no-untyped-def]
    values = {
        "call_uuid": "0f0e0d0c-0b0a-0908-0706-050403020100",
        "door": "audiosocket",
        "hotline_line": "12345",
        "caller_number": "13812345678",
        "agent": org.agent,
        "live_transcript": True,
    }
    values.update(overrides)
    return services.call_start(**values)


def test_a_call_from_start_to_end_reaches_the_agent_screen(org, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call = start(org)
        services.call_answer(call_id=call.id)
        services.call_partial(call_id=call.id, text="我要投诉", audio_ms=1200)
        services.call_segment_add(call_id=call.id, index=0, text="我要投诉小区噪音", start_ms=200, end_ms=2400)
        services.call_segment_add(call_id=call.id, index=0, text="重复的片段", start_ms=200, end_ms=2400)
        services.call_dtmf_add(call_id=call.id, digit="1", at_ms=3000)
        services.call_end(call_id=call.id, reason="hangup")
        services.call_end(call_id=call.id, reason="hangup again")
    call.refresh_from_db()
    assert call.status == CallStatus.ENDED and call.end_reason == "hangup"
    assert call.transcript_status == TranscriptStatus.LIVE
    assert call.audio_path.endswith(f"{call.call_uuid}.wav")
    assert list(call.segments.values_list("text", flat=True)) == ["我要投诉小区噪音"]
    types = [event.type for event, _groups in sent]
    # The agent's seat follows the call (telephony.agents): on it at ringing, wrapping up after the hang-up.
    assert types == [
        "call.started",
        "agent.state",
        "call.state",
        "transcript.partial",
        "transcript.final",
        "call.ended",
        "agent.state",
    ]
    assert list(call.events.values_list("kind", flat=True)) == ["ringing", "answered", "hungup"]
    for event, groups in sent:
        assert f"agent.{org.agent.id}" in groups and "supervisors" in groups
        assert rt.parse(event.model_dump(mode="json")) == event
    started = sent[0][0]
    assert started.caller_masked == "138****5678"
    assert "13812345678" not in str([event.model_dump() for event, _ in sent])


def test_without_a_model_the_call_waits_for_transcription(org, sent):
    call = start(org, live_transcript=False)
    assert call.transcript_status == TranscriptStatus.PENDING
    cti = start(org, call_uuid="cti-1", door="cti", live_transcript=False)
    assert cti.transcript_status == TranscriptStatus.UNAVAILABLE and cti.audio_path == ""


def test_bad_calls_are_refused(org, sent):
    start(org)
    with pytest.raises(ApplicationError) as duplicate:
        start(org)
    assert duplicate.value.code == "duplicate_call"
    with pytest.raises(ApplicationError):
        start(org, call_uuid="x", door="pigeon")
    with pytest.raises(ApplicationError):
        start(org, call_uuid="y", hotline_line="110")
    call = start(org, call_uuid="z")
    with pytest.raises(ApplicationError):
        services.call_dtmf_add(call_id=call.id, digit="x", at_ms=0)
    with pytest.raises(ApplicationError):
        services.call_segment_add(call_id=call.id, index=1, text="t", start_ms=500, end_ms=100)


def test_an_alert_reaches_the_agent_screen_and_stays_in_the_trail(org, sent, django_capture_on_commit_callbacks):
    call = start(org)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_alert(call_id=call.id, kind="emergency", words=["着火"], text="楼下着火了")
        services.call_prompt_played(call_id=call.id, prompt="greeting")
    alert, groups = sent[-1]
    assert alert.type == "call.alert" and alert.words == ["着火"] and f"agent.{org.agent.id}" in groups
    trail = list(call.events.values_list("kind", "data"))
    assert trail[1:] == [("alert", {"kind": "emergency", "words": ["着火"]}), ("prompt", {"prompt": "greeting"})]


def test_partials_follow_the_call_to_the_agent_who_has_it_now(org, sent, django_capture_on_commit_callbacks):
    call = start(org)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_answer(call_id=call.id)
        services.call_transfer(call_id=call.id, agent_id=org.other_agent.id, agent_extension="8002")
        services.call_partial(call_id=call.id, text="我要投诉", audio_ms=900)
    partial, groups = sent[-1]
    assert partial.type == "transcript.partial"
    assert f"agent.{org.other_agent.id}" in groups and f"agent.{org.agent.id}" not in groups


def test_the_recognizers_kept_for_reuse_outnumber_the_workers(settings):
    from telephony import speech

    settings.ASR_WORKERS, settings.ASR_IDLE_RECOGNIZERS = 2, 0
    assert speech._idle_limit() == 8
    settings.ASR_IDLE_RECOGNIZERS = 3
    assert speech._idle_limit() == 3
