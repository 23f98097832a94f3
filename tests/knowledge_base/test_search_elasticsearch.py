"""The Elasticsearch backend without an Elasticsearch server.

- The query, filters, highlight and index template are pure functions, checked as data.
- The request flow (template, alias, bulk, rebuild with the atomic alias swap) runs the real client against a
  loopback HTTP stand-in that records what it was sent and answers the way Elasticsearch does.
- An unreachable server: searches raise SearchUnavailable (503 in the API), writes commit and stay queued.

The same behaviours against a real server are in test_search_behaviour.py (run with ELASTICSEARCH_URL).
"""

import json
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import elasticsearch
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from hotline.errors import api_exception_handler
from knowledge_base import search
from knowledge_base.models import Article, ArticleStatus
from knowledge_base.search import backends, indexing
from knowledge_base.search.backends import elasticsearch as es
from knowledge_base.search.models import SearchIndexBuild, SearchOutbox
from knowledge_base.search.types import ResolvedFilters, SearchDocument, SearchUnavailable

DOC = SearchDocument(
    doc_type="article",
    doc_id=7,
    title="社会保障卡补办",
    text="持居民身份证到经办网点补办。",
    kind="guide",
    audience="public",
    status="published",
    updated_at=datetime(2026, 11, 22, 8, 0, 0, 123456, tzinfo=UTC),
    category_id=3,
    top_category_id=1,
    department_id=5,
    valid_until=date(2027, 12, 31),
)


# ---------------------------------------------------------------------------------------------------------
# pure functions


def test_the_index_template_takes_the_analyzer_from_settings():
    template = es.index_template(prefix="hl", analyzer="cjk", search_analyzer="", replicas=1)
    assert template["index_patterns"] == ["hl-article-*", "hl-ticket-*"]
    mapping = template["template"]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["title"] == {"type": "text", "analyzer": "cjk", "search_analyzer": "cjk"}
    assert template["template"]["settings"]["number_of_replicas"] == 1

    ik = es.index_template(prefix="hl", analyzer="ik_max_word", search_analyzer="ik_smart", replicas=0)
    assert ik["template"]["mappings"]["properties"]["text"]["search_analyzer"] == "ik_smart"
    # Every field a document sends is mapped (the mapping is strict).
    assert set(es.document_source(DOC)) == set(mapping["properties"])


def test_index_actions_version_documents_by_their_last_change_and_target_every_index():
    actions = list(es.index_actions([DOC], indices=["hl-article", "hl-article-new"]))
    assert [a["_index"] for a in actions] == ["hl-article", "hl-article-new"]
    assert actions[0]["_id"] == "article:7"
    assert actions[0]["version"] == int(DOC.updated_at.timestamp() * 1_000_000)
    assert actions[0]["version_type"] == "external_gte"
    assert actions[0]["_source"]["valid_until"] == "2027-12-31" and actions[0]["_source"]["valid_from"] is None
    assert list(es.delete_actions([("ticket", 9)], indices=["hl-ticket"])) == [
        {"_op_type": "delete", "_index": "hl-ticket", "_id": "ticket:9"}
    ]


def filters(**values):  # type: ignore[no-untyped-def]
    return ResolvedFilters(doc_types=values.pop("doc_types", ("article",)), **values)


def test_the_query_boosts_titles_adds_synonyms_and_highlights_safely():
    body = es.search_body(
        text="社保卡补办", expansions=["社会保障卡"], filters=filters(), limit=10, title_weight=3, snippet_chars=120
    )
    should = body["query"]["bool"]["should"]
    assert [clause["multi_match"]["query"] for clause in should] == ["社保卡补办", "社会保障卡"]
    assert should[0]["multi_match"]["fields"] == ["title^3", "text"]
    assert body["query"]["bool"]["minimum_should_match"] == 1
    assert body["size"] == 10 and body["_source"] == ["doc_type", "doc_id", "title"]
    highlight = body["highlight"]
    assert highlight["encoder"] == "html"
    assert (highlight["pre_tags"], highlight["post_tags"]) == (["<mark>"], ["</mark>"])
    assert highlight["fields"]["text"]["no_match_size"] == 120


def test_filters_mean_what_they_mean_in_the_database_backend():
    clauses, must_not = es.filter_clauses(
        filters(
            doc_types=("ticket",),
            audience="public",
            kind="complaint",
            statuses=("dispatched", "accepted"),
            category_id=4,
            region_ids=(1, 2),
            department_ids=(),
            valid_on=date(2026, 11, 22),
            exclude=(("ticket", 9),),
        )
    )
    assert {"terms": {"doc_type": ["ticket"]}} in clauses
    assert {"term": {"audience": "public"}} in clauses
    assert {"term": {"kind": "complaint"}} in clauses
    assert {"terms": {"status": ["dispatched", "accepted"]}} in clauses
    category = {
        "bool": {"should": [{"term": {"category_id": 4}}, {"term": {"top_category_id": 4}}], "minimum_should_match": 1}
    }
    assert category in clauses
    assert {"terms": {"region_id": [1, 2]}} in clauses
    assert {"terms": {"department_id": []}} in clauses  # an empty subtree matches nothing, as in SQL
    valid_until = {
        "bool": {
            "should": [
                {"bool": {"must_not": {"exists": {"field": "valid_until"}}}},
                {"range": {"valid_until": {"gte": "2026-11-22"}}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert valid_until in clauses
    assert must_not == [{"ids": {"values": ["ticket:9"]}}]
    assert es.filter_clauses(filters()) == ([{"terms": {"doc_type": ["article"]}}], [])


def test_hits_and_bulk_results_are_read_back():
    response = {
        "hits": {
            "hits": [
                {
                    "_score": 2.5,
                    "_source": {"doc_type": "article", "doc_id": 7, "title": "社会保障卡补办"},
                    "highlight": {"text": ["&lt;b&gt; <mark>补办</mark>"]},
                },
                {"_score": 1.0, "_source": {"doc_type": "ticket", "doc_id": 9, "title": "停水"}},
            ]
        }
    }
    first, second = es.hits_from_response(response)
    assert (first.doc_type, first.doc_id, first.score, first.snippet) == (
        "article",
        7,
        2.5,
        "&lt;b&gt; <mark>补办</mark>",
    )
    assert second.snippet == ""

    results = [
        (True, {"index": {"_id": "a:1", "status": 201}}),
        (False, {"index": {"_id": "a:2", "status": 409, "error": "version_conflict"}}),
        (False, {"delete": {"_id": "a:3", "status": 404}}),
        (False, {"index": {"_id": "a:4", "status": 400, "error": "mapper_parsing_exception"}}),
    ]
    done, errors = es.bulk_failures(results)
    assert done == 3 and errors == ["index a:4: 400 mapper_parsing_exception"]


def test_what_counts_as_unavailable():
    assert es.is_unavailable(elasticsearch.ConnectionError("refused"))
    assert es.is_unavailable(elasticsearch.ConnectionTimeout("slow"))
    assert not es.is_unavailable(ValueError("ours"))


# ---------------------------------------------------------------------------------------------------------
# choosing the backend


def test_the_backend_follows_settings(settings):
    settings.SEARCH_BACKEND, settings.ELASTICSEARCH_URL = "", ""
    assert backends.backend_name() == "database"
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:9200"
    assert backends.backend_name() == "elasticsearch"
    assert isinstance(search.get_backend(), es.ElasticsearchBackend)
    settings.SEARCH_BACKEND = "database"
    assert backends.backend_name() == "database"
    settings.SEARCH_BACKEND = "solr"
    with pytest.raises(ImproperlyConfigured):
        backends.backend_name()
    settings.SEARCH_BACKEND, settings.ELASTICSEARCH_URL = "elasticsearch", ""
    with pytest.raises(ImproperlyConfigured):
        backends.backend_name()


# ---------------------------------------------------------------------------------------------------------
# an unreachable server


@pytest.fixture
def unreachable(settings):  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SEARCH_BACKEND = "elasticsearch"
    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{port}"
    settings.SEARCH_ES_TIMEOUT_SECONDS = 2
    indexing.resume()
    yield
    indexing.resume()


@pytest.mark.django_db
def test_searching_an_unreachable_server_is_a_clear_503(unreachable):
    with pytest.raises(SearchUnavailable) as raised:
        search.search("社保卡补办", doc_type="article")
    response = api_exception_handler(raised.value, {})
    assert response is not None and response.status_code == 503
    assert response.data["code"] == "search_unavailable" and "检索服务暂时不可用" in response.data["detail"]


@pytest.mark.django_db
def test_writes_commit_and_stay_queued_while_the_server_is_unreachable(
    unreachable, org, django_capture_on_commit_callbacks
):
    from hotline import clock

    def write(title):  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            article = Article.objects.create(
                kind="faq",
                status=ArticleStatus.PUBLISHED,
                audience="public",
                owner_department=org.bureau,
                title=title,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            search.index_soon("article", article.id)
        return article

    first = write("社会保障卡补办")
    second = write("居民身份证补办")

    assert Article.objects.filter(pk__in=[first.id, second.id]).count() == 2
    rows = {row.doc_id: row for row in SearchOutbox.objects.all()}
    assert rows[first.id].attempts == 1 and "SearchUnavailable" in rows[first.id].last_error
    assert rows[second.id].attempts == 0  # paused: the second write did not wait for another timeout
    report = search.sync()
    assert report.indexed == 0 and report.queued == 2


# ---------------------------------------------------------------------------------------------------------
# the request flow, through the real client, against a loopback stand-in


class StandIn(BaseHTTPRequestHandler):
    """Answers like Elasticsearch for the calls the backend makes; keeps indices, aliases and documents."""

    state: dict = {}

    def log_message(self, *args):  # type: ignore[no-untyped-def]
        pass

    def _reply(self, status, body=None):  # type: ignore[no-untyped-def]
        data = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self):  # type: ignore[no-untyped-def]
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        state = self.state
        state["requests"].append((self.command, "/" + "/".join(parts), raw))
        indices, aliases, docs = state["indices"], state["aliases"], state["docs"]

        def resolve(name):  # type: ignore[no-untyped-def]
            return [i for i, names in aliases.items() if name in names] or ([name] if name in indices else [])

        if not parts:  # the 7.x client's product check
            return self._reply(
                200, {"version": {"number": "8.11.0", "build_flavor": "default"}, "tagline": "You Know, for Search"}
            )
        if parts[:1] == ["_index_template"]:
            return self._reply(200, {"acknowledged": True})
        if parts == ["_bulk"]:
            lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
            items, n = [], 0
            while n < len(lines):
                ((operation, meta),) = lines[n].items()
                targets = resolve(meta["_index"])
                if operation == "index":
                    for target in targets:
                        docs.setdefault(target, {})[meta["_id"]] = lines[n + 1]
                    n += 2
                    items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "status": 201}})
                else:
                    found = any(docs.get(t, {}).pop(meta["_id"], None) for t in targets)
                    n += 1
                    items.append(
                        {"delete": {"_index": meta["_index"], "_id": meta["_id"], "status": 200 if found else 404}}
                    )
            return self._reply(200, {"took": 1, "errors": False, "items": items})
        if parts == ["_aliases"]:
            for action in json.loads(raw)["actions"]:
                ((kind, spec),) = action.items()
                if kind == "add":
                    aliases.setdefault(spec["index"], set()).add(spec["alias"])
                elif kind == "remove":
                    aliases.get(spec["index"], set()).discard(spec["alias"])
                elif kind == "remove_index":
                    indices.discard(spec["index"])
            return self._reply(200, {"acknowledged": True})
        if parts[:1] == ["_alias"] and len(parts) == 2:
            owners = resolve(parts[1]) if any(parts[1] in names for names in aliases.values()) else []
            if not owners:
                return self._reply(404, {"error": "alias missing", "status": 404})
            return self._reply(200, {owner: {"aliases": {parts[1]: {}}} for owner in owners})
        if len(parts) == 2 and parts[1] == "_search":
            hits = []
            for target in [t for name in parts[0].split(",") for t in resolve(name)]:
                for source in docs.get(target, {}).values():
                    hits.append(
                        {
                            "_score": 1.0,
                            "_source": {k: source[k] for k in ("doc_type", "doc_id", "title")},
                            "highlight": {"text": [source["text"][:10]]},
                        }
                    )
            return self._reply(200, {"hits": {"total": {"value": len(hits)}, "hits": hits}})
        if len(parts) == 2 and parts[1] == "_count":
            return self._reply(200, {"count": sum(len(docs.get(t, {})) for t in resolve(parts[0]))})
        if len(parts) == 2 and parts[1] in ("_settings", "_refresh"):
            state["settings"].setdefault(parts[0], []).append(json.loads(raw) if raw else None)
            return self._reply(200, {"acknowledged": True})
        if len(parts) == 1:
            name = parts[0]
            if self.command == "HEAD":
                return self._reply(200 if resolve(name) else 404)
            if self.command == "PUT":
                if name in indices:
                    return self._reply(400, {"error": {"type": "resource_already_exists_exception"}, "status": 400})
                indices.add(name)
                body = json.loads(raw) if raw else {}
                for alias in body.get("aliases", {}):
                    aliases.setdefault(name, set()).add(alias)
                state["settings"].setdefault(name, []).append(body.get("settings"))
                return self._reply(200, {"acknowledged": True, "index": name})
            if self.command == "DELETE":
                indices.discard(name)
                aliases.pop(name, None)
                docs.pop(name, None)
                return self._reply(200, {"acknowledged": True})
        return self._reply(400, {"error": f"stand-in does not know {self.command} {self.path}", "status": 400})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


@pytest.fixture
def stand_in(settings):  # type: ignore[no-untyped-def]
    StandIn.state = {"requests": [], "indices": set(), "aliases": {}, "docs": {}, "settings": {}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SEARCH_BACKEND = "elasticsearch"
    settings.ELASTICSEARCH_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SEARCH_ES_INDEX_PREFIX = "hl"
    settings.SEARCH_ES_REPLICAS = 1
    indexing.resume()
    yield StandIn.state
    server.shutdown()
    server.server_close()


def paths(state, method=None):  # type: ignore[no-untyped-def]
    # "/" is the 7.x client's product check.
    return [path for m, path, _ in state["requests"] if (method is None or m == method) and path != "/"]


@pytest.mark.django_db
def test_writes_create_the_template_and_alias_then_go_through_the_alias(stand_in):
    backend = search.get_backend()
    backend.index([DOC])

    assert paths(stand_in)[:3] == ["/_index_template/hl-search", "/_alias/hl-article", "/hl-article-initial"]
    assert stand_in["aliases"] == {"hl-article-initial": {"hl-article"}}
    assert list(stand_in["docs"]["hl-article-initial"]) == ["article:7"]
    bulk = next(body for method, path, body in stand_in["requests"] if path == "/_bulk")
    meta = json.loads(bulk.splitlines()[0])["index"]
    assert meta["_index"] == "hl-article" and meta["version_type"] == "external_gte"

    hits = search.search("社保卡补办", doc_type="article")
    assert [(hit.doc_type, hit.doc_id, hit.title) for hit in hits] == [("article", 7, "社会保障卡补办")]
    _, path, body = stand_in["requests"][-1]
    sent = json.loads(body)
    assert path == "/hl-article/_search" and sent["size"] == 10
    assert "社会保障卡" in [clause["multi_match"]["query"] for clause in sent["query"]["bool"]["should"]]
    assert sent["highlight"]["encoder"] == "html"

    backend.remove([("article", 7)])
    assert stand_in["docs"]["hl-article-initial"] == {}


@pytest.mark.django_db
def test_a_rebuild_fills_a_new_index_keeps_writes_made_meanwhile_and_swaps_the_alias_atomically(stand_in):
    backend = search.get_backend()
    backend.index([DOC])
    written_meanwhile = SearchDocument(**{**DOC.__dict__, "doc_id": 8, "title": "居民身份证补办"})
    seen_building: list[str] = []

    def progress(done):  # type: ignore[no-untyped-def]
        building = SearchIndexBuild.objects.get(doc_type="article")
        seen_building.append(building.index_name)
        backend.index([written_meanwhile])  # a service's write while the rebuild runs

    rebuilt = backend.rebuild("article", iter([DOC]), progress=progress)

    new_index = seen_building[0]
    assert rebuilt == 1 and new_index.startswith("hl-article-2")
    assert stand_in["settings"][new_index][0] == {"index": {"refresh_interval": "-1", "number_of_replicas": 0}}
    assert {"index": {"refresh_interval": None, "number_of_replicas": 1}} in stand_in["settings"][new_index]
    # The write made during the rebuild reached the new index as well as the live one.
    assert set(stand_in["docs"][new_index]) == {"article:7", "article:8"}
    # One _aliases request moved the alias; the old index is gone; no build is left marked.
    swap = [json.loads(body) for method, path, body in stand_in["requests"] if path == "/_aliases"]
    assert swap == [
        {
            "actions": [
                {"add": {"index": new_index, "alias": "hl-article"}},
                {"remove": {"index": "hl-article-initial", "alias": "hl-article"}},
            ]
        }
    ]
    assert stand_in["aliases"] == {new_index: {"hl-article"}}
    assert "hl-article-initial" not in stand_in["indices"]
    assert not SearchIndexBuild.objects.exists()
    assert backend.count("article") == 2


@pytest.mark.django_db
def test_a_failed_rebuild_leaves_the_live_index_alone(stand_in):
    backend = search.get_backend()
    backend.index([DOC])

    def broken():  # type: ignore[no-untyped-def]
        yield DOC
        raise RuntimeError("database went away mid-read")

    with pytest.raises(RuntimeError):
        backend.rebuild("article", broken(), progress=lambda done: None)

    assert stand_in["aliases"] == {"hl-article-initial": {"hl-article"}}
    assert stand_in["indices"] == {"hl-article-initial"}
    assert not SearchIndexBuild.objects.exists()
