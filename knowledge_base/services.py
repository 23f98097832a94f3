"""Writes on the knowledge base: articles, their versions and review, their use, and imports.

Who does what:
- members of the owning department (handlers and leads) and administrators write and submit versions;
- a lead of the owning department, or an administrator, reviews; nobody approves a version they wrote;
- leads of the owning department and administrators withdraw a published article.

Every change to what searching finds goes through `search.index_soon` / `search.remove_soon` inside the
transaction, so the search index follows committed writes and an index that is down loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from hotline import clock
from hotline.errors import ApplicationError, Conflict, InvalidTransition, NotFound, NotPermitted
from hotline.realtime import events as rt
from hotline.realtime import groups
from hotline.realtime.broadcast import broadcast_on_commit
from ticketing import selectors as ticket_selectors
from ticketing.models import Category, Department, Role, User

from . import search
from .models import (
    CONTENT_FIELDS,
    Article,
    ArticleKind,
    ArticleStatus,
    ArticleUse,
    ArticleVersion,
    Audience,
    Tag,
    VersionStatus,
)

if TYPE_CHECKING:
    from .selectors import ArticleSuggestion

logger = logging.getLogger(__name__)

REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    ArticleKind.GUIDE: ("title", "conditions", "materials", "steps"),
    ArticleKind.FAQ: ("title", "question", "answer"),
    ArticleKind.POLICY: ("title", "answer"),
    ArticleKind.NOTICE: ("title", "answer"),
}
MAX_LENGTHS = {"title": 200, "fees": 200, "time_limit": 100, "document_number": 100}
OPEN_STATUSES = (VersionStatus.DRAFT, VersionStatus.IN_REVIEW)


@dataclass(frozen=True)
class ArticleContent:
    """What a version holds: the text fields plus the settings that review also guards (who may see it,
    where it is filed, how long it holds)."""

    title: str
    question: str = ""
    answer: str = ""
    conditions: str = ""
    materials: str = ""
    steps: str = ""
    fees: str = ""
    time_limit: str = ""
    legal_basis: str = ""
    service_location: str = ""
    document_number: str = ""
    audience: str = Audience.INTERNAL
    category_id: int | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    valid_from: date | None = None
    valid_until: date | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name).strip() for name in CONTENT_FIELDS}
        data.update(
            audience=self.audience,
            category_id=self.category_id,
            tags=sorted({tag.strip() for tag in self.tags if tag.strip()}),
            valid_from=self.valid_from.isoformat() if self.valid_from else None,
            valid_until=self.valid_until.isoformat() if self.valid_until else None,
        )
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArticleContent:
        return cls(
            **{name: data.get(name, "") for name in CONTENT_FIELDS},
            audience=data.get("audience", Audience.INTERNAL),
            category_id=data.get("category_id"),
            tags=tuple(data.get("tags", ())),
            valid_from=date.fromisoformat(data["valid_from"]) if data.get("valid_from") else None,
            valid_until=date.fromisoformat(data["valid_until"]) if data.get("valid_until") else None,
        )


# permissions


def _member_of(actor: User, department_id: int) -> bool:
    return actor.departments.filter(pk=department_id).exists()


def may_write(actor: User, department_id: int) -> bool:
    if not (actor.is_authenticated and actor.is_active):
        return False
    if actor.is_superuser or actor.role == Role.ADMINISTRATOR:
        return True
    return actor.role in (Role.DEPARTMENT_HANDLER, Role.DEPARTMENT_LEAD) and _member_of(actor, department_id)


def may_review(actor: User, department_id: int) -> bool:
    if not (actor.is_authenticated and actor.is_active):
        return False
    if actor.is_superuser or actor.role == Role.ADMINISTRATOR:
        return True
    return actor.role == Role.DEPARTMENT_LEAD and _member_of(actor, department_id)


# validation


def _validate(kind: str, content: ArticleContent) -> dict[str, Any]:
    data = content.as_json()
    errors: dict[str, list[str]] = {}
    for name in REQUIRED_BY_KIND[kind]:
        if not data[name]:
            errors.setdefault(name, []).append("此项必填。")
    for name, limit in MAX_LENGTHS.items():
        if len(data[name]) > limit:
            errors.setdefault(name, []).append(f"不能超过 {limit} 个字符。")
    if content.audience not in Audience.values:
        errors.setdefault("audience", []).append("公开范围无效。")
    if content.valid_from and content.valid_until and content.valid_until < content.valid_from:
        errors.setdefault("valid_until", []).append("有效期不能早于生效日期。")
    if content.category_id is not None and not Category.objects.filter(pk=content.category_id).exists():
        errors.setdefault("category_id", []).append("诉求分类不存在。")
    if any(len(tag.strip()) > 32 for tag in content.tags):
        errors.setdefault("tags", []).append("标签不能超过 32 个字符。")
    if errors:
        raise ApplicationError("文章内容有误。", code="invalid", extra={"errors": errors})
    return data


def _locked(article_id: int) -> Article:
    try:
        return Article.objects.select_for_update().get(pk=article_id)
    except Article.DoesNotExist:
        raise NotFound("文章不存在。") from None


def _open_version(article: Article) -> ArticleVersion | None:
    return article.versions.filter(status__in=OPEN_STATUSES).first()


# writing


@transaction.atomic
def article_create(
    *, actor: User, kind: str, owner_department_id: int, content: ArticleContent, change_note: str = ""
) -> Article:
    """A new article: not published, with version 1 as a draft."""
    if kind not in ArticleKind.values:
        raise ApplicationError("文章类型无效。", code="invalid", extra={"errors": {"kind": ["文章类型无效。"]}})
    if not Department.objects.filter(pk=owner_department_id, is_active=True).exists():
        raise ApplicationError(
            "维护单位不存在。", code="invalid", extra={"errors": {"owner_department": ["维护单位不存在。"]}}
        )
    if not may_write(actor, owner_department_id):
        raise NotPermitted("只有维护单位的人员或系统管理员可以编写文章。")
    data = _validate(kind, content)
    now = clock.now()
    article = Article.objects.create(
        kind=kind,
        owner_department_id=owner_department_id,
        title=data["title"],
        audience=content.audience,
        category_id=content.category_id,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    ArticleVersion.objects.create(
        article=article, number=1, content=data, change_note=change_note, author=actor, created_at=now
    )
    logger.info("article %s created by user %s", article.id, actor.id)
    return article


@transaction.atomic
def article_revise(*, article_id: int, actor: User, content: ArticleContent, change_note: str = "") -> ArticleVersion:
    """Write the next version. An open draft is edited in place; a version in review must be decided first."""
    article = _locked(article_id)
    if not may_write(actor, article.owner_department_id):
        raise NotPermitted("只有维护单位的人员或系统管理员可以修改文章。")
    data = _validate(article.kind, content)
    now = clock.now()
    current = _open_version(article)
    if current is not None and current.status == VersionStatus.IN_REVIEW:
        raise Conflict("该文章有版本正在审核，请等待审核结果。", code="version_in_review")
    if current is not None:
        current.content, current.change_note, current.author = data, change_note, actor
        current.save(update_fields=["content", "change_note", "author"])
        version = current
    else:
        number = (article.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        version = ArticleVersion.objects.create(
            article=article, number=number, content=data, change_note=change_note, author=actor, created_at=now
        )
    article.updated_at = now
    article.save(update_fields=["updated_at"])
    return version


def _version_in(article: Article, status: str, message: str) -> ArticleVersion:
    version = article.versions.filter(status=status).first()
    if version is None:
        raise InvalidTransition(message, code="invalid_transition")
    return version


@transaction.atomic
def article_submit(*, article_id: int, actor: User) -> ArticleVersion:
    article = _locked(article_id)
    if not may_write(actor, article.owner_department_id):
        raise NotPermitted("只有维护单位的人员或系统管理员可以提交审核。")
    version = _version_in(article, VersionStatus.DRAFT, "没有待提交的草稿。")
    version.status, version.submitted_at = VersionStatus.IN_REVIEW, clock.now()
    version.save(update_fields=["status", "submitted_at"])
    return version


@transaction.atomic
def article_approve(*, article_id: int, actor: User, note: str = "") -> Article:
    """Publish the version in review: its content becomes the article's live content."""
    article = _locked(article_id)
    if not may_review(actor, article.owner_department_id):
        raise NotPermitted("只有维护单位负责人或系统管理员可以审核文章。")
    version = _version_in(article, VersionStatus.IN_REVIEW, "没有待审核的版本。")
    if version.author_id == actor.id and not actor.is_superuser:
        raise NotPermitted("不能审核自己编写的版本。", code="own_version")
    now = clock.now()
    version.status, version.reviewer, version.review_note, version.decided_at = VersionStatus.APPROVED, actor, note, now
    version.save(update_fields=["status", "reviewer", "review_note", "decided_at"])
    _apply(article, ArticleContent.from_json(version.content))
    article.status = ArticleStatus.PUBLISHED
    article.published_version, article.published_at, article.updated_at = version.number, now, now
    article.save()
    search.index_soon("article", article.id)
    logger.info("article %s v%s published by user %s", article.id, version.number, actor.id)
    return article


def _apply(article: Article, content: ArticleContent) -> None:
    for name in CONTENT_FIELDS:
        setattr(article, name, getattr(content, name).strip())
    article.audience = content.audience
    article.category_id = content.category_id
    article.valid_from, article.valid_until = content.valid_from, content.valid_until
    article.save()
    article.tags.set([Tag.objects.get_or_create(name=name)[0] for name in sorted(set(content.tags)) if name])


@transaction.atomic
def article_reject(*, article_id: int, actor: User, note: str) -> ArticleVersion:
    article = _locked(article_id)
    if not may_review(actor, article.owner_department_id):
        raise NotPermitted("只有维护单位负责人或系统管理员可以审核文章。")
    if not note.strip():
        raise ApplicationError("请填写退回意见。", code="invalid", extra={"errors": {"note": ["请填写退回意见。"]}})
    version = _version_in(article, VersionStatus.IN_REVIEW, "没有待审核的版本。")
    version.status, version.reviewer, version.review_note = VersionStatus.REJECTED, actor, note.strip()
    version.decided_at = clock.now()
    version.save(update_fields=["status", "reviewer", "review_note", "decided_at"])
    return version


@transaction.atomic
def article_withdraw(*, article_id: int, actor: User, reason: str) -> Article:
    """Take a published answer out of use at once (wrong, superseded, or no longer the department's)."""
    article = _locked(article_id)
    if not may_review(actor, article.owner_department_id):
        raise NotPermitted("只有维护单位负责人或系统管理员可以撤回文章。")
    if article.status != ArticleStatus.PUBLISHED:
        raise InvalidTransition("只有已发布的文章可以撤回。")
    if not reason.strip():
        raise ApplicationError("请填写撤回原因。", code="invalid", extra={"errors": {"reason": ["请填写撤回原因。"]}})
    article.status, article.updated_at = ArticleStatus.WITHDRAWN, clock.now()
    article.save(update_fields=["status", "updated_at"])
    search.remove_soon("article", article.id)
    logger.info("article %s withdrawn by user %s", article.id, actor.id)
    return article


@transaction.atomic
def articles_expire(*, today: date | None = None) -> int:
    """Published articles whose validity has ended are expired (and leave the search index)."""
    today = today or timezone.localdate(clock.now())
    due = list(
        Article.objects.select_for_update()
        .filter(status=ArticleStatus.PUBLISHED, valid_until__lt=today)
        .values_list("pk", flat=True)
    )
    Article.objects.filter(pk__in=due).update(status=ArticleStatus.EXPIRED, updated_at=clock.now())
    for article_id in due:
        search.remove_soon("article", article_id)
    return len(due)


@transaction.atomic
def article_use_record(*, article_id: int, ticket_id: int | None, actor: User) -> ArticleUse:
    """The agent answered with this article (an instant reply, or a reply citing it): counted once per ticket."""
    article = Article.objects.filter(pk=article_id, status=ArticleStatus.PUBLISHED).first()
    if article is None:
        raise NotFound("文章不存在或未发布。")
    if ticket_id is not None and not ticket_selectors.ticket_visible_to(user=actor).filter(pk=ticket_id).exists():
        raise NotFound("工单不存在。")
    try:
        with transaction.atomic():
            use = ArticleUse.objects.create(
                article=article,
                version=article.published_version,
                ticket_id=ticket_id,
                used_by=actor,
                used_at=clock.now(),
            )
    except IntegrityError:
        # Only the once-per-ticket constraint can fail, so there is a ticket.
        assert ticket_id is not None
        return ArticleUse.objects.get(article=article, ticket_id=ticket_id)
    Article.objects.filter(pk=article.pk).update(use_count=F("use_count") + 1)
    return use


# suggestions


def suggestions_push(
    *, user: User, suggestions: list[ArticleSuggestion], ticket_id: int | None, call_id: str | None = None
) -> None:
    """Offer answers on the user's own screen (the agent desk shows them beside the ticket form, or beside
    the call in progress)."""
    event = rt.KnowledgeSuggestion(
        call_id=call_id,
        ticket_id=ticket_id,
        articles=[
            rt.Suggestion(
                id=item.article_id, title=item.title, score=round(item.score, 4), reason=item.kind, snippet=item.snippet
            )
            for item in suggestions
        ],
    )
    broadcast_on_commit(event, groups.agent(user.id))


# import


@dataclass(frozen=True)
class ImportRow:
    source_key: str
    kind: str
    content: ArticleContent


@transaction.atomic
def article_import(*, source: str, row: ImportRow, owner_department_id: int, actor: User) -> tuple[Article, bool]:
    """Create or update one imported article by (source, key), published at once: imports carry answers that
    are already official (a department's published reply). Returns the article and whether it was new."""
    if not (actor.is_superuser or actor.role == Role.ADMINISTRATOR):
        raise NotPermitted("只有系统管理员可以导入文章。")
    if row.kind not in ArticleKind.values:
        raise ApplicationError("文章类型无效。", code="invalid", extra={"errors": {"kind": ["文章类型无效。"]}})
    data = _validate(row.kind, row.content)
    now = clock.now()
    # Imports always name a source, and the (source, key) index only covers rows that have one.
    article = (
        Article.objects.select_for_update().filter(source=source, source_key=row.source_key).exclude(source="").first()
    )
    created = article is None
    if article is None:
        article = Article.objects.create(
            kind=row.kind,
            owner_department_id=owner_department_id,
            title=data["title"],
            source=source,
            source_key=row.source_key,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
    elif article.versions.filter(status__in=OPEN_STATUSES).exists():
        raise Conflict("该文章有未完成的修改，不能覆盖导入。", code="version_open")
    number = (article.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    ArticleVersion.objects.create(
        article=article,
        number=number,
        content=data,
        change_note=f"导入：{source}",
        author=actor,
        reviewer=actor,
        status=VersionStatus.APPROVED,
        created_at=now,
        submitted_at=now,
        decided_at=now,
    )
    _apply(article, row.content)
    article.kind = row.kind
    article.status = ArticleStatus.PUBLISHED
    article.published_version, article.published_at, article.updated_at = number, now, now
    article.save()
    search.index_soon("article", article.id)
    return article, created


def tags_from(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({value.strip() for value in values if value and value.strip()}))
