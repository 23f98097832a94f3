"""The Elasticsearch backend (servers 7.10+ and 8.x), through the official client.

Only the keyword API that the 7.17 and 8.x client lines share is used: body fields as keyword arguments
where 7.17 already has them (`search`, `indices.create`), `body=` where it has nothing else
(`indices.put_index_template`, `indices.update_aliases`, `indices.put_settings`), and the bulk helpers.
Client construction differs (`timeout` became `request_timeout` in 8.0) and is the one place that looks at
the client's version. An 8.x client cannot talk to a 7.x server: there install `elasticsearch>=7.17,<8`.

Layout: one alias per document type, `<prefix>-article` and `<prefix>-ticket`, in front of a concrete index
`<alias>-<timestamp>`; an index template (`<prefix>-search`) gives every such index its analyzer and mapping.
A rebuild fills a new index (refresh off, no replicas), then moves the alias in one atomic `_aliases` call;
while it runs, every update also goes to the new index (`SearchIndexBuild`). Documents carry their
`updated_at` as an external version, so a rebuild's older copy never overwrites a newer update.

The query and mapping are built by pure functions below, tested without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from django.conf import settings

from hotline import clock

from .. import text as search_text
from ..models import SearchIndexBuild
from ..types import DocType, Hit, ResolvedFilters, SearchDocument, SearchUnavailable
from . import Progress

logger = logging.getLogger(__name__)

T = TypeVar("T")

BULK_CHUNK = 500
SOURCE_FIELDS = ["doc_type", "doc_id", "title"]


# ---------------------------------------------------------------------------------------------------------
# pure functions: names, template, documents, queries, responses


def alias_name(doc_type: str, *, prefix: str) -> str:
    return f"{prefix}-{doc_type}"


def template_name(*, prefix: str) -> str:
    return f"{prefix}-search"


def new_index_name(doc_type: str, *, prefix: str, now: datetime) -> str:
    return f"{alias_name(doc_type, prefix=prefix)}-{now.astimezone(UTC):%Y%m%d%H%M%S%f}"


def index_template(*, prefix: str, analyzer: str, search_analyzer: str, replicas: int) -> dict[str, Any]:
    """The composable index template (ES 7.8+) every index of ours gets its settings and mapping from."""
    text = {"type": "text", "analyzer": analyzer, "search_analyzer": search_analyzer or analyzer}
    return {
        "index_patterns": [f"{alias_name(doc_type, prefix=prefix)}-*" for doc_type in DocType.values],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": replicas},
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "doc_type": {"type": "keyword"},
                    "doc_id": {"type": "long"},
                    "title": text,
                    "text": text,
                    "kind": {"type": "keyword"},
                    "audience": {"type": "keyword"},
                    "status": {"type": "keyword"},
                    "category_id": {"type": "long"},
                    "top_category_id": {"type": "long"},
                    "region_id": {"type": "long"},
                    "department_id": {"type": "long"},
                    "valid_from": {"type": "date", "format": "strict_date"},
                    "valid_until": {"type": "date", "format": "strict_date"},
                    "updated_at": {"type": "date"},
                },
            },
        },
        "_meta": {"managed_by": "hotline knowledge_base.search"},
    }


def document_id(doc_type: str, doc_id: int) -> str:
    return f"{doc_type}:{doc_id}"


def document_source(document: SearchDocument) -> dict[str, Any]:
    return {
        "doc_type": document.doc_type,
        "doc_id": document.doc_id,
        "title": document.title,
        "text": document.text,
        "kind": document.kind,
        "audience": document.audience,
        "status": document.status,
        "category_id": document.category_id,
        "top_category_id": document.top_category_id,
        "region_id": document.region_id,
        "department_id": document.department_id,
        "valid_from": document.valid_from.isoformat() if document.valid_from else None,
        "valid_until": document.valid_until.isoformat() if document.valid_until else None,
        "updated_at": document.updated_at.isoformat(),
    }


def document_version(document: SearchDocument) -> int:
    """Microseconds since the epoch of the source row's last change: newer always wins."""
    return int(document.updated_at.timestamp() * 1_000_000)


def index_actions(documents: Iterable[SearchDocument], *, indices: Sequence[str]) -> Iterator[dict[str, Any]]:
    for document in documents:
        for index in indices:
            yield {
                "_op_type": "index",
                "_index": index,
                "_id": document_id(document.doc_type, document.doc_id),
                "version": document_version(document),
                # external_gte: the same version again (a retry, a rebuild) is accepted, an older one is not.
                "version_type": "external_gte",
                "_source": document_source(document),
            }


def delete_actions(keys: Iterable[tuple[str, int]], *, indices: Sequence[str]) -> Iterator[dict[str, Any]]:
    for doc_type, doc_id in keys:
        for index in indices:
            yield {"_op_type": "delete", "_index": index, "_id": document_id(doc_type, doc_id)}


def filter_clauses(filters: ResolvedFilters) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(filter, must_not) clauses with the same meaning as the database backend's WHERE."""
    clauses: list[dict[str, Any]] = [{"terms": {"doc_type": list(filters.doc_types)}}]
    if filters.audience:
        clauses.append({"term": {"audience": filters.audience}})
    if filters.kind:
        clauses.append({"term": {"kind": filters.kind}})
    if filters.statuses:
        clauses.append({"terms": {"status": list(filters.statuses)}})
    if filters.category_id is not None:
        clauses.append(
            {
                "bool": {
                    "should": [
                        {"term": {"category_id": filters.category_id}},
                        {"term": {"top_category_id": filters.category_id}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    if filters.region_ids is not None:
        clauses.append({"terms": {"region_id": list(filters.region_ids)}})
    if filters.department_ids is not None:
        clauses.append({"terms": {"department_id": list(filters.department_ids)}})
    if filters.valid_on is not None:
        day = filters.valid_on.isoformat()
        for field, bound in (("valid_until", "gte"), ("valid_from", "lte")):
            clauses.append(
                {
                    "bool": {
                        "should": [
                            {"bool": {"must_not": {"exists": {"field": field}}}},
                            {"range": {field: {bound: day}}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            )
    must_not: list[dict[str, Any]] = []
    if filters.exclude:
        must_not.append({"ids": {"values": [document_id(t, i) for t, i in filters.exclude]}})
    return clauses, must_not


def search_body(
    *,
    text: str,
    expansions: Sequence[str],
    filters: ResolvedFilters,
    limit: int,
    title_weight: float,
    snippet_chars: int,
) -> dict[str, Any]:
    """Keyword arguments for `client.search`: the query, any synonym as another way to match, the filters,
    and highlighting (HTML-escaped, matches in <mark>, the text's beginning when nothing in it matched)."""
    fields = [f"title^{title_weight:g}", "text"]
    should = [
        {"multi_match": {"query": phrase, "fields": fields, "type": "best_fields", "tie_breaker": 0.3}}
        for phrase in [text, *expansions]
    ]
    clauses, must_not = filter_clauses(filters)
    query: dict[str, Any] = {"bool": {"should": should, "minimum_should_match": 1, "filter": clauses}}
    if must_not:
        query["bool"]["must_not"] = must_not
    return {
        "query": query,
        "size": limit,
        "_source": SOURCE_FIELDS,
        "highlight": {
            "encoder": "html",
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "fields": {
                "text": {"fragment_size": snippet_chars, "number_of_fragments": 1, "no_match_size": snippet_chars}
            },
        },
    }


def hits_from_response(response: Any) -> list[Hit]:
    hits = []
    for found in response["hits"]["hits"]:
        source = found["_source"]
        fragments = found.get("highlight", {}).get("text") or [""]
        hits.append(
            Hit(
                doc_type=source["doc_type"],
                doc_id=int(source["doc_id"]),
                score=float(found.get("_score") or 0.0),
                title=source["title"],
                snippet=fragments[0],
            )
        )
    return hits


def bulk_failures(results: Iterable[tuple[bool, dict[str, Any]]]) -> tuple[int, list[str]]:
    """(succeeded, error descriptions) from `streaming_bulk`. A version conflict means the index already has
    a newer copy and a missing document on delete means it is already gone: both count as done."""
    done = 0
    errors: list[str] = []
    for ok, item in results:
        (operation, detail), *_ = item.items()
        status = detail.get("status")
        if ok or status == 409 or (operation == "delete" and status == 404):
            done += 1
        else:
            errors.append(f"{operation} {detail.get('_id')}: {status} {detail.get('error')}")
    return done, errors


# ---------------------------------------------------------------------------------------------------------
# the backend


def make_client(url: str, *, timeout: float) -> Any:
    import elasticsearch

    major = int(elasticsearch.__versionstr__.split(".")[0])
    options: dict[str, Any] = {"max_retries": 1, "retry_on_timeout": False}
    options["request_timeout" if major >= 8 else "timeout"] = timeout
    return elasticsearch.Elasticsearch(hosts=[url], **options)


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the server cannot be reached or cannot serve now (as opposed to a request it
    refused: a bug of ours, not to be retried as an outage)."""
    import elasticsearch

    if isinstance(error, elasticsearch.ConnectionError | elasticsearch.ConnectionTimeout):
        return True
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    # 8.x: a transport error without an HTTP status is a connection-level failure.
    return isinstance(error, elasticsearch.TransportError)


class ElasticsearchBackend:
    name = "elasticsearch"

    def __init__(self, *, url: str) -> None:
        self.url = url
        self._client: Any = None
        self._bulk_client: Any = None
        self._ready: set[str] = set()

    @property
    def prefix(self) -> str:
        return settings.SEARCH_ES_INDEX_PREFIX

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.url, timeout=settings.SEARCH_ES_TIMEOUT_SECONDS)
        return self._client

    @property
    def bulk_client(self) -> Any:
        if self._bulk_client is None:
            self._bulk_client = make_client(self.url, timeout=settings.SEARCH_ES_BULK_TIMEOUT_SECONDS)
        return self._bulk_client

    def _call(self, what: str, function: Callable[[], T]) -> T:
        try:
            return function()
        except Exception as error:
            if is_unavailable(error):
                logger.warning("search: Elasticsearch unavailable during %s: %s", what, error)
                raise SearchUnavailable(
                    "检索服务暂时不可用，请稍后再试。", extra={"backend": self.name, "operation": what}
                ) from error
            raise

    def _ensure_template(self) -> None:
        if f"{self.prefix}:template" in self._ready:
            return
        body = index_template(
            prefix=self.prefix,
            analyzer=settings.SEARCH_ES_ANALYZER,
            search_analyzer=settings.SEARCH_ES_SEARCH_ANALYZER,
            replicas=settings.SEARCH_ES_REPLICAS,
        )
        self._call(
            "put_index_template",
            lambda: self.client.indices.put_index_template(name=template_name(prefix=self.prefix), body=body),
        )
        self._ready.add(f"{self.prefix}:template")

    def _ensure_alias(self, doc_type: str) -> None:
        """The alias exists before anything is written through it (an index auto-created under the alias's
        name could never become an alias). Processes racing here create the same first index; the loser's
        "already exists" is fine."""
        alias = alias_name(doc_type, prefix=self.prefix)
        if alias in self._ready:
            return
        self._ensure_template()
        if not self._call("exists_alias", lambda: bool(self.client.indices.exists_alias(name=alias))):
            import elasticsearch

            first = f"{alias}-initial"
            try:
                self._call("create", lambda: self.client.indices.create(index=first, aliases={alias: {}}))
            except elasticsearch.RequestError as error:  # 400 in both client lines
                if "resource_already_exists_exception" not in str(error):
                    raise
        self._ready.add(alias)

    def _write_targets(self, doc_type: str) -> list[str]:
        targets = [alias_name(doc_type, prefix=self.prefix)]
        building = SearchIndexBuild.objects.filter(doc_type=doc_type).values_list("index_name", flat=True).first()
        if building:
            targets.append(building)
        return targets

    def _bulk(self, what: str, actions: Iterable[dict[str, Any]], *, client: Any = None) -> Iterator[int]:
        """Send actions in chunks; yields how many succeeded per chunk, raises if any failed."""
        from elasticsearch import helpers

        results = helpers.streaming_bulk(
            client or self.client,
            actions,
            chunk_size=BULK_CHUNK,
            raise_on_error=False,
            raise_on_exception=True,
            max_retries=2,
            yield_ok=True,
        )
        iterator = iter(results)
        while True:
            chunk: list[tuple[bool, dict[str, Any]]] = []
            try:
                for _ in range(BULK_CHUNK):
                    chunk.append(next(iterator))
            except StopIteration:
                pass
            except Exception as error:
                if is_unavailable(error):
                    raise SearchUnavailable("检索服务暂时不可用，请稍后再试。", extra={"operation": what}) from error
                raise
            if not chunk:
                return
            done, errors = bulk_failures(chunk)
            if errors:
                raise RuntimeError(f"Elasticsearch {what}: {len(errors)} failed, first: {errors[0]}")
            yield done

    def index(self, documents: Sequence[SearchDocument]) -> None:
        by_type: dict[str, list[SearchDocument]] = {}
        for document in documents:
            by_type.setdefault(document.doc_type, []).append(document)
        for doc_type, group in by_type.items():
            self._ensure_alias(doc_type)
            for _ in self._bulk("index", index_actions(group, indices=self._write_targets(doc_type))):
                pass

    def remove(self, keys: Iterable[tuple[str, int]]) -> None:
        by_type: dict[str, list[tuple[str, int]]] = {}
        for key in keys:
            by_type.setdefault(key[0], []).append(key)
        for doc_type, group in by_type.items():
            self._ensure_alias(doc_type)
            for _ in self._bulk("delete", delete_actions(group, indices=self._write_targets(doc_type))):
                pass

    def count(self, doc_type: str) -> int:
        alias = alias_name(doc_type, prefix=self.prefix)
        response = self._call(
            "count", lambda: self.client.count(index=alias, ignore_unavailable=True, allow_no_indices=True)
        )
        return int(response["count"])

    def search(self, text: str, *, filters: ResolvedFilters, limit: int) -> list[Hit]:
        if not text.strip() or limit <= 0 or not search_text.query_terms(text).groups:
            return []
        body = search_body(
            text=text,
            expansions=search_text.query_expansions(text),
            filters=filters,
            limit=limit,
            title_weight=float(settings.SEARCH_TITLE_WEIGHT),
            snippet_chars=settings.SEARCH_SNIPPET_CHARS,
        )
        indices = ",".join(alias_name(doc_type, prefix=self.prefix) for doc_type in filters.doc_types)
        response = self._call(
            "search",
            lambda: self.client.search(index=indices, ignore_unavailable=True, allow_no_indices=True, **body),
        )
        return hits_from_response(response)

    def rebuild(self, doc_type: str, documents: Iterable[SearchDocument], *, progress: Progress) -> int:
        self._ensure_template()
        alias = alias_name(doc_type, prefix=self.prefix)
        index = new_index_name(doc_type, prefix=self.prefix, now=clock.now())
        # Refresh off and no replicas while loading: the index is not searched until the alias moves.
        self._call(
            "create",
            lambda: self.bulk_client.indices.create(
                index=index, settings={"index": {"refresh_interval": "-1", "number_of_replicas": 0}}
            ),
        )
        SearchIndexBuild.objects.update_or_create(
            doc_type=doc_type, defaults={"index_name": index, "started_at": clock.now()}
        )
        try:
            indexed = 0
            for done in self._bulk("rebuild", index_actions(documents, indices=[index]), client=self.bulk_client):
                indexed += done
                progress(done)
            settings_body = {"index": {"refresh_interval": None, "number_of_replicas": settings.SEARCH_ES_REPLICAS}}
            self._call("put_settings", lambda: self.bulk_client.indices.put_settings(index=index, body=settings_body))
            self._call("refresh", lambda: self.bulk_client.indices.refresh(index=index))
            self._swap_alias(alias, index)
        except BaseException:
            SearchIndexBuild.objects.filter(doc_type=doc_type, index_name=index).delete()
            try:
                self.bulk_client.indices.delete(index=index, ignore_unavailable=True)
            except Exception:
                logger.warning("search: could not delete the unfinished index %s; delete it by hand", index)
            raise
        SearchIndexBuild.objects.filter(doc_type=doc_type, index_name=index).delete()
        self._ready.add(alias)
        return indexed

    def _swap_alias(self, alias: str, index: str) -> None:
        """Point `alias` at `index` alone, in one atomic `_aliases` request, then drop the old indices."""
        import elasticsearch

        try:
            current = list(self._call("get_alias", lambda: self.bulk_client.indices.get_alias(name=alias)))
        except elasticsearch.NotFoundError:
            current = []
        actions: list[dict[str, Any]] = [{"add": {"index": index, "alias": alias}}]
        actions += [{"remove": {"index": old, "alias": alias}} for old in current if old != index]
        exists = bool(self._call("exists", lambda: self.bulk_client.indices.exists(index=alias)))
        if exists and not current:
            # A concrete index under the alias's name (auto-created before the alias existed) goes in the
            # same atomic step.
            actions.append({"remove_index": {"index": alias}})
        self._call("update_aliases", lambda: self.bulk_client.indices.update_aliases(body={"actions": actions}))
        for old in current:
            if old != index:
                self._call("delete", partial(self.bulk_client.indices.delete, index=old, ignore_unavailable=True))
