"""Benchmark of the embedded search backend: bulk indexing rate and search latency at N documents.

    python bench/search.py --docs 10000                                   # SQLite (a temporary file)
    python bench/search.py --docs 100000 --database-url postgres://postgres@127.0.0.1:5432/test

Half the documents are published articles, half submitted tickets, written straight into a fresh database
(with a PostgreSQL URL: a database `hotline_search_bench` on that server, dropped and recreated every run and
dropped at the end; the database named in the URL is only used to connect). Their text is real: sentences
sampled from the hotline data in ../shared/data (citizen messages and official replies), each document as
long as a real message drawn at random; without that data, synthetic sentences from a fixed vocabulary.
Tickets carry made-up callers whose phone numbers also appear in some requests, so the personal-data scrubbing
is part of the indexing cost.

1. Indexing: `search.reindex()` over everything, the path `manage.py search_reindex` takes (jieba on one
   process per core, bulk inserts, one transaction per document type). `index_docs_per_s` = documents / wall
   seconds.
2. Searching: --queries searches through `search.search()` (limit 10, snippets included) after a warm-up:
   real message titles, two- or three-word keyword queries cut from them, and long ticket texts (the
   similar-ticket lookup); a third restricted to one document type, some to the public audience. `p50_ms`
   and `p95_ms` are wall times of single calls.

The last line printed is one JSON object, for scripts that compare runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import string
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT.parent / "shared" / "data"
BENCH_DATABASE = "hotline_search_bench"
WARMUP = 20
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


class BenchError(Exception):
    """A step failed; the message says which and why."""


@dataclass
class Corpus:
    titles: list[str]
    sentences: list[str]
    reply_sentences: list[str]
    lengths: list[int]
    reply_lengths: list[int]
    source: str


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in SENTENCE_END.split(text) if len(part.strip()) >= 6]


def load_corpus(rng: random.Random) -> Corpus:
    titles: list[str] = []
    sentences: list[str] = []
    reply_sentences: list[str] = []
    lengths: list[int] = []
    reply_lengths: list[int] = []
    files = sorted(DATA_DIR.glob("messages_*.jsonl")) + sorted(DATA_DIR.glob("replies.jsonl"))
    for path in files:
        with path.open(encoding="utf-8") as rows:
            for line in rows:
                row = json.loads(line)
                if row.get("title"):
                    titles.append(row["title"].strip())
                body = row.get("body") or ""
                if body:
                    sentences.extend(_sentences(body))
                    lengths.append(len(body))
                reply = row.get("reply") or ""
                if reply:
                    reply_sentences.extend(_sentences(reply))
                    reply_lengths.append(len(reply))
    if titles and sentences:
        return Corpus(
            titles=titles,
            sentences=sentences,
            reply_sentences=reply_sentences or sentences,
            lengths=lengths,
            reply_lengths=reply_lengths or lengths,
            source=f"{len(files)} files in {DATA_DIR}",
        )
    return synthetic_corpus(rng)


def synthetic_corpus(rng: random.Random) -> Corpus:
    places = ["幸福小区", "和平区", "沈河区", "南市场街道", "太原街", "长江路", "人民公园", "第三中学", "中心医院"]
    subjects = ["物业", "噪音", "停水", "停电", "供暖", "井盖", "垃圾清运", "违章停车", "占道经营", "公交线路"]
    problems = ["长期得不到解决", "影响居民休息", "存在安全隐患", "多次反映无人处理", "希望尽快处理", "收费不合理"]
    services = ["社会保障卡补办", "住房公积金提取", "居民身份证办理", "医保报销", "低保申请", "不动产登记"]
    sentences = [
        f"{rng.choice(places)}的{rng.choice(subjects + services)}问题{rng.choice(problems)}。" for _ in range(5000)
    ]
    titles = [f"{rng.choice(places)}{rng.choice(subjects + services)}{rng.choice(problems)[:4]}" for _ in range(2000)]
    return Corpus(
        titles=titles,
        sentences=sentences,
        reply_sentences=sentences,
        lengths=[rng.randint(60, 600) for _ in range(1000)],
        reply_lengths=[rng.randint(60, 400) for _ in range(1000)],
        source="synthetic (no data found in ../shared/data)",
    )


def passage(rng: random.Random, sentences: list[str], length: int) -> str:
    parts: list[str] = []
    size = 0
    while size < length:
        sentence = rng.choice(sentences)
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)


def phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice(string.digits) for _ in range(9))


def prepare_database(url: str, workdir: Path) -> tuple[str, str, str]:
    """(DATABASE_URL for the run, kind, label)."""
    if not url:
        path = workdir / "search-bench.sqlite3"
        return f"sqlite:///{path}", "sqlite", str(path)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise BenchError(f"--database-url must be a PostgreSQL URL (got scheme {parts.scheme!r}); omit it for SQLite")
    import psycopg
    from psycopg import sql

    given = parts.path.lstrip("/")
    try:
        with psycopg.connect(
            host=parts.hostname or None,
            port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username or "") or None,
            password=urllib.parse.unquote(parts.password or "") or None,
            dbname=given if given and given != BENCH_DATABASE else "postgres",
            autocommit=True,
            connect_timeout=10,
        ) as connection:
            name = sql.Identifier(BENCH_DATABASE)
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
    except psycopg.Error as error:
        raise BenchError(f"could not recreate database {BENCH_DATABASE}: {error}") from error
    bench_url = urllib.parse.urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))
    return bench_url, "postgresql", f"{BENCH_DATABASE} on {parts.hostname}:{parts.port or 5432} (recreated)"


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(url)
    with psycopg.connect(
        host=parts.hostname or None,
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or "") or None,
        password=urllib.parse.unquote(parts.password or "") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DATABASE)))


def setup_django(database_url: str, backend: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "hotline.settings.local"
    # Debug would keep every query in memory and slow everything down.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["SEARCH_BACKEND"] = backend
    os.environ.setdefault("HOTLINE_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def create_documents(*, docs: int, corpus: Corpus, rng: random.Random) -> tuple[int, int, list[str]]:
    """Articles and tickets straight into the tables (the benchmark measures indexing, not intake)."""
    from django.db import transaction

    from hotline import clock
    from knowledge_base.models import Article, ArticleKind, ArticleStatus, Audience
    from ticketing.models import AppealType, Category, Channel, Department, Region, RegionLevel, Ticket
    from ticketing.workflow import Status

    now = clock.now()
    city = Region.objects.create(code="210100", name="沈阳市", level=RegionLevel.CITY)
    regions = [
        Region.objects.create(code=f"2101{n:02d}", name=name, level=RegionLevel.DISTRICT, parent=city)
        for n, name in enumerate(["和平区", "沈河区", "大东区", "皇姑区", "铁西区"], start=2)
    ]
    departments = [
        Department.objects.create(code=f"B{n}", name=name, kind="city_bureau")
        for n, name in enumerate(["市住建局", "市生态环境局", "市人社局", "市医保局", "市城管局", "市水务集团"])
    ]
    tops = [Category.objects.create(name=name) for name in ["城乡建设", "劳动和社会保障", "环境保护", "交通运输"]]
    categories = [
        Category.objects.create(name=f"{top.name}{n}", parent=top) for top in tops for n in range(1, 4)
    ] + tops
    statuses = [Status.PENDING_DISPATCH, Status.DISPATCHED, Status.ACCEPTED, Status.REPLIED, Status.CLOSED]
    articles = docs // 2
    tickets = docs - articles
    batch = 2000
    with transaction.atomic():
        for start in range(0, articles, batch):
            Article.objects.bulk_create(
                Article(
                    kind=rng.choice(ArticleKind.values),
                    status=ArticleStatus.PUBLISHED,
                    audience=Audience.PUBLIC if rng.random() < 0.7 else Audience.INTERNAL,
                    owner_department=rng.choice(departments),
                    category=rng.choice(categories),
                    title=rng.choice(corpus.titles)[:200],
                    answer=passage(rng, corpus.reply_sentences, rng.choice(corpus.reply_lengths)),
                    conditions=passage(rng, corpus.sentences, 40) if rng.random() < 0.3 else "",
                    created_at=now,
                    updated_at=now,
                )
                for _ in range(min(batch, articles - start))
            )
        day = now.strftime("%Y%m%d")
        for start in range(0, tickets, batch):
            rows = []
            for n in range(start, min(start + batch, tickets)):
                caller_phone = phone(rng)
                content = passage(rng, corpus.sentences, rng.choice(corpus.lengths))
                if rng.random() < 0.2:
                    content += f"联系电话{caller_phone}。"
                status = rng.choice(statuses)
                rows.append(
                    Ticket(
                        number=f"12345-{day}-{n:07d}",
                        hotline_line="12345",
                        channel=Channel.PHONE,
                        status=status,
                        appeal_type=rng.choice(AppealType.values),
                        category=rng.choice(categories),
                        title=rng.choice(corpus.titles)[:200],
                        content=content,
                        region=rng.choice(regions),
                        caller_name="张" + rng.choice("伟芳娜敏静丽强磊军洋"),
                        caller_phone=caller_phone,
                        lead_department=None if status == Status.PENDING_DISPATCH else rng.choice(departments),
                        reply_text=passage(rng, corpus.reply_sentences, rng.choice(corpus.reply_lengths))
                        if status in (Status.REPLIED, Status.CLOSED)
                        else "",
                        query_code=f"{rng.randrange(10**6):06d}",
                        created_at=now - timedelta(minutes=n),
                        updated_at=now,
                    )
                )
            Ticket.objects.bulk_create(rows)
    return articles, tickets, [t.content for t in Ticket.objects.order_by("?")[:200]]


def make_queries(*, count: int, corpus: Corpus, long_texts: list[str], rng: random.Random) -> list[dict[str, Any]]:
    from knowledge_base import search
    from knowledge_base.search import text as search_text

    queries: list[dict[str, Any]] = []
    for n in range(count):
        kind = rng.random()
        if kind < 0.4:
            query = rng.choice(corpus.titles)
            shape = "title"
        elif kind < 0.85 or not long_texts:
            words = [w for w in search_text.index_words(rng.choice(corpus.titles)) if len(w) > 1] or ["小区"]
            query = "".join(rng.sample(words, k=min(len(words), rng.choice([2, 3]))))
            shape = "keywords"
        else:
            query = rng.choice(long_texts)[:200]
            shape = "long"
        doc_type = [None, "article", "ticket"][n % 3]
        filters = search.SearchFilters(audience="public") if doc_type == "article" and n % 2 else None
        queries.append({"query": query, "doc_type": doc_type, "filters": filters, "shape": shape})
    return queries


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    corpus = load_corpus(rng)
    with tempfile.TemporaryDirectory(prefix="search-bench-") as workdir:
        database_url, kind, label = prepare_database(args.database_url, Path(workdir))
        try:
            setup_django(database_url, args.backend)
            from knowledge_base import search

            started = time.perf_counter()
            articles, tickets, long_texts = create_documents(docs=args.docs, corpus=corpus, rng=rng)
            created_s = time.perf_counter() - started

            started = time.perf_counter()
            counts = search.reindex()
            index_s = time.perf_counter() - started
            indexed = sum(counts.values())
            if indexed != args.docs:
                raise BenchError(f"indexed {indexed} documents, expected {args.docs}: {counts}")

            queries = make_queries(count=args.queries + WARMUP, corpus=corpus, long_texts=long_texts, rng=rng)
            timings: list[float] = []
            by_shape: dict[str, list[float]] = {}
            hits_total = 0
            for n, query in enumerate(queries):
                started = time.perf_counter()
                hits = search.search(query["query"], doc_type=query["doc_type"], filters=query["filters"], limit=10)
                elapsed_ms = (time.perf_counter() - started) * 1000
                if n < WARMUP:
                    continue
                timings.append(elapsed_ms)
                by_shape.setdefault(query["shape"], []).append(elapsed_ms)
                hits_total += len(hits)
        finally:
            if kind == "postgresql":
                from django.db import connections

                connections.close_all()
                drop_database(database_url)
    return {
        "docs": args.docs,
        "articles": articles,
        "tickets": tickets,
        "backend": args.backend,
        "database": kind,
        "database_label": label,
        "corpus": corpus.source,
        "create_s": round(created_s, 2),
        "index_s": round(index_s, 2),
        "index_docs_per_s": round(indexed / index_s, 1),
        "queries": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(percentile(timings, 0.95), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "max_ms": round(max(timings), 2),
        "mean_hits": round(hits_total / len(timings), 2),
        "p95_ms_by_shape": {shape: round(percentile(values, 0.95), 2) for shape, values in sorted(by_shape.items())},
        "index_workers": os.cpu_count(),
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("documents", f"{result['docs']} ({result['articles']} articles, {result['tickets']} tickets)"),
        ("backend", f"{result['backend']} on {result['database']}: {result['database_label']}"),
        ("text", result["corpus"]),
        ("bulk index", f"{result['index_s']} s, {result['index_docs_per_s']} docs/s"),
        ("searches", f"{result['queries']} (limit 10, snippets), {result['mean_hits']} hits on average"),
        (
            "latency",
            f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
            f"max {result['max_ms']} ms",
        ),
        ("p95 by query", ", ".join(f"{shape} {ms} ms" for shape, ms in result["p95_ms_by_shape"].items())),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10000, help="documents in the index (half articles, half tickets)")
    parser.add_argument("--queries", type=int, default=300, help="timed searches (after a warm-up of 20)")
    parser.add_argument("--backend", choices=["database"], default="database")
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL server to run on (a database hotline_search_bench is recreated there); default SQLite",
    )
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    if args.docs < 2 or args.queries < 1:
        parser.error("--docs must be at least 2 and --queries at least 1")
    try:
        result = run(args)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(error), "docs": args.docs, "backend": args.backend}))
        return 1
    result["ok"] = True
    print_table(result)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
