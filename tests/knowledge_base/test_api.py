"""The knowledge-base API: the review flow driven through it alone, who sees what, search, and the public
read-only endpoints; errors in the house shape."""

from datetime import date

import pytest
import yaml

from knowledge_base import search, services
from knowledge_base.models import Article, ArticleStatus
from knowledge_base.services import ArticleContent
from tests.helpers import make_ticket
from ticketing.workflow import Status

pytestmark = pytest.mark.django_db

ARTICLES = "/api/v1/knowledge/articles/"
PUBLIC = "/api/v1/public/knowledge/articles/"

GUIDE = {
    "kind": "guide",
    "title": "社会保障卡补办",
    "conditions": "本人社保卡遗失或损坏。",
    "materials": "居民身份证原件。",
    "steps": "1. 挂失；2. 到经办网点申请补办；3. 领取新卡。",
    "fees": "工本费 20 元",
    "audience": "public",
    "tags": ["社保", "补办"],
}


def published(org, content: ArticleContent, kind: str = "faq") -> Article:  # type: ignore[no-untyped-def]
    article = services.article_create(actor=org.handler, kind=kind, owner_department_id=org.bureau.id, content=content)
    services.article_submit(article_id=article.id, actor=org.handler)
    return services.article_approve(article_id=article.id, actor=org.lead)


def faq(title: str, answer: str, audience: str = "public") -> ArticleContent:
    return ArticleContent(title=title, question=title, answer=answer, audience=audience)


# --- the review flow -----------------------------------------------------------------------------------


def test_a_guide_is_written_revised_reviewed_and_published_through_the_api(org, api_as):
    client = api_as(org.handler)
    created = client.post(
        ARTICLES, {**GUIDE, "owner_department": org.bureau.id, "category": org.category.id}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    article_id = body["id"]
    assert (body["status"], body["kind"], body["audience"]) == ("draft", "guide", "public")
    assert body["open_version"]["number"] == 1 and body["open_version"]["status"] == "draft"

    # Only the fields sent change; the draft is edited in place.
    edited = client.post(
        f"{ARTICLES}{article_id}/revise/", {"fees": "免费", "change_note": "取消工本费"}, format="json"
    )
    assert edited.status_code == 200
    assert edited.json()["content"]["fees"] == "免费" and edited.json()["content"]["materials"] == "居民身份证原件。"

    submitted = client.post(f"{ARTICLES}{article_id}/submit/", {}, format="json")
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
    locked = client.post(f"{ARTICLES}{article_id}/revise/", {"fees": "5 元"}, format="json")
    assert locked.status_code == 409 and locked.json()["code"] == "version_in_review"
    assert client.post(f"{ARTICLES}{article_id}/approve/", {}, format="json").status_code == 403

    approved = api_as(org.lead).post(f"{ARTICLES}{article_id}/approve/", {"note": "内容准确"}, format="json")
    assert approved.status_code == 200
    body = approved.json()
    assert (body["status"], body["published_version"], body["fees"]) == ("published", 1, "免费")
    assert body["category"] == {"id": org.category.id, "name": "物业管理", "parent": "城乡建设"}
    assert sorted(body["tags"]) == ["社保", "补办"] and body["open_version"] is None

    client = api_as(org.handler)
    revised = client.post(f"{ARTICLES}{article_id}/revise/", {"time_limit": "即时办结"}, format="json")
    assert revised.status_code == 201 and revised.json()["number"] == 2
    client.post(f"{ARTICLES}{article_id}/submit/", {}, format="json")
    lead = api_as(org.lead)
    assert lead.post(f"{ARTICLES}{article_id}/reject/", {}, format="json").json()["errors"] == {
        "note": ["该字段是必填项。"]
    }
    rejected = lead.post(f"{ARTICLES}{article_id}/reject/", {"note": "请附依据"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"

    history = lead.get(f"{ARTICLES}{article_id}/versions/").json()
    assert [(v["number"], v["status"]) for v in history] == [(2, "rejected"), (1, "approved")]
    assert history[0]["changed_fields"] == ["time_limit"]
    assert history[0]["review_note"] == "请附依据" and history[1]["reviewer"]["name"] == str(org.lead)

    withdrawn = lead.post(f"{ARTICLES}{article_id}/withdraw/", {"reason": "政策调整"}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = lead.post(f"{ARTICLES}{article_id}/withdraw/", {"reason": "政策调整"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


def test_errors_have_the_house_shape(org, api_as):
    client = api_as(org.handler)
    unknown = client.post(ARTICLES, {**GUIDE, "owner_department": org.bureau.id, "colour": "red"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json() == {
        "code": "invalid",
        "detail": "请求数据有误，请检查各字段。",
        "errors": {"colour": ["未知字段。"]},
    }

    missing = client.post(ARTICLES, {**GUIDE, "materials": "", "owner_department": org.bureau.id}, format="json")
    assert missing.status_code == 400
    assert missing.json() == {"code": "invalid", "detail": "文章内容有误。", "errors": {"materials": ["此项必填。"]}}

    other = api_as(org.other_handler).post(ARTICLES, {**GUIDE, "owner_department": org.bureau.id}, format="json")
    assert other.status_code == 403 and other.json()["code"] == "not_permitted"

    bad_query = api_as(org.agent).get(ARTICLES, {"sort": "title"})
    assert bad_query.status_code == 400 and bad_query.json()["errors"] == {"sort": ["未知字段。"]}

    assert api_as(org.agent).get(f"{ARTICLES}999999/").json()["code"] == "not_found"


def test_writes_need_a_signed_in_user(org, api):
    response = api.post(ARTICLES, {**GUIDE, "owner_department": org.bureau.id}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


# --- who sees what -------------------------------------------------------------------------------------


def test_drafts_stay_with_their_department_and_internal_answers_with_staff(org, api_as, api):
    draft = services.article_create(
        actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=faq("草稿问答", "答复")
    )
    internal = published(org, faq("内部口径", "口径内容", audience="internal"))

    assert api_as(org.other_handler).get(f"{ARTICLES}{draft.id}/").status_code == 404
    assert api_as(org.agent).get(f"{ARTICLES}{draft.id}/").status_code == 404
    assert api_as(org.handler).get(f"{ARTICLES}{draft.id}/").status_code == 200
    assert api_as(org.agent).get(f"{ARTICLES}{internal.id}/").status_code == 200
    assert api.get(f"{PUBLIC}{internal.id}/").status_code == 404

    agent_ids = [row["id"] for row in api_as(org.agent).get(ARTICLES).json()["results"]]
    assert agent_ids == [internal.id]
    handler_ids = {row["id"] for row in api_as(org.handler).get(ARTICLES, {"status": "draft"}).json()["results"]}
    assert handler_ids == {draft.id}


def test_version_history_of_others_shows_published_versions_only(org, api_as):
    article = published(org, faq("问答", "第一版"))
    services.article_revise(article_id=article.id, actor=org.handler, content=faq("问答", "第二版草稿"))

    assert [v["number"] for v in api_as(org.agent).get(f"{ARTICLES}{article.id}/versions/").json()] == [1]
    assert [v["number"] for v in api_as(org.handler).get(f"{ARTICLES}{article.id}/versions/").json()] == [2, 1]
    assert api_as(org.agent).get(f"{ARTICLES}{article.id}/").json()["open_version"] is None


def test_list_filters_and_a_fixed_number_of_queries(org, api_as, django_assert_num_queries):
    for number in range(3):
        published(org, faq(f"问答{number}", "答复"))
    published(
        org,
        ArticleContent(
            title="社保卡补办",
            conditions="遗失",
            materials="身份证",
            steps="申请",
            tags=("社保",),
            category_id=org.category.id,
        ),
        kind="guide",
    )
    client = api_as(org.agent)
    with django_assert_num_queries(3):
        rows = client.get(ARTICLES).json()
    assert rows["count"] == 4

    assert [r["title"] for r in client.get(ARTICLES, {"kind": "guide"}).json()["results"]] == ["社保卡补办"]
    assert client.get(ARTICLES, {"tag": "社保"}).json()["count"] == 1
    assert client.get(ARTICLES, {"category": org.category.parent_id}).json()["count"] == 1
    assert client.get(ARTICLES, {"department": org.other_bureau.id}).json()["count"] == 0
    assert client.get(ARTICLES, {"page_size": 2}).json()["next"] is not None


def test_review_queue_is_the_leads(org, api_as):
    article = services.article_create(
        actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=faq("待审问答", "答复")
    )
    services.article_submit(article_id=article.id, actor=org.handler)
    assert [r["id"] for r in api_as(org.lead).get(f"{ARTICLES}review-queue/").json()["results"]] == [article.id]
    assert api_as(org.handler).get(f"{ARTICLES}review-queue/").json()["results"] == []


# --- use ------------------------------------------------------------------------------------------------


def test_the_agent_records_that_an_article_answered_a_ticket(org, api_as):
    article = published(org, faq("问答", "答复", audience="internal"))
    ticket = make_ticket(org, Status.CLOSED)
    client = api_as(org.agent)

    first = client.post(f"{ARTICLES}{article.id}/uses/", {"ticket": ticket.id}, format="json")
    assert first.status_code == 200
    assert (first.json()["ticket"], first.json()["use_count"], first.json()["version"]) == (ticket.id, 1, 1)
    again = client.post(f"{ARTICLES}{article.id}/uses/", {"ticket": ticket.id}, format="json")
    assert again.json()["id"] == first.json()["id"] and again.json()["use_count"] == 1
    on_a_call = client.post(f"{ARTICLES}{article.id}/uses/", {}, format="json")
    assert on_a_call.json()["ticket"] is None and on_a_call.json()["use_count"] == 2

    hidden = api_as(org.other_handler).post(f"{ARTICLES}{article.id}/uses/", {"ticket": ticket.id}, format="json")
    assert hidden.status_code == 404
    assert client.post(f"{ARTICLES}{article.id}/uses/", {"tickets": [1]}, format="json").status_code == 400


# --- search and the public endpoints --------------------------------------------------------------------


def test_search_ranks_and_highlights_and_keeps_to_what_the_user_may_see(org, api_as, api):
    guide = published(
        org,
        ArticleContent(
            title="社会保障卡挂失与补办",
            conditions="社保卡遗失、损坏的参保人员。",
            materials="身份证",
            steps="挂失后到网点补办。",
            audience="public",
        ),
        kind="guide",
    )
    published(org, faq("供暖报修", "暖气不热请联系供热企业。"))
    internal = published(org, faq("社保卡补办内部口径", "社保卡补办的答复要点。", audience="internal"))
    search.sync()

    staff = api_as(org.agent).get(ARTICLES, {"q": "社保卡补办"}).json()
    assert {row["id"] for row in staff["results"]} == {guide.id, internal.id}
    assert all(row["score"] is not None and "<mark>" in row["snippet"] for row in staff["results"])

    public = api.get(PUBLIC, {"q": "社保卡补办"}).json()
    assert [row["id"] for row in public["results"]] == [guide.id]
    assert "<mark>" in public["results"][0]["snippet"]
    assert api.get(PUBLIC, {"q": "社保卡补办", "kind": "faq"}).json()["count"] == 0


def test_public_endpoints_read_published_public_articles_in_force_only(org, api):
    live = published(org, faq("公开问答", "答复"))
    lapsed = published(
        org,
        ArticleContent(title="过期通知", answer="内容", audience="public", valid_until=date(2020, 1, 1)),
        kind="notice",
    )
    draft = services.article_create(
        actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=faq("草稿", "答复")
    )
    assert [row["id"] for row in api.get(PUBLIC).json()["results"]] == [live.id]
    body = api.get(f"{PUBLIC}{live.id}/").json()
    assert body["answer"] == "答复" and "source" not in body and "use_count" not in body
    assert api.get(f"{PUBLIC}{lapsed.id}/").status_code == 404
    assert api.get(f"{PUBLIC}{draft.id}/").status_code == 404
    refused = api.post(PUBLIC, {"title": "x"}, format="json")
    assert refused.status_code == 405 and refused.json()["code"] == "method_not_allowed"
    assert Article.objects.filter(status=ArticleStatus.PUBLISHED).count() == 2


def test_the_schema_documents_the_knowledge_endpoints(org, api_as):
    schema = yaml.safe_load(api_as(org.agent).get("/api/v1/schema/").content)
    paths = schema["paths"]
    for path in (
        "/api/v1/knowledge/articles/",
        "/api/v1/knowledge/articles/{id}/revise/",
        "/api/v1/knowledge/articles/{id}/uses/",
        "/api/v1/knowledge/articles/{id}/versions/",
        "/api/v1/knowledge/articles/review-queue/",
        "/api/v1/public/knowledge/articles/",
        "/api/v1/public/knowledge/articles/{id}/",
    ):
        assert path in paths, path
    assert "page" in {p["name"] for p in paths["/api/v1/knowledge/articles/"]["get"]["parameters"]}
    assert "q" in {p["name"] for p in paths["/api/v1/public/knowledge/articles/"]["get"]["parameters"]}


def test_answers_are_suggested_for_a_ticket_and_pushed_to_the_agents_screen(
    org, api_as, monkeypatch, django_capture_on_commit_callbacks
):
    from knowledge_base import search
    from knowledge_base import services as kb
    from knowledge_base.services import ArticleContent
    from tests.helpers import make_ticket

    sent: list[tuple[object, list[str]]] = []
    monkeypatch.setattr("hotline.realtime.broadcast.send_now", lambda event, groups: sent.append((event, list(groups))))
    with django_capture_on_commit_callbacks(execute=True):
        article = kb.article_create(
            actor=org.handler,
            kind="faq",
            owner_department_id=org.bureau.id,
            content=ArticleContent(
                title="居住证怎么办理", question="居住证在哪办？", answer="持身份证和居住证明到派出所申领。"
            ),
        )
        kb.article_submit(article_id=article.id, actor=org.handler)
        kb.article_approve(article_id=article.id, actor=org.lead)
    search.sync()
    ticket = make_ticket(org, title="咨询居住证办理", content="刚来沈阳工作，想问居住证怎么办理")
    client = api_as(org.agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/knowledge/suggestions/", {"ticket": ticket.id}, format="json")
    assert response.status_code == 200, response.data
    assert response.data[0]["article_id"] == article.id and "<mark>" in response.data[0]["snippet"]
    ((event, groups),) = [item for item in sent if getattr(item[0], "type", "") == "knowledge.suggestion"]
    assert groups == [f"agent.{org.agent.id}"] and event.ticket_id == ticket.id  # type: ignore[attr-defined]

    by_text = client.post("/api/v1/knowledge/suggestions/", {"text": "居住证"}, format="json")
    assert by_text.status_code == 200 and by_text.data[0]["article_id"] == article.id
    both = client.post("/api/v1/knowledge/suggestions/", {"text": "x", "ticket": ticket.id}, format="json")
    assert both.status_code == 400
    hidden = api_as(org.other_handler).post("/api/v1/knowledge/suggestions/", {"ticket": ticket.id}, format="json")
    assert hidden.status_code == 404
