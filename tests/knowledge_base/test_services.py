"""Articles: written by the owning department, reviewed by its lead, versions kept, live answers stay live."""

from datetime import date

import pytest

from hotline.errors import ApplicationError, Conflict, InvalidTransition, NotFound, NotPermitted
from knowledge_base import selectors, services
from knowledge_base.models import Article, ArticleStatus, ArticleUse, VersionStatus
from knowledge_base.services import ArticleContent
from tests.helpers import make_ticket
from ticketing.workflow import Status

pytestmark = pytest.mark.django_db

GUIDE = ArticleContent(
    title="社会保障卡补办",
    conditions="本人社保卡遗失或损坏。",
    materials="居民身份证原件。",
    steps="1. 挂失；2. 到经办网点申请补办；3. 领取新卡。",
    fees="工本费 20 元",
    time_limit="即时办结",
    audience="public",
    tags=("社保", "补办"),
)


def published(org, content: ArticleContent = GUIDE, kind: str = "guide") -> Article:  # type: ignore[no-untyped-def]
    article = services.article_create(actor=org.handler, kind=kind, owner_department_id=org.bureau.id, content=content)
    services.article_submit(article_id=article.id, actor=org.handler)
    return services.article_approve(article_id=article.id, actor=org.lead)


def test_a_guide_is_written_reviewed_and_published(org):
    article = services.article_create(actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
    assert article.status == ArticleStatus.DRAFT and article.versions.get().status == VersionStatus.DRAFT
    assert not selectors.articles_public().exists()

    services.article_submit(article_id=article.id, actor=org.handler)
    article = services.article_approve(article_id=article.id, actor=org.lead, note="内容准确")

    assert article.status == ArticleStatus.PUBLISHED and article.published_version == 1
    assert article.fees == "工本费 20 元" and article.audience == "public"
    assert sorted(article.tags.values_list("name", flat=True)) == ["社保", "补办"]
    version = article.versions.get()
    assert (version.status, version.reviewer, version.review_note) == (VersionStatus.APPROVED, org.lead, "内容准确")
    assert list(selectors.articles_public()) == [article]


def test_the_published_answer_stays_live_while_its_next_version_is_reviewed(org):
    article = published(org)
    revised = ArticleContent(**{**GUIDE.__dict__, "fees": "免费"})
    version = services.article_revise(
        article_id=article.id, actor=org.handler, content=revised, change_note="取消工本费"
    )
    assert version.number == 2
    services.article_submit(article_id=article.id, actor=org.handler)
    article.refresh_from_db()
    assert article.fees == "工本费 20 元" and article.status == ArticleStatus.PUBLISHED

    with pytest.raises(Conflict):
        services.article_revise(article_id=article.id, actor=org.handler, content=revised)
    services.article_reject(article_id=article.id, actor=org.lead, note="请附收费文件依据")
    assert article.versions.get(number=2).status == VersionStatus.REJECTED

    services.article_revise(article_id=article.id, actor=org.handler, content=revised)
    services.article_submit(article_id=article.id, actor=org.handler)
    article = services.article_approve(article_id=article.id, actor=org.lead)
    assert article.fees == "免费" and article.published_version == 3
    assert list(article.versions.values_list("number", "status")) == [(1, "approved"), (2, "rejected"), (3, "approved")]


def test_an_open_draft_is_edited_in_place(org):
    article = services.article_create(actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
    services.article_revise(
        article_id=article.id, actor=org.lead, content=ArticleContent(**{**GUIDE.__dict__, "fees": "免费"})
    )
    assert article.versions.count() == 1 and article.versions.get().content["fees"] == "免费"


@pytest.mark.parametrize(
    ("who", "action"),
    [
        ("other_handler", "create"),  # another department
        ("agent", "create"),  # the centre uses answers, departments own them
        ("handler", "approve"),  # handlers do not review
        ("other_handler", "approve"),
        ("lead", "approve_own"),  # nobody approves what they wrote
        ("handler", "withdraw"),
    ],
)
def test_who_may_write_review_and_withdraw(org, who, action):
    actor = getattr(org, who)
    with pytest.raises(NotPermitted):
        if action == "create":
            services.article_create(actor=actor, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
        elif action in ("approve", "approve_own"):
            author = org.lead if action == "approve_own" else org.handler
            article = services.article_create(
                actor=author, kind="guide", owner_department_id=org.bureau.id, content=GUIDE
            )
            services.article_submit(article_id=article.id, actor=author)
            services.article_approve(article_id=article.id, actor=actor)
        else:
            services.article_withdraw(article_id=published(org).id, actor=actor, reason="过时")


def test_the_review_flow_refuses_steps_out_of_order(org):
    article = services.article_create(actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
    with pytest.raises(InvalidTransition):
        services.article_approve(article_id=article.id, actor=org.lead)
    with pytest.raises(InvalidTransition):
        services.article_withdraw(article_id=article.id, actor=org.lead, reason="未发布")
    services.article_submit(article_id=article.id, actor=org.handler)
    with pytest.raises(InvalidTransition):
        services.article_submit(article_id=article.id, actor=org.handler)
    with pytest.raises(ApplicationError) as no_note:
        services.article_reject(article_id=article.id, actor=org.lead, note=" ")
    assert no_note.value.extra["errors"] == {"note": ["请填写退回意见。"]}


@pytest.mark.parametrize(
    ("kind", "content", "field"),
    [
        ("guide", ArticleContent(title="缺材料", conditions="x", steps="y"), "materials"),
        ("faq", ArticleContent(title="问答", question="怎么办？"), "answer"),
        ("notice", ArticleContent(title="x" * 201, answer="正文"), "title"),
        (
            "policy",
            ArticleContent(title="政策", answer="正文", valid_from=date(2026, 5, 1), valid_until=date(2026, 4, 1)),
            "valid_until",
        ),
        ("faq", ArticleContent(title="问答", question="q", answer="a", audience="everyone"), "audience"),
        ("faq", ArticleContent(title="问答", question="q", answer="a", category_id=999999), "category_id"),
    ],
)
def test_bad_content_is_refused_field_by_field(org, kind, content, field):
    with pytest.raises(ApplicationError) as refused:
        services.article_create(actor=org.handler, kind=kind, owner_department_id=org.bureau.id, content=content)
    assert field in refused.value.extra["errors"]
    assert not Article.objects.exists()


def test_withdrawn_and_expired_articles_leave_what_people_see(org):
    withdrawn = published(org)
    services.article_withdraw(article_id=withdrawn.id, actor=org.lead, reason="政策调整")
    lapsing = published(org, ArticleContent(**{**GUIDE.__dict__, "title": "旧政策", "valid_until": date(2026, 1, 31)}))
    assert services.articles_expire(today=date(2026, 2, 1)) == 1
    lapsing.refresh_from_db()
    assert lapsing.status == ArticleStatus.EXPIRED
    assert not selectors.articles_public().exists()
    assert not selectors.articles_visible_to(user=org.agent).exists()
    # The owning department still sees them, to fix and publish again.
    assert set(selectors.articles_visible_to(user=org.handler)) == {withdrawn, lapsing}


def test_internal_answers_are_for_staff_only(org):
    internal = published(org, ArticleContent(**{**GUIDE.__dict__, "title": "内部口径", "audience": "internal"}))
    assert not selectors.articles_public().filter(pk=internal.pk).exists()
    assert selectors.articles_visible_to(user=org.agent).filter(pk=internal.pk).exists()
    draft = services.article_create(actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=GUIDE)
    assert not selectors.articles_visible_to(user=org.agent).filter(pk=draft.pk).exists()
    assert not selectors.articles_visible_to(user=org.other_handler).filter(pk=draft.pk).exists()
    assert selectors.article_get(article_id=draft.id, user=org.handler) == draft


def test_use_is_counted_once_per_ticket(org):
    article = published(org)
    ticket = make_ticket(org, Status.CLOSED)
    services.article_use_record(article_id=article.id, ticket_id=ticket.id, actor=org.agent)
    services.article_use_record(article_id=article.id, ticket_id=ticket.id, actor=org.agent)
    services.article_use_record(article_id=article.id, ticket_id=None, actor=org.agent)
    article.refresh_from_db()
    assert article.use_count == 2 and ArticleUse.objects.filter(article=article).count() == 2
    with pytest.raises(NotFound):
        services.article_use_record(article_id=article.id, ticket_id=ticket.id, actor=org.other_handler)


def test_imports_publish_at_once_and_a_second_import_updates(org):
    row = services.ImportRow(
        source_key="2549", kind="faq", content=ArticleContent(title="物业问题", question="q", answer="答复一")
    )
    first, created = services.article_import(
        source="replies", row=row, owner_department_id=org.bureau.id, actor=org.administrator
    )
    again, created_again = services.article_import(
        source="replies",
        row=services.ImportRow(
            source_key="2549", kind="faq", content=ArticleContent(title="物业问题", question="q", answer="答复二")
        ),
        owner_department_id=org.bureau.id,
        actor=org.administrator,
    )
    assert created and not created_again and first.pk == again.pk
    assert again.answer == "答复二" and again.status == ArticleStatus.PUBLISHED and again.published_version == 2
    with pytest.raises(NotPermitted):
        services.article_import(source="replies", row=row, owner_department_id=org.bureau.id, actor=org.lead)
