"""The search interface's behaviour, the same suite for every backend.

The database backend always runs (SQLite, and PostgreSQL with DATABASE_URL). Elasticsearch runs when
ELASTICSEARCH_URL names a server, in indices of its own that are deleted afterwards.
"""

import os
import uuid
from datetime import timedelta

import pytest
from django.db import transaction

from hotline import clock
from knowledge_base import search, services
from knowledge_base.models import Article, ArticleStatus, Tag
from knowledge_base.search import indexing
from knowledge_base.search.models import SearchCursor, SearchOutbox
from knowledge_base.search.types import SearchUnavailable
from knowledge_base.services import ArticleContent
from tests.factories import CategoryFactory, RegionFactory
from tests.helpers import make_ticket
from ticketing import services as ticket_services
from ticketing.models import RegionLevel
from ticketing.workflow import Status

pytestmark = pytest.mark.django_db

ES_URL = os.environ.get("ELASTICSEARCH_URL", "")
BACKENDS = [
    "database",
    pytest.param(
        "elasticsearch",
        marks=pytest.mark.skipif(
            not ES_URL,
            reason="ELASTICSEARCH_URL is not set: no Elasticsearch server to run the behavioural suite against "
            "(query and mapping construction are unit-tested without one in test_search_elasticsearch.py)",
        ),
    ),
]


class Index:
    """Writes as services make them (committed, with their on-commit indexing run), and `settle()` for a
    backend that needs a refresh before new documents are searchable."""

    def __init__(self, *, org, name, capture):  # type: ignore[no-untyped-def]
        self.org = org
        self.name = name
        self.capture = capture

    def settle(self) -> None:
        if self.name == "elasticsearch":
            backend = search.get_backend()
            backend.client.indices.refresh(index=f"{backend.prefix}-*")

    def article(self, title, *, audience="public", kind="guide", valid_until=None, category=None, tags=(), **fields):  # type: ignore[no-untyped-def]
        now = clock.now()
        with self.capture(execute=True), transaction.atomic():
            article = Article.objects.create(
                kind=kind,
                status=ArticleStatus.PUBLISHED,
                audience=audience,
                owner_department=fields.pop("owner_department", self.org.bureau),
                category=category,
                title=title,
                valid_until=valid_until,
                created_at=now,
                updated_at=now,
                **fields,
            )
            if tags:
                article.tags.set([Tag.objects.get_or_create(name=tag)[0] for tag in tags])
            search.index_soon("article", article.id)
        self.settle()
        return article

    def sync(self) -> search.SyncReport:
        report = search.sync()
        self.settle()
        return report


@pytest.fixture(params=BACKENDS)
def index(request, org, settings, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    name = request.param
    settings.SEARCH_BACKEND = name
    prefix = f"hotline-test-{uuid.uuid4().hex[:10]}"
    if name == "elasticsearch":
        settings.ELASTICSEARCH_URL = ES_URL
        settings.SEARCH_ES_INDEX_PREFIX = prefix
        settings.SEARCH_ES_REPLICAS = 0
    indexing.resume()
    yield Index(org=org, name=name, capture=django_capture_on_commit_callbacks)
    indexing.resume()
    if name == "elasticsearch":
        client = search.get_backend().client
        client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        client.indices.delete_index_template(name=f"{prefix}-search")


def titles(hits):  # type: ignore[no-untyped-def]
    return [hit.title for hit in hits]


def test_a_chinese_query_finds_the_guide_by_its_official_name(index):
    index.article("社会保障卡补办", answer="社会保障卡遗失后，本人持居民身份证到经办网点申请补办，即时办结。")
    index.article("居民身份证补办", answer="居民身份证丢失后到户籍所在地派出所申请补领。")
    index.article("住房公积金提取", answer="职工购房、退休可以提取住房公积金。")
    index.article("社会保险参保登记", answer="用人单位应当自用工之日起三十日内为职工办理社会保险登记。")

    hits = search.search("社保卡补办", doc_type="article")

    assert hits[0].title == "社会保障卡补办"
    assert "居民身份证补办" in titles(hits)  # 补办 alone still matches, ranked lower
    assert "住房公积金提取" not in titles(hits)


def test_synonyms_work_both_ways_and_abbreviations_find_full_names(index):
    index.article("住房公积金提取", answer="职工购房可以提取。")
    index.article("医保报销", answer="门诊费用按比例报销。")

    assert titles(search.search("公积金怎么取", doc_type="article"))[0] == "住房公积金提取"
    assert titles(search.search("医疗保险报销", doc_type="article"))[0] == "医保报销"


def test_title_matches_and_more_matched_words_rank_first(index):
    body_only = index.article(
        "城市管理常见问题",
        answer="市民反映的问题包括占道经营、违章搭建、夜间噪音等，城市管理部门按职责分工处理。" * 3,
    )
    title = index.article("夜间施工噪音扰民投诉", answer="夜间施工须取得许可，超时施工可以投诉。")
    one_word = index.article("施工许可办理", answer="建设单位申请施工许可证。")

    hits = search.search("夜间施工噪音扰民", doc_type="article")
    ids = [hit.doc_id for hit in hits]

    assert ids[0] == title.id
    assert ids.index(body_only.id) > 0 and ids.index(one_word.id) > 0


def test_public_searches_do_not_find_internal_articles(index):
    index.article("燃气泄漏处置指引（内部）", audience="internal", answer="接到燃气泄漏报告立即转119并通知燃气公司。")
    index.article("燃气开户办理", answer="携带房产证到燃气公司营业厅办理开户。")

    public = search.search("燃气", doc_type="article", filters=search.SearchFilters(audience="public"))
    staff = search.search("燃气", doc_type="article")

    assert titles(public) == ["燃气开户办理"]
    assert sorted(titles(staff)) == ["燃气开户办理", "燃气泄漏处置指引（内部）"]


def test_expired_articles_are_not_found_unless_asked_for(index):
    today = clock.now().date()
    index.article("2020年供暖补贴申领", valid_until=today - timedelta(days=400), answer="供暖补贴申领办法。")
    index.article("供暖费缴纳", valid_until=today + timedelta(days=30), answer="供暖费缴纳渠道。")

    assert titles(search.search("供暖", doc_type="article")) == ["供暖费缴纳"]
    found = search.search("供暖", doc_type="article", filters=search.SearchFilters(include_expired=True))
    assert sorted(titles(found)) == ["2020年供暖补贴申领", "供暖费缴纳"]


def test_kind_category_and_department_filters(index, org):
    top = CategoryFactory(name="社会保障")
    child = CategoryFactory(name="社会保险", parent=top)
    faq = index.article("养老保险缴费年限", kind="faq", category=child, answer="累计缴费满十五年。")
    guide = index.article("养老保险关系转移", kind="guide", category=top, answer="跨省转移养老保险关系。")
    other = index.article(
        "养老服务补贴", kind="guide", owner_department=org.other_bureau, answer="高龄老人养老服务补贴。"
    )

    def ids(**filters):  # type: ignore[no-untyped-def]
        hits = search.search("养老", doc_type="article", filters=search.SearchFilters(**filters))
        return sorted(hit.doc_id for hit in hits)

    assert ids() == sorted([faq.id, guide.id, other.id])
    assert ids(kind="faq") == [faq.id]
    assert ids(category_id=top.id) == sorted([faq.id, guide.id])  # a first-level category takes its children
    assert ids(category_id=child.id) == [faq.id]
    assert ids(department_id=org.other_bureau.id) == [other.id]
    assert ids(department_id=org.bureau.id) == sorted([faq.id, guide.id])


def test_snippets_highlight_matches_and_escape_everything_else(index):
    index.article(
        "社会保障卡挂失",
        answer='<script>alert("x")</script> 社会保障卡丢失请先挂失 & 再补办 <b>注意</b>',
    )

    (hit,) = search.search("社会保障卡挂失", doc_type="article")

    assert "<mark>" in hit.snippet and "</mark>" in hit.snippet
    assert "<script>" not in hit.snippet and "<b>" not in hit.snippet
    assert "&lt;script&gt;" in hit.snippet and "&amp;" in hit.snippet
    without_marks = hit.snippet.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks


def test_the_index_follows_committed_writes_only(index, org, django_capture_on_commit_callbacks):
    content = ArticleContent(
        title="不动产权证书遗失补办",
        conditions="不动产权证书遗失或灭失。",
        materials="身份证明、登报遗失声明。",
        steps="登报声明作废后申请补发。",
        audience="public",
    )
    with django_capture_on_commit_callbacks(execute=True):
        article = services.article_create(
            actor=org.handler, kind="guide", owner_department_id=org.bureau.id, content=content
        )
        services.article_submit(article_id=article.id, actor=org.handler)
    index.settle()
    assert search.search("不动产权证书", doc_type="article") == []  # not published yet

    with django_capture_on_commit_callbacks(execute=True):
        services.article_approve(article_id=article.id, actor=org.lead)
    index.settle()
    assert titles(search.search("房产证补办", doc_type="article")) == ["不动产权证书遗失补办"]

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.article_withdraw(article_id=article.id, actor=org.lead, reason="政策调整")
        raise RuntimeError("the request failed after the service ran")
    index.settle()
    assert callbacks == [] and not SearchOutbox.objects.exists()
    assert titles(search.search("房产证补办", doc_type="article")) == ["不动产权证书遗失补办"]

    with django_capture_on_commit_callbacks(execute=True):
        services.article_withdraw(article_id=article.id, actor=org.lead, reason="政策调整")
    index.settle()
    assert search.search("房产证补办", doc_type="article") == []
    assert not SearchOutbox.objects.exists()


def test_an_index_failure_keeps_the_change_queued_and_sync_indexes_it_later(index, monkeypatch):
    backend = search.get_backend()

    def unreachable(documents):  # type: ignore[no-untyped-def]
        raise SearchUnavailable("检索服务暂时不可用，请稍后再试。")

    monkeypatch.setattr(backend, "index", unreachable)
    article = index.article("失业保险金申领", answer="失业人员持社会保障卡申领失业保险金。")

    assert Article.objects.filter(pk=article.id).exists()  # the write itself went through
    queued = SearchOutbox.objects.get()
    assert (queued.doc_id, queued.attempts) == (article.id, 1) and "SearchUnavailable" in queued.last_error
    assert search.search("失业金", doc_type="article") == []

    # While the backend is known to be down, later writes do not wait on it: they queue.
    second = index.article("失业登记", answer="到街道社区办理失业登记。")
    assert SearchOutbox.objects.filter(doc_id=second.id, attempts=0).exists()

    monkeypatch.undo()
    report = index.sync()
    assert report.indexed == 1 and SearchOutbox.objects.count() == 1  # the failed one waits for its retry time
    assert titles(search.search("失业登记", doc_type="article")) == ["失业登记"]

    with clock.frozen(clock.now() + timedelta(minutes=10)):
        report = index.sync()
    assert report.indexed == 1 and report.queued == 0
    assert titles(search.search("失业金", doc_type="article"))[0] == "失业保险金申领"


def test_ticket_changes_made_through_ticketing_are_followed_by_the_cursor(index, org):
    ticket = make_ticket(
        org, Status.PENDING_DISPATCH, title="幸福小区停水三天", content="幸福小区连续三天停水，无人通知。"
    )
    draft = make_ticket(org, Status.DRAFT, title="幸福小区停电", content="草稿不进索引。")

    report = index.sync()

    assert report.tickets >= 1
    hits = search.search("小区停水", doc_type="ticket")
    assert [hit.doc_id for hit in hits] == [ticket.id]
    assert draft.id not in [hit.doc_id for hit in search.search("幸福小区", doc_type="ticket")]

    ticket_services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    handler = org.handler_for(org.bureau)
    ticket_services.ticket_accept(ticket_id=ticket.id, actor=handler)
    ticket_services.ticket_reply(
        ticket_id=ticket.id, actor=handler, reply_text="经核实为管网抢修，已恢复供水并张贴公告。", result="solved"
    )
    index.sync()

    replied = search.SearchFilters(statuses=(Status.REPLIED,), department_id=org.bureau.id)
    hits = search.search("管网抢修", doc_type="ticket", filters=replied)
    assert [hit.doc_id for hit in hits] == [ticket.id]
    assert search.search("停水", doc_type="ticket", filters=search.SearchFilters(statuses=(Status.CLOSED,))) == []
    assert SearchCursor.objects.get().last_event_id > 0

    # Nothing new: nothing re-indexed.
    assert index.sync().tickets == 0


def test_similar_tickets_and_region_filter(index, org):
    street = RegionFactory(code="210102002", name="南市场街道", level=RegionLevel.STREET, parent=org.district)
    first = make_ticket(
        org, title="道路井盖缺失", content="和平区南市场街道路口井盖缺失，夜间行人容易掉落。", region_id=street.id
    )
    repeat = make_ticket(org, title="路口井盖丢了", content="南市场街道路口的井盖没有了，很危险。", region_id=street.id)
    elsewhere = make_ticket(
        org, title="井盖松动", content="沈河区一处井盖松动有响声。", region_id=org.other_district.id
    )
    index.sync()

    similar = search.similar_tickets(text="南市场街道路口井盖缺失 很危险", exclude_ticket_id=repeat.id)
    assert similar[0].doc_id == first.id and repeat.id not in [hit.doc_id for hit in similar]

    in_district = search.search("井盖", doc_type="ticket", filters=search.SearchFilters(region_id=org.district.id))
    assert sorted(hit.doc_id for hit in in_district) == sorted([first.id, repeat.id])
    assert elsewhere.id in [hit.doc_id for hit in search.search("井盖", doc_type="ticket")]


def test_the_callers_personal_data_is_never_indexed(index, org):
    ticket = make_ticket(
        org,
        title="噪音扰民，来电人李四维",
        content="我叫李四维，电话13912345678，身份证210102199001011234，邮箱lisiwei@example.com，楼下酒吧噪音扰民。",
        caller_name="李四维",
        caller_phone="13912345678",
        caller_id_number="210102199001011234",
    )
    index.sync()

    hits = search.search("酒吧噪音扰民", doc_type="ticket")
    assert [hit.doc_id for hit in hits] == [ticket.id]
    shown = hits[0].title + hits[0].snippet
    for personal in ("李四维", "13912345678", "210102199001011234", "lisiwei"):
        assert personal not in shown
        assert ticket.id not in [hit.doc_id for hit in search.search(personal, doc_type="ticket")]


def test_reindex_rebuilds_every_document(index, org):
    articles = [index.article(f"生育津贴申领{n}", answer="生育津贴按月发放。") for n in range(3)]
    Article.objects.filter(pk=articles[0].pk).update(status=ArticleStatus.WITHDRAWN)  # changed behind the index
    tickets = [make_ticket(org, title=f"学校周边交通拥堵{n}", content="上下学时段交通拥堵。") for n in range(2)]
    backend = search.get_backend()
    backend.remove([("article", a.id) for a in articles] + [("ticket", t.id) for t in tickets])
    index.settle()
    assert search.search("生育津贴", doc_type="article") == []

    counts = search.reindex()
    index.settle()

    assert counts == {"article": 2, "ticket": 2}
    assert sorted(hit.doc_id for hit in search.search("生育津贴", doc_type="article")) == [a.id for a in articles[1:]]
    assert sorted(hit.doc_id for hit in search.search("交通拥堵", doc_type="ticket")) == [t.id for t in tickets]
    assert backend.count("article") == 2 and backend.count("ticket") == 2
    # Ticket changes after the rebuild are still followed.
    later = make_ticket(org, title="学校门口交通拥堵", content="放学时交通拥堵。")
    index.sync()
    assert later.id in [hit.doc_id for hit in search.search("交通拥堵", doc_type="ticket")]


def test_queries_without_words_find_nothing(index):
    index.article("社会保障卡补办", answer="补办流程。")
    assert search.search("", doc_type="article") == []
    assert search.search("的 了 吗？！", doc_type="article") == []
