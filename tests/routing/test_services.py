"""route_ticket and the decision policy (with a fake recommender), emergencies and legal routes, hit counts,
previews that write nothing, route_pending following ticket events, and the events sent."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import call_command

from hotline.errors import InvalidTransition, NotFound, NotPermitted
from hotline.realtime import broadcast, groups
from hotline.realtime import events as rt
from routing import selectors, services
from routing.models import Outcome, RoutingCursor, RoutingDecision, Rule
from routing.types import Reason, Recommendation, RoutingInput
from tests.helpers import make_ticket
from ticketing import services as ticketing
from ticketing.models import Department, Ticket
from ticketing.workflow import Status

# What the fake recommender answers; set through the `recommend` fixture.
ANSWER: list[Recommendation] = []
FAKE = "tests.routing.test_services.fake_recommend"


def fake_recommend(inp, *, limit=5):  # type: ignore[no-untyped-def]
    return ANSWER[:limit]


def broken_recommend(inp, *, limit=5):  # type: ignore[no-untyped-def]
    raise RuntimeError("model missing")


@pytest.fixture
def recommend(settings) -> Callable[..., None]:  # type: ignore[no-untyped-def]
    settings.ROUTING_RECOMMENDER = FAKE
    settings.ROUTING_ACTOR = "dispatcher"
    ANSWER.clear()

    def answer(*pairs: tuple[int, float]) -> None:
        ANSWER[:] = [
            Recommendation(
                department_id=d,
                confidence=c,
                reasons=(Reason(kind="similar_tickets", text=f"相似工单多由单位{d}办理", weight=c),),
            )
            for d, c in pairs
        ]

    yield answer
    ANSWER.clear()


@pytest.fixture
def sent(monkeypatch, django_capture_on_commit_callbacks) -> Callable[[], Any]:  # type: ignore[no-untyped-def]
    """`with sent() as messages:` records what services broadcast after commit inside the block."""

    @contextmanager
    def capture() -> Iterator[list[tuple[rt.RealtimeEvent, list[str]]]]:
        messages: list[tuple[rt.RealtimeEvent, list[str]]] = []
        monkeypatch.setattr(broadcast, "send_now", lambda event, groups: messages.append((event, list(groups))))
        with django_capture_on_commit_callbacks(execute=True):
            yield messages

    return capture


def routing_events(messages, cls):  # type: ignore[no-untyped-def]
    return [(e, g) for e, g in messages if isinstance(e, cls)]


def valid(event: rt.RealtimeEvent) -> dict[str, Any]:
    """The payload as a client gets it, checked against its schema."""
    payload = json.loads(json.dumps(event.model_dump(mode="json")))
    assert rt.parse(payload) == event
    return payload


def heating_rule(org, **overrides) -> Rule:  # type: ignore[no-untyped-def]
    values = {"name": "供暖", "order": 10, "keywords": "暖气\n供热", "lead_department": org.other_bureau}
    return Rule.objects.create(**{**values, **overrides})


# --- the policy ----------------------------------------------------------------------------------------------


def test_a_rule_hit_dispatches_automatically_and_tells_the_screens(org, recommend, sent):
    rule = heating_rule(org)
    rule.assisting_departments.set([org.street_office])
    recommend((org.bureau.id, 0.99))
    ticket = make_ticket(org, title="暖气不热", content="家里暖气片冰凉。")
    with sent() as messages:
        decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)

    ticket.refresh_from_db()
    assert ticket.status == Status.DISPATCHED and ticket.lead_department_id == org.other_bureau.id
    assert list(ticket.assisting_departments.values_list("id", flat=True)) == [org.street_office.id]
    assert decision.outcome == Outcome.AUTO_DISPATCHED and decision.rule_id == rule.id
    assert decision.confidence == 1.0 and decision.actor_id == org.dispatcher.id
    assert decision.matches[0]["explanations"] == ["含关键词：暖气"]
    assert decision.recommendations[0]["department_id"] == org.bureau.id
    dispatched = ticket.events.get(kind="dispatch")
    assert dispatched.actor_id == org.dispatcher.id and "规则「供暖」" in dispatched.data["note"]

    ((event, audience),) = routing_events(messages, rt.RoutingSuggestion)
    payload = valid(event)
    assert payload["ticket_id"] == ticket.id and payload["call_id"] is None
    assert payload["outcome"] == "auto_dispatched" and payload["rules"] == ["供暖"]
    assert [d["id"] for d in payload["departments"]] == [org.other_bureau.id, org.bureau.id]
    assert payload["departments"][0]["title"] == org.other_bureau.name
    assert "含关键词：暖气" in payload["departments"][0]["reason"]
    assert set(audience) == {groups.ticket(ticket.id), groups.supervisors(), groups.agent(org.agent.id)}


@pytest.mark.parametrize(
    ("mode", "confidence", "outcome", "status"),
    [
        ("auto", 0.9, Outcome.AUTO_DISPATCHED, Status.DISPATCHED),
        ("auto", 0.8, Outcome.AUTO_DISPATCHED, Status.DISPATCHED),
        ("preselect", 0.9, Outcome.PRESELECTED, Status.PENDING_DISPATCH),
        ("auto", 0.5, Outcome.MANUAL, Status.PENDING_DISPATCH),
        ("preselect", 0.5, Outcome.MANUAL, Status.PENDING_DISPATCH),
    ],
)
def test_a_recommendation_dispatches_preselects_or_waits_by_confidence_and_mode(
    org, recommend, settings, mode, confidence, outcome, status
):
    settings.ROUTING_MODE = mode
    settings.ROUTING_AUTO_DISPATCH_CONFIDENCE = 0.8
    recommend((org.bureau.id, confidence), (org.other_bureau.id, 0.1))
    ticket = make_ticket(org)
    decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)

    ticket.refresh_from_db()
    assert decision.outcome == outcome and ticket.status == status
    assert decision.confidence == confidence and decision.mode == mode
    if outcome == Outcome.MANUAL:
        assert decision.lead_department_id is None and "置信度不足" in decision.note
    else:
        assert decision.lead_department_id == org.bureau.id
    if status == Status.DISPATCHED:
        assert ticket.lead_department_id == org.bureau.id
    assert [r["department_id"] for r in decision.recommendations] == [org.bureau.id, org.other_bureau.id]
    assert decision.recommendations[0]["reasons"][0]["kind"] == "similar_tickets"


def test_no_recommendation_leaves_the_ticket_in_the_queue(org, recommend):
    ticket = make_ticket(org)
    decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)
    assert decision.outcome == Outcome.MANUAL and decision.confidence is None
    assert Ticket.objects.get(pk=ticket.id).status == Status.PENDING_DISPATCH


def test_a_failing_recommender_does_not_stop_rules(org, recommend, settings):
    settings.ROUTING_RECOMMENDER = "tests.routing.test_services.broken_recommend"
    heating_rule(org)
    decision = services.route_ticket(ticket_id=make_ticket(org, content="暖气不热").id, actor=org.dispatcher)
    assert decision.outcome == Outcome.AUTO_DISPATCHED and "推荐服务出错" in decision.note


def test_a_refused_dispatch_becomes_a_preselection(org, recommend):
    heating_rule(org)
    org.other_bureau.accepts_dispatch = False
    org.other_bureau.save()
    ticket = make_ticket(org, content="暖气不热")
    decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)
    assert decision.outcome == Outcome.PRESELECTED and "自动派单未成功" in decision.note
    assert decision.lead_department_id == org.other_bureau.id
    assert Ticket.objects.get(pk=ticket.id).status == Status.PENDING_DISPATCH


def test_a_department_that_returned_the_ticket_is_not_dispatched_to_again(org, recommend, settings):
    settings.ROUTING_MODE = "auto"
    heating_rule(org, lead_department=org.bureau)
    recommend((org.bureau.id, 0.95), (org.other_bureau.id, 0.9))
    ticket = make_ticket(org, Status.DISPATCHED, content="暖气不热")
    ticketing.ticket_return(ticket_id=ticket.id, actor=org.handler, reason="不属于本单位职责")
    ticketing.ticket_approve_return(ticket_id=ticket.id, actor=org.dispatcher)

    decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)
    assert decision.outcome == Outcome.AUTO_DISPATCHED and decision.lead_department_id == org.other_bureau.id
    assert "曾退回此工单" in decision.note
    assert Ticket.objects.get(pk=ticket.id).lead_department_id == org.other_bureau.id


# --- emergencies and legal routes ----------------------------------------------------------------------------


def test_an_emergency_rule_flags_the_ticket_for_transfer_and_makes_it_critical(org, recommend, sent):
    Rule.objects.create(name="火情", order=1, keywords="着火\n冒烟", emergency_target="119")
    heating_rule(org)
    recommend((org.bureau.id, 0.99))
    ticket = make_ticket(org, title="楼道着火", content="楼道里着火了，暖气管道旁边冒烟。")
    with sent() as messages:
        decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)

    ticket.refresh_from_db()
    assert decision.outcome == Outcome.EMERGENCY and decision.external_target == "119"
    assert "119" in decision.script and decision.rule_name == "火情"
    # Not dispatched: the agent transfers the call; the ticket waits, now critical.
    assert ticket.status == Status.PENDING_DISPATCH and ticket.urgency == "critical"
    assert decision.urgency == "critical"
    assert ticket.events.filter(kind="updated").exists()
    ((event, _),) = routing_events(messages, rt.RoutingSuggestion)
    payload = valid(event)
    assert (payload["outcome"], payload["external_target"]) == ("emergency", "119")
    assert payload["rules"] == ["火情", "供暖"]


def test_a_legal_route_rule_gives_the_script(org, recommend):
    script = "劳动争议请向劳动人事争议仲裁委员会申请仲裁。"
    Rule.objects.create(name="劳动仲裁", keywords="劳动仲裁", legal_route="arbitration", script=script)
    ticket = make_ticket(org, content="公司拖欠工资，我想申请劳动仲裁。")
    decision = services.route_ticket(ticket_id=ticket.id, actor=org.dispatcher)
    assert (decision.outcome, decision.external_target, decision.script) == ("legal_route", "arbitration", script)
    assert Ticket.objects.get(pk=ticket.id).status == Status.PENDING_DISPATCH
    # The agent then transfers through ticketing, with the same target.
    ticketing.ticket_transfer(ticket_id=ticket.id, actor=org.agent, target=decision.external_target)
    assert Ticket.objects.get(pk=ticket.id).status == Status.TRANSFERRED


def test_a_rule_raises_urgency_but_never_lowers_it(org, recommend):
    Rule.objects.create(name="紧急", keywords="暖气", urgency="urgent")
    raised = make_ticket(org, content="暖气不热")
    kept = make_ticket(org, content="暖气不热", urgency="critical")
    assert services.route_ticket(ticket_id=raised.id, actor=org.dispatcher).urgency == "urgent"
    assert services.route_ticket(ticket_id=kept.id, actor=org.dispatcher).urgency == ""
    assert Ticket.objects.get(pk=raised.id).urgency == "urgent"
    assert Ticket.objects.get(pk=kept.id).urgency == "critical"


# --- hit counts and previews ---------------------------------------------------------------------------------


def test_routing_counts_hits_of_every_rule_that_fired(org, recommend):
    first = heating_rule(org)
    second = Rule.objects.create(name="紧急", order=20, keywords="暖气", urgency="urgent")
    missed = Rule.objects.create(name="路灯", keywords="路灯")
    for _ in range(2):
        services.route_ticket(ticket_id=make_ticket(org, content="暖气不热").id, actor=org.dispatcher)
    first.refresh_from_db()
    second.refresh_from_db()
    missed.refresh_from_db()
    assert (first.hit_count, second.hit_count, missed.hit_count) == (2, 2, 0)
    assert first.last_hit_at is not None and missed.last_hit_at is None


def test_a_preview_writes_nothing(org, recommend, django_assert_max_num_queries):
    rule = heating_rule(org)
    ticket = make_ticket(org, content="暖气不热")
    before = (Ticket.objects.get(pk=ticket.id).updated_at, ticket.events.count())
    inp = selectors.routing_input(ticket)
    with django_assert_max_num_queries(8) as queries:
        result = selectors.route(inp)
    assert not [q for q in queries.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert result.outcome == Outcome.AUTO_DISPATCHED and result.lead_department_id == org.other_bureau.id
    rule.refresh_from_db()
    assert rule.hit_count == 0 and rule.last_hit_at is None
    assert RoutingDecision.objects.count() == 0
    assert (Ticket.objects.get(pk=ticket.id).updated_at, ticket.events.count()) == before


def test_suggestions_push_sends_to_the_agent_during_the_call(org, recommend, sent):
    Rule.objects.create(name="燃气", keywords="燃气泄漏", emergency_target="119", script="请立即转接 119。")
    recommend((org.bureau.id, 0.4))
    earlier = make_ticket(org, caller_phone="13900001111")
    inp = RoutingInput(title="", content="家里燃气泄漏了", caller_phone="13900001111")
    with sent() as messages:
        result = services.suggestions_push(inp=inp, agent=org.agent, call_id="c-1")

    assert result.outcome == Outcome.EMERGENCY
    ((event, audience),) = routing_events(messages, rt.RoutingSuggestion)
    payload = valid(event)
    assert audience == [groups.agent(org.agent.id)]
    assert (payload["call_id"], payload["ticket_id"], payload["outcome"]) == ("c-1", None, "emergency")
    assert payload["script"] == "请立即转接 119。" and payload["rules"] == ["燃气"]
    assert [d["id"] for d in payload["departments"]] == [org.bureau.id]
    assert [d["id"] for d in payload["duplicates"]] == [earlier.id]
    assert "13900001111" not in json.dumps(payload)
    assert Rule.objects.get().hit_count == 0 and RoutingDecision.objects.count() == 0


# --- who may route, and which tickets ------------------------------------------------------------------------


def test_only_dispatch_roles_route_and_only_pending_tickets(org, recommend):
    ticket = make_ticket(org)
    with pytest.raises(NotPermitted):
        services.route_ticket(ticket_id=ticket.id, actor=org.agent)
    with pytest.raises(NotPermitted):
        services.route_ticket(ticket_id=ticket.id, actor=org.handler)
    with pytest.raises(NotFound):
        services.route_ticket(ticket_id=ticket.id + 1000, actor=org.dispatcher)
    dispatched = make_ticket(org, Status.DISPATCHED)
    with pytest.raises(InvalidTransition):
        services.route_ticket(ticket_id=dispatched.id, actor=org.dispatcher)
    assert RoutingDecision.objects.count() == 0


def test_the_system_actor_must_be_a_dispatcher(org, recommend, settings):
    settings.ROUTING_ACTOR = ""
    with pytest.raises(Exception, match="ROUTING_ACTOR"):
        services.system_actor()
    settings.ROUTING_ACTOR = "agent"
    with pytest.raises(Exception, match="ROUTING_ACTOR"):
        services.system_actor()
    settings.ROUTING_ACTOR = "dispatcher"
    assert services.system_actor() == org.dispatcher


# --- following ticket events ---------------------------------------------------------------------------------


def test_route_pending_routes_tickets_that_entered_the_queue_once(org, recommend):
    heating_rule(org)
    pending = make_ticket(org, content="暖气不热")
    draft = make_ticket(org, Status.DRAFT, content="暖气不热")
    make_ticket(org, Status.CANCELLED, content="暖气不热")

    report = services.route_pending()
    assert (report.routed, report.outcomes) == (1, {"auto_dispatched": 1})
    assert Ticket.objects.get(pk=pending.id).status == Status.DISPATCHED
    assert services.route_pending().routed == 0

    ticketing.ticket_submit(ticket_id=draft.id, actor=org.agent)
    ticketing.ticket_return(ticket_id=pending.id, actor=org.other_handler, reason="不属于本单位职责")
    assert services.route_pending().routed == 1  # only the submitted draft: the return is still reviewed
    ticketing.ticket_approve_return(ticket_id=pending.id, actor=org.dispatcher)
    report = services.route_pending()
    assert report.routed == 1
    # The returned ticket is not sent back to the department that returned it.
    decision = RoutingDecision.objects.filter(ticket_id=pending.id).first()
    assert decision is not None and decision.outcome == Outcome.MANUAL
    assert Ticket.objects.get(pk=draft.id).status == Status.DISPATCHED
    assert RoutingCursor.objects.get().last_event_id > 0


def test_route_pending_command_reports(org, recommend, capsys):
    make_ticket(org)
    call_command("route_pending")
    assert "已处理 1 张" in capsys.readouterr().out


def test_a_routing_suggestion_from_an_older_sender_is_still_valid():
    older = {"type": "routing.suggestion", "call_id": None, "ticket_id": 3, "departments": []}
    parsed = rt.parse(older)
    assert isinstance(parsed, rt.RoutingSuggestion)
    assert (parsed.outcome, parsed.rules, parsed.duplicates) == ("", [], [])


def test_seed_routing_writes_the_demo_rules_once_and_they_route(db, settings, capsys):
    settings.ROUTING_RECOMMENDER = FAKE
    call_command("seed_demo", "--tickets", "0")
    names = set(Rule.objects.values_list("name", flat=True))
    assert {"火情与燃气泄漏：立即转 119", "劳动仲裁：依法分流", "供暖：派市供暖集团"} <= names
    call_command("seed_routing")
    assert Rule.objects.count() == len(names)
    assert "新建 0 条" in capsys.readouterr().out

    def preview(text: str):  # type: ignore[no-untyped-def]
        return selectors.route(RoutingInput(title="", content=text, channel="phone"))

    assert preview("楼道里着火了").external_target == "119"
    legal = preview("公司欠薪半年，我要申请劳动仲裁")
    assert legal.outcome == Outcome.LEGAL_ROUTE and "仲裁委员会" in legal.script
    heating = preview("家里暖气不热")
    assert heating.outcome == Outcome.AUTO_DISPATCHED
    assert heating.lead_department_id == Department.objects.get(code="SY-GN").id
