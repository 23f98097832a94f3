"""How the index follows committed writes, and what happens when it cannot.

Articles: the knowledge-base services call `index_soon` / `remove_soon` inside their transaction. That writes
a `SearchOutbox` row in the same transaction, so the change to index is recorded exactly when the write
commits (and not at all when it rolls back). After the commit the row is processed at once; if that fails
(Elasticsearch down), the row stays with a retry time, and `sync()` (`manage.py search_sync --loop`) indexes
it later. The write itself never fails because of the index.

Tickets: ticketing must not know about search, so the index follows the ticketing app's append-only
`TicketEvent` log instead, through a durable cursor (`SearchCursor`): `sync()` reads the events after it,
re-indexes the tickets they touched and moves the cursor in the same transaction. A failure leaves the
cursor where it was, so nothing is skipped.

Processing always reads the document's current state: a row for an article that is no longer published
removes it; several rows for one document index it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from hotline import clock
from ticketing import models as ticket_models
from ticketing.selectors import ticket_events_missed

from . import documents as search_documents
from .backends import SearchBackend, get_backend
from .models import SearchCursor, SearchOutbox
from .types import DocType, SearchUnavailable

logger = logging.getLogger(__name__)

TICKET_CURSOR = "ticket_events"
# Ticket events that change nothing a ticket's document holds (text, category, region, departments, state):
# the deadline sweeper and supervision write many of these, and none should cost a reindex.
QUIET_EVENT_KINDS = frozenset(
    {
        ticket_models.EVENT_CONTACT_VIEWED,
        ticket_models.EVENT_NOTE,
        ticket_models.EVENT_DEADLINE,
        ticket_models.EVENT_HANDED_TO_UNIT,
        ticket_models.EVENT_ASSISTING_REPLY,
        ticket_models.EVENT_ATTACHMENT,
        ticket_models.EVENT_CALLBACK,
        ticket_models.EVENT_ESCALATION,
        ticket_models.EVENT_URGED,
        ticket_models.EVENT_SUPERVISION_ISSUED,
        ticket_models.EVENT_SUPERVISION_RESPONDED,
        ticket_models.EVENT_SUPERVISION_CLOSED,
        ticket_models.EVENT_SUPERVISION_ESCALATED,
        ticket_models.EVENT_SUPERVISION_OVERDUE,
    }
)
BATCH = 500

_local = threading.local()
_pause_lock = threading.Lock()
_paused_until = 0.0


@dataclass
class SyncReport:
    indexed: int = 0
    failed: int = 0
    tickets: int = 0
    queued: int = 0
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# write side


def _pending() -> list[int]:
    if not hasattr(_local, "pending"):
        _local.pending = []
    pending: list[int] = _local.pending
    return pending


def _enqueue(doc_type: str, doc_id: int) -> None:
    if doc_type not in DocType.values:
        raise ValueError(f"unknown document type {doc_type!r}")
    now = clock.now()
    row = SearchOutbox.objects.create(doc_type=doc_type, doc_id=int(doc_id), created_at=now, next_attempt_at=now)
    _pending().append(row.pk)
    # One callback per call, but the first one to run takes every id queued in this thread: a service that
    # touches many documents gets them indexed in one batch. Ids of rows rolled back are simply not found.
    transaction.on_commit(_process_pending)


def index_soon(doc_type: str, doc_id: int) -> None:
    """Bring `doc_type` `doc_id` up to date in the index once the current transaction commits."""
    _enqueue(doc_type, doc_id)


def remove_soon(doc_type: str, doc_id: int) -> None:
    """Take the document out of the index once the current transaction commits (processing checks the
    current state, so this is the same queue as `index_soon`)."""
    _enqueue(doc_type, doc_id)


def _paused() -> bool:
    return time.monotonic() < _paused_until


def _pause() -> None:
    global _paused_until
    with _pause_lock:
        _paused_until = time.monotonic() + settings.SEARCH_UNAVAILABLE_PAUSE_SECONDS


def resume() -> None:
    """Let the write path try the index again at once (after a pause caused by an unreachable backend)."""
    global _paused_until
    with _pause_lock:
        _paused_until = 0.0


def _process_pending() -> None:
    ids = list(_pending())
    _pending().clear()
    if not ids or _paused():
        # Paused: the backend was unreachable moments ago; the rows wait for sync() instead of making every
        # write wait for a timeout.
        return
    try:
        process_outbox(ids=ids)
    except Exception:
        logger.exception("search: indexing after commit failed; the changes stay queued for search_sync")


# ---------------------------------------------------------------------------------------------------------
# applying changes


def apply_changes(keys: Iterable[tuple[str, int]], *, backend: SearchBackend | None = None) -> tuple[int, int]:
    """Make the index match the current state of these documents. Returns (indexed, removed)."""
    backend = backend or get_backend()
    by_type: dict[str, set[int]] = {}
    for doc_type, doc_id in keys:
        by_type.setdefault(doc_type, set()).add(doc_id)
    docs = [doc for doc_type, ids in by_type.items() for doc in search_documents.documents(doc_type, ids)]
    present = {doc.key for doc in docs}
    gone = [
        (doc_type, doc_id) for doc_type, ids in by_type.items() for doc_id in ids if (doc_type, doc_id) not in present
    ]
    backend.index(docs)
    backend.remove(gone)
    return len(docs), len(gone)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.SEARCH_RETRY_MAX_SECONDS, 5 * 2 ** max(0, attempts - 1)))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


@dataclass(frozen=True)
class OutboxResult:
    done: int
    failed: int
    error: str = ""


def process_outbox(*, ids: Sequence[int] | None = None, limit: int = BATCH) -> OutboxResult:
    """Index one batch of due outbox rows (all due ones, or those among `ids`) and delete them; on failure
    keep them with a later retry time. Rows another process is working on are skipped (PostgreSQL)."""
    backend = get_backend()
    now = clock.now()
    with transaction.atomic():
        rows_query = SearchOutbox.objects.filter(next_attempt_at__lte=now).order_by("id")
        if ids is not None:
            rows_query = rows_query.filter(id__in=list(ids))
        if connection.features.has_select_for_update_skip_locked:
            rows_query = rows_query.select_for_update(skip_locked=True)
        rows = list(rows_query[:limit])
        if not rows:
            return OutboxResult(0, 0)
        keys = {(row.doc_type, row.doc_id) for row in rows}
        try:
            # A savepoint: the database backend's own writes are undone with a failure.
            with transaction.atomic():
                apply_changes(keys, backend=backend)
        except Exception as error:
            for row in rows:
                row.attempts += 1
                row.next_attempt_at = now + _backoff(row.attempts)
                row.last_error = _describe(error)
            SearchOutbox.objects.bulk_update(rows, ["attempts", "next_attempt_at", "last_error"])
            if isinstance(error, SearchUnavailable):
                _pause()
                logger.warning("search: index unavailable, %d change(s) stay queued: %s", len(rows), error)
            else:
                logger.exception("search: indexing %d change(s) failed; they stay queued", len(rows))
            return OutboxResult(0, len(rows), _describe(error))
        SearchOutbox.objects.filter(id__in=[row.pk for row in rows]).delete()
    return OutboxResult(len(rows), 0)


# ---------------------------------------------------------------------------------------------------------
# tickets, through the ticket-event cursor


def _locked_cursor() -> SearchCursor:
    try:
        with transaction.atomic():
            SearchCursor.objects.get_or_create(name=TICKET_CURSOR, defaults={"updated_at": clock.now()})
    except IntegrityError:
        pass  # another process created it first
    return SearchCursor.objects.select_for_update().get(name=TICKET_CURSOR)


def sync_tickets_batch(*, limit: int = 1000) -> tuple[int, bool]:
    """Index the tickets touched by the next `limit` ticket events; returns (tickets indexed, more to read).

    Raises when the index cannot be updated; the cursor then stays where it was."""
    backend = get_backend()
    grace = timedelta(seconds=settings.SEARCH_TICKET_GRACE_SECONDS)
    with transaction.atomic():
        cursor = _locked_cursor()
        missed = ticket_events_missed(scope=Q(), after=cursor.last_event_id, grace=grace, limit=limit)
        recent: dict[int, str] = {int(event_id): at for event_id, at in (cursor.recent or {}).items()}
        fresh = [event for event in missed.events if event.pk not in recent]
        ticket_ids = {event.ticket_id for event in fresh if event.kind not in QUIET_EVENT_KINDS}
        if ticket_ids:
            apply_changes(((DocType.TICKET, ticket_id) for ticket_id in ticket_ids), backend=backend)
        for event in fresh:
            recent[event.pk] = event.created_at.isoformat()
        if recent:
            newest = max(datetime.fromisoformat(at) for at in recent.values())
            recent = {
                event_id: at
                for event_id, at in recent.items()
                if event_id <= missed.last_event_id and datetime.fromisoformat(at) >= newest - grace
            }
        cursor.last_event_id = missed.last_event_id
        cursor.recent = {str(event_id): at for event_id, at in sorted(recent.items())}
        cursor.updated_at = clock.now()
        cursor.save(update_fields=["last_event_id", "recent", "updated_at"])
    return len(ticket_ids), missed.truncated


def newest_ticket_event_id() -> int:
    return ticket_events_missed(scope=Q(), after=None, grace=timedelta(0), limit=0).last_event_id


def move_ticket_cursor(*, to_event_id: int) -> None:
    """After a full ticket rebuild: events after `to_event_id` are followed from there."""
    with transaction.atomic():
        cursor = _locked_cursor()
        cursor.last_event_id, cursor.recent, cursor.updated_at = to_event_id, {}, clock.now()
        cursor.save(update_fields=["last_event_id", "recent", "updated_at"])


# ---------------------------------------------------------------------------------------------------------
# sync and rebuild


def sync(*, limit: int = BATCH) -> SyncReport:
    """Index everything that is due: queued article changes (including earlier failures whose retry time has
    come) and tickets changed since the cursor. Safe to run from several processes at once."""
    report = SyncReport()
    while True:
        result = process_outbox(limit=limit)
        report.indexed += result.done
        report.failed += result.failed
        if result.error:
            report.errors.append(result.error)
        if result.done + result.failed < limit or result.failed:
            break
    while True:
        try:
            tickets, more = sync_tickets_batch(limit=limit * 2)
        except Exception as error:
            if isinstance(error, SearchUnavailable):
                _pause()
            else:
                logger.exception("search: following ticket events failed; the cursor stays")
            report.errors.append(_describe(error))
            break
        report.tickets += tickets
        if not more:
            break
    report.queued = SearchOutbox.objects.count()
    return report


def reindex(
    *, doc_types: Sequence[str] = tuple(DocType.values), progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Rebuild the index of each document type from the database, in bulk.

    Changes committed while a rebuild runs are not lost: article changes stay in the outbox until processed,
    and the ticket cursor is moved back to the newest event seen before the rebuild read anything."""
    backend = get_backend()
    counts: dict[str, int] = {}
    for doc_type in doc_types:
        start_event = newest_ticket_event_id() if doc_type == DocType.TICKET else None

        def step(done: int, doc_type: str = doc_type) -> None:
            if progress is not None:
                progress(doc_type, done)

        counts[doc_type] = backend.rebuild(doc_type, search_documents.documents(doc_type), progress=step)
        if start_event is not None:
            move_ticket_cursor(to_event_id=start_event)
    return counts
