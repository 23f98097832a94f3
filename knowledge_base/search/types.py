"""The values the search interface takes and gives, the same for every backend."""

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import models
from rest_framework import status

from hotline.errors import ApplicationError


class DocType(models.TextChoices):
    ARTICLE = "article", "知识库文章"
    TICKET = "ticket", "工单"


@dataclass(frozen=True)
class SearchDocument:
    """One searchable document: a published article, or a ticket (never with the caller's personal data).

    `department_id` is the article's owning department or the ticket's (final) lead department; `kind` is the
    article kind or the ticket's appeal type; `audience` is "public" or "internal" (tickets are internal).
    """

    doc_type: str
    doc_id: int
    title: str
    text: str
    kind: str
    audience: str
    status: str
    updated_at: datetime
    category_id: int | None = None
    # The first-level category above `category_id` (itself when it is first-level), so filtering on a
    # first-level category finds what is filed under its children.
    top_category_id: int | None = None
    region_id: int | None = None
    department_id: int | None = None
    valid_from: date | None = None
    valid_until: date | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.doc_type, self.doc_id)


@dataclass(frozen=True)
class SearchFilters:
    """Narrow a search. Empty values do not filter.

    - `audience`: the document's audience ("public" finds public articles only).
    - `category_id`: that category, and the categories under it.
    - `region_id`, `department_id`: that region or department, and its whole subtree.
    - validity: documents whose validity has ended (or not begun) on `valid_on` (today in Asia/Shanghai when
      None) are left out unless `include_expired`.
    - `exclude`: (doc_type, doc_id) pairs never to return (a ticket looking for its duplicates).
    """

    audience: str | None = None
    kind: str | None = None
    statuses: tuple[str, ...] = ()
    category_id: int | None = None
    region_id: int | None = None
    department_id: int | None = None
    valid_on: date | None = None
    include_expired: bool = False
    exclude: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ResolvedFilters:
    """`SearchFilters` with the trees expanded and the date fixed: what a backend applies, as plain values."""

    doc_types: tuple[str, ...]
    audience: str | None = None
    kind: str | None = None
    statuses: tuple[str, ...] = ()
    category_id: int | None = None
    region_ids: tuple[int, ...] | None = None
    department_ids: tuple[int, ...] | None = None
    valid_on: date | None = None
    exclude: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Hit:
    """A found document. `snippet` is safe HTML: the text is escaped and the matched words are wrapped in
    <mark>…</mark>. `score` orders hits of one search; it is not comparable across backends."""

    doc_type: str
    doc_id: int
    score: float
    title: str
    snippet: str


@dataclass(frozen=True)
class QueryTerms:
    """A query as the database backend matches it: any of the groups (OR); within a group any alternative
    (the word, or a synonym); an alternative is one or more words that must all be present."""

    groups: tuple[tuple[tuple[str, ...], ...], ...] = field(default_factory=tuple)

    @property
    def words(self) -> tuple[str, ...]:
        """Every word that counts as a match, for highlighting."""
        seen: dict[str, None] = {}
        for group in self.groups:
            for alternative in group:
                for word in alternative:
                    seen.setdefault(word, None)
        return tuple(seen)


class SearchUnavailable(ApplicationError):
    """The search backend cannot be reached (Elasticsearch down or timing out). The API answers 503; writes
    never raise it (their index updates stay queued)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "search_unavailable"
