"""Benchmark at scale: N tickets in PostgreSQL, then the department inbox, the supervisor board's measures and
ticket creation, timed at the start and at the end.

    python bench/scale.py --tickets 1000000 --database-url postgres://postgres@127.0.0.1:5432/h2scale

The database named in the URL is dropped and recreated for the run and dropped at the end (--keep leaves it
for EXPLAIN ANALYZE afterwards); a URL naming `postgres` (or none) uses `hotline_scale_bench` instead.

1. A city: a city with 10 districts and 60 streets; 40 city bureaus (every other one with a sub-unit),
   10 district governments with 6 street offices each, 6 utilities; 7 first-level categories with their
   second-level children (../shared/data/category_taxonomy.jsonl when present); agents, a dispatcher, a
   supervisor and one handler per department.
2. `create_ms_first`: --creates tickets taken in through `services.ticket_create` on the empty database.
3. N tickets over the last --days days, written with COPY (not the services): more on weekdays and in office
   hours, departments and categories by a Zipf-like popularity, titles and texts from the hotline messages in
   ../shared/data. Each ticket's life is simulated up to now (instant reply 38%, dispatched 58%, the rest
   transferred, cancelled or merged; returns with the centre's review, reassignments, late acceptance and
   replies, callbacks with satisfaction and reopening), so recent tickets are still open and old ones closed.
   Its trail is written as the services write it: the events the measures read (created, dispatch, accept,
   return and its review, reassign, reply, approve_reply, close, reopen, instant_reply, transfer, cancel,
   merge) with the same data, and the departments each event concerned (what the workbench reads). The day
   counts the measures read (models.DailyCounts) are added up as the services add them: each event fed, in
   order, to the same `rollups.event_counts`, and each ticket's intake on its day for its lead department.
   Callback tasks, notes and deadline marks are not generated.
4. The department inbox: `workbench_selectors.workbench_inbox` (the list and counts the workbench and its API
   show, nearest deadline first) for a handler of a random department, --inbox-calls times. p50/p95.
5. The board: `measures.board_summary` (today, 30 days by day, the 30-day ranking, 7-day hot topics against
   the 7 before, deadlines now). `board_ms`: the median of --board-calls refreshes, as the board page does
   them (its slow panels cached by the first call, today's figures and deadlines read again);
   `board_ms_cold`: the median of --board-calls calls that compute everything (cache cleared);
   `board_ms_cold_words`: the same, also cutting every title of the hot topics again (the per-title word memo
   cleared); `board_ms_first`: the first call of the process (jieba loads its dictionary).
6. The board as it was before the day counts, every figure from the trail: `board_ms_cold_trail` (cold calls),
   and `board_equals_trail`: whether both show exactly the same figures at the same moment.
7. `create_ms_last`: --creates tickets through `services.ticket_create` again, with N rows in the table.

A table first, the last line one JSON object (`tickets`, `inbox_p95_ms`, `board_ms`, `board_ms_cold`,
`create_ms_first`, `create_ms_last`, ...).
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import math
import random
import statistics
import sys
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search import DATA_DIR, BenchError, load_corpus, passage, percentile, setup_django  # noqa: E402

DEFAULT_DATABASE = "hotline_scale_bench"
RESERVED = {"postgres", "template0", "template1"}
WARMUP = 5
DISTRICTS = ["和平区", "沈河区", "大东区", "皇姑区", "铁西区", "苏家屯区", "浑南区", "沈北新区", "于洪区", "辽中区"]
BUREAUS = [
    "市住房和城乡建设局", "市生态环境局", "市人力资源和社会保障局", "市医疗保障局", "市城市管理行政执法局",
    "市交通运输局", "市教育局", "市卫生健康委员会", "市市场监督管理局", "市公安局", "市民政局", "市自然资源局",
    "市农业农村局", "市商务局", "市文化旅游和广播电视局", "市水务局", "市应急管理局", "市退役军人事务局",
    "市住房公积金管理中心", "市房产局", "市税务局", "市发展和改革委员会", "市工业和信息化局", "市财政局",
    "市司法局", "市体育局", "市统计局", "市信访局", "市营商环境建设局", "市数据局", "市林业和草原局",
    "市人防办", "市机关事务管理局", "市民族宗教事务局", "市残联", "市妇联", "市总工会", "市团委", "市消防救援支队",
    "市交警支队",
]  # fmt: skip
UTILITIES = ["市水务集团", "国网沈阳供电公司", "市燃气公司", "市供暖集团", "市公交集团", "市地铁集团"]
FALLBACK_CATEGORIES = {
    "城乡建设": ["物业管理", "房屋质量", "市政设施", "拆迁安置", "施工扰民"],
    "劳动和社会保障": ["欠薪", "社会保险", "就业创业", "劳动合同", "退休待遇"],
    "教育文体": ["学校管理", "招生入学", "校外培训", "文体设施", "教师队伍"],
    "商贸旅游": ["消费维权", "市场秩序", "旅游服务", "预付卡", "价格监管"],
    "卫生计生": ["医疗服务", "医保报销", "疫苗接种", "食品安全", "计划生育"],
    "环境保护": ["噪声污染", "大气污染", "水污染", "垃圾处理", "油烟扰民"],
    "交通运输": ["公交线路", "出租车", "道路交通", "停车管理", "轨道交通"],
}
PLACES = ["小区", "花园", "家园", "新城", "公寓", "大厦", "广场", "市场", "学校", "医院", "路口", "公园"]
PLACE_WORDS = ["幸福", "阳光", "锦绣", "和平", "金地", "万科", "华润", "保利", "北陵", "南湖", "长江", "青年"]


@dataclass
class City:
    regions: list[int]
    streets: list[int]
    departments: list[int]
    weights: list[float]
    categories: list[int]
    category_weights: list[float]
    handlers: dict[int, Any]
    agents: list[Any]
    dispatcher: Any
    supervisor: Any
    policy_id: int
    category_ids_by_index: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# database


def prepare_database(url: str) -> tuple[str, str]:
    """(DATABASE_URL for the run, label). Recreates the database the URL names."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise BenchError(f"--database-url must be a PostgreSQL URL (got {parts.scheme!r})")
    name = parts.path.lstrip("/")
    if not name or name in RESERVED:
        name = DEFAULT_DATABASE
    import psycopg
    from psycopg import sql

    try:
        with _admin_connection(parts) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise BenchError(f"could not recreate database {name}: {error}") from error
    bench_url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    return bench_url, f"{name} on {parts.hostname}:{parts.port or 5432} (recreated)"


def _admin_connection(parts: urllib.parse.SplitResult) -> Any:
    import psycopg

    return psycopg.connect(
        host=parts.hostname or None,
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or "") or None,
        password=urllib.parse.unquote(parts.password or "") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def drop_database(url: str) -> None:
    from psycopg import sql

    parts = urllib.parse.urlsplit(url)
    with _admin_connection(parts) as connection:
        name = sql.Identifier(parts.path.lstrip("/"))
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


# ---------------------------------------------------------------------------------------------------------
# the city


def zipf_weights(count: int, exponent: float = 0.9) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


def load_categories() -> dict[str, list[str]]:
    path = DATA_DIR / "category_taxonomy.jsonl"
    if not path.exists():
        return FALLBACK_CATEGORIES
    tree: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            children = tree.setdefault(row["level1"], [])
            if row.get("level2") and row["level2"] not in children:
                children.append(row["level2"])
    return tree or FALLBACK_CATEGORIES


def create_city(rng: random.Random) -> City:
    from ticketing.models import Category, DeadlinePolicy, Department, DepartmentKind, Region, RegionLevel, Role, User

    city = Region.objects.create(code="210100", name="沈阳市", level=RegionLevel.CITY)
    districts = [
        Region.objects.create(code=f"2101{n:02d}", name=name, level=RegionLevel.DISTRICT, parent=city)
        for n, name in enumerate(DISTRICTS, start=2)
    ]
    streets = [
        Region.objects.create(
            code=f"{district.code}{s:03d}",
            name=f"{district.name[:-1]}第{s}街道",
            level=RegionLevel.STREET,
            parent=district,
        )
        for district in districts
        for s in range(1, 7)
    ]
    departments: list[Department] = []
    for n, name in enumerate(BUREAUS, start=1):
        bureau = Department.objects.create(code=f"CB{n:02d}", name=name, kind=DepartmentKind.CITY_BUREAU)
        departments.append(bureau)
        if n % 2:
            departments.append(
                Department.objects.create(
                    code=f"CB{n:02d}-1", name=f"{name}执法支队", kind=DepartmentKind.CITY_BUREAU, parent=bureau
                )
            )
    street_offices: dict[int, Department] = {}
    for district in districts:
        government = Department.objects.create(
            code=f"DG{district.code}", name=f"{district.name}人民政府", kind=DepartmentKind.DISTRICT_GOVERNMENT
        )
        government.jurisdiction.set([district])
        departments.append(government)
        for street in streets:
            if street.parent_id == district.id:
                office = Department.objects.create(
                    code=f"SO{street.code}",
                    name=f"{street.name}办事处",
                    kind=DepartmentKind.STREET_OFFICE,
                    parent=government,
                )
                office.jurisdiction.set([street])
                street_offices[street.id] = office
                departments.append(office)
    for n, name in enumerate(UTILITIES, start=1):
        departments.append(Department.objects.create(code=f"PU{n:02d}", name=name, kind=DepartmentKind.PUBLIC_UTILITY))
    rng.shuffle(departments)

    categories: list[int] = []
    for order, (top_name, children) in enumerate(load_categories().items()):
        top = Category.objects.create(name=top_name, sort_order=order)
        for child_order, child in enumerate(children):
            categories.append(Category.objects.create(name=child, parent=top, sort_order=child_order).id)
    rng.shuffle(categories)

    agents = [User.objects.create(username=f"agent{n}", role=Role.AGENT, full_name=f"话务员{n}") for n in range(20)]
    dispatcher = User.objects.create(username="dispatcher", role=Role.DISPATCHER)
    supervisor = User.objects.create(username="supervisor", role=Role.SUPERVISOR)
    handlers = {}
    for department in departments:
        handler = User.objects.create(username=f"h-{department.code}", role=Role.DEPARTMENT_HANDLER)
        handler.departments.set([department])
        handlers[department.id] = handler
    policy = DeadlinePolicy.objects.filter(urgency="", is_active=True).order_by("id").first()
    if policy is None:
        raise BenchError("no default deadline policy: did the migrations run?")
    return City(
        regions=[r.id for r in [*districts, *streets]],
        streets=[s.id for s in streets],
        departments=[d.id for d in departments],
        weights=zipf_weights(len(departments)),
        categories=categories,
        category_weights=zipf_weights(len(categories), 0.8),
        handlers=handlers,
        agents=agents,
        dispatcher=dispatcher,
        supervisor=supervisor,
        policy_id=policy.id,
    )


# ---------------------------------------------------------------------------------------------------------
# tickets through the services (creation time)


def time_creates(city: City, corpus: Any, rng: random.Random, count: int) -> list[float]:
    from ticketing import services
    from ticketing.services import TicketInput

    timings = []
    for n in range(count + WARMUP):
        data = TicketInput(
            hotline_line="12345",
            channel="phone",
            appeal_type=rng.choice(["complaint", "help", "inquiry", "report", "suggestion"]),
            title=rng.choice(corpus.titles)[:200],
            content=passage(rng, corpus.sentences, 200),
            category_id=rng.choice(city.categories),
            region_id=rng.choice(city.streets),
            location_text=f"{rng.choice(PLACE_WORDS)}{rng.choice(PLACES)}",
            caller_name="王先生",
            caller_phone=f"139{rng.randrange(10**8):08d}",
        )
        started = time.perf_counter()
        services.ticket_create(data=data, actor=rng.choice(city.agents))
        if n >= WARMUP:
            timings.append((time.perf_counter() - started) * 1000)
    return timings


# ---------------------------------------------------------------------------------------------------------
# tickets with COPY


DAY_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 0.95, 0.6, 0.55]  # Monday .. Sunday
HOUR_WEIGHTS = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 3.2, 3.3, 2.8, 1.9, 2.4, 3.0, 3.0, 2.8, 2.3, 1.6, 1.3,
                1.2, 1.0, 0.7, 0.4]  # fmt: skip
H = 3600.0
D = 86400.0


def created_times(rng: random.Random, count: int, *, now: dt.datetime, days: int) -> list[float]:
    """Epoch seconds, ascending (ids follow time as in production)."""
    from ticketing.calendar import TZ

    today = now.astimezone(TZ).date()
    first = today - dt.timedelta(days=days - 1)
    day_list = [first + dt.timedelta(days=n) for n in range(days)]
    # A slow rise over the year, as call volumes grow.
    day_weights = [DAY_WEIGHTS[d.weekday()] * (0.85 + 0.3 * n / days) for n, d in enumerate(day_list)]
    cumulative_days = list(_cumulative(day_weights))
    cumulative_hours = list(_cumulative(HOUR_WEIGHTS))
    limit = now.timestamp()
    times = []
    while len(times) < count:
        day = day_list[bisect.bisect(cumulative_days, rng.random() * cumulative_days[-1])]
        hour = bisect.bisect(cumulative_hours, rng.random() * cumulative_hours[-1])
        moment = dt.datetime.combine(day, dt.time(hour), tzinfo=TZ).timestamp() + rng.random() * H
        if moment < limit:
            times.append(moment)
    times.sort()
    return times


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


class Writer:
    """Collects the rows of a batch of tickets and their trails for COPY."""

    def __init__(self, city: City, *, first_event_id: int, now: float, rng: random.Random):
        from ticketing import rollups
        from ticketing.calendar import TZ

        self.city = city
        self.event_id = first_event_id
        self.now = now
        self.rng = rng
        self.tickets: list[dict[str, Any]] = []
        self.events: list[tuple[Any, ...]] = []
        self.audience: list[tuple[int, int]] = []
        self.assisting: list[tuple[int, int]] = []
        # The day counts, as the services would have added them event by event (rollups.event_counts).
        self.counts: Any = defaultdict(Counter)
        self.rollups, self.tz = rollups, TZ
        self.replay = rollups.Replay()

    def event(
        self, t: dict[str, Any], kind: str, at: float, to_status: str, data: dict[str, Any], actor: int | None
    ) -> bool:
        """Write an event if it happened by now; False when it lies in the future (the story stops there)."""
        if at > self.now:
            return False
        self.event_id += 1
        from_status = t["status"] if kind != "created" else ""
        self.events.append((self.event_id, t["id"], kind, actor, from_status, to_status, json.dumps(data), _iso(at)))
        if kind in self.rollups.COUNTED_KINDS:
            step = self.rollups.Step(kind, data, dt.datetime.fromtimestamp(at, self.tz))
            self.rollups.merge(self.counts, self.replay.feed(t["id"], step))
        # As services._record does: the lead department, the handling unit and the assisting departments,
        # plus the department the event names (a return's, a reassignment's previous one).
        concerned = {t["lead"], data.get("department"), data.get("from_department"), *t["assist"]}
        for department in sorted(d for d in concerned if d):
            self.audience.append((self.event_id, department))
        t["status"] = to_status
        t["updated_at"] = at
        return True


def pick_department(w: Writer, avoid: int | None = None) -> int:
    while True:
        department = w.rng.choices(w.city.departments, w.city.weights)[0]
        if department != avoid:
            return department


def simulate(w: Writer, t: dict[str, Any]) -> None:
    """One ticket's life up to now: its events, and its fields as they stand now."""
    rng, city = w.rng, w.city
    created = t["created_at"]
    agent, dispatcher = t["created_by"], city.dispatcher.id
    created_data = {
        "channel": t["channel"],
        "hotline_line": "12345",
        "draft": False,
        "appeal_type": t["appeal_type"],
        "urgency": t["urgency"],
        "title": t["title"],
    }
    w.event(t, "created", created, "pending_dispatch", created_data, agent)
    roll = rng.random()
    if roll < 0.38:
        at = created + rng.uniform(60, 600)
        result = "explained" if t["appeal_type"] == "inquiry" else "solved"
        data = {"lead_department": None, "reply_text": "已当场答复。", "result": result}
        if w.event(t, "instant_reply", at, "closed", data, agent):
            t.update(reply_result=result, replied_at=at, closed_at=at, reply_text="已当场答复。")
        return
    if roll < 0.42:
        kind, status, data = rng.choice(
            [
                ("transfer", "transferred", {"lead_department": None, "target": "110", "note": ""}),
                ("cancel", "cancelled", {"lead_department": None, "reason": "来电人撤回诉求"}),
                ("merge", "merged", {"lead_department": None, "into": None, "into_number": "", "note": ""}),
                ("merge", "merged", {"lead_department": None, "into": None, "into_number": "", "note": ""}),
            ]
        )
        at = created + rng.uniform(60, 900)
        if w.event(t, kind, at, status, data, agent) and kind != "merge":
            t.update(closed_at=at, external_target="110" if kind == "transfer" else "")
        return

    spans = {"normal": (D, 7 * D), "urgent": (2 * H, 2 * D), "critical": (15 * 60, D)}[t["urgency"]]
    accept_span, reply_span = spans
    department = pick_department(w)
    at = created + rng.uniform(120, 5400)
    kind, extra = "dispatch", {}
    reopened = 0
    while True:
        # A department hold starts: dispatched, reassigned or reopened to `department`.
        t["lead"] = department
        if kind == "dispatch" and not t["assist"] and rng.random() < 0.05:
            t["assist"] = [pick_department(w, avoid=department)]
        deadlines = {
            "policy": city.policy_id,
            "accept_due_at": _iso(at + accept_span),
            "return_due_at": _iso(at + 2 * D),
            "reply_due_at": _iso(at + reply_span),
        }
        data: dict[str, Any] = {"lead_department": department, **extra}
        if kind in ("dispatch", "reassign"):
            data["assisting_departments"] = t["assist"]
        data.update(deadlines)
        if not w.event(t, kind, at, "dispatched", data, dispatcher if kind != "reopen" else agent):
            return
        t.update(
            dispatched_at=at,
            accept_due_at=at + accept_span,
            accept_warning_at=at + 0.8 * accept_span,
            return_due_at=at + 2 * D,
            reply_due_at=at + reply_span,
            reply_warning_at=at + 0.8 * reply_span,
            accepted_at=None,
            replied_at=None,
        )
        hold_start, handler = at, city.handlers[department].id
        fate = rng.random()
        if kind == "dispatch" and fate < 0.04:
            # The department asks to return it; the centre agrees (85%) or refuses.
            at += rng.uniform(0.5 * H, 20 * H)
            asked = {"lead_department": department, "department": department, "reason": "不属于本单位职责"}
            if not w.event(t, "return", at, "return_pending", asked, handler):
                return
            t["return_count"] += 1
            at += rng.uniform(600, 7200)
            if rng.random() < 0.85:
                agreed = {"lead_department": None, "department": department, "reason": "不属于本单位职责", "note": ""}
                if not w.event(t, "approve_return", at, "pending_dispatch", agreed, dispatcher):
                    return
                t.update(lead=None, assist=[])
                for name in ("dispatched_at", "accept_due_at", "accept_warning_at", "return_due_at", "reply_due_at",
                             "reply_warning_at", "accepted_at"):  # fmt: skip
                    t[name] = None
                department = pick_department(w, avoid=department)
                at += rng.uniform(300, 3600)
                kind, extra = "dispatch", {"note": ""}
                continue
            refused = {"lead_department": department, "department": department, "reason": "属于本单位职责"}
            if not w.event(t, "reject_return", at, "accepted", refused, dispatcher):
                return
            t["accepted_at"] = at
        elif kind == "dispatch" and fate < 0.06:
            # The dispatcher moves it before the department accepted.
            at += rng.uniform(0.2 * H, 6 * H)
            kind, extra = "reassign", {"from_department": department, "reason": "职责调整"}
            department = pick_department(w, avoid=department)
            t["assist"] = []
            continue
        else:
            delay = rng.lognormvariate(math.log(accept_span * 0.25), 0.9)
            at += delay
            accepted = {"lead_department": department, "department": department, "late": delay > accept_span}
            if not w.event(t, "accept", at, "accepted", accepted, handler):
                return
            t["accepted_at"] = at
        reply_due = hold_start + reply_span
        at += rng.lognormvariate(math.log(reply_span * 0.35), 0.7)
        result = rng.choices(["solved", "partly_solved", "explained", "not_solved"], [62, 15, 18, 5])[0]
        replied = {"lead_department": department, "department": department, "result": result, "late": at > reply_due}
        if rng.random() < 0.03:
            if not w.event(t, "reply", at, "replied", replied, handler):
                return
            at += rng.uniform(H, 8 * H)
            sent_back = {"lead_department": department, "department": department, "reason": "答复不完整"}
            if not w.event(t, "reject_reply", at, "accepted", sent_back, dispatcher):
                return
            at += rng.uniform(2 * H, D)
            replied = {**replied, "late": at > reply_due}
        if not w.event(t, "reply", at, "replied", replied, handler):
            return
        t.update(replied_at=at, reply_result=result, reply_text="经核实，已按规定处理。")
        at += rng.uniform(0.5 * H, 8 * H)
        approved = {
            "lead_department": department,
            "department": department,
            "reply_text": t["reply_text"],
            "result": result,
        }
        if not w.event(t, "approve_reply", at, "callback", approved, dispatcher):
            return
        at += rng.uniform(2 * H, 2 * D)
        answer = rng.choices(["satisfied", "fairly_satisfied", "dissatisfied", None], [78, 12, 6, 4])[0]
        if answer == "dissatisfied" and reopened < 2:
            reopened += 1
            t["reopen_count"] += 1
            t["satisfaction"] = "dissatisfied"
            kind, extra = "reopen", {"satisfaction": "dissatisfied", "department": department}
            continue
        answer = None if answer == "dissatisfied" else answer
        closed = {"lead_department": department, "satisfaction": answer, "unreachable": answer is None}
        if w.event(t, "close", at, "closed", closed, agent):
            t.update(closed_at=at, satisfaction=answer or "")
        return


def ticket_rows(w: Writer, columns: list[Any]) -> Iterator[tuple[Any, ...]]:
    """The ticket rows in the table's column order; anything not simulated takes the field's default."""
    times = {
        "created_at", "updated_at", "dispatched_at", "accept_due_at", "accept_warning_at", "return_due_at",
        "reply_due_at", "reply_warning_at", "accepted_at", "replied_at", "closed_at",
    }  # fmt: skip
    renamed = {
        "lead_department_id": "lead",
        "category_id": "category",
        "region_id": "region",
        "created_by_id": "created_by",
    }
    defaults = {f.column: f.get_default() for f in columns}
    for t in w.tickets:
        row = []
        for f in columns:
            key = renamed.get(f.column, f.column)
            value = t.get(key, defaults[f.column])
            if key in times and value is not None:
                value = _iso(value)
            row.append(value)
        yield tuple(row)


def load_tickets(
    city: City, corpus: Any, rng: random.Random, *, count: int, days: int, now: dt.datetime
) -> dict[str, int]:
    """N tickets with their trails, by COPY in batches, each batch in its own transaction."""
    from django.db import connection, transaction
    from django.db.models import Max

    from ticketing.calendar import TZ
    from ticketing.models import Ticket, TicketEvent, TicketEventDepartment, TicketNumberSequence

    columns = [f for f in Ticket._meta.concrete_fields]
    column_names = ", ".join(f.column for f in columns)
    next_ticket = (Ticket.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    first_event = TicketEvent.objects.aggregate(m=Max("id"))["m"] or 0
    sequence = {(r.hotline_line, r.day): r.last_value for r in TicketNumberSequence.objects.all()}
    times = created_times(rng, count, now=now, days=days)
    w = Writer(city, first_event_id=first_event, now=now.timestamp(), rng=rng)
    assisting = Ticket.assisting_departments.through._meta.db_table
    audience = TicketEventDepartment._meta.db_table
    totals = {"tickets": 0, "events": 0, "audience": 0, "day_counts": 0}
    batch = 20000
    for start in range(0, count, batch):
        w.tickets, w.events, w.audience, w.assisting = [], [], [], []
        for created in times[start : start + batch]:
            local_day = dt.datetime.fromtimestamp(created, TZ).date()
            key = ("12345", local_day)
            sequence[key] = sequence.get(key, 0) + 1
            category = rng.choices(city.categories, city.category_weights)[0] if rng.random() < 0.95 else None
            street = rng.choice(city.streets) if rng.random() < 0.9 else None
            t: dict[str, Any] = {
                "id": next_ticket,
                "number": f"12345-{local_day:%Y%m%d}-{sequence[key]:06d}",
                "hotline_line": "12345",
                "channel": rng.choices(["phone", "web", "wechat", "app"], [70, 12, 13, 5])[0],
                "status": "",
                "appeal_type": rng.choices(
                    ["complaint", "help", "inquiry", "report", "suggestion", "praise"], [38, 22, 25, 8, 6, 1]
                )[0],
                "category": category,
                "urgency": rng.choices(["normal", "urgent", "critical"], [92, 7, 1])[0],
                "title": rng.choice(corpus.titles)[:200],
                "content": passage(rng, corpus.sentences, min(rng.choice(corpus.lengths), 600)),
                "location_text": f"{rng.choice(PLACE_WORDS)}{rng.choice(PLACES)}" if street else "",
                "region": street,
                "caller_name": "张" + rng.choice("伟芳娜敏静丽强磊军洋"),
                "caller_phone": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
                "query_code": f"{rng.randrange(10**6):06d}",
                "created_by": rng.choice(city.agents).id,
                "created_at": created,
                "updated_at": created,
                "lead": None,
                "assist": [],
                "return_count": 0,
                "reopen_count": 0,
                "deadline_policy_id": city.policy_id,
            }
            next_ticket += 1
            simulate(w, t)
            w.replay.forget(t["id"])
            # Intake: every generated ticket is taken in (none is a draft), on its day, for its lead department now.
            w.counts[(local_day, t["lead"])]["intake"] += 1
            if t["lead"] is None:
                t["deadline_policy_id"] = None
            w.tickets.append(t)
            w.assisting.extend((t["id"], d) for d in t["assist"])
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(f"COPY {Ticket._meta.db_table} ({column_names}) FROM STDIN") as copy:
                for row in ticket_rows(w, columns):
                    copy.write_row(row)
            event_columns = "id, ticket_id, kind, actor_id, from_status, to_status, data, created_at"
            with raw.copy(f"COPY {TicketEvent._meta.db_table} ({event_columns}) FROM STDIN") as copy:
                for event in w.events:
                    copy.write_row(event)
            with raw.copy(f"COPY {audience} (event_id, department_id) FROM STDIN") as copy:
                for pair in w.audience:
                    copy.write_row(pair)
            with raw.copy(f"COPY {assisting} (ticket_id, department_id) FROM STDIN") as copy:
                for pair in w.assisting:
                    copy.write_row(pair)
        totals["tickets"] += len(w.tickets)
        totals["events"] += len(w.events)
        totals["audience"] += len(w.audience)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Ticket, TicketEvent):
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
        for (line, day), value in sequence.items():
            TicketNumberSequence.objects.update_or_create(hotline_line=line, day=day, defaults={"last_value": value})
        totals["day_counts"] = write_day_counts(w.counts, cursor)
    connection.cursor().execute("VACUUM ANALYZE")
    return totals


def write_day_counts(counts: Any, cursor: Any) -> int:
    """The generated trail's day counts added to those the services kept for the tickets created before."""
    from ticketing.measures import DAY_COUNTED
    from ticketing.models import DailyCounts

    for row in DailyCounts.objects.values("day", "department_id", *DAY_COUNTED):
        counts[(row["day"], row["department_id"])].update({name: row[name] for name in DAY_COUNTED})
    DailyCounts.objects.all().delete()
    written = 0
    with cursor.cursor.copy(
        f"COPY {DailyCounts._meta.db_table} (day, department_id, {', '.join(DAY_COUNTED)}) FROM STDIN"
    ) as copy:
        for (day, department), values in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
            if any(values[name] for name in DAY_COUNTED):
                copy.write_row((day, department, *(values[name] for name in DAY_COUNTED)))
                written += 1
    return written


# ---------------------------------------------------------------------------------------------------------
# measurements


def time_inbox(city: City, rng: random.Random, calls: int) -> tuple[list[float], float]:
    from hotline import clock
    from ticketing import workbench_selectors

    timings, listed = [], 0
    departments = list(city.handlers)
    for n in range(calls + WARMUP):
        department = rng.choice(departments)
        started = time.perf_counter()
        inbox = workbench_selectors.workbench_inbox(
            user=city.handlers[department], department_id=department, now=clock.now()
        )
        elapsed = (time.perf_counter() - started) * 1000
        if n >= WARMUP:
            timings.append(elapsed)
            listed += inbox.counts["total"]
    return timings, listed / max(1, calls)


def time_board(city: City, calls: int) -> tuple[float, list[float], list[float], dict[str, Any]]:
    """(first call, refreshes, cold calls, figures). A refresh is what the board does every few seconds: the
    slow panels come from the cache the first call filled. A cold call computes everything again."""
    from django.core.cache import cache

    from ticketing import measures

    cache.clear()
    started = time.perf_counter()
    board = measures.board_summary(user=city.supervisor)
    first = (time.perf_counter() - started) * 1000
    refreshes = []
    for _ in range(calls):
        started = time.perf_counter()
        measures.board_summary(user=city.supervisor)
        refreshes.append((time.perf_counter() - started) * 1000)
    cold = time_board_cold(city, calls)
    trend_total = measures.Counts()
    for row in board.trend.rows:
        trend_total.add(row.counts)
    rates = trend_total.rates()
    figures = {
        "today_intake": board.today.total.intake,
        "trend_intake": trend_total.intake,
        "trend_dispatched": trend_total.dispatched,
        "response_rate_30d": round(rates["response"] or 0, 4),
        "resolution_rate_30d": round(rates["resolution"] or 0, 4),
        "satisfaction_rate_30d": round(rates["satisfaction"] or 0, 4),
        "ranked_departments": sum(1 for r in board.ranking if r.rank is not None),
        "accept_overdue_now": board.deadlines.accept_overdue,
        "reply_overdue_now": board.deadlines.reply_overdue,
    }
    return first, refreshes, cold, figures


def time_board_cold(city: City, calls: int) -> list[float]:
    from django.core.cache import cache

    from ticketing import measures

    timings = []
    for _ in range(calls):
        cache.clear()
        started = time.perf_counter()
        measures.board_summary(user=city.supervisor)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def time_board_trail(city: City, calls: int) -> dict[str, Any]:
    """The board as it was computed before the day counts (migration 0009): every figure from the trail. Its
    cold calls, timed, and whether the board from the day counts shows exactly the same figures (same moment)."""
    from unittest import mock

    from django.core.cache import cache

    from hotline import clock
    from ticketing import measures

    now = clock.now()
    cache.clear()
    fast = measures.board_summary(user=city.supervisor, now=now)
    with mock.patch.object(measures, "_day_counts", return_value=None):
        cold = time_board_cold(city, calls)
        cache.clear()
        slow = measures.board_summary(user=city.supervisor, now=now)
    cache.clear()
    return {
        "board_ms_cold_trail": round(statistics.median(cold), 1),
        "board_equals_trail": fast.today == slow.today and fast.trend == slow.trend and fast.ranking == slow.ranking,
    }


def time_board_cold_words(city: City, calls: int) -> list[float]:
    """Cold calls that also cut every title again (the per-title word memo of the hot topics cleared)."""
    from django.core.cache import cache

    from ticketing import measures

    timings = []
    for _ in range(calls):
        cache.clear()
        measures.title_words.cache_clear()
        started = time.perf_counter()
        measures.board_summary(user=city.supervisor)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def status_spread() -> dict[str, int]:
    from django.db.models import Count

    from ticketing.models import Ticket

    return dict(Ticket.objects.values_list("status").annotate(n=Count("id")).order_by("status"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    corpus = load_corpus(rng)
    database_url, label = prepare_database(args.database_url)
    try:
        setup_django(database_url, "database")
        from hotline import clock

        city = create_city(rng)
        create_first = time_creates(city, corpus, rng, args.creates)

        started = time.perf_counter()
        loaded = load_tickets(city, corpus, rng, count=args.tickets, days=args.days, now=clock.now())
        load_s = time.perf_counter() - started

        inbox, inbox_mean = time_inbox(city, rng, args.inbox_calls)
        board_first, board, board_cold, figures = time_board(city, args.board_calls)
        board_cold_words = time_board_cold_words(city, args.board_calls)
        trail = time_board_trail(city, args.board_calls)
        create_last = time_creates(city, corpus, rng, args.creates)
        spread = status_spread()
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(database_url)
    return {
        "tickets": args.tickets,
        "tickets_in_table": sum(spread.values()),
        "events": loaded["events"],
        "event_departments": loaded["audience"],
        "day_counts": loaded["day_counts"],
        "days": args.days,
        "database": label + (", kept" if args.keep else ", dropped"),
        "corpus": corpus.source,
        "load_s": round(load_s, 1),
        "load_tickets_per_s": round(loaded["tickets"] / load_s),
        "inbox_calls": len(inbox),
        "inbox_mean_tickets": round(inbox_mean, 1),
        "inbox_p50_ms": round(statistics.median(inbox), 2),
        "inbox_p95_ms": round(percentile(inbox, 0.95), 2),
        "inbox_max_ms": round(max(inbox), 2),
        "board_ms": round(statistics.median(board), 1),
        "board_ms_max": round(max(board), 1),
        "board_ms_cold": round(statistics.median(board_cold), 1),
        "board_ms_cold_words": round(statistics.median(board_cold_words), 1),
        "board_ms_first": round(board_first, 1),
        "board_calls": len(board),
        **trail,
        "board_cold_ratio_to_trail": round(statistics.median(board_cold) / trail["board_ms_cold_trail"], 3),
        "create_ms_first": round(statistics.median(create_first), 2),
        "create_ms_last": round(statistics.median(create_last), 2),
        "create_p95_ms_first": round(percentile(create_first, 0.95), 2),
        "create_p95_ms_last": round(percentile(create_last, 0.95), 2),
        "creates": len(create_first),
        "status": spread,
        "board_figures": figures,
        "goals": {
            "inbox_p95_under_50ms": percentile(inbox, 0.95) < 50,
            "board_refresh_under_500ms": statistics.median(board) < 500,
            "board_cold_under_500ms": statistics.median(board_cold) < 500,
            "board_equals_trail": trail["board_equals_trail"],
            "create_flat": statistics.median(create_last) < 1.5 * statistics.median(create_first) + 2,
        },
    }


def print_table(result: dict[str, Any]) -> None:
    figures = result["board_figures"]
    rows = [
        (
            "tickets",
            f"{result['tickets']:,} generated ({result['tickets_in_table']:,} in the table), "
            f"over {result['days']} days",
        ),
        (
            "trail",
            f"{result['events']:,} events, {result['event_departments']:,} event-department rows, "
            f"{result['day_counts']:,} day-count rows",
        ),
        ("database", result["database"]),
        ("text", result["corpus"]),
        ("load (COPY)", f"{result['load_s']} s, {result['load_tickets_per_s']:,} tickets/s"),
        ("status", ", ".join(f"{k} {v:,}" for k, v in result["status"].items())),
        (
            "inbox",
            f"p50 {result['inbox_p50_ms']} ms, p95 {result['inbox_p95_ms']} ms, max {result['inbox_max_ms']} ms "
            f"({result['inbox_calls']} departments, {result['inbox_mean_tickets']} open tickets on average)",
        ),
        (
            "board",
            f"refresh {result['board_ms']} ms (median of {result['board_calls']}, slow panels cached), cold "
            f"{result['board_ms_cold']} ms (everything computed), cold with every title cut again "
            f"{result['board_ms_cold_words']} ms, first call {result['board_ms_first']} ms",
        ),
        (
            "board, from trail",
            f"as before the day counts: cold {result['board_ms_cold_trail']} ms (ratio "
            f"{result['board_cold_ratio_to_trail']}); the same figures: "
            + ("yes" if result["board_equals_trail"] else "NO"),
        ),
        (
            "board figures",
            f"today {figures['today_intake']:,} taken in; 30 days: {figures['trend_intake']:,} taken in, "
            f"{figures['trend_dispatched']:,} dispatched, response {figures['response_rate_30d']:.1%}, "
            f"resolution {figures['resolution_rate_30d']:.1%}, satisfaction {figures['satisfaction_rate_30d']:.1%}",
        ),
        (
            "create",
            f"first {result['create_ms_first']} ms (p95 {result['create_p95_ms_first']}), last "
            f"{result['create_ms_last']} ms (p95 {result['create_p95_ms_last']}), median of {result['creates']} each",
        ),
        ("goals", ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["goals"].items())),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets to generate (default 1,000,000)")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/hotline_scale_bench",
        help="PostgreSQL URL; the database it names is dropped and recreated",
    )
    parser.add_argument("--days", type=int, default=365, help="the tickets spread over this many days up to now")
    parser.add_argument("--inbox-calls", type=int, default=300, help="inbox reads timed (random departments)")
    parser.add_argument("--board-calls", type=int, default=5, help="board reads timed after the first")
    parser.add_argument("--creates", type=int, default=50, help="tickets created through the services at start and end")
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.days < 2 or args.inbox_calls < 1 or args.board_calls < 1 or args.creates < 1:
        parser.error("--tickets, --inbox-calls, --board-calls and --creates must be positive, --days at least 2")
    try:
        result = run(args)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(error), "tickets": args.tickets}))
        return 1
    result["ok"] = True
    print_table(result)
    print(json.dumps(result, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
