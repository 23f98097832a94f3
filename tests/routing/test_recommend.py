"""Search-based recommendations: similar handled tickets vote, returns count against, responsibility lists
and jurisdiction, the classifier, and the reasons people read."""

import pytest

from knowledge_base import search
from routing import classifier
from routing.recommend import clear_caches, recommend
from routing.types import RoutingInput
from ticketing import services
from ticketing.models import DepartmentKind, ResponsibilityItem
from ticketing.workflow import Status

from ..factories import DepartmentFactory, RegionFactory
from ..helpers import make_ticket

NOISE = {"title": "工地夜间施工噪音扰民", "content": "幸福小区东门工地每天夜里施工，噪音很大，影响休息。"}
NOISE_QUERY = RoutingInput(title="夜间施工噪音", content="我家旁边工地夜里施工噪音扰民，请处理。")


@pytest.fixture(autouse=True)
def fresh(settings):  # type: ignore[no-untyped-def]
    settings.SEARCH_BACKEND = "database"
    clear_caches()
    yield
    clear_caches()


def closed(org, department, **fields):  # type: ignore[no-untyped-def]
    return make_ticket(org, Status.CLOSED, department=department, **fields)


def returned_then_closed(org, *, returner, handler_department, **fields):  # type: ignore[no-untyped-def]
    """Dispatched to `returner`, which sends it back; then handled to the end by `handler_department`."""
    ticket = make_ticket(org, Status.DISPATCHED, department=returner, **fields)
    services.ticket_return(ticket_id=ticket.id, actor=org.handler_for(returner), reason="不属于本单位职责。")
    services.ticket_approve_return(ticket_id=ticket.id, actor=org.dispatcher)
    services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=handler_department.id)
    handler = org.handler_for(handler_department)
    services.ticket_accept(ticket_id=ticket.id, actor=handler)
    services.ticket_reply(ticket_id=ticket.id, actor=handler, reply_text="已处理。", result="solved")
    services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)
    return services.ticket_close(ticket_id=ticket.id, actor=org.agent, satisfaction="satisfied")


def test_similar_handled_tickets_vote_for_their_final_department(org):  # type: ignore[no-untyped-def]
    tickets = [closed(org, org.other_bureau, **NOISE) for _ in range(3)]
    closed(org, org.bureau, title="社保卡补办", content="社会保障卡丢失了，如何补办？")
    make_ticket(org, Status.PENDING_DISPATCH, **NOISE)  # not handled yet: no vote
    search.sync()

    recommendations = recommend(NOISE_QUERY)

    top = recommendations[0]
    assert top.department_id == org.other_bureau.id
    assert 0 < top.confidence <= 1
    similar = next(r for r in top.reasons if r.kind == "similar_tickets")
    assert set(similar.ref.split(",")) == {t.number for t in tickets}
    assert "相似的已办工单" in similar.text and tickets[0].number in top.reason_text


def test_the_ticket_itself_is_never_evidence(org):  # type: ignore[no-untyped-def]
    own = closed(org, org.other_bureau, **NOISE)
    search.sync()

    found = recommend(RoutingInput(ticket_id=own.id, **NOISE))
    cited = {n for rec in found for r in rec.reasons if r.kind == "similar_tickets" for n in r.ref.split(",")}
    assert own.number not in cited
    assert recommend(RoutingInput(**NOISE), exclude_ticket_id=own.id) == found


def test_a_department_that_returned_similar_tickets_ranks_lower(org, settings):  # type: ignore[no-untyped-def]
    for _ in range(2):
        closed(org, org.other_bureau, **NOISE)
    for _ in range(2):
        returned_then_closed(org, returner=org.other_bureau, handler_department=org.bureau, **NOISE)
    search.sync()

    settings.ROUTING_RETURN_PENALTY = 0.0
    without = {r.department_id: r for r in recommend(NOISE_QUERY)}
    settings.ROUTING_RETURN_PENALTY = 0.5
    ranked = recommend(NOISE_QUERY)
    scored = {r.department_id: r for r in ranked}

    assert ranked[0].department_id == org.bureau.id
    assert scored[org.other_bureau.id].confidence < without[org.other_bureau.id].confidence
    assert scored[org.bureau.id].confidence == without[org.bureau.id].confidence
    returns = next(r for r in scored[org.other_bureau.id].reasons if r.kind == "returns")
    assert "退回" in returns.text and returns.weight < 0


def test_responsibility_list_matches_without_any_history(org):  # type: ignore[no-untyped-def]
    item = ResponsibilityItem.objects.create(department=org.bureau_unit, title="物业服务收费和服务质量投诉的核查督办")
    ResponsibilityItem.objects.create(department=org.other_bureau, title="工业企业废气排放的监督管理")

    recommendations = recommend(RoutingInput(title="物业收费太高", content="小区物业服务收费高，服务质量差。"))

    top = recommendations[0]
    assert top.department_id == org.bureau_unit.id
    reason = top.reasons[0]
    assert reason.kind == "responsibility" and reason.ref == f"responsibility:{item.id}"
    assert "物业服务收费" in reason.text
    # One source of three answered: the confidence stays below what agreement would give.
    assert top.confidence < 0.5


def test_street_level_matter_goes_to_the_street_office_of_the_address(org):  # type: ignore[no-untyped-def]
    other_street = RegionFactory(code="210102002", name="南湖街道", parent=org.district)
    other_office = DepartmentFactory(
        code="G1-S2", name="南湖街道办事处", kind=DepartmentKind.STREET_OFFICE, parent=org.district_government
    )
    other_office.jurisdiction.set([other_street])
    ResponsibilityItem.objects.create(department=other_office, title="街道辖区环境卫生与小区楼道清理")
    text = {"title": "楼道杂物堆放", "content": "小区楼道堆满杂物，环境卫生很差，请清理。"}

    unplaced = recommend(RoutingInput(**text))
    placed = recommend(RoutingInput(region_id=org.street.id, **text))

    assert unplaced[0].department_id == other_office.id
    assert placed[0].department_id == org.street_office.id
    assert placed[0].confidence == unplaced[0].confidence
    jurisdiction = next(r for r in placed[0].reasons if r.kind == "jurisdiction")
    assert "太原街街道" in jurisdiction.text
    assert other_office.id not in {r.department_id for r in placed}


def test_a_city_bureau_keeps_its_matter_whatever_the_region(org):  # type: ignore[no-untyped-def]
    ResponsibilityItem.objects.create(department=org.other_bureau, title="工业企业废气排放的监督管理")
    text = {"title": "工厂废气", "content": "附近工业企业夜间排放废气，气味刺鼻。"}
    assert recommend(RoutingInput(region_id=org.street.id, **text))[0].department_id == org.other_bureau.id


def test_classifier_adds_its_probability_and_terms(org):  # type: ignore[no-untyped-def]
    model = classifier.Model.fit(
        ["工地噪音扰民\n夜间施工噪音", "施工噪音\n工地噪音很大", "社保卡补办\n社会保障卡丢失", "养老保险\n社保缴费"]
        * 3,
        [org.other_bureau.code, org.other_bureau.code, org.bureau.code, org.bureau.code] * 3,
    )
    with classifier.override(model):
        top = recommend(NOISE_QUERY)[0]
    assert top.department_id == org.other_bureau.id
    reason = next(r for r in top.reasons if r.kind == "classifier")
    assert "文本分类模型" in reason.text and "噪音" in reason.ref


def test_nothing_to_go_on_gives_no_recommendation(org):  # type: ignore[no-untyped-def]
    assert recommend(RoutingInput(title="", content="")) == []
    assert recommend(RoutingInput(title="你好", content="请问")) == []


def test_inactive_departments_are_never_recommended(org):  # type: ignore[no-untyped-def]
    closed(org, org.other_bureau, **NOISE)
    search.sync()
    org.other_bureau.is_active = False
    org.other_bureau.save(update_fields=["is_active"])
    clear_caches()
    assert org.other_bureau.id not in {r.department_id for r in recommend(NOISE_QUERY)}


def test_reads_are_bulk(org, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    for _ in range(5):
        closed(org, org.other_bureau, **NOISE)
    search.sync()
    recommend(NOISE_QUERY)  # loads the cached organisation
    # The search (its candidate, ranking and text reads) plus one read of tickets and one of returns. On
    # PostgreSQL the search also turns sequential scans off and back on around its candidate statement, inside
    # a savepoint: three statements more.
    from django.db import connection

    with django_assert_max_num_queries(6 if connection.vendor == "sqlite" else 9):
        recommend(NOISE_QUERY)
