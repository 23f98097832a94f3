"""Reads on the knowledge base; the only place that says who may see which article.

- The public sees published, public articles within their validity.
- Hotline centre staff (agents, dispatchers, supervisors, administrators) see every published article,
  public or internal, within its validity: that is what they answer callers with.
- Department staff see the same, plus every article (any status) their departments own, to maintain them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet
from django.utils import timezone

from hotline import clock
from ticketing import selectors as ticket_selectors
from ticketing.models import Category, Department, Role, User

from . import search, services
from .models import Article, ArticleStatus, ArticleVersion, Audience, VersionStatus

CENTRE_ROLES = frozenset({Role.AGENT, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMINISTRATOR})


def _in_force(today: date) -> Q:
    return (
        Q(status=ArticleStatus.PUBLISHED)
        & (Q(valid_from__isnull=True) | Q(valid_from__lte=today))
        & (Q(valid_until__isnull=True) | Q(valid_until__gte=today))
    )


def articles_public(*, today: date | None = None) -> QuerySet[Article]:
    today = today or timezone.localdate(clock.now())
    return Article.objects.filter(_in_force(today), audience=Audience.PUBLIC).select_related(
        "category", "owner_department"
    )


def articles_visible_to(*, user: User, today: date | None = None) -> QuerySet[Article]:
    today = today or timezone.localdate(clock.now())
    if not (user.is_authenticated and user.is_active):
        return articles_public(today=today)
    visible = _in_force(today)
    if user.is_superuser or user.role == Role.ADMINISTRATOR:
        visible = Q()
    elif user.role not in CENTRE_ROLES:
        visible |= Q(owner_department__in=user.departments.all())
    return Article.objects.filter(visible).select_related("category", "owner_department").prefetch_related("tags")


def article_get(*, article_id: int, user: User | None) -> Article | None:
    queryset = articles_public() if user is None else articles_visible_to(user=user)
    return queryset.filter(pk=article_id).first()


def article_versions(*, article: Article) -> QuerySet[ArticleVersion]:
    return article.versions.select_related("author", "reviewer").order_by("-number")


def articles_awaiting_review(*, user: User) -> QuerySet[Article]:
    """Articles with a version in review that `user` may decide on."""
    queryset = Article.objects.filter(versions__status="in_review")
    if not (user.is_superuser or user.role == Role.ADMINISTRATOR):
        if user.role != Role.DEPARTMENT_LEAD:
            return Article.objects.none()
        queryset = queryset.filter(owner_department__in=user.departments.all())
    return queryset.select_related("owner_department").distinct()


@dataclass(frozen=True, slots=True)
class ArticleSuggestion:
    article_id: int
    title: str
    score: float
    snippet: str
    kind: str


def article_suggestions_for_ticket(*, ticket_id: int, user: User, limit: int = 5) -> list[ArticleSuggestion] | None:
    """Answers for a ticket's title and content, or None when `user` may not see the ticket."""
    ticket = ticket_selectors.ticket_visible_to(user=user).filter(pk=ticket_id).first()
    if ticket is None:
        return None
    return article_suggestions(text=f"{ticket.title}\n{ticket.content}", user=user, limit=limit)


def article_suggestions(*, text: str, user: User, limit: int = 5) -> list[ArticleSuggestion]:
    """The published answers best matching what the caller said or the ticket says, among those `user` may
    see, with the matched words highlighted: what the agent's screen offers during the call."""
    if not text.strip():
        return []
    found = article_search(text=text, user=user, filters=ArticleFilters(), limit=limit)
    return [
        ArticleSuggestion(
            article_id=item.article.id,
            title=item.article.title,
            score=item.hit.score,
            snippet=item.hit.snippet,
            kind=item.article.kind,
        )
        for item in found
    ]


# Lists, filters and look-ups for the API, the pages and the commands; they start from the visibility rules
# above or ask a narrower question (an import's existing row, a department by code).


def articles_for_lists(queryset: QuerySet[Article]) -> QuerySet[Article]:
    """What a list row shows (department, category with its parent, tags) in a fixed number of queries."""
    return queryset.select_related("owner_department", "category__parent").prefetch_related("tags")


def articles_public_listed() -> QuerySet[Article]:
    return articles_for_lists(articles_public())


def articles_visible_listed(*, user: User) -> QuerySet[Article]:
    return articles_for_lists(articles_visible_to(user=user))


@dataclass(frozen=True)
class ArticleFilters:
    kind: str | None = None
    status: str | None = None
    audience: str | None = None
    category_id: int | None = None
    department_id: int | None = None
    tag: str | None = None


def articles_filtered(queryset: QuerySet[Article], filters: ArticleFilters) -> QuerySet[Article]:
    """Narrow what a selector allowed; never widens it."""
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.audience:
        queryset = queryset.filter(audience=filters.audience)
    if filters.category_id is not None:
        # A first-level category takes its second-level children with it.
        queryset = queryset.filter(Q(category_id=filters.category_id) | Q(category__parent_id=filters.category_id))
    if filters.department_id is not None:
        queryset = queryset.filter(owner_department_id=filters.department_id)
    if filters.tag:
        queryset = queryset.filter(tags__name=filters.tag)
    return queryset


def articles_in_order(queryset: QuerySet[Article], ids: list[int]) -> list[Article]:
    """The articles of `queryset` among `ids` (search hits), in the hits' order; the others are left out."""
    found = {article.id: article for article in queryset.filter(pk__in=ids)}
    return [found[article_id] for article_id in ids if article_id in found]


def articles_awaiting_review_listed(*, user: User) -> QuerySet[Article]:
    return articles_for_lists(articles_awaiting_review(user=user))


def articles_maintained_by(*, user: User) -> QuerySet[Article]:
    """The articles `user` maintains, in any status: their departments' (an administrator: all)."""
    queryset = articles_visible_to(user=user)
    if not (user.is_superuser or user.role == Role.ADMINISTRATOR):
        queryset = queryset.filter(owner_department__in=user.departments.all())
    return articles_for_lists(queryset)


def article_versions_visible_to(*, article: Article, user: User) -> QuerySet[ArticleVersion]:
    """The whole history for those who maintain the article; the published versions for everyone else who
    may see it (unpublished drafts are the department's working notes)."""
    versions = article_versions(article=article)
    if services.may_write(user, article.owner_department_id):
        return versions
    return versions.filter(status=VersionStatus.APPROVED)


def article_latest_version(*, article: Article) -> ArticleVersion | None:
    return article_versions(article=article).first()


def article_open_version(*, article: Article) -> ArticleVersion | None:
    return article_versions(article=article).filter(status__in=services.OPEN_STATUSES).first()


def article_published_version(*, article: Article) -> ArticleVersion | None:
    """The version whose content is live on the article."""
    if not article.published_version:
        return None
    return article.versions.filter(number=article.published_version, status=VersionStatus.APPROVED).first()


def imported_article(*, source: str, source_key: str) -> tuple[Article, ArticleVersion | None] | None:
    """An earlier import of this (source, key), with the version it last published, so an unchanged row is
    left alone instead of adding an identical version."""
    # The (source, key) index is partial (source != ""); saying so lets SQLite use it instead of a full scan.
    article = Article.objects.filter(source=source, source_key=source_key).exclude(source="").first()
    if article is None:
        return None
    return article, article_published_version(article=article)


def article_with_title(*, owner_department_id: int, title: str) -> Article | None:
    return Article.objects.filter(owner_department_id=owner_department_id, title=title).first()


def department_by_code(*, code: str) -> Department | None:
    return Department.objects.filter(code=code, is_active=True).first()


def departments_writable_by(*, user: User) -> QuerySet[Department]:
    """Departments `user` may write articles for (the create form's choices)."""
    active = Department.objects.filter(is_active=True).order_by("code")
    if user.is_superuser or user.role == Role.ADMINISTRATOR:
        return active
    if user.role not in (Role.DEPARTMENT_HANDLER, Role.DEPARTMENT_LEAD):
        return active.none()
    return active.filter(pk__in=user.departments.all())


def active_user(*, username: str) -> User | None:
    return User.objects.filter(username=username, is_active=True).first()


def first_administrator() -> User | None:
    """The account a command acts as when none is named: the oldest active administrator."""
    return User.objects.filter(Q(is_superuser=True) | Q(role=Role.ADMINISTRATOR), is_active=True).order_by("id").first()


def categories_by_name() -> dict[str, list[Category]]:
    """Every category under its own name and under "parent/child", for matching a spreadsheet's text."""
    found: dict[str, list[Category]] = {}
    for category in Category.objects.filter(is_active=True).select_related("parent").order_by("id"):
        found.setdefault(category.name, []).append(category)
        if category.parent is not None:
            found.setdefault(f"{category.parent.name}/{category.name}", []).append(category)
    return found


SEARCH_LIMIT = 200


@dataclass(frozen=True)
class Found:
    article: Article
    hit: search.Hit


def article_search(*, text: str, user: User | None, filters: ArticleFilters, limit: int = SEARCH_LIMIT) -> list[Found]:
    """Ranked search over published articles, kept to what `user` (None: the public) may see and narrowed by
    `filters`; each article with its hit (score, highlighted snippet)."""
    hits = search.search(
        text,
        doc_type="article",
        filters=search.SearchFilters(
            audience=Audience.PUBLIC if user is None else filters.audience,
            kind=filters.kind,
            category_id=filters.category_id,
            department_id=filters.department_id,
        ),
        limit=limit,
    )
    visible = articles_public() if user is None else articles_visible_to(user=user)
    articles = articles_in_order(articles_for_lists(articles_filtered(visible, filters)), [h.doc_id for h in hits])
    by_id = {hit.doc_id: hit for hit in hits}
    return [Found(article=article, hit=by_id[article.id]) for article in articles]
