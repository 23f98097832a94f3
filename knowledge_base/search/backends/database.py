"""The embedded search backend: the project's own database, over jieba-segmented words.

- SQLite: an FTS5 table (`knowledge_base_search_fts`, external content on `SearchEntry`, kept in step by
  triggers), ranked with bm25.
- PostgreSQL: a generated tsvector column (`search_vector`, 'simple' configuration, title weighted A and text
  B) with a GIN index, ranked with ts_rank_cd.

Both match any query word or its synonyms (OR; on a large index the rarest words pick the candidates, see
`selecting_groups`), and rank documents with more, rarer and title matches first (`coordination`). Snippets
are cut from the stored text in Python (`text.snippet`), the same way on both databases.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Max, Min

from hotline import clock

from .. import text as search_text
from ..models import SearchEntry
from ..types import DocType, Hit, QueryTerms, ResolvedFilters, SearchDocument
from . import Progress

logger = logging.getLogger(__name__)

FTS_TABLE = "knowledge_base_search_fts"
ENTRY_TABLE = SearchEntry._meta.db_table
UPDATE_FIELDS = [
    field.name
    for field in SearchEntry._meta.concrete_fields
    if not field.primary_key and field.name not in ("doc_type", "doc_id")
]
BATCH = 500


def _segment(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(title, text) -> (title words, text words); module level so that worker processes can run it."""
    return [(search_text.index_terms(title), search_text.index_terms(body)) for title, body in pairs]


def _values(document: SearchDocument, terms: tuple[str, str], now: Any) -> dict[str, Any]:
    """An entry's column values by attribute name (a model instance, or a row for COPY, is built from them)."""
    return {
        "doc_type": document.doc_type,
        "doc_id": document.doc_id,
        "title": document.title[:300],
        "text": document.text,
        "title_terms": terms[0],
        "text_terms": terms[1],
        "kind": document.kind,
        "audience": document.audience,
        "status": document.status,
        "category_id": document.category_id,
        "top_category_id": document.top_category_id,
        "region_id": document.region_id,
        "department_id": document.department_id,
        "valid_from": document.valid_from,
        "valid_until": document.valid_until,
        "updated_at": document.updated_at,
        "indexed_at": now,
    }


def _entry(document: SearchDocument, terms: tuple[str, str], now: Any) -> SearchEntry:
    return SearchEntry(**_values(document, terms, now))


def _batches(documents: Iterable[SearchDocument], size: int) -> Iterator[list[SearchDocument]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch


Segmented = list[tuple[SearchDocument, tuple[str, str]]]


def segmented(
    documents: Iterable[SearchDocument], *, workers: int | None = None, ahead: int = 0
) -> Iterator[Segmented]:
    """`documents` with their (title words, text words), a batch at a time, in order.

    Segmentation is the expensive part of indexing, so past the first batch it runs on a pool of worker
    processes (`SEARCH_INDEX_WORKERS`, default one per core), forked with the dictionary already loaded. At
    most two batches per worker, plus `ahead` more, are in flight, so memory stays flat: `ahead` lets the
    workers cut the next chunk while the caller writes this one.
    """
    workers = workers or settings.SEARCH_INDEX_WORKERS or os.cpu_count() or 1
    batches = _batches(documents, BATCH)
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    if second is None or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for batch in chain([first], [second] if second else [], batches):
            yield list(zip(batch, _segment([(d.title, d.text) for d in batch]), strict=True))
        return
    search_text.tokenizer()  # loaded once here, inherited by the forked workers
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[list[SearchDocument], Future[list[tuple[str, str]]]]] = deque()
        for batch in chain([first, second], batches):
            pending.append((batch, pool.submit(_segment, [(d.title, d.text) for d in batch])))
            while len(pending) >= 2 * workers + ahead:
                done, future = pending.popleft()
                yield list(zip(done, future.result(), strict=True))
        while pending:
            done, future = pending.popleft()
            yield list(zip(done, future.result(), strict=True))


# (attribute, column) of every stored field but the id, in the order COPY is given them.
# (attribute, column) of every stored field but the id, in the order COPY is given them.
COPY_FIELDS = [(field.attname, field.column) for field in SearchEntry._meta.concrete_fields if not field.primary_key]
COPY_CHUNK = 5000
COPY_STATEMENT = (
    f"COPY {ENTRY_TABLE} ({', '.join(connection.ops.quote_name(column) for _, column in COPY_FIELDS)}) FROM STDIN"
)


def _row_chunks(documents: Iterable[SearchDocument]) -> Iterator[list[list[Any]]]:
    """COPY rows for `documents`, `COPY_CHUNK` at a time; the workers segment the next chunk meanwhile."""
    now = clock.now()
    chunk: list[list[Any]] = []
    for pairs in segmented(documents, ahead=COPY_CHUNK // BATCH):
        for document, terms in pairs:
            values = _values(document, terms, now)
            chunk.append([values[name] for name, _ in COPY_FIELDS])
        if len(chunk) >= COPY_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy_in_turns(doc_type: str, documents: Iterable[SearchDocument], progress: Progress) -> int:
    """The rebuild inside the caller's transaction (tests, evaluations): delete, then a COPY per chunk. The
    documents are read on this same connection, which cannot run a query while a COPY is open, so reading
    and writing take turns."""
    written = 0
    with transaction.atomic():
        SearchEntry.objects.filter(doc_type=doc_type).delete()
        for chunk in _row_chunks(documents):
            with connection.cursor() as cursor, cursor.copy(COPY_STATEMENT) as copy:
                for row in chunk:
                    copy.write_row(row)
            written += len(chunk)
            progress(len(chunk))
    return written


class _WriterFailed(Exception):
    pass


def _copy_alongside(doc_type: str, documents: Iterable[SearchDocument], progress: Progress) -> int:
    """The rebuild with its own connection: a writer thread deletes the old entries and streams one COPY of the
    new ones on a second connection, in one transaction there, while this thread reads the documents on the
    usual connection and the workers segment them. The server stores (computing vectors and the GIN index)
    while the next chunk is read, instead of after it. Searches see the old entries until the writer commits.
    Either side failing rolls the writer's transaction back; at most two chunks wait between them."""
    chunks: queue.Queue[list[list[Any]] | None] = queue.Queue(maxsize=2)
    failures: list[BaseException] = []
    abandon = threading.Event()

    def write() -> None:
        writer = connections.create_connection(DEFAULT_DB_ALIAS)
        ended = False  # the reader's last put (None) has been taken
        try:
            writer.ensure_connection()
            raw = writer.connection
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute(f"DELETE FROM {ENTRY_TABLE} WHERE doc_type = %s", [doc_type])  # noqa: S608
                with cursor.copy(COPY_STATEMENT) as copy:
                    while (chunk := chunks.get()) is not None:
                        for row in chunk:
                            copy.write_row(row)
                    ended = True
                    if abandon.is_set():
                        raise _WriterFailed("rebuild abandoned: the documents could not all be read")
        except BaseException as error:  # handed to the reading thread, which raises it
            failures.append(error)
            while not ended:  # take what the reader still puts, so it never blocks
                ended = chunks.get() is None
        finally:
            writer.close()

    thread = threading.Thread(target=write, name=f"search-rebuild-{doc_type}", daemon=True)
    thread.start()
    written = 0
    try:
        for chunk in _row_chunks(documents):
            if failures:
                break
            chunks.put(chunk)
            written += len(chunk)
            progress(len(chunk))
    except BaseException:
        abandon.set()
        raise
    finally:
        chunks.put(None)
        thread.join()
    if failures and not isinstance(failures[0], _WriterFailed):
        raise failures[0]
    return written


Groups = Sequence[tuple[tuple[str, ...], ...]]


def fts5_match(groups: Groups, *, every: bool = False) -> str:
    """An FTS5 MATCH expression: any group (every group when `every`); within a group any alternative; an
    alternative's words all present."""

    def quoted(word: str) -> str:
        return '"' + word.replace('"', '""') + '"'

    parts = []
    for group in groups:
        alternatives = [" AND ".join(quoted(word) for word in alternative) for alternative in group]
        parts.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
    return (" AND " if every else " OR ").join(parts)


def tsquery_sql(groups: Groups, *, every: bool = False) -> tuple[str, list[str]]:
    """The same as a tsquery, each alternative parsed by PostgreSQL's own parser (its words ANDed)."""
    parts: list[str] = []
    params: list[str] = []
    for group in groups:
        alternatives = []
        for alternative in group:
            alternatives.append("plainto_tsquery('simple', %s)")
            params.append(" ".join(alternative))
        parts.append("(" + " || ".join(alternatives) + ")")
    return "(" + (" && " if every else " || ").join(parts) + ")", params


@dataclass(frozen=True)
class WordStats:
    """How many documents hold each word, as a share, from a random sample of the index (refreshed every
    `SEARCH_WORD_STATS_SECONDS`); a word missing from the sample counts as rare."""

    documents: int
    shares: dict[str, float]
    computed_at: float

    def share(self, group: tuple[tuple[str, ...], ...]) -> float:
        # Any alternative matches; an alternative of several words is as rare as its rarest word.
        return sum(min(self.shares.get(word, 0.0) for word in alternative) for alternative in group)


_stats_lock = threading.Lock()
_stats: WordStats | None = None
SAMPLE = 2000


def word_stats() -> WordStats:
    global _stats
    stats = _stats
    if stats is not None and time.monotonic() - stats.computed_at < settings.SEARCH_WORD_STATS_SECONDS:
        return stats
    with _stats_lock:
        bounds = SearchEntry.objects.aggregate(low=Min("id"), high=Max("id"))
        low, high = bounds["low"], bounds["high"]
        if low is None or high is None:
            stats = WordStats(documents=0, shares={}, computed_at=time.monotonic())
        else:
            span = high - low + 1
            # Random ids in the id range: a primary-key lookup each, the same on SQLite and PostgreSQL.
            ids = random.sample(range(low, high + 1), min(SAMPLE, span))
            counts: Counter[str] = Counter()
            found = 0
            for title_terms, text_terms in SearchEntry.objects.filter(id__in=ids).values_list(
                "title_terms", "text_terms"
            ):
                found += 1
                counts.update(set(title_terms.split()) | set(text_terms.split()))
            stats = WordStats(
                documents=round(found / len(ids) * span),
                shares={word: count / max(found, 1) for word, count in counts.items()},
                computed_at=time.monotonic(),
            )
        _stats = stats
    return stats


def selecting_groups(terms: QueryTerms) -> tuple[Groups, bool]:
    """The groups that pick candidates, and whether all of them must match.

    On a large index, ranking every document that holds any query word is what costs: a common word (小区,
    问题, 反映) makes a good share of the index a candidate. Like Elasticsearch's common-terms query and
    more-like-this: the rarest words (none in `SEARCH_COMMON_WORD_SHARE` or more of the documents, rarest
    first while they are expected to match at most `SEARCH_MAX_CANDIDATES` documents) pick the candidates,
    and every word still counts when ranking them (coordination); a query of common words only needs all of
    them. A small index (tests, a new deployment) keeps plain OR: there every word looks common, and there is
    nothing to save.

    Measured with `evaluate_answers` on the 2,812 replies (message bodies as queries), this is also better
    than ranking every candidate: recall@1 0.690 against 0.672, recall@5 0.846 against 0.830."""
    stats = word_stats()
    if stats.documents < settings.SEARCH_COMMON_WORD_MIN_DOCUMENTS:
        return terms.groups, False
    rare = [group for group in terms.groups if stats.share(group) < settings.SEARCH_COMMON_WORD_SHARE]
    if not rare:
        return terms.groups, len(terms.groups) > 1
    rare.sort(key=stats.share)
    # Rarest first, while the documents they are expected to match stay within the candidate budget.
    chosen: list[tuple[tuple[str, ...], ...]] = []
    expected = 0.0
    for group in rare:
        expected += stats.share(group) * stats.documents
        if chosen and expected > settings.SEARCH_MAX_CANDIDATES:
            break
        chosen.append(group)
    return chosen, False


def filter_sql(filters: ResolvedFilters, *, vendor: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []

    def among(column: str, values: Sequence[Any]) -> None:
        if not values:
            clauses.append("1 = 0")
            return
        clauses.append(f"e.{column} IN ({', '.join(['%s'] * len(values))})")
        params.extend(values)

    if set(filters.doc_types) != set(DocType.values):
        among("doc_type", filters.doc_types)
    if filters.audience:
        clauses.append("e.audience = %s")
        params.append(filters.audience)
    if filters.kind:
        clauses.append("e.kind = %s")
        params.append(filters.kind)
    if filters.statuses:
        among("status", filters.statuses)
    if filters.category_id is not None:
        clauses.append("(e.category_id = %s OR e.top_category_id = %s)")
        params.extend([filters.category_id, filters.category_id])
    if filters.region_ids is not None:
        among("region_id", filters.region_ids)
    if filters.department_ids is not None:
        among("department_id", filters.department_ids)
    if filters.valid_on is not None:
        day = filters.valid_on.isoformat() if vendor == "sqlite" else filters.valid_on
        clauses.append(
            "(e.valid_until IS NULL OR e.valid_until >= %s) AND (e.valid_from IS NULL OR e.valid_from <= %s)"
        )
        params.extend([day, day])
    for doc_type, doc_id in filters.exclude:
        clauses.append("NOT (e.doc_type = %s AND e.doc_id = %s)")
        params.extend([doc_type, doc_id])
    return " AND ".join(clauses) or "1 = 1", params


def coordination(terms: QueryTerms, title_terms: str, text_terms: str) -> float:
    """The share of the query's word groups present in an entry (any alternative, with all its words)."""
    padded = f" {title_terms} {text_terms} "
    matched = sum(
        1 for group in terms.groups if any(all(f" {w} " in padded for w in alternative) for alternative in group)
    )
    return matched / len(terms.groups)


class DatabaseBackend:
    name = "database"

    def _vendor(self) -> str:
        if connection.vendor not in ("sqlite", "postgresql"):
            raise ImproperlyConfigured(
                f"the database search backend supports SQLite and PostgreSQL, not {connection.vendor}"
            )
        return connection.vendor

    def index(self, documents: Sequence[SearchDocument]) -> None:
        if not documents:
            return
        now = clock.now()
        terms = _segment([(d.title, d.text) for d in documents])
        entries = [_entry(d, t, now) for d, t in zip(documents, terms, strict=True)]
        # On SQLite the upsert's UPDATE fires the trigger that replaces the FTS row; on PostgreSQL the
        # generated column follows by itself.
        SearchEntry.objects.bulk_create(
            entries,
            update_conflicts=True,
            unique_fields=["doc_type", "doc_id"],
            update_fields=UPDATE_FIELDS,
            batch_size=BATCH,
        )

    def remove(self, keys: Iterable[tuple[str, int]]) -> None:
        by_type: dict[str, list[int]] = {}
        for doc_type, doc_id in keys:
            by_type.setdefault(doc_type, []).append(doc_id)
        for doc_type, ids in by_type.items():
            SearchEntry.objects.filter(doc_type=doc_type, doc_id__in=ids).delete()

    def count(self, doc_type: str) -> int:
        return SearchEntry.objects.filter(doc_type=doc_type).count()

    def rebuild(self, doc_type: str, documents: Iterable[SearchDocument], *, progress: Progress) -> int:
        """In one transaction: searches see the old entries until the new ones are all in place."""
        self._vendor()
        if connection.vendor == "postgresql":
            if connection.in_atomic_block:
                return _copy_in_turns(doc_type, documents, progress)
            indexed = _copy_alongside(doc_type, documents, progress)
            # Fresh statistics, so the planner knows the new table (and picks the GIN index) at once.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {ENTRY_TABLE}")
            return indexed
        indexed = 0
        now = clock.now()
        with transaction.atomic():
            SearchEntry.objects.filter(doc_type=doc_type).delete()
            for pairs in segmented(documents):
                SearchEntry.objects.bulk_create([_entry(d, t, now) for d, t in pairs], batch_size=BATCH)
                indexed += len(pairs)
                progress(len(pairs))
        return indexed

    def _candidates(
        self, vendor: str, groups: Groups, *, every: bool, where: str, where_params: list[Any], window: int
    ) -> dict[int, float]:
        """Entry ids and the engine's score for the best `window` matches of `groups`."""
        if vendor == "sqlite":
            weight = float(settings.SEARCH_TITLE_WEIGHT)
            # bm25: lower is better; the score given back is its negation.
            sql = (
                f"SELECT e.id, -bm25({FTS_TABLE}, %s, 1.0) AS score"  # noqa: S608 (table names are ours)
                f" FROM {FTS_TABLE} JOIN {ENTRY_TABLE} e ON e.id = {FTS_TABLE}.rowid"
                f" WHERE {FTS_TABLE} MATCH %s AND {where}"
                f" ORDER BY bm25({FTS_TABLE}, %s, 1.0) LIMIT %s"
            )
            params: list[Any] = [weight, fts5_match(groups, every=every), *where_params, weight, window]
        else:
            query, query_params = tsquery_sql(groups, every=every)
            title, body = 1.0, 1.0 / float(settings.SEARCH_TITLE_WEIGHT)
            # Weights are given as {D, C, B, A}: the title is A, the text B. Normalization 1 divides by
            # 1 + log(length), so long texts do not win by length alone. The query is written out in both
            # places rather than taken from a subquery: only a constant expression lets the planner use the
            # GIN index (a subquery's column made it read and decompress every vector). Ranking reads each
            # candidate's vector, so the inner query caps the candidates at the budget (the most recently
            # changed first; `selecting_groups` keeps ordinary queries under it): matching alone only needs the
            # index and the narrow heap row.
            sql = (
                f"SELECT e.id, ts_rank_cd('{{0, 0, {body}, {title}}}', e.search_vector, {query}, 1) AS score"  # noqa: S608
                f" FROM {ENTRY_TABLE} e WHERE e.id IN ("
                f"SELECT e.id FROM {ENTRY_TABLE} e WHERE e.search_vector @@ {query} AND {where}"
                f" ORDER BY e.updated_at DESC LIMIT %s)"
                f" ORDER BY score DESC, e.id LIMIT %s"
            )
            params = [*query_params, *query_params, *where_params, settings.SEARCH_MAX_CANDIDATES, window]
        if vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return {row[0]: float(row[1]) for row in cursor.fetchall()}
        # PostgreSQL's planner prices `@@` as if vectors were small, not TOASTed, and reads (and decompresses)
        # every one of them in a sequential scan once a query's words look a little common. The GIN index is
        # always the better path here, so sequential scans are off for this one statement: set locally in
        # a transaction of its own (or a savepoint) and put back to what it was.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
            (previous, _) = cursor.fetchone()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [previous])
        return {row[0]: float(row[1]) for row in rows}

    def search(self, text: str, *, filters: ResolvedFilters, limit: int) -> list[Hit]:
        vendor = self._vendor()
        terms = search_text.query_terms(text)
        if not terms.groups or limit <= 0:
            return []
        where, where_params = filter_sql(filters, vendor=vendor)
        # The engine's ranking picks a window of candidates; the final order multiplies in the share of the
        # query's words each one has (classic coordination), so a document with more of the words wins even
        # where bm25 gives a word in half of a small index no weight, and PostgreSQL, whose ranking has no
        # inverse document frequency, does not favour a document repeating one word.
        window = min(max(3 * limit, 60), 1000)
        groups, every = selecting_groups(terms)
        ranked = self._candidates(vendor, groups, every=every, where=where, where_params=where_params, window=window)
        if not ranked and every:
            ranked = self._candidates(
                vendor, groups, every=False, where=where, where_params=where_params, window=window
            )
        # Only the words of the candidates, then the text of the winners: texts are the big part of a row.
        scored = sorted(
            (
                (ranked[entry_id] * coordination(terms, title_terms, text_terms), entry_id)
                for entry_id, title_terms, text_terms in SearchEntry.objects.filter(id__in=list(ranked)).values_list(
                    "id", "title_terms", "text_terms"
                )
            ),
            key=lambda item: (-item[0], item[1]),
        )[:limit]
        entries = SearchEntry.objects.only("id", "doc_type", "doc_id", "title", "text").in_bulk(
            [entry_id for _, entry_id in scored]
        )
        words = terms.words
        return [
            Hit(
                doc_type=entries[entry_id].doc_type,
                doc_id=entries[entry_id].doc_id,
                score=score,
                title=entries[entry_id].title,
                snippet=search_text.snippet(entries[entry_id].text, words),
            )
            for score, entry_id in scored
            if entry_id in entries
        ]
