"""Benchmark of routing recommendations: latency of `routing.recommend.recommend()` with N handled tickets
in the search index.

    python bench/routing.py --tickets 100000                                      # SQLite (a temporary file)
    python bench/routing.py --tickets 100000 --database-url postgres://postgres@127.0.0.1:5432/test

The demo city's departments (with their responsibility lists) are loaded into a fresh database (with a
PostgreSQL URL: a database `hotline_search_bench` on that server, recreated and dropped at the end, as in
bench/search.py). The tickets are closed, each led by the department its text belongs to: with the labelled
messages of ../shared/data, a ticket is a message's title with a body made of sentences drawn from messages
of the same first-level label (mapped to a department as in `manage.py evaluate_routing`); without that
data, synthetic sentences from a small vocabulary per department. They are indexed with `search.reindex()`,
the classifier is trained on up to --train-size of them (as `manage.py train_router` would), and then
--queries real message texts (title and body) are routed after a warm-up. `p50_ms` and `p95_ms` are wall
times of single recommend() calls: the similar-ticket search, the two bulk reads behind the votes, the
responsibility matching and the classifier.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search import (  # noqa: E402
    DATA_DIR,
    BenchError,
    drop_database,
    passage,
    percentile,
    prepare_database,
    setup_django,
)
from bench.search import _sentences as sentences_of  # noqa: E402

WARMUP = 20
SYNTHETIC = {
    "城乡建设": (["物业", "小区", "电梯", "维修资金", "违建", "施工扬尘"], ["收费不合理", "多年未维修", "影响居住"]),
    "劳动和社会保障": (["工资", "社保", "养老保险", "劳动合同", "失业金"], ["被拖欠", "迟迟不发", "无法办理"]),
    "教育文体": (["学校", "学区", "补课", "幼儿园", "教师"], ["乱收费", "划分不合理", "违规办班"]),
    "商贸旅游": (["商场", "景区", "预付卡", "旅行社", "农贸市场"], ["拒不退款", "强制消费", "经营混乱"]),
    "卫生计生": (["医院", "疫苗", "医生", "诊所", "生育登记"], ["服务态度差", "乱收费", "排队太久"]),
    "环境保护": (["工厂", "废气", "污水", "噪声", "养殖场"], ["偷排", "扰民", "污染严重"]),
    "交通运输": (["公交", "出租车", "道路", "货车", "站点"], ["绕路", "拒载", "线路取消"]),
}


@dataclass
class Labelled:
    title: str
    body: str
    label: str


def load_messages(rng: random.Random) -> tuple[list[Labelled], str]:
    rows: list[Labelled] = []
    path = DATA_DIR / "messages_dev.jsonl"
    if path.exists():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                if row.get("label") and (row.get("title") or row.get("body")):
                    rows.append(Labelled(str(row.get("title") or ""), str(row.get("body") or ""), row["label"]))
    if rows:
        return rows, str(path)
    for label, (subjects, problems) in SYNTHETIC.items():
        for _ in range(100):
            subject, problem = rng.choice(subjects), rng.choice(problems)
            body = "".join(f"{rng.choice(subjects)}{rng.choice(problems)}，希望有关部门尽快处理。" for _ in range(4))
            rows.append(Labelled(f"{subject}{problem}", body, label))
    return rows, "synthetic (no labelled messages found in ../shared/data)"


def create_tickets(*, count: int, messages: list[Labelled], rng: random.Random) -> dict[str, int]:
    """Closed tickets straight into the table (the benchmark measures routing, not intake)."""
    from django.db import transaction

    from hotline import clock
    from routing.management.commands.evaluate_routing import LABEL_DEPARTMENTS, ensure_departments
    from ticketing.models import AppealType, Channel, Ticket
    from ticketing.workflow import Status

    department_ids = ensure_departments(sorted(LABEL_DEPARTMENTS.values()))
    by_label: dict[str, list[str]] = {}
    lengths: dict[str, list[int]] = {}
    titles: dict[str, list[str]] = {}
    for message in messages:
        by_label.setdefault(message.label, []).extend(sentences_of(message.body) or [message.body])
        lengths.setdefault(message.label, []).append(max(40, len(message.body)))
        titles.setdefault(message.label, []).append(message.title or message.body[:30])
    labels = sorted(by_label)
    now = clock.now()
    day = now.strftime("%Y%m%d")
    created: dict[str, int] = {}
    batch = 2000
    with transaction.atomic():
        for start in range(0, count, batch):
            rows = []
            for n in range(start, min(start + batch, count)):
                label = rng.choice(labels)
                created[label] = created.get(label, 0) + 1
                rows.append(
                    Ticket(
                        number=f"12345-{day}-{n:07d}",
                        hotline_line="12345",
                        channel=Channel.PHONE,
                        status=Status.CLOSED,
                        appeal_type=rng.choice(AppealType.values),
                        title=rng.choice(titles[label])[:200],
                        content=passage(rng, by_label[label], rng.choice(lengths[label])),
                        lead_department_id=department_ids[LABEL_DEPARTMENTS[label]],
                        query_code=f"{rng.randrange(10**6):06d}",
                        created_at=now - timedelta(minutes=n),
                        updated_at=now,
                        closed_at=now,
                    )
                )
            Ticket.objects.bulk_create(rows)
    return created


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    messages, source = load_messages(rng)
    with tempfile.TemporaryDirectory(prefix="routing-bench-") as workdir:
        database_url, kind, label = prepare_database(args.database_url, Path(workdir))
        try:
            setup_django(database_url, "database")
            from django.test import override_settings

            from knowledge_base import search
            from routing import classifier
            from routing.recommend import recommend
            from routing.types import RoutingInput
            from ticketing.models import Ticket

            started = time.perf_counter()
            created = create_tickets(count=args.tickets, messages=messages, rng=rng)
            create_s = time.perf_counter() - started

            started = time.perf_counter()
            counts = search.reindex(doc_types=[search.DocType.TICKET])
            index_s = time.perf_counter() - started
            if counts.get(search.DocType.TICKET) != args.tickets:
                raise BenchError(f"indexed {counts}, expected {args.tickets} tickets")

            started = time.perf_counter()
            sample = list(
                Ticket.objects.order_by("?").values_list("title", "content", "lead_department__code")[: args.train_size]
            )
            model = classifier.Model.fit([f"{t}\n{c}" for t, c, _ in sample], [code for _, _, code in sample])
            model_path = Path(workdir) / "routing_model.json"
            model.save(model_path)
            train_s = time.perf_counter() - started

            queries = [rng.choice(messages) for _ in range(args.queries + WARMUP)]
            timings: list[float] = []
            empty = 0
            with override_settings(ROUTING_MODEL_PATH=model_path):
                for n, query in enumerate(queries):
                    inp = RoutingInput(title=query.title[:200], content=query.body)
                    started = time.perf_counter()
                    recommendations = recommend(inp)
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    if n < WARMUP:
                        continue
                    timings.append(elapsed_ms)
                    empty += not recommendations
        finally:
            if kind == "postgresql":
                from django.db import connections

                connections.close_all()
                drop_database(database_url)
    return {
        "tickets": args.tickets,
        "tickets_by_label": dict(sorted(created.items())),
        "backend": "database",
        "database": kind,
        "database_label": label,
        "corpus": source,
        "create_s": round(create_s, 2),
        "index_s": round(index_s, 2),
        "train_documents": model.documents,
        "train_s": round(train_s, 2),
        "queries": len(timings),
        "without_recommendation": empty,
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(percentile(timings, 0.95), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "max_ms": round(max(timings), 2),
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("tickets", f"{result['tickets']} closed, indexed in {result['index_s']} s"),
        ("backend", f"{result['backend']} on {result['database']}: {result['database_label']}"),
        ("text", result["corpus"]),
        ("classifier", f"trained on {result['train_documents']} tickets in {result['train_s']} s"),
        ("queries", f"{result['queries']} recommend() calls, {result['without_recommendation']} without a result"),
        (
            "latency",
            f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
            f"max {result['max_ms']} ms",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100000, help="closed tickets in the index")
    parser.add_argument("--queries", type=int, default=300, help="timed recommend() calls (after a warm-up of 20)")
    parser.add_argument("--train-size", type=int, default=20000, help="tickets the classifier is trained on")
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL server to run on (a database hotline_search_bench is recreated there); default SQLite",
    )
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    if args.tickets < 10 or args.queries < 1 or args.train_size < 10:
        parser.error("--tickets and --train-size must be at least 10, --queries at least 1")
    try:
        result = run(args)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(error), "tickets": args.tickets, "backend": "database"}))
        return 1
    result["ok"] = True
    print_table(result)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
