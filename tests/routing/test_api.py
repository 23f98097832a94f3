"""/api/v1/routing/: dry run, routing a ticket, its decisions, proactive alerts; roles and the error shape."""

import pytest

from routing.models import ProactiveAlert, RoutingDecision, Rule
from routing.types import Reason, Recommendation, RoutingInput
from tests.helpers import make_ticket
from tests.routing.test_services import ANSWER, FAKE
from ticketing.workflow import Status


@pytest.fixture(autouse=True)
def fake(settings):  # type: ignore[no-untyped-def]
    settings.ROUTING_RECOMMENDER = FAKE
    ANSWER.clear()
    yield
    ANSWER.clear()


def test_dry_run_shows_rules_and_recommendations_and_writes_nothing(org, api_as):
    rule = Rule.objects.create(name="供暖", keywords="暖气", lead_department=org.other_bureau, urgency="urgent")
    Rule.objects.create(name="夜间", keywords="暖气", time_from="22:00", time_to="06:00")
    ANSWER[:] = [Recommendation(org.bureau.id, 0.7, (Reason(kind="responsibility", text="权责清单：供热监管"),))]
    response = api_as(org.dispatcher).post(
        "/api/v1/routing/dry-run/",
        {
            "title": "暖气不热",
            "content": "家里暖气冰凉",
            "appeal_type": "complaint",
            "received_at": "2026-03-04T10:00:00+08:00",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == "auto_dispatched" and body["lead_department"] == org.other_bureau.id
    assert body["lead_department_name"] == org.other_bureau.name and body["urgency"] == "urgent"
    assert [m["name"] for m in body["matches"]] == ["供暖"]
    assert body["matches"][0]["explanations"] == ["含关键词：暖气"]
    assert body["recommendations"] == [
        {
            "department_id": org.bureau.id,
            "department_name": org.bureau.name,
            "confidence": 0.7,
            "assisting_department_ids": [],
            "reasons": [{"kind": "responsibility", "text": "权责清单：供热监管", "ref": "", "weight": 0.0}],
        }
    ]
    rule.refresh_from_db()
    assert rule.hit_count == 0 and RoutingDecision.objects.count() == 0

    at_night = api_as(org.dispatcher).post(
        "/api/v1/routing/dry-run/", {"content": "暖气冰凉", "received_at": "2026-03-04T23:00:00+08:00"}, format="json"
    )
    assert [m["name"] for m in at_night.json()["matches"]] == ["供暖", "夜间"]


def test_dry_run_refuses_unknown_fields_empty_text_and_agents(org, api_as):
    client = api_as(org.dispatcher)
    unknown = client.post("/api/v1/routing/dry-run/", {"content": "暖气", "colour": "red"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid" and "colour" in unknown.json()["errors"]
    empty = client.post("/api/v1/routing/dry-run/", {"content": " "}, format="json")
    assert empty.status_code == 400 and "content" in empty.json()["errors"]
    refused = api_as(org.agent).post("/api/v1/routing/dry-run/", {"content": "暖气"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "not_permitted"


def test_route_a_ticket_then_list_its_decisions(org, api_as):
    Rule.objects.create(name="供暖", keywords="暖气", lead_department=org.other_bureau)
    ticket = make_ticket(org, content="暖气不热")
    client = api_as(org.dispatcher)
    response = client.post(f"/api/v1/routing/tickets/{ticket.id}/route/", {}, format="json")
    assert response.status_code == 201, response.json()
    decision = response.json()
    assert decision["outcome"] == "auto_dispatched" and decision["lead_department"] == org.other_bureau.id
    assert decision["rule_name"] == "供暖" and decision["ticket"] == ticket.id

    again = client.post(f"/api/v1/routing/tickets/{ticket.id}/route/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "not_pending_dispatch"

    listed = api_as(org.agent).get(f"/api/v1/routing/tickets/{ticket.id}/decisions/")
    assert listed.status_code == 200 and [d["id"] for d in listed.json()] == [decision["id"]]
    assert api_as(org.handler).get(f"/api/v1/routing/tickets/{ticket.id}/decisions/").status_code == 403


def test_route_refuses_agents_and_unknown_tickets(org, api_as):
    ticket = make_ticket(org)
    assert api_as(org.agent).post(f"/api/v1/routing/tickets/{ticket.id}/route/").status_code == 403
    missing = api_as(org.dispatcher).post(f"/api/v1/routing/tickets/{ticket.id + 99}/route/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    draft = make_ticket(org, Status.DRAFT, agent=org.other_agent)
    assert api_as(org.dispatcher).post(f"/api/v1/routing/tickets/{draft.id}/route/").status_code == 404


def test_alerts_list_and_acknowledge(org, api_as, django_assert_max_num_queries):
    from routing import services

    tickets = [
        make_ticket(org, region_id=org.street.id, category_id=org.category.id, title=f"第{n}件") for n in range(3)
    ]
    alert = services.clusters_check(ticket=tickets[-1])
    assert alert is not None
    client = api_as(org.supervisor)
    with django_assert_max_num_queries(4):
        listed = client.get("/api/v1/routing/alerts/?open=true")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert (row["id"], row["count"], row["region_name"], row["category_name"]) == (
        alert.id,
        3,
        "太原街街道",
        "城乡建设/物业管理",
    )

    done = client.post(f"/api/v1/routing/alerts/{alert.id}/acknowledge/", {"note": "已安排巡查"}, format="json")
    assert done.status_code == 200 and done.json()["acknowledged_by"] == org.supervisor.id
    assert done.json()["note"] == "已安排巡查"
    assert client.get("/api/v1/routing/alerts/?open=true").json()["results"] == []
    twice = client.post(f"/api/v1/routing/alerts/{alert.id}/acknowledge/", {}, format="json")
    assert twice.status_code == 409 and twice.json()["code"] == "already_acknowledged"
    assert api_as(org.agent).get("/api/v1/routing/alerts/").status_code == 403
    assert api_as(org.handler).post(f"/api/v1/routing/alerts/{alert.id}/acknowledge/").status_code == 403
    assert ProactiveAlert.objects.get().acknowledged_at is not None


def test_routing_needs_sign_in(api):
    assert api.post("/api/v1/routing/dry-run/", {"content": "x"}, format="json").status_code in (401, 403)
    assert RoutingInput(title="a", content="b").text == "a\nb"


# --- admin ---------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_for(client, org):  # type: ignore[no-untyped-def]
    org.administrator.is_staff = True
    org.administrator.is_superuser = True
    org.administrator.save()
    client.force_login(org.administrator)
    return client


def test_admin_refuses_a_bad_pattern_and_a_rule_without_conditions(org, admin_client_for):
    form = {
        "name": "燃气",
        "order": 5,
        "enabled": "on",
        "keyword_mode": "any",
        "patterns": "燃气(泄漏",
        "emergency_target": "119",
    }
    refused = admin_client_for.post("/admin/routing/rule/add/", form)
    assert refused.status_code == 200 and "正则表达式「燃气(泄漏」有误" in refused.content.decode()
    empty = admin_client_for.post("/admin/routing/rule/add/", {**form, "patterns": ""})
    assert "至少设置一个条件" in empty.content.decode()
    saved = admin_client_for.post(
        "/admin/routing/rule/add/", {**form, "patterns": "燃气.{0,2}泄漏", "weekdays": [1, 7]}
    )
    assert saved.status_code == 302
    rule = Rule.objects.get()
    assert (rule.patterns, rule.weekdays, rule.hit_count) == ("燃气.{0,2}泄漏", [1, 7], 0)


def test_admin_dry_run_page_shows_rules_and_reasons(org, admin_client_for):
    Rule.objects.create(name="供暖", keywords="暖气", lead_department=org.other_bureau)
    assert admin_client_for.get("/admin/routing/rule/dry-run/").status_code == 200
    page = admin_client_for.post("/admin/routing/rule/dry-run/", {"content": "家里暖气不热"}).content.decode()
    assert "供暖" in page and "含关键词：暖气" in page and org.other_bureau.name in page
    assert Rule.objects.get().hit_count == 0


def test_admin_enable_and_disable_actions(org, admin_client_for):
    rule = Rule.objects.create(name="供暖", keywords="暖气", lead_department=org.other_bureau)
    admin_client_for.post("/admin/routing/rule/", {"action": "disable", "_selected_action": [rule.id]})
    rule.refresh_from_db()
    assert rule.enabled is False
