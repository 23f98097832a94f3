"""The pages: citizens search published public answers; departments write, submit, review and see history,
all through the same services as the API."""

import re

import pytest
from django.urls import reverse

from knowledge_base import search, services
from knowledge_base.models import Article, ArticleStatus, VersionStatus
from knowledge_base.services import ArticleContent

pytestmark = pytest.mark.django_db

GUIDE = ArticleContent(
    title="居住证申领",
    conditions="在沈阳居住半年以上，有合法稳定就业、住所或连续就读。",
    materials="居民身份证；居住证明。",
    steps="1. 居住登记；2. 申领；3. 领证。",
    fees="首次申领免费",
    audience="public",
    tags=("居住证",),
)


def published(org, content: ArticleContent = GUIDE, kind: str = "guide") -> Article:  # type: ignore[no-untyped-def]
    article = services.article_create(actor=org.handler, kind=kind, owner_department_id=org.bureau.id, content=content)
    services.article_submit(article_id=article.id, actor=org.handler)
    return services.article_approve(article_id=article.id, actor=org.lead)


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.content.decode())


# --- citizens --------------------------------------------------------------------------------------------


def test_the_public_page_lists_and_searches_public_answers_only(org, client):
    guide = published(org)
    published(org, ArticleContent(**{**GUIDE.__dict__, "title": "居住证内部口径", "audience": "internal"}))
    search.sync()

    listing = text_of(client.get(reverse("kb:public-search")))
    assert "居住证申领" in listing and "内部口径" not in listing

    found = client.get(reverse("kb:public-search"), {"q": "居住证怎么办理"})
    assert found.status_code == 200
    page = text_of(found)
    assert reverse("kb:public-article", args=[guide.id]) in page and "内部口径" not in page
    assert "<mark>" in page

    article = text_of(client.get(reverse("kb:public-article", args=[guide.id])))
    assert "所需材料" in article and "居民身份证；居住证明。" in article and "首次申领免费" in article


def test_the_public_page_escapes_what_people_type(org, client):
    page = client.get(reverse("kb:public-search"), {"q": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_unpublished_or_internal_articles_have_no_public_page(org, client):
    draft = services.article_create(actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
    internal = published(org, ArticleContent(**{**GUIDE.__dict__, "title": "内部", "audience": "internal"}))
    assert client.get(reverse("kb:public-article", args=[draft.id])).status_code == 404
    assert client.get(reverse("kb:public-article", args=[internal.id])).status_code == 404


# --- departments -----------------------------------------------------------------------------------------


def test_staff_pages_need_a_login_and_the_login_page_works(org, client):
    response = client.get(reverse("kb:staff-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    login = client.get(response["Location"])
    assert login.status_code == 200 and "工作人员登录" in login.content.decode()
    signed_in = client.post(
        reverse("login"), {"username": "handler", "password": "pass-1234", "next": reverse("kb:staff-list")}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("kb:staff-list")
    assert client.get(reverse("kb:staff-list")).status_code == 200


def test_a_department_writes_an_faq_submits_it_and_its_lead_publishes_it(org, client):
    client.force_login(org.handler)
    form = client.get(reverse("kb:article-new", args=["faq"]))
    assert form.status_code == 200
    page = form.content.decode()
    assert 'name="question"' in page and 'name="answer"' in page and 'name="materials"' not in page

    # The service's rule (an FAQ needs its answer) comes back on the form.
    refused = client.post(
        reverse("kb:article-new", args=["faq"]),
        {
            "owner_department": org.bureau.id,
            "title": "物业费怎么交",
            "question": "物业费怎么交？",
            "audience": "public",
        },
    )
    assert refused.status_code == 200 and "此项必填。" in refused.content.decode()
    assert not Article.objects.exists()

    created = client.post(
        reverse("kb:article-new", args=["faq"]),
        {
            "owner_department": org.bureau.id,
            "title": "物业费怎么交",
            "question": "物业费怎么交？",
            "answer": "可到物业服务中心或通过线上渠道缴纳。",
            "audience": "public",
            "category": org.category.id,
            "tags": "物业、缴费",
        },
    )
    article = Article.objects.get()
    assert created.status_code == 302 and created["Location"] == reverse("kb:staff-article", args=[article.id])
    assert sorted(article.versions.get().content["tags"]) == ["物业", "缴费"]

    mine = text_of(client.get(reverse("kb:staff-list")))
    assert "物业费怎么交" in mine and "未发布" in mine

    client.post(reverse("kb:article-submit", args=[article.id]))
    assert article.versions.get().status == VersionStatus.IN_REVIEW

    client.force_login(org.lead)
    queue = text_of(client.get(reverse("kb:review-queue")))
    assert "物业费怎么交" in queue and "<ins>" in queue
    approved = client.post(
        reverse("kb:article-approve", args=[article.id]), {"note": "同意", "next": reverse("kb:review-queue")}
    )
    assert approved["Location"] == reverse("kb:review-queue")
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED and article.answer.startswith("可到物业服务中心")


def test_revising_keeps_the_published_text_live_and_history_shows_the_change(org, client):
    article = published(org)
    client.force_login(org.handler)
    form = client.get(reverse("kb:article-edit", args=[article.id])).content.decode()
    assert "居民身份证；居住证明。" in form and 'name="conditions"' in form

    data = {
        "title": GUIDE.title,
        "conditions": GUIDE.conditions,
        "materials": "居民身份证；居住证明；近期照片。",
        "steps": GUIDE.steps,
        "fees": GUIDE.fees,
        "audience": "public",
        "tags": "居住证",
        "change_note": "补充照片",
    }
    assert client.post(reverse("kb:article-edit", args=[article.id]), data).status_code == 302
    article.refresh_from_db()
    assert article.materials == "居民身份证；居住证明。"  # live until the new version is approved

    page = text_of(client.get(reverse("kb:staff-article", args=[article.id])))
    assert "第 2 版" in page and "<ins>；近期照片</ins>" in page

    client.post(reverse("kb:article-submit", args=[article.id]))
    client.force_login(org.lead)
    rejected = client.post(reverse("kb:article-reject", args=[article.id]), {"note": ""})
    assert rejected.status_code == 302
    assert article.versions.get(number=2).status == VersionStatus.IN_REVIEW  # a rejection needs its reason
    client.post(reverse("kb:article-reject", args=[article.id]), {"note": "照片要求请写明尺寸"})

    history = text_of(client.get(reverse("kb:article-versions", args=[article.id])))
    assert "第 2 版" in history and "已退回" in history and "照片要求请写明尺寸" in history
    assert "第 1 版" in history and "当前发布" in history


def test_pages_refuse_what_the_services_refuse(org, client):
    article = published(org)
    client.force_login(org.other_handler)
    assert client.get(reverse("kb:staff-article", args=[article.id])).status_code == 200  # published: visible
    assert client.get(reverse("kb:article-edit", args=[article.id])).status_code == 403
    assert client.get(reverse("kb:article-new", args=["guide"])).status_code == 200  # for their own department

    client.force_login(org.agent)
    assert client.get(reverse("kb:article-new", args=["guide"])).status_code == 403
    refused = client.post(reverse("kb:article-withdraw", args=[article.id]), {"reason": "过时"}, follow=True)
    assert "只有维护单位负责人或系统管理员可以撤回文章。" in refused.content.decode()
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED

    draft = services.article_create(actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
    assert client.get(reverse("kb:staff-article", args=[draft.id])).status_code == 404
    assert client.get(reverse("kb:article-submit", args=[draft.id])).status_code == 405


def test_the_staff_list_reads_one_page_in_a_fixed_number_of_queries(org, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def write(numbers: range) -> None:
        for number in numbers:
            content = ArticleContent(title=f"问答{number}", question="问", answer="答")
            services.article_create(actor=org.handler, kind="faq", owner_department_id=org.bureau.id, content=content)

    def listing() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("kb:staff-list"))
        return len(queries), text_of(response)

    client.force_login(org.handler)
    write(range(3))
    few, _page = listing()
    write(range(3, 25))
    many, page = listing()
    assert few == many
    assert "第 1 / 2 页，共 25 条" in page and page.count("问答") == 20


def test_the_lead_withdraws_an_answer(org, client):
    article = published(org)
    client.force_login(org.lead)
    client.post(reverse("kb:article-withdraw", args=[article.id]), {"reason": "政策调整"})
    article.refresh_from_db()
    assert article.status == ArticleStatus.WITHDRAWN
    assert client.get(reverse("kb:public-article", args=[article.id])).status_code == 404


# --- the demo --------------------------------------------------------------------------------------------


def test_the_demo_seed_fills_every_page(client):
    from io import StringIO

    from django.core.management import call_command

    from knowledge_base import demo

    out = StringIO()
    call_command("seed_demo", "--tickets", "0", stdout=out)
    assert "演示知识库文章：新建 " in out.getvalue()
    articles = demo.load_articles()
    assert Article.objects.count() == len(articles) >= 20
    statuses = set(Article.objects.values_list("status", flat=True))
    assert {ArticleStatus.PUBLISHED, ArticleStatus.DRAFT, ArticleStatus.EXPIRED} <= statuses
    assert Article.objects.filter(audience="internal", status=ArticleStatus.PUBLISHED).exists()
    assert Article.objects.filter(versions__number=2, versions__status=VersionStatus.IN_REVIEW).exists()

    search.sync()
    page = text_of(client.get(reverse("kb:public-search"), {"q": "社保卡补办"}))
    assert "社会保障卡挂失与补办" in page
    client.login(username="lead", password="demo-lead-2026")
    assert "物业服务投诉办理流程" in text_of(client.get(reverse("kb:review-queue")))

    again = StringIO()
    call_command("seed_articles", stdout=again)
    assert f"新建 0 篇（无），已有而跳过 {len(articles)} 篇" in again.getvalue()
