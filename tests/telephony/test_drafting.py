"""The ticket draft that fills itself from the transcript (智能填单), and emergency alerts: real services, real
ticketing, broadcasts captured as they leave for the channel layer."""

import io
import json
import logging
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from hotline import clock
from hotline.realtime import events as rt
from telephony import drafting, services, speech
from telephony.models import Call, CallEvent, CallStatus, TranscriptStatus
from telephony.recording import WavRecorder
from ticketing import services as ticket_services
from ticketing.models import Channel, Ticket, TicketEvent
from ticketing.workflow import Status

CALLER = "13812345678"
SPOKEN_CONTACT = "幺 三 九 一 二 三 四 五 六 七 八"
CONTACT = "13912345678"


@pytest.fixture
def sent(monkeypatch):  # type: ignore[no-untyped-def]
    """What the services broadcast, as (event, groups), with on-commit callbacks run."""
    captured: list[tuple[rt.RealtimeEvent, list[str]]] = []
    monkeypatch.setattr(
        "hotline.realtime.broadcast.send_now", lambda event, groups: captured.append((event, list(groups)))
    )
    return captured


def start(org, *, agent="agent", call_uuid="draft-call-1", caller=CALLER):  # type: ignore[no-untyped-def]
    return services.call_start(
        call_uuid=call_uuid,
        door="audiosocket",
        hotline_line="12345",
        caller_number=caller,
        agent=getattr(org, agent) if agent else None,
        live_transcript=True,
    )


def say(call: Call, index: int, text: str) -> None:
    services.call_segment_add(
        call_id=call.id, index=index, text=text, start_ms=index * 3000, end_ms=index * 3000 + 2500
    )


def fill(call: Call) -> Ticket | None:
    return drafting.call_draft_fill(call_id=call.id)


def events_of(ticket: Ticket) -> list[tuple[str, dict]]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("kind", "data"))


# ---------------------------------------------------------------------------------------------------------
# the draft


def test_the_first_segment_creates_the_draft_and_links_it_to_the_call(org, sent, django_capture_on_commit_callbacks):
    call = start(org)
    with django_capture_on_commit_callbacks(execute=True):
        say(call, 0, "喂 你好")
        say(call, 1, "我 要 投诉 和平区 太原街 这边 幸福 小区 三 号楼 楼下 烧烤店 晚上 噪音 扰民")
        ticket = fill(call)
    assert ticket is not None
    call.refresh_from_db()
    assert call.ticket_id == ticket.id
    ticket.refresh_from_db()
    assert ticket.status == Status.DRAFT
    assert ticket.created_by == org.agent
    assert (ticket.channel, ticket.hotline_line, ticket.caller_phone) == (Channel.PHONE, "12345", CALLER)
    assert ticket.appeal_type == "complaint" and ticket.urgency == "normal"
    assert ticket.region_id == org.street.id  # 太原街街道, its district named too
    assert ticket.location_text == "和平区太原街；幸福小区3号楼"
    assert ticket.content == "喂你好\n我要投诉和平区太原街这边幸福小区三号楼楼下烧烤店晚上噪音扰民"
    assert ticket.title == "投诉：我要投诉和平区太原街这边幸福小区三号楼楼下烧烤店晚上噪音扰民"

    found = call.draft_fields["found"]
    assert found["appeal_type"] == {"value": "complaint", "words": ["投诉", "噪音", "扰民"]}
    assert found["region"]["heard"] == "太原街" and found["region"]["region_id"] == org.street.id
    assert call.draft_fields["owner"] == org.agent.id and call.draft_fields["segments"] == 2
    assert set(call.draft_fields["set"]) == set(drafting.FILLED_FIELDS)

    created = [event for event, _groups in sent if event.type == "ticket.created"]
    assert len(created) == 1 and created[0].ticket_id == ticket.id
    groups = next(groups for event, groups in sent if event.type == "ticket.created")
    assert f"agent.{org.agent.id}" in groups
    assert events_of(ticket)[0][1]["call_id"] == call.call_uuid


def test_filling_again_changes_nothing(org, sent, django_capture_on_commit_callbacks):
    call = start(org)
    say(call, 0, "请问 居住证 怎么 办理")
    with django_capture_on_commit_callbacks(execute=True):
        first = fill(call)
    assert first is not None
    trail = events_of(first)
    broadcasts = len(sent)
    with django_capture_on_commit_callbacks(execute=True):
        again = fill(call)
        once_more = fill(call)
    assert again == once_more == first
    assert Ticket.objects.count() == 1
    assert events_of(first) == trail
    assert len(sent) == broadcasts


def test_later_segments_fill_what_the_agent_left_alone_and_keep_what_they_typed(
    org, sent, django_capture_on_commit_callbacks
):
    call = start(org)
    say(call, 0, "请问 一下")
    ticket = fill(call)
    assert ticket is not None and ticket.appeal_type == "inquiry" and ticket.region_id is None
    # The agent types a title and an address of their own.
    ticket_services.ticket_update(
        ticket_id=ticket.id,
        actor=org.agent,
        changes={"title": "居民反映夜间施工噪音", "location_text": "幸福小区东门"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        say(call, 1, "我 要 投诉 沈河区 这边 阳光 花园 工地 晚上 施工 噪音 扰民")
        say(call, 2, f"我 的 电话 是 {SPOKEN_CONTACT}")
        ticket = fill(call)
    assert ticket is not None
    ticket.refresh_from_db()
    assert ticket.title == "居民反映夜间施工噪音"
    assert ticket.location_text == "幸福小区东门"
    assert ticket.appeal_type == "complaint"
    assert ticket.region_id == org.other_district.id
    assert ticket.caller_phone == CONTACT  # the number given as contact beats the caller id
    assert ticket.content.endswith(f"我的电话是{SPOKEN_CONTACT.replace(' ', '')}")
    updated = [data["fields"] for kind, data in events_of(ticket) if kind == "updated"]
    assert updated[-1] == ["appeal_type", "caller_phone", "content", "region"]
    live = [event for event, groups in sent if event.type == "ticket.updated" and f"agent.{org.agent.id}" in groups]
    assert live and live[-1].fields == ["appeal_type", "caller_phone", "content", "region"]

    # The agent changes the appeal type; the transcript now says "report", and the agent's choice stays.
    ticket_services.ticket_update(ticket_id=ticket.id, actor=org.agent, changes={"appeal_type": "help"})
    say(call, 3, "我 要 举报 他们 违法 施工 还 偷排 污水")
    ticket = fill(call)
    assert ticket is not None
    ticket.refresh_from_db()
    assert ticket.appeal_type == "help"
    assert "举报" in ticket.content


def test_a_field_the_agent_emptied_is_filled_again(org):
    call = start(org)
    say(call, 0, "我 住 在 幸福 小区 三 号楼")
    ticket = fill(call)
    assert ticket is not None and ticket.location_text == "幸福小区3号楼"
    ticket_services.ticket_update(ticket_id=ticket.id, actor=org.agent, changes={"location_text": ""})
    say(call, 1, "就是 幸福 小区 那个 位置")
    fill(call)
    ticket.refresh_from_db()
    assert ticket.location_text == "幸福小区3号楼"


def test_a_call_without_an_agent_keeps_the_extraction_and_gets_its_draft_at_ringing(
    org, sent, django_capture_on_commit_callbacks
):
    call = start(org, agent=None)
    say(call, 0, f"我 在 和平区 这边 家里 停水 了 电话 {SPOKEN_CONTACT}")
    assert fill(call) is None
    call.refresh_from_db()
    assert call.ticket_id is None and not Ticket.objects.exists()
    found = call.draft_fields["found"]
    assert found["urgency"] == {"value": "urgent", "words": ["停水"]}
    assert found["region"]["region_id"] == org.district.id
    assert found["phones"] == [{"masked": "139****5678", "kind": "mobile", "contact": True}]
    assert CONTACT not in json.dumps(call.draft_fields)

    # The PBX names the agent: the draft is made from what was heard.
    with django_capture_on_commit_callbacks(execute=True):
        services.call_ring(
            call_uuid=call.call_uuid,
            hotline_line="12345",
            caller_number=CALLER,
            agent_id=org.agent.id,
            agent_extension="8001",
        )
    call.refresh_from_db()
    assert call.ticket is not None
    assert call.ticket.created_by == org.agent and call.ticket.urgency == "urgent"
    assert call.ticket.region_id == org.district.id
    assert any(event.type == "ticket.created" and f"agent.{org.agent.id}" in groups for event, groups in sent)


def test_a_transfer_to_an_agent_makes_the_draft_and_a_later_transfer_keeps_its_owner(
    org, django_capture_on_commit_callbacks
):
    call = start(org, agent=None)
    say(call, 0, "我 想 咨询 一下 公积金 怎么 提取")
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transfer(call_id=call.id, agent_id=org.agent.id, agent_extension="8001")
    call.refresh_from_db()
    draft = call.ticket
    assert draft is not None and draft.created_by == org.agent

    with django_capture_on_commit_callbacks(execute=True):
        services.call_transfer(call_id=call.id, agent_id=org.other_agent.id, agent_extension="8002")
    say(call, 1, "我 要 投诉 窗口 工作人员 态度 恶劣")
    ticket = fill(call)
    assert ticket is not None and ticket.id == draft.id
    ticket.refresh_from_db()
    assert ticket.appeal_type == "complaint"
    assert Ticket.objects.count() == 1
    # The draft stays its creator's; the fill wrote as them.
    assert TicketEvent.objects.filter(ticket=ticket, kind="updated").latest("id").actor == org.agent


def test_filling_stops_once_the_ticket_is_no_longer_a_draft(org):
    call = start(org)
    say(call, 0, "请问 居住证 怎么 办理")
    ticket = fill(call)
    assert ticket is not None
    ticket_services.ticket_submit(ticket_id=ticket.id, actor=org.agent)
    trail = events_of(ticket)
    say(call, 1, "我 要 投诉 和平区 这边 噪音 扰民 马上 处理")
    assert fill(call) == ticket
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING_DISPATCH
    assert ticket.appeal_type == "inquiry" and ticket.region_id is None and ticket.urgency == "normal"
    assert events_of(ticket) == trail
    call.refresh_from_db()
    # The evidence still follows the call, for the agent's screen.
    assert call.draft_fields["found"]["appeal_type"]["value"] == "complaint"


def test_no_transcript_no_draft(org):
    call = start(org)
    assert fill(call) is None
    say(call, 0, "   ")
    assert fill(call) is None
    assert not Ticket.objects.exists()
    call.refresh_from_db()
    assert call.ticket_id is None and call.draft_fields == {}


def test_without_a_caller_id_a_spoken_number_is_the_contact(org):
    call = start(org, caller="")
    say(call, 0, "幺 三 九 一 二 三 四 五 六 七 八 这个 号 能 打通")
    ticket = fill(call)
    assert ticket is not None and ticket.caller_phone == CONTACT


def test_phone_numbers_stay_out_of_logs_titles_and_the_filler_memory(org, caplog):
    caplog.set_level(logging.DEBUG)
    call = start(org)
    say(call, 0, f"我 要 投诉 物业 我 的 电话 是 {SPOKEN_CONTACT}")
    ticket = fill(call)
    assert ticket is not None and ticket.caller_phone == CONTACT
    assert CONTACT not in ticket.title and "幺三九一二三四五六七八" not in ticket.title
    call.refresh_from_db()
    assert CONTACT not in json.dumps(call.draft_fields) and CALLER not in json.dumps(call.draft_fields)
    assert CONTACT not in caplog.text and CALLER not in caplog.text
    assert ticket.number in caplog.text


def test_an_emergency_makes_the_draft_critical_and_a_request_for_help(org):
    call = start(org)
    say(call, 0, "快 来 人 沈河区 这边 楼 里 着火 了")
    ticket = fill(call)
    assert ticket is not None
    assert (ticket.urgency, ticket.appeal_type) == ("critical", "help")


# ---------------------------------------------------------------------------------------------------------
# emergency alerts


def test_an_emergency_is_alerted_once_per_kind(org, sent, django_capture_on_commit_callbacks):
    call = start(org)
    with django_capture_on_commit_callbacks(execute=True):
        first = drafting.call_emergency_check(call_id=call.id, text="楼下 着火")
        again = drafting.call_emergency_check(call_id=call.id, text="楼下 着火 了 冒 黑烟")
        injury = drafting.call_emergency_check(call_id=call.id, text="楼下 着火 了 冒 黑烟 有人 受伤 了")
        final = drafting.call_emergency_check(call_id=call.id, text="楼下 着火 了 冒 黑烟 有人 受伤 了 快 来")
    assert [len(first), len(again), len(injury), len(final)] == [1, 0, 1, 0]
    trail = list(CallEvent.objects.filter(call=call, kind="alert").values_list("data", flat=True))
    assert trail == [{"kind": "emergency", "words": ["着火"]}, {"kind": "emergency", "words": ["受伤"]}]
    alerts = [(event, groups) for event, groups in sent if event.type == "call.alert"]
    assert len(alerts) == 2
    fire, groups = alerts[0]
    assert fire.call_id == call.call_uuid and fire.kind == "emergency" and fire.words == ["着火"]
    assert "119" in fire.text and "火情" in fire.text and "楼下着火" in fire.text
    assert f"agent.{org.agent.id}" in groups and "supervisors" in groups
    assert "120" in alerts[1][0].text
    assert rt.parse(fire.model_dump(mode="json")) == fire


def test_words_without_emergency_touch_no_database(org, django_assert_num_queries):
    call = start(org)
    with django_assert_num_queries(0):
        assert drafting.call_emergency_check(call_id=call.id, text="我 要 投诉 小区 消防 通道 堵了 有 火灾 隐患") == []


def test_alerts_of_other_kinds_do_not_hide_an_emergency(org):
    call = start(org)
    services.call_alert(call_id=call.id, kind="quality", words=["着火"], text="test")
    assert len(drafting.call_emergency_check(call_id=call.id, text="着火 了")) == 1


# ---------------------------------------------------------------------------------------------------------
# recovery: the draft is kept

SHARED = Path(__file__).resolve().parents[3] / "shared"
CLIP = SHARED / "audio" / "ko" / "ko_picovoice_rhino_within_context.wav"
# Vosk usually hears 파란색 in this clip; once, in a full run, a reused recognizer heard 파란 팩 (as it does for
# badly resampled audio, see test_speech), cause not found. The stem 파란 is what it reliably gets.
KEYWORD = "파란"


@pytest.mark.skipif(not CLIP.is_file(), reason=f"Korean test clip not found at {CLIP}")
@pytest.mark.usefixtures("vosk_model_installed")
def test_a_recovered_call_updates_the_draft_made_live_and_keeps_the_agents_edits(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call = start(org, call_uuid="recovered-with-draft")
    services.call_answer(call_id=call.id)
    Call.objects.filter(pk=call.pk).update(started_at=clock.now() - timedelta(hours=2), sample_rate=16000)
    call.refresh_from_db()
    # The process heard one segment live, filled the draft, and died; the agent had typed a title.
    say(call, 0, "请问 一下")
    draft = fill(call)
    assert draft is not None
    ticket_services.ticket_update(ticket_id=draft.id, actor=org.agent, changes={"title": "坐席填写的标题"})
    # Two utterances on disk: the first one was stored live (as segment 0), the second one was not.
    with wave.open(str(CLIP)) as clip:
        pcm = clip.readframes(clip.getnframes())
    with WavRecorder(Path(tmp_path) / call.audio_path, sample_rate=16000) as recorder:
        recorder.write(pcm + bytes(16000 * 2 * 2) + pcm)
    assert call.status == CallStatus.ACTIVE and call.transcript_status == TranscriptStatus.LIVE

    out = io.StringIO()
    call_command("transcribe_pending", stdout=out)
    counts = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (counts["recovered"], counts["done"], counts["drafts"]) == (1, 1, 1)
    assert f"draft {draft.number}" in out.getvalue()

    call.refresh_from_db()
    assert call.end_reason == "recovered" and call.transcript_status == TranscriptStatus.DONE
    assert call.ticket_id == draft.id and Ticket.objects.count() == 1
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT
    assert draft.title == "坐席填写的标题"
    assert draft.content.startswith("请问一下\n")
    assert KEYWORD in speech.compact(draft.content)
    assert call.draft_fields["segments"] == call.segments.count() == 2
