"""`manage.py seed_demo`: the demo city with tickets in every state, made only through services.

Builds the organisation from `ticketing/demo/city.json` (regions, departments, responsibility lists), the
default category tree, a deadline policy for water/power/gas/heating, one demo user per role, then N tickets
over the last 30 days. Every ticket goes through the real services with the clock pinned to a backdated
moment (`hotline.clock.frozen`), so the trail, the deadlines and the ticket numbers are what production
would have written. All steps of all demo tickets are executed in time order, so event ids grow with event
times as they do in production (messages from `--messages` keep their old dates and are added last).
`--if-empty` makes it safe to call on every `make run`.
"""

import dataclasses
import logging
import random
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from hotline import clock
from hotline.errors import ApplicationError
from hotline.jsonl import JsonLinesError, read_json_lines
from ticketing import deadlines as deadline_rules
from ticketing import demo, directory, selectors, services
from ticketing.calendar import TZ
from ticketing.defaults import category_pairs
from ticketing.models import (
    AppealType,
    Category,
    Channel,
    DeadlinePolicy,
    Department,
    DurationUnit,
    ReplyResult,
    Role,
    Satisfaction,
    Ticket,
    User,
)
from ticketing.services import TicketInput
from ticketing.workflow import Status

# Tianjin's published rule: water, power, gas and heating faults are accepted within 30 minutes. The
# return and reply limits follow the Shandong values of the default policy.
UTILITIES_CATEGORY = "水电气暖"
UTILITIES_POLICY: dict[str, Any] = {
    "name": "水电气暖：30 分钟内签收",
    "accept_within": 30,
    "accept_unit": DurationUnit.MINUTES,
    "return_within": 2,
    "return_unit": DurationUnit.WORKING_DAYS,
    "reply_within": 5,
    "reply_unit": DurationUnit.WORKING_DAYS,
    "max_extensions": 1,
    "max_extension_working_days": 10,
    "warning_percent": 80,
    "source": (
        "签收 30 分钟：天津（水、电、气、暖诉求）；退单 2 个工作日、答复 5 个工作日、延期 1 次不超过 10 个工作日：山东"
    ),
}


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    full_name: str
    department_codes: tuple[str, ...]


# Demo accounts with published passwords: for a local demo only, never for a reachable installation.
CENTRE = "SY-12345"
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("agent", "demo-agent-2026", Role.AGENT, "演示话务员", (CENTRE,)),
    DemoUser("dispatcher", "demo-dispatcher-2026", Role.DISPATCHER, "演示派单员", (CENTRE,)),
    DemoUser("supervisor", "demo-supervisor-2026", Role.SUPERVISOR, "演示督办员", (CENTRE,)),
    DemoUser("admin", "demo-admin-2026", Role.ADMINISTRATOR, "演示管理员", ()),
    DemoUser("handler", "demo-handler-2026", Role.DEPARTMENT_HANDLER, "住建局承办员", ("SY-ZJJ",)),
    DemoUser("lead", "demo-lead-2026", Role.DEPARTMENT_LEAD, "住建局负责人", ("SY-ZJJ",)),
    DemoUser(
        "utility",
        "demo-utility-2026",
        Role.DEPARTMENT_HANDLER,
        "水电气暖承办员",
        ("SY-GD", "SY-SWJT", "SY-RQ", "SY-GN"),
    ),
    DemoUser("district", "demo-district-2026", Role.DEPARTMENT_LEAD, "和平区负责人", ("210102-ZF",)),
)
# Acts for every dispatchable department no other demo account covers, so every unit's tickets can move.
OTHER_UNITS_USER = DemoUser("units", "demo-units-2026", Role.DEPARTMENT_HANDLER, "其他单位承办员（演示）", ())

# Share of tickets per final state after the first round, which gives every state one ticket.
STATUS_WEIGHTS: dict[Status, int] = {
    Status.DRAFT: 3,
    Status.PENDING_DISPATCH: 10,
    Status.RETURN_PENDING: 2,
    Status.DISPATCHED: 12,
    Status.ACCEPTED: 14,
    Status.SUSPENDED: 2,
    Status.REPLIED: 6,
    Status.CALLBACK: 8,
    Status.CLOSED: 34,
    Status.MERGED: 5,
    Status.TRANSFERRED: 4,
    Status.CANCELLED: 4,
}
CHANNEL_WEIGHTS: dict[Channel, int] = {
    Channel.PHONE: 50,
    Channel.WEB: 12,
    Channel.WECHAT: 12,
    Channel.APP: 8,
    Channel.SMS: 6,
    Channel.EMAIL: 4,
    Channel.API: 4,
    Channel.OPEN311: 4,
}
# Deadline states open tickets are placed in, in turn, so even a small seed shows a late one and one near
# its deadline (dispatched and accepted tickets share the turn).
FLAVOURS = ("overdue", "warning", "fresh")
HISTORY_DAYS = 30

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
GIVEN_NAMES = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志鹏飞宇浩然欣怡子涵淑珍凤海波春梅东"
PHONE_PREFIXES = ("139", "138", "137", "136", "135", "186", "188", "150", "152", "159", "177", "180")

TRANSFER_NOTES = {
    "110": "涉及治安警情，已三方转接 110。",
    "119": "疑似火情，已立即转接 119。",
    "120": "涉及急救，已立即转接 120 并指导来电人等待救护。",
    "122": "交通事故，已转接 122。",
    "arbitration": "属劳动争议，已告知来电人申请劳动人事争议仲裁。",
    "litigation": "属民事纠纷，已告知来电人可向人民法院起诉。",
    "petition": "已告知来电人按信访途径反映。",
    "disclosure": "已告知来电人依法提出政府信息公开申请。",
}
CANCEL_REASONS = ("来电人表示问题已自行解决，要求撤销。", "来电人要求撤回诉求。", "受理信息有误，来电人要求重新登记。")
REOPEN_COMMENTS = (
    "来电人表示问题没有解决，要求重新处理。",
    "来电人认为答复与实际情况不符，不满意。",
    "来电人反映整改后问题又出现了。",
)
CLOSE_COMMENTS = {
    Satisfaction.SATISFIED: ("", "处理及时，满意。", "问题已解决，谢谢。"),
    Satisfaction.FAIRLY_SATISFIED: ("基本解决，希望以后加强管理。", "处理时间有点长。"),
}

# --messages: the first of these words in the title (else the body) decides the appeal type.
APPEAL_KEYWORDS = (
    ("投诉", AppealType.COMPLAINT),
    ("举报", AppealType.REPORT),
    ("建议", AppealType.SUGGESTION),
    ("咨询", AppealType.INQUIRY),
    ("求助", AppealType.HELP),
)
MAX_TITLE = 200
MAX_CONTENT = 10000


# ---------------------------------------------------------------------------------------------------------
# the organisation


@dataclass
class Org:
    users: dict[str, User]
    departments: dict[str, Department]
    categories: dict[tuple[str, str], Category]
    first_level: dict[str, Category]
    regions: list[tuple[str, int]]
    actors: dict[int, list[User]]
    demo_users: list[DemoUser]


def build_org() -> Org:
    city = demo.load_city()
    for region in city.regions:
        directory.region_upsert(code=region.code, name=region.name, level=region.level, parent_code=region.parent)
    for item in city.departments:
        directory.department_upsert(
            data=directory.DepartmentInput(
                code=item.code,
                name=item.name,
                kind=item.kind,
                parent_code=item.parent,
                jurisdiction_codes=item.jurisdiction,
                responsibilities=item.responsibilities,
                accepts_dispatch=item.accepts_dispatch,
                duty_phone=item.duty_phone,
            )
        )
    directory.category_import(pairs=category_pairs())
    directory.deadline_policy_upsert(category_path=(UTILITIES_CATEGORY, None), **UTILITIES_POLICY)

    users = {
        u.username: directory.user_upsert(
            username=u.username,
            password=u.password,
            role=u.role,
            full_name=u.full_name,
            department_codes=u.department_codes,
        )
        for u in DEMO_USERS
    }
    dispatchable = {d.id: d for d in selectors.department_list(accepts_dispatch=True)}
    covered: set[int] = set()
    for user in users.values():
        covered |= selectors.user_actionable_department_ids(user=user)
    others = sorted(d.code for d in dispatchable.values() if d.id not in covered)
    units = OTHER_UNITS_USER
    users[units.username] = directory.user_upsert(
        username=units.username,
        password=units.password,
        role=units.role,
        full_name=units.full_name,
        department_codes=others,
    )
    demo_users = [*DEMO_USERS, DemoUser(units.username, units.password, units.role, units.full_name, tuple(others))]

    actors: dict[int, list[User]] = {department_id: [] for department_id in dispatchable}
    for user in users.values():
        for department_id in selectors.user_actionable_department_ids(user=user):
            if department_id in actors:
                actors[department_id].append(user)

    categories: dict[tuple[str, str], Category] = {}
    first_level: dict[str, Category] = {}
    for top in selectors.category_tree():
        first_level[top.name] = top
        for child in top.children.all():
            categories[(top.name, child.name)] = child
    # Most specific first, so "三好社区" wins over "和平区" in the same address.
    regions = sorted(
        ((r.name, r.id, r.level) for r in selectors.region_list()), key=lambda item: (-item[2], -len(item[0]))
    )
    return Org(
        users=users,
        departments={d.code: d for d in selectors.department_list()},
        categories=categories,
        first_level=first_level,
        regions=[(name, region_id) for name, region_id, _level in regions],
        actors=actors,
        demo_users=demo_users,
    )


# ---------------------------------------------------------------------------------------------------------
# tickets


@dataclass
class Live:
    """One ticket being seeded: its plan, then (once created) its id and current lead department."""

    request: demo.DemoRequest
    status: Status
    data: TicketInput
    policy: DeadlinePolicy | None
    created_at: datetime | None = None
    ticket_id: int | None = None
    number: str = ""
    department_id: int | None = None

    @property
    def id(self) -> int:
        assert self.ticket_id is not None, "a step ran before its ticket was created"
        return self.ticket_id


@dataclass(order=True)
class Step:
    at: datetime
    seq: int
    live: Live = field(compare=False)
    action: Callable[[Live], Any] = field(compare=False)


Plan = list[tuple[timedelta, Callable[[Live], Any]]]


class TicketSeeder:
    def __init__(self, *, org: Org, rng: random.Random, now: datetime) -> None:
        self.org = org
        self.rng = rng
        self.now = now
        self.calendar = selectors.working_calendar()
        self.agent = org.users["agent"]
        self.dispatcher = org.users["dispatcher"]
        self.supervisor = org.users["supervisor"]
        requests = demo.load_requests()
        self.transfer_requests = [r for r in requests if r.external_target]
        self.requests = [r for r in requests if not r.external_target]
        self.instant_requests = [r for r in self.requests if r.answer]
        self.lines = list(settings.HOTLINE_LINES)
        self.callers = [self._caller() for _ in range(60)]
        self.steps: list[Step] = []
        self.lives: list[Live] = []
        self._seq = 0
        self._flavour_turn = 0
        self._channel_turn = 0
        self._offsets: dict[tuple[int, str], dict[str, list[int]]] = {}

    # --- what each ticket is -----------------------------------------------------------------------------

    def _caller(self) -> tuple[str, str]:
        surname = self.rng.choice(SURNAMES)
        if self.rng.random() < 0.4:
            name = surname + self.rng.choice(("先生", "女士"))
        else:
            name = surname + "".join(self.rng.choice(GIVEN_NAMES) for _ in range(self.rng.choice((1, 2))))
        # The 0000 in the middle marks the number as made up.
        return name, f"{self.rng.choice(PHONE_PREFIXES)}0000{self.rng.randrange(10000):04d}"

    def _channel(self, status: Status, request: demo.DemoRequest) -> str:
        # Drafts, transfers and instant replies happen on a live call.
        if status in (Status.DRAFT, Status.TRANSFERRED) or (status == Status.CLOSED and request.answer):
            return Channel.PHONE
        channels = list(CHANNEL_WEIGHTS)
        if self._channel_turn < len(channels):
            self._channel_turn += 1
            return channels[self._channel_turn - 1]
        return self.rng.choices(channels, weights=list(CHANNEL_WEIGHTS.values()))[0]

    def _region_id(self, location: str) -> int | None:
        return next((region_id for name, region_id in self.org.regions if name in location), None)

    def _live(self, status: Status, request: demo.DemoRequest, index: int) -> Live:
        category = self.org.categories[request.category]
        caller_name, caller_phone = self.rng.choice(self.callers)
        line = self.lines[index % len(self.lines)] if index < len(self.lines) else self._line()
        data = TicketInput(
            hotline_line=line,
            channel=self._channel(status, request),
            appeal_type=request.appeal_type,
            title=request.title,
            content=request.content,
            urgency=request.urgency,
            category_id=category.id,
            region_id=self._region_id(request.location),
            location_text=request.location,
            caller_name=caller_name,
            caller_phone=caller_phone,
            caller_confidential=request.appeal_type == AppealType.REPORT and self.rng.random() < 0.5,
            extra={"source": "seed_demo"},
        )
        policy = deadline_rules.policy_for(appeal_type=request.appeal_type, urgency=request.urgency, category=category)
        return Live(request=request, status=status, data=data, policy=policy)

    def _line(self) -> str:
        if len(self.lines) == 1:
            return self.lines[0]
        # Most calls come in on the main line; the rest share the others.
        return self.lines[0] if self.rng.random() < 0.7 else self.rng.choice(self.lines[1:])

    # --- time ----------------------------------------------------------------------------------------------

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(low, max(low, high)))

    def _deadline_offsets(self, policy: DeadlinePolicy, which: str) -> dict[str, list[int]]:
        """Minutes before now at which a deadline-setting step puts `which` deadline in each flavour."""
        key = (policy.id, which)
        if key in self._offsets:
            return self._offsets[key]
        grid = [*range(2, 180), *range(180, 3 * 1440, 20), *range(3 * 1440, 20 * 1440, 30)]
        found: dict[str, list[int]] = {flavour: [] for flavour in FLAVOURS}
        for minutes in grid:
            due = deadline_rules.deadlines_from(
                policy=policy, start=self.now - timedelta(minutes=minutes), calendar=self.calendar
            )
            due_at, warn_at = (
                (due.accept_due_at, due.accept_warning_at)
                if which == "accept"
                else (due.reply_due_at, due.reply_warning_at)
            )
            # Margins keep a ticket in its flavour while the seed runs.
            if self.now < warn_at - timedelta(minutes=1):
                found["fresh"].append(minutes)
            elif warn_at + timedelta(minutes=1) <= self.now < due_at - timedelta(minutes=2):
                found["warning"].append(minutes)
            elif due_at + timedelta(minutes=10) <= self.now:
                found["overdue"].append(minutes)
        self._offsets[key] = found
        return found

    def _next_flavour(self) -> str:
        flavour = FLAVOURS[self._flavour_turn % len(FLAVOURS)]
        self._flavour_turn += 1
        return flavour

    def _anchor_at(self, live: Live, which: str, flavour: str, *, minimum: int = 2) -> datetime:
        """When the last deadline-setting step happens, so `which` deadline is fresh, near or past."""
        assert live.policy is not None
        offsets = self._deadline_offsets(live.policy, which)
        candidates = [m for m in offsets[flavour] if m >= minimum]
        if not candidates:
            candidates = [m for f in FLAVOURS for m in offsets[f] if m >= minimum] or [minimum]
        return self.now - timedelta(minutes=self.rng.choice(candidates))

    def _place(self, live: Live, plan: Plan, *, anchor: tuple[int, datetime] | None = None) -> None:
        gaps = [gap for gap, _action in plan]
        times: list[datetime] = [self.now] * len(plan)
        latest = self.now - timedelta(minutes=1)
        if anchor is None:
            total = sum(gaps[1:], timedelta())
            last_start = latest - total
            first_start = self.now - timedelta(days=HISTORY_DAYS)
            start = (
                first_start + (last_start - first_start) * self.rng.random() if last_start > first_start else last_start
            )
            times[0] = start
            for i in range(1, len(plan)):
                times[i] = times[i - 1] + gaps[i]
        else:
            index, at = anchor
            times[index] = min(at, latest)
            for i in range(index - 1, -1, -1):
                times[i] = times[i + 1] - gaps[i + 1]
            after = sum(gaps[index + 1 :], timedelta())
            room = latest - times[index]
            scale = min(1.0, 0.9 * room / after) if after else 1.0
            for i in range(index + 1, len(plan)):
                times[i] = times[i - 1] + gaps[i] * scale
        live.created_at = times[0]
        for at, (_gap, action) in zip(times, plan, strict=True):
            self._seq += 1
            self.steps.append(Step(at=at, seq=self._seq, live=live, action=action))
        self.lives.append(live)

    def _gap_dispatch(self, live: Live) -> timedelta:
        low, high = {"critical": (1, 5), "urgent": (3, 20)}.get(live.data.urgency, (5, 240))
        return self._minutes(low, high)

    @staticmethod
    def _clock_minutes(amount: int, unit: str) -> int:
        """An upper bound in clock minutes: working time never runs faster than the clock, so a step within
        this many clock minutes is always within the limit."""
        per_unit: dict[str, int] = {DurationUnit.MINUTES: 1, DurationUnit.WORKING_HOURS: 60}
        return amount * per_unit.get(unit, 1440)

    def _gap_accept(self, live: Live) -> timedelta:
        window = self._clock_minutes(live.policy.accept_within, live.policy.accept_unit) if live.policy else 1440
        if self.rng.random() < 0.1:
            # Late: after the deadline for minute limits; for working-time limits, usually.
            return self._minutes(window * 1.2, window * 3)
        return self._minutes(min(2, window * 0.1), min(360, window * 0.8))

    def _gap_return(self, live: Live) -> timedelta:
        window = self._clock_minutes(live.policy.return_within, live.policy.return_unit) if live.policy else 1440
        return self._minutes(min(20, window * 0.2), min(180, window * 0.8))

    def _gap_reply(self, live: Live) -> timedelta:
        low, high = {"critical": (30, 360), "urgent": (120, 1440)}.get(live.data.urgency, (240, 4 * 1440))
        return self._minutes(low, high)

    # --- actions (each runs later, at its step's time) -----------------------------------------------------

    def _actor_for(self, live: Live) -> User:
        # Chosen by ticket id, not by the random generator: actions run in time order, after all planning,
        # and drawing here would make the plan depend on that order.
        assert live.department_id is not None
        actors = self.org.actors[live.department_id]
        return actors[live.id % len(actors)]

    def _department(self, code: str) -> Department:
        return self.org.departments[code]

    def _wrong_department(self, live: Live) -> Department:
        excluded = {live.request.department, *live.request.assisting}
        choices = sorted(
            (d for d in self.org.departments.values() if d.accepts_dispatch and d.code not in excluded),
            key=lambda d: d.code,
        )
        return self.rng.choice(choices)

    def create(self, *, draft: bool = False) -> Callable[[Live], Any]:
        def act(live: Live) -> None:
            ticket = services.ticket_create(data=live.data, actor=self.agent, draft=draft)
            live.ticket_id, live.number = ticket.id, ticket.number

        return act

    def submit(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_submit(ticket_id=live.id, actor=self.agent)

    def dispatch(self, department: Department, *, assisting: Sequence[str] = ()) -> Callable[[Live], Any]:
        note = "" if self.rng.random() < 0.6 else "请按时限办理，并直接与来电人联系。"
        assisting_ids = [self._department(code).id for code in assisting]

        def act(live: Live) -> None:
            services.ticket_dispatch(
                ticket_id=live.id,
                actor=self.dispatcher,
                lead_department_id=department.id,
                assisting_department_ids=assisting_ids,
                note=note,
            )
            live.department_id = department.id

        return act

    def reassign(self, department: Department) -> Callable[[Live], Any]:
        def act(live: Live) -> None:
            services.ticket_reassign(
                ticket_id=live.id,
                actor=self.dispatcher,
                lead_department_id=department.id,
                reason=f"经核实应由{department.name}办理，予以改派。",
            )
            live.department_id = department.id

        return act

    def return_(self, right: Department) -> Callable[[Live], Any]:
        def act(live: Live) -> None:
            services.ticket_return(
                ticket_id=live.id,
                actor=self._actor_for(live),
                reason=f"经核实，该诉求不属于本单位职责范围，建议由{right.name}办理。",
            )

        return act

    def approve_return(self) -> Callable[[Live], Any]:
        def act(live: Live) -> None:
            services.ticket_approve_return(ticket_id=live.id, actor=self.dispatcher, note="同意退单，重新派单。")
            live.department_id = None

        return act

    def accept(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_accept(ticket_id=live.id, actor=self._actor_for(live))

    def request_extension(self, live: Live) -> Callable[[Live], Any]:
        assert live.policy is not None
        days = self.rng.randint(1, min(5, live.policy.max_extension_working_days))
        reason = self.rng.choice(
            ("需协调多个部门现场会商，申请延期。", "整改需采购材料、施工，申请延期。", "需等待检测结果，申请延期。")
        )
        return lambda live: services.ticket_request_extension(
            ticket_id=live.id, actor=self._actor_for(live), working_days=days, reason=reason
        )

    def approve_extension(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_approve_extension(
            ticket_id=live.id, actor=self.supervisor, note="理由充分，同意延期。"
        )

    def reject_extension(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_reject_extension(
            ticket_id=live.id, actor=self.supervisor, note="诉求简单，应在原时限内办结。"
        )

    def reply(self, live: Live, *, again: bool = False) -> Callable[[Live], Any]:
        request = live.request
        if request.appeal_type in (AppealType.INQUIRY, AppealType.SUGGESTION, AppealType.PRAISE):
            result = ReplyResult.EXPLAINED
        else:
            result = self.rng.choices(
                [ReplyResult.SOLVED, ReplyResult.PARTLY_SOLVED, ReplyResult.EXPLAINED], weights=[70, 20, 10]
            )[0]
        text = f"经再次核查处理：{request.reply}" if again else request.reply
        return lambda live: services.ticket_reply(
            ticket_id=live.id, actor=self._actor_for(live), reply_text=text, result=result
        )

    def approve_reply(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_approve_reply(ticket_id=live.id, actor=self.dispatcher)

    def reject_reply(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_reject_reply(
            ticket_id=live.id, actor=self.dispatcher, reason="答复未写明整改措施和完成时限，请补充后重新答复。"
        )

    def close(self) -> Callable[[Live], Any]:
        satisfaction = self.rng.choices(
            [Satisfaction.SATISFIED, Satisfaction.FAIRLY_SATISFIED, None], weights=[65, 25, 10]
        )[0]
        comment = self.rng.choice(CLOSE_COMMENTS[satisfaction]) if satisfaction else "三次回访均未接通。"
        return lambda live: services.ticket_close(
            ticket_id=live.id, actor=self.agent, satisfaction=satisfaction, comment=comment
        )

    def reopen(self) -> Callable[[Live], Any]:
        comment = self.rng.choice(REOPEN_COMMENTS)
        return lambda live: services.ticket_reopen(ticket_id=live.id, actor=self.agent, comment=comment)

    def instant_reply(self) -> Callable[[Live], Any]:
        return lambda live: services.ticket_instant_reply(
            ticket_id=live.id, actor=self.agent, reply_text=live.request.answer or ""
        )

    def merge(self, into: Live) -> Callable[[Live], Any]:
        return lambda live: services.ticket_merge(
            ticket_id=live.id,
            actor=self.agent,
            into_ticket_id=into.id,
            note=f"同一诉求重复来电，并入 {into.number}。",
        )

    def transfer(self, target: str) -> Callable[[Live], Any]:
        return lambda live: services.ticket_transfer(
            ticket_id=live.id, actor=self.agent, target=target, note=TRANSFER_NOTES.get(target, "")
        )

    def cancel(self) -> Callable[[Live], Any]:
        reason = self.rng.choice(CANCEL_REASONS)
        return lambda live: services.ticket_cancel(ticket_id=live.id, actor=self.agent, reason=reason)

    # --- one plan per final state --------------------------------------------------------------------------

    def _handled(self, live: Live) -> Plan:
        """Create, dispatch to the right department, accept, reply."""
        right = self._department(live.request.department)
        return [
            (timedelta(), self.create()),
            (self._gap_dispatch(live), self.dispatch(right, assisting=live.request.assisting)),
            (self._gap_accept(live), self.accept()),
            (self._gap_reply(live), self.reply(live)),
        ]

    def _review(self) -> timedelta:
        return self._minutes(30, 480)

    def _callback(self) -> timedelta:
        return self._minutes(120, 2 * 1440)

    def plan_draft(self, live: Live) -> None:
        self._place(live, [(timedelta(), self.create(draft=True))], anchor=(0, self.now - self._minutes(2, 90)))

    def plan_pending_dispatch(self, live: Live) -> None:
        roll = self.rng.random()
        if roll < 0.2:
            wrong, right = self._wrong_department(live), self._department(live.request.department)
            plan = [
                (timedelta(), self.create()),
                (self._gap_dispatch(live), self.dispatch(wrong)),
                (self._gap_return(live), self.return_(right)),
                (self._minutes(5, 60), self.approve_return()),
            ]
            self._place(live, plan, anchor=(2, self.now - self._minutes(10, 1440)))
        elif roll < 0.4:
            plan = [(timedelta(), self.create(draft=True)), (self._minutes(2, 10), self.submit())]
            self._place(live, plan, anchor=(1, self.now - self._minutes(5, 1440)))
        else:
            self._place(live, [(timedelta(), self.create())], anchor=(0, self.now - self._minutes(5, 2 * 1440)))

    def plan_return_pending(self, live: Live) -> None:
        wrong, right = self._wrong_department(live), self._department(live.request.department)
        plan: Plan = [
            (timedelta(), self.create()),
            (self._gap_dispatch(live), self.dispatch(wrong)),
            (self._gap_return(live), self.return_(right)),
        ]
        self._place(live, plan, anchor=(len(plan) - 1, self.now - self._minutes(10, 600)))

    def plan_dispatched(self, live: Live) -> None:
        right = self._department(live.request.department)
        roll = self.rng.random()
        if roll < 0.2:
            plan = [
                (timedelta(), self.create()),
                (self._gap_dispatch(live), self.dispatch(self._wrong_department(live))),
                (self._minutes(20, 240), self.reassign(right)),
            ]
        elif roll < 0.4:
            plan = [
                *self._handled(live),
                (self._review(), self.approve_reply()),
                (self._callback(), self.reopen()),
            ]
        else:
            plan = [
                (timedelta(), self.create()),
                (self._gap_dispatch(live), self.dispatch(right, assisting=live.request.assisting)),
            ]
        self._place(live, plan, anchor=(len(plan) - 1, self._anchor_at(live, "accept", self._next_flavour())))

    def plan_accepted(self, live: Live) -> None:
        right = self._department(live.request.department)
        plan: Plan = [
            (timedelta(), self.create()),
            (self._gap_dispatch(live), self.dispatch(right, assisting=live.request.assisting)),
            (self._gap_accept(live), self.accept()),
        ]
        flavour = self._next_flavour()
        roll = self.rng.random()
        if live.policy is not None and live.policy.max_extensions > 0 and roll < 0.5:
            plan.append((self._minutes(60, 2 * 1440), self.request_extension(live)))
            # An approved extension moves the reply deadline, so only a fresh ticket gets one.
            if roll < 0.25 and flavour == "fresh":
                plan.append((self._minutes(30, 360), self.approve_extension()))
            elif roll < 0.35:
                plan.append((self._minutes(30, 360), self.reject_extension()))
        self._place(live, plan, anchor=(1, self._anchor_at(live, "reply", flavour, minimum=30)))

    def suspend(self) -> Callable[[Live], Any]:
        reason = self.rng.choice(
            ("等待来电人提供购房合同和缴费凭证。", "已与来电人约定下周现场查看。", "等待来电人补充具体地址和照片。")
        )
        return lambda live: services.ticket_suspend(ticket_id=live.id, actor=self._actor_for(live), reason=reason)

    def plan_suspended(self, live: Live) -> None:
        right = self._department(live.request.department)
        plan: Plan = [
            (timedelta(), self.create()),
            (self._gap_dispatch(live), self.dispatch(right, assisting=live.request.assisting)),
            (self._gap_accept(live), self.accept()),
            (self._minutes(60, 1440), self.suspend()),
        ]
        self._place(live, plan, anchor=(len(plan) - 1, self.now - self._minutes(60, 3 * 1440)))

    def plan_replied(self, live: Live) -> None:
        plan = self._handled(live)
        if self.rng.random() < 0.25:
            plan += [(self._review(), self.reject_reply()), (self._gap_reply(live), self.reply(live, again=True))]
        self._place(live, plan, anchor=(len(plan) - 1, self.now - self._minutes(30, 2 * 1440)))

    def plan_callback(self, live: Live) -> None:
        plan = [*self._handled(live), (self._review(), self.approve_reply())]
        self._place(live, plan, anchor=(len(plan) - 1, self.now - self._minutes(60, 3 * 1440)))

    def plan_closed(self, live: Live) -> None:
        if live.request.answer:
            plan: Plan = [
                (timedelta(), self.create(draft=self.rng.random() < 0.5)),
                (self._minutes(2, 12), self.instant_reply()),
            ]
            self._place(live, plan)
            return
        right = self._department(live.request.department)
        roll = self.rng.random()
        if roll < 0.15:
            plan = [
                *self._handled(live),
                (self._review(), self.approve_reply()),
                (self._callback(), self.reopen()),
                (self._gap_accept(live), self.accept()),
                (self._gap_reply(live), self.reply(live, again=True)),
            ]
        elif roll < 0.3:
            plan = [
                (timedelta(), self.create()),
                (self._gap_dispatch(live), self.dispatch(self._wrong_department(live))),
                (self._gap_return(live), self.return_(right)),
                (self._minutes(5, 60), self.approve_return()),
                (self._minutes(10, 180), self.dispatch(right, assisting=live.request.assisting)),
                (self._gap_accept(live), self.accept()),
                (self._gap_reply(live), self.reply(live)),
            ]
        elif roll < 0.45 and live.policy is not None and live.policy.max_extensions > 0:
            plan = [
                *self._handled(live)[:3],
                (self._minutes(60, 2 * 1440), self.request_extension(live)),
                (self._minutes(30, 360), self.approve_extension()),
                (self._gap_reply(live), self.reply(live)),
            ]
        else:
            plan = self._handled(live)
        plan += [(self._review(), self.approve_reply()), (self._callback(), self.close())]
        self._place(live, plan)

    def plan_merged(self, live: Live) -> bool:
        """A repeat call about a ticket still being handled; False when there is none to merge into yet."""
        latest = self.now - timedelta(minutes=30)
        targets = [
            other
            for other in self.lives
            if other.status in (Status.PENDING_DISPATCH, Status.DISPATCHED, Status.ACCEPTED)
            and other.created_at is not None
            and other.created_at < latest
        ]
        if not targets:
            return False
        into = self.rng.choice(targets)
        assert into.created_at is not None
        # Same matter, another caller: the form repeats the first ticket's fields.
        live.request, live.policy = into.request, into.policy
        live.data = dataclasses.replace(
            into.data,
            hotline_line=live.data.hotline_line,
            channel=live.data.channel,
            caller_name=live.data.caller_name,
            caller_phone=live.data.caller_phone,
            caller_confidential=live.data.caller_confidential,
        )
        span = min(latest - into.created_at, timedelta(days=3))
        created = into.created_at + span * self.rng.uniform(0.1, 1.0)
        plan = [(timedelta(), self.create()), (self._minutes(2, 10), self.merge(into))]
        self._place(live, plan, anchor=(0, created))
        return True

    def plan_transferred(self, live: Live) -> None:
        target = live.request.external_target or "110"
        plan = [(timedelta(), self.create(draft=self.rng.random() < 0.5)), (self._minutes(1, 5), self.transfer(target))]
        self._place(live, plan)

    def plan_cancelled(self, live: Live) -> None:
        plan = [(timedelta(), self.create(draft=self.rng.random() < 0.3)), (self._minutes(10, 1440), self.cancel())]
        self._place(live, plan)

    # --- the run ---------------------------------------------------------------------------------------------

    def _request_for(self, status: Status) -> demo.DemoRequest:
        if status == Status.TRANSFERRED:
            return self.rng.choice(self.transfer_requests)
        if status == Status.CLOSED and self.rng.random() < 0.3:
            return self.rng.choice(self.instant_requests)
        pool = self.requests
        if status != Status.CLOSED:
            # An inquiry with a ready answer is closed on the call; the rest go to departments.
            pool = [r for r in pool if not r.answer] if self.rng.random() < 0.8 else pool
        return self.rng.choice(pool)

    def plan(self, count: int) -> None:
        order = list(Status)
        weights = [STATUS_WEIGHTS[s] for s in order]
        for index in range(count):
            status = order[index] if index < len(order) else self.rng.choices(order, weights=weights)[0]
            live = self._live(status, self._request_for(status), index)
            if status == Status.MERGED and self.plan_merged(live):
                continue
            if status == Status.MERGED:
                live.status = status = Status.PENDING_DISPATCH
            getattr(self, f"plan_{status.value}")(live)

    def run(self) -> list[int]:
        for step in sorted(self.steps):
            try:
                with clock.frozen(step.at):
                    step.action(step.live)
            except ApplicationError as error:
                # The step's method name ("accept", "dispatch", ...) says which service refused.
                action = step.action.__qualname__.split(".")[1]
                raise CommandError(
                    f"演示工单「{step.live.data.title}」在 {action} 一步失败：{error.message}"
                    "（若改过办理时限规则，请检查是否仍有默认规则）"
                ) from error
        return [live.ticket_id for live in self.lives if live.ticket_id is not None]


# ---------------------------------------------------------------------------------------------------------
# --messages


@dataclass(frozen=True)
class Message:
    line: int
    source_id: str
    title: str
    body: str
    created_at: datetime
    label: str


def appeal_type_for(title: str, body: str) -> str:
    for text in (title, body):
        hits = [(text.find(word), appeal_type) for word, appeal_type in APPEAL_KEYWORDS if word in text]
        if hits:
            return min(hits)[1]
    return AppealType.COMPLAINT


def read_messages(path: Path) -> tuple[list[Message], list[tuple[int, str]]]:
    """Rows shaped like ../shared/data/messages_dev.jsonl, and (line, reason) for each line left out."""
    messages: list[Message] = []
    skipped: list[tuple[int, str]] = []
    try:
        rows = list(read_json_lines(path))
    except JsonLinesError as error:
        raise CommandError(f"留言文件：{error}") from None
    for number, row in rows:
        if isinstance(row, str):
            skipped.append((number, row))
            continue
        title = str(row.get("title") or "").strip()
        body = str(row.get("body") or "").strip()
        if not title or not body:
            skipped.append((number, "缺少标题（title）或内容（body）"))
            continue
        try:
            created_at = datetime.fromisoformat(str(row.get("created_at") or "").strip())
        except ValueError:
            skipped.append((number, f"时间（created_at）无法识别：{row.get('created_at')!r}"))
            continue
        if timezone.is_naive(created_at):
            # The source platform recorded local (Beijing) time.
            created_at = created_at.replace(tzinfo=TZ)
        messages.append(
            Message(
                line=number,
                source_id=str(row.get("id") or ""),
                title=title[:MAX_TITLE],
                body=body[:MAX_CONTENT],
                created_at=created_at,
                label=str(row.get("label") or "").strip(),
            )
        )
    return messages, skipped


def import_messages(
    messages: Sequence[Message], *, org: Org, hotline_line: str
) -> tuple[list[int], list[tuple[int, str]]]:
    created: list[int] = []
    skipped: list[tuple[int, str]] = []
    agent = org.users["agent"]
    # In time order, so ticket numbers of a day follow the order the messages came in.
    for message in sorted(messages, key=lambda m: (m.created_at, m.line)):
        category = org.first_level.get(message.label) if message.label else None
        if message.label and category is None:
            skipped.append((message.line, f"分类「{message.label}」不是已有的一级分类"))
            continue
        data = TicketInput(
            hotline_line=hotline_line,
            channel=Channel.WEB,
            appeal_type=appeal_type_for(message.title, message.body),
            title=message.title,
            content=message.body,
            category_id=category.id if category else None,
            extra={"source": "messages", "message_id": message.source_id},
        )
        try:
            with clock.frozen(message.created_at):
                ticket = services.ticket_create(data=data, actor=agent)
        except ApplicationError as error:
            skipped.append((message.line, error.message))
            continue
        created.append(ticket.id)
    return created, skipped


# ---------------------------------------------------------------------------------------------------------
# output


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


@contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Hold back a logger's INFO lines: one line per seeded ticket would bury the summary."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(previous)


class Command(BaseCommand):
    help = "生成演示数据：沈阳市区划与承办单位、默认分类、各角色演示账号，以及覆盖所有状态的演示工单。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="库中已有工单时什么也不做")
        parser.add_argument("--tickets", type=int, default=300, help="演示工单数量（默认 300）")
        parser.add_argument("--messages", type=Path, help="另外把 JSON Lines 留言文件逐行导入为待派单工单")
        parser.add_argument("--seed", type=int, default=12345, help="随机数种子（默认 12345），相同种子生成相同数据")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Ticket.objects.exists():
            self.stdout.write("演示数据已存在（库中已有工单），未做任何改动。")
            return
        count: int = options["tickets"]
        if count < 0:
            raise CommandError("--tickets 不能为负数。")
        problems = demo.problems()
        if problems:
            raise CommandError("演示数据文件有误：\n" + "\n".join(problems))
        messages: list[Message] = []
        unreadable: list[tuple[int, str]] = []
        if options["messages"] is not None:
            messages, unreadable = read_messages(options["messages"])

        started = time.monotonic()
        now = timezone.now()
        with quiet(services.logger.name), transaction.atomic():
            org = build_org()
            if count and not self._has_default_policy():
                raise CommandError("没有默认办理时限规则，无法派单；请先运行 manage.py migrate。")
            seeder = TicketSeeder(org=org, rng=random.Random(options["seed"]), now=now)
            seeder.plan(count)
            ticket_ids = seeder.run()
            imported, rejected = import_messages(messages, org=org, hotline_line=seeder.lines[0])
            if apps.is_installed("knowledge_base"):
                # Called by name: ticketing imports no other app of ours, and works without the knowledge base.
                call_command("seed_articles", stdout=self.stdout, stderr=self.stderr)
            if apps.is_installed("routing"):
                call_command("seed_routing", stdout=self.stdout, stderr=self.stderr)
        elapsed = time.monotonic() - started

        self._report(org=org, seeded=ticket_ids, imported=imported, now=now)
        if options["messages"] is not None:
            skipped = sorted([*unreadable, *rejected])
            self.stdout.write(
                f"\n留言文件 {options['messages']}：导入 {len(imported)} 条（待派单），跳过 {len(skipped)} 行。"
            )
            for line, reason in skipped:
                self.stdout.write(f"  第 {line} 行：{reason}")
        self.stdout.write("\n演示账号（密码只在此显示一次，仅供本机演示使用）：")
        self.stdout.write(
            table(
                ["用户名", "密码", "角色", "所属单位"],
                [
                    (
                        u.username,
                        u.password,
                        Role(u.role).label,
                        _department_names(org, u.department_codes),
                    )
                    for u in org.demo_users
                ],
            )
        )
        self.stdout.write(f"\n用时 {elapsed:.1f} 秒。")

    def _has_default_policy(self) -> bool:
        return any(
            not (p.appeal_type or p.urgency or p.category_id) for p in DeadlinePolicy.objects.filter(is_active=True)
        )

    def _report(self, *, org: Org, seeded: Sequence[int], imported: Sequence[int], now: datetime) -> None:
        reader = org.users["admin"]
        everything = selectors.ticket_list(user=reader)
        created = Counter(everything.filter(id__in=[*seeded, *imported]).values_list("status", flat=True))
        total = Counter(everything.values_list("status", flat=True))
        rows = [(str(status.label), created[status], total[status]) for status in Status]
        rows.append(("合计", sum(created.values()), sum(total.values())))
        self.stdout.write(
            f"已建立演示城市：区划 {len(org.regions)} 个，承办单位 {len(org.departments)} 个，"
            f"一级分类 {len(org.first_level)} 个、二级分类 {len(org.categories)} 个。"
        )
        made = f"演示工单 {len(seeded)} 件" + (f"、留言导入 {len(imported)} 件" if imported else "")
        self.stdout.write(f"\n本次新建{made}，各状态数量：")
        self.stdout.write(table(["状态", "本次新建", "库中合计"], rows))
        overdue = warning = 0
        for ticket in everything.filter(status__in=[Status.DISPATCHED, Status.ACCEPTED]):
            due, warn = (
                (ticket.accept_due_at, ticket.accept_warning_at)
                if ticket.status == Status.DISPATCHED
                else (ticket.reply_due_at, ticket.reply_warning_at)
            )
            if due and due < now:
                overdue += 1
            elif warn and warn <= now:
                warning += 1
        self.stdout.write(f"在办工单中已超期 {overdue} 件，临近时限（已预警）{warning} 件。")


def _department_names(org: Org, codes: Sequence[str]) -> str:
    names = [org.departments[code].name for code in codes if code in org.departments]
    if len(names) > 3:
        return f"{'、'.join(names[:2])} 等 {len(names)} 个单位"
    return "、".join(names) or "—"
