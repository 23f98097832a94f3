"""Search over knowledge-base articles and tickets: one interface, two backends.

- `search(query, doc_type=..., filters=..., limit=...)` -> ranked `Hit`s with highlighted, escaped snippets.
- `similar_tickets(text=..., ...)` -> tickets like a request being taken (duplicates, routing).
- `index_soon` / `remove_soon` inside a service's transaction; `sync()` for what could not be indexed at
  once and for ticket changes; `reindex()` rebuilds in bulk.
- `get_backend()`: the database's full text (default) or Elasticsearch (`ELASTICSEARCH_URL`).

An unreachable Elasticsearch makes `search` raise `SearchUnavailable` (HTTP 503 through the API's error
handler); there is no silent fallback to the database, whose index is not maintained alongside. Writes never
raise it: their changes stay queued.
"""

from __future__ import annotations

from dataclasses import replace

from django.utils import timezone

from hotline import clock
from ticketing.selectors import department_subtree_ids, region_subtree_ids

from .backends import backend_name, get_backend
from .indexing import SyncReport, index_soon, reindex, remove_soon, sync
from .types import DocType, Hit, ResolvedFilters, SearchDocument, SearchFilters, SearchUnavailable

__all__ = [
    "DocType",
    "Hit",
    "SearchDocument",
    "SearchFilters",
    "SearchUnavailable",
    "SyncReport",
    "backend_name",
    "get_backend",
    "index_soon",
    "reindex",
    "remove_soon",
    "resolve_filters",
    "search",
    "similar_tickets",
    "sync",
]

DEFAULT_LIMIT = 10


def resolve_filters(*, doc_type: str | None, filters: SearchFilters | None) -> ResolvedFilters:
    """Expand region and department subtrees and fix the validity date: plain values for a backend."""
    filters = filters or SearchFilters()
    if doc_type is not None and doc_type not in DocType.values:
        raise ValueError(f"unknown document type {doc_type!r}")
    region_ids = (
        tuple(sorted(region_subtree_ids(region_ids=[filters.region_id]))) if filters.region_id is not None else None
    )
    department_ids = (
        tuple(sorted(department_subtree_ids(department_ids=[filters.department_id])))
        if filters.department_id is not None
        else None
    )
    valid_on = None
    if not filters.include_expired:
        valid_on = filters.valid_on or timezone.localdate(clock.now())
    return ResolvedFilters(
        doc_types=(doc_type,) if doc_type else tuple(DocType.values),
        audience=filters.audience or None,
        kind=filters.kind or None,
        statuses=tuple(filters.statuses),
        category_id=filters.category_id,
        region_ids=region_ids,
        department_ids=department_ids,
        valid_on=valid_on,
        exclude=tuple(filters.exclude),
    )


def search(
    query: str, *, doc_type: str | None = None, filters: SearchFilters | None = None, limit: int = DEFAULT_LIMIT
) -> list[Hit]:
    """Ranked hits for `query` (Chinese words, synonyms included) among `doc_type` (None: both types).

    Visibility is the caller's to apply: ticket hits must be narrowed through `ticketing.selectors`, article
    hits through the knowledge base's selectors. Raises SearchUnavailable when the backend is unreachable.
    """
    resolved = resolve_filters(doc_type=doc_type, filters=filters)
    return get_backend().search(query, filters=resolved, limit=limit)


def similar_tickets(
    *, text: str, exclude_ticket_id: int | None = None, filters: SearchFilters | None = None, limit: int = 10
) -> list[Hit]:
    """Tickets whose text is like `text` (a request being taken: title and content), best first."""
    filters = filters or SearchFilters()
    if exclude_ticket_id is not None:
        exclude = (*filters.exclude, (DocType.TICKET.value, exclude_ticket_id))
        filters = replace(filters, exclude=exclude)
    return search(text, doc_type=DocType.TICKET, filters=filters, limit=limit)
