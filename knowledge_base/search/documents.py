"""Search documents built from their source rows, in bulk (a fixed number of queries per batch).

Articles are searchable while published; their category and tags are part of their text. Tickets are
searchable once submitted (drafts belong to the call being taken); their text is the title, the request, the
place and the reply, with the caller's personal data taken out: the caller's name, phone and ID number never
reach the index, and neither does anything in the text that looks like a phone number, an ID number or an
e-mail address (callers dictate their number into the request).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Prefetch, QuerySet

from ticketing.models import Category, Ticket
from ticketing.workflow import Status

from ..models import BODY_FIELDS, Article, ArticleStatus, Audience, Tag
from .types import DocType, SearchDocument

# Mobile numbers, landlines (with or without area code, optional extension), mainland ID numbers (18 or the
# old 15 digits) and e-mail addresses: one pattern, so a text is scanned once (the first that fits at a place
# wins, in this order).
_PERSONAL_PATTERN = re.compile(
    "|".join(
        f"(?:{pattern})"
        for pattern in (
            r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9])",
            r"(?<![0-9])(?:0[0-9]{2,3}[- ]?)?[2-9][0-9]{6,7}(?:-[0-9]{1,5})?(?![0-9])",
            r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])",
            r"(?<![0-9])[1-9][0-9]{14}(?![0-9])",
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        )
    )
)
MASK = "＊"

ARTICLE_FIELDS = BODY_FIELDS


def scrub_personal_data(text: str, *, names: Iterable[str] = (), numbers: Iterable[str] = ()) -> str:
    """`text` without the given names and numbers, nor anything shaped like a phone, ID number or e-mail."""
    for value in sorted({n.strip() for n in numbers if n and len(n.strip()) >= 5}, key=len, reverse=True):
        text = text.replace(value, MASK)
    # A one-character name would blank out an ordinary character everywhere in the text.
    for value in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _PERSONAL_PATTERN.sub(MASK, text)


def _category_names(category: Category | None) -> list[str]:
    if category is None:
        return []
    return [category.parent.name, category.name] if category.parent_id and category.parent else [category.name]


def _top_category_id(category: Category | None) -> int | None:
    if category is None:
        return None
    return category.parent_id or category.id


def _join(*parts: str) -> str:
    return "\n".join(part.strip() for part in parts if part and part.strip())


def articles_for_index(ids: Iterable[int] | None = None) -> QuerySet[Article]:
    """Published articles (all, or those among `ids`), with what their documents need."""
    articles = Article.objects.filter(status=ArticleStatus.PUBLISHED)
    if ids is not None:
        articles = articles.filter(pk__in=list(ids))
    return (
        articles.select_related("category__parent")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .order_by("pk")
    )


def article_document(article: Article) -> SearchDocument:
    return SearchDocument(
        doc_type=DocType.ARTICLE,
        doc_id=article.pk,
        title=article.title,
        text=_join(
            *(getattr(article, name) for name in ARTICLE_FIELDS),
            " ".join(_category_names(article.category)),
            " ".join(tag.name for tag in article.tags.all()),
        ),
        kind=article.kind,
        audience=article.audience or Audience.INTERNAL,
        status=article.status,
        updated_at=article.updated_at,
        category_id=article.category_id,
        top_category_id=_top_category_id(article.category),
        department_id=article.owner_department_id,
        valid_from=article.valid_from,
        valid_until=article.valid_until,
    )


# What a ticket document reads (as plain values: a rebuild reads every ticket, and model instances cost more
# than the rest of building the document): the caller's fields only so that they can be taken out of the text.
TICKET_VALUES = (
    "id",
    "status",
    "appeal_type",
    "title",
    "content",
    "location_text",
    "reply_text",
    "category_id",
    "category__name",
    "category__parent_id",
    "category__parent__name",
    "region_id",
    "region__name",
    "lead_department_id",
    "updated_at",
    "caller_name",
    "caller_phone",
    "caller_id_number",
)


def tickets_for_index(ids: Iterable[int] | None = None) -> QuerySet[Ticket, dict[str, Any]]:
    """Submitted tickets (all, or those among `ids`), as the values their documents need."""
    tickets = Ticket.objects.exclude(status=Status.DRAFT)
    if ids is not None:
        tickets = tickets.filter(pk__in=list(ids))
    return tickets.order_by("pk").values(*TICKET_VALUES)


def ticket_document(ticket: dict[str, Any]) -> SearchDocument:
    """The document of a ticket read by `tickets_for_index`."""
    names = [ticket["caller_name"]]
    numbers = [ticket["caller_phone"], ticket["caller_id_number"]]

    def clean(value: str) -> str:
        return scrub_personal_data(value, names=names, numbers=numbers)

    category_names = [ticket["category__parent__name"], ticket["category__name"]]
    return SearchDocument(
        doc_type=DocType.TICKET,
        doc_id=ticket["id"],
        title=clean(ticket["title"]),
        text=_join(
            clean(ticket["content"]),
            clean(ticket["location_text"]),
            ticket["region__name"] or "",
            " ".join(name for name in category_names if name),
            clean(ticket["reply_text"]),
        ),
        kind=ticket["appeal_type"],
        audience=Audience.INTERNAL,
        status=ticket["status"],
        updated_at=ticket["updated_at"],
        category_id=ticket["category_id"],
        top_category_id=ticket["category__parent_id"] or ticket["category_id"],
        region_id=ticket["region_id"],
        department_id=ticket["lead_department_id"],
    )


def documents(doc_type: str, ids: Iterable[int] | None = None, *, batch_size: int = 500) -> Iterator[SearchDocument]:
    """The documents of `doc_type` that belong in the index (all, or those among `ids`), in id order.

    Read in batches by id, each batch with its related rows, so memory stays flat over a full rebuild.
    """
    wanted = None if ids is None else sorted(set(ids))
    last_id = 0
    while True:
        if doc_type == DocType.ARTICLE:
            article_rows = articles_for_index(wanted).filter(pk__gt=last_id)[:batch_size]
            batch = [article_document(article) for article in article_rows]
        elif doc_type == DocType.TICKET:
            ticket_rows = tickets_for_index(wanted).filter(pk__gt=last_id)[:batch_size]
            batch = [ticket_document(ticket) for ticket in ticket_rows]
        else:
            raise ValueError(f"unknown document type {doc_type!r}")
        yield from batch
        if len(batch) < batch_size:
            return
        last_id = batch[-1].doc_id


def count(doc_type: str) -> int:
    """How many documents a full rebuild of `doc_type` will index (for the progress bar)."""
    if doc_type == DocType.ARTICLE:
        return Article.objects.filter(status=ArticleStatus.PUBLISHED).count()
    return Ticket.objects.exclude(status=Status.DRAFT).count()
