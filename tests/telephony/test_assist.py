"""Answer suggestions during a call: the knowledge base's best answers for what the caller said, to the agent."""

import pytest

from hotline.realtime import events as rt
from knowledge_base import search
from knowledge_base import services as kb
from knowledge_base.services import ArticleContent
from telephony import assist, services


@pytest.fixture
def sent(monkeypatch):  # type: ignore[no-untyped-def]
    captured: list[tuple[rt.RealtimeEvent, list[str]]] = []
    monkeypatch.setattr(
        "hotline.realtime.broadcast.send_now", lambda event, groups: captured.append((event, list(groups)))
    )
    return captured


def publish(org, title: str, question: str, answer: str, audience: str = "public"):  # type: ignore[no-untyped-def]
    content = ArticleContent(title=title, question=question, answer=answer, audience=audience)
    article = kb.article_create(actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=content)
    kb.article_submit(article_id=article.id, actor=org.handler)
    return kb.article_approve(article_id=article.id, actor=org.lead)


@pytest.fixture
def articles(org, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        card = publish(
            org, "社会保障卡丢失怎么补办", "社保卡丢了怎么办？", "先电话挂失，再带身份证到社保经办网点补办。"
        )
        heating = publish(
            org, "供暖不热如何报修", "家里暖气不热找谁？", "请联系供热公司报修，48小时内上门。", "internal"
        )
    search.sync()
    return card, heating


def call_with(org, texts: list[str], agent=None):  # type: ignore[no-untyped-def]
    call = services.call_start(
        call_uuid="assist-1",
        door="websocket",
        hotline_line="12345",
        caller_number="13912345678",
        agent=agent if agent is not None else org.agent,
        live_transcript=True,
    )
    for index, text in enumerate(texts):
        services.call_segment_add(
            call_id=call.id, index=index, text=text, start_ms=index * 1000, end_ms=index * 1000 + 900
        )
    return call


def test_the_agent_is_offered_the_answer_for_what_the_caller_said(
    org, articles, sent, django_capture_on_commit_callbacks
):
    card, _heating = articles
    call = call_with(org, ["你好", "我 的 社保卡 丢 了 想 补办"])
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        shown = assist.call_assist(call_id=call.id)
    assert shown[0] == card.id
    (event, groups), *_ = [item for item in sent if item[0].type == "knowledge.suggestion"]
    assert groups == [f"agent.{org.agent.id}"]
    assert isinstance(event, rt.KnowledgeSuggestion) and event.call_id == "assist-1"
    assert event.articles[0].id == card.id and "<mark>" in event.articles[0].snippet
    assert rt.parse(event.model_dump(mode="json")) == event

    # The same answers again: nothing new is sent.
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert assist.call_assist(call_id=call.id, shown=shown) == shown
    assert not sent


def test_internal_answers_are_offered_to_staff_and_a_call_without_agent_gets_none(org, articles, sent):
    _card, heating = articles
    call = call_with(org, ["家里 暖气 不 热 找 谁"])
    assert heating.id in assist.call_assist(call_id=call.id)
    services.call_end(call_id=call.id, reason="hangup")
    lone = services.call_start(
        call_uuid="assist-2", door="websocket", hotline_line="12345", caller_number="", live_transcript=True
    )
    services.call_segment_add(call_id=lone.id, index=0, text="暖气 不 热", start_ms=0, end_ms=500)
    assert assist.call_assist(call_id=lone.id) == ()


def test_a_search_outage_costs_only_the_suggestions(org, articles, sent, monkeypatch):
    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise search.SearchUnavailable("搜索服务暂时不可用。")

    monkeypatch.setattr(search, "search", down)
    call = call_with(org, ["社保卡 丢 了"])
    assert assist.call_assist(call_id=call.id, shown=(7,)) == (7,)
    assert not [item for item in sent if item[0].type == "knowledge.suggestion"]


def test_the_agent_is_told_where_routing_would_send_the_call_and_when_it_changes(
    org, sent, settings, django_capture_on_commit_callbacks
):
    from routing.models import Rule

    settings.ROUTING_RECOMMENDER = "tests.routing.test_services.fake_recommend"
    Rule.objects.create(name="燃气泄漏", keywords="煤气味", emergency_target="119", script="请立即转接 119。")
    Rule.objects.create(name="供暖", keywords="暖气", lead_department=org.other_bureau)
    call = call_with(org, ["家里 暖气 不 热"])
    with django_capture_on_commit_callbacks(execute=True):
        shown = assist.call_route(call_id=call.id)
        assert assist.call_route(call_id=call.id, shown=shown) == shown  # unchanged: not sent again
    routed = [event for event, groups in sent if event.type == "routing.suggestion"]
    assert len(routed) == 1 and routed[0].call_id == "assist-1"
    assert routed[0].departments[0].id == org.other_bureau.id

    services.call_segment_add(call_id=call.id, index=1, text="楼道 里 有 煤气味", start_ms=2000, end_ms=3000)
    with django_capture_on_commit_callbacks(execute=True):
        assist.call_route(call_id=call.id, shown=shown)
    emergency = [event for event, groups in sent if event.type == "routing.suggestion"][-1]
    assert emergency.outcome == "emergency" and emergency.external_target == "119" and "119" in emergency.script
