"""Measures for supervision (三率 and the rest): reads only, computed with aggregate SQL.

Every function takes the user and applies one visibility rule (`measures_scope`): supervisors and
administrators see the whole hotline; a department lead sees the departments of its subtree; everybody else
is refused (NotPermitted). A period is [start, end) in Asia/Shanghai; dates name whole local days.

Definitions (docs/measures.md repeats them with examples). Counts by *event time* are flows: what happened
in the period, read from the append-only ticket trail, so a ticket moving on later never rewrites a past
period. The department of an event is the one it concerned: the department that accepted, returned or
replied, the department a ticket was dispatched, reassigned or reopened to, the lead department at a
callback.

- intake (受理量): tickets created in the period, drafts (calls still being taken) excluded; grouped by
  the ticket's current lead department.
- instant replies (即时答复量): tickets answered and closed on first contact in the period.
  instant-reply share (即时答复率) = instant replies / intake.
- dispatched (派单量): tickets handed to a department in the period: dispatch, reassignment and reopening
  each start a new department hold with its own accept deadline.
- accepted on time (按时签收量): those holds the department accepted by the accept deadline. A hold ends
  with acceptance (on time or late), a return, or the centre taking it away (reassignment, merge).
- response rate (响应率) = accepted on time / holds whose response is due: accepted (on time or late) or
  lapsed (still not accepted, deadline passed). Holds still within their accept deadline, returned ones
  (counted by the return rate) and ones the centre took away are left out, so a department is neither
  credited nor blamed for them.
- replied (答复量) / replied on time (按时答复量): replies the departments submitted in the period, and
  those submitted by the reply deadline (a reply the centre sent back and submitted again counts again).
- resolution rate (解决率) = resolved / replies approved in the period (approved by the centre and sent to
  callback). Resolved: the department's result is "solved" or "explained" (an inquiry answered, a rule
  explained) AND the callback did not reopen the ticket. "Partly solved" and "not solved" are unresolved;
  the citizen's dissatisfaction at callback overrides the department's own result.
- satisfaction rate (满意率) = (satisfied + fairly satisfied) / callbacks with an answer in the period
  (satisfied, fairly satisfied, and dissatisfied, which reopens the ticket). Callbacks that could not
  reach the citizen close the ticket but are not answers.
- return rate (退单率) = returns / dispatched, in the period. A return is the department's request to give
  the ticket back (the centre reviews it); requests the centre refused are also counted on their own
  (returns refused, 退单被驳回量): the department then holds the ticket as accepted.
- reopen rate (重办率) = reopened / callbacks concluded in the period (closed after callback, reachable or
  not, plus reopened).

A rate whose denominator is zero is None (shown as "—"), never 0 or 100%.

How they are read: for whole local days, by department, day, week or month (the board, the export, most of the
API), from the day counts the services keep as they write the trail (models.DailyCounts, rollups.py), plus the
lapsed holds, which depend on the moment asked and are read from the few dispatched tickets past their accept
deadline; otherwise (by region or category, a period not of whole days, `from_trail=True`) from the trail with
the aggregate queries below. Both give the same figures: tests compare them on a varied data set.

Department ranking: score = the weighted mean of the three rates with `HOTLINE_RANKING_WEIGHTS`
({"response": 30, "resolution": 35, "satisfaction": 35} by default), in points out of 100. A rate a
department has no data for is left out and its weight shared by the others; a department with none of the
three is listed unranked. Ties: higher score, then more tickets dispatched to it, then department code.

Hot topics: the period's intake compared with the previous period of the same length: second-level
categories, places (the ticket's region and place text, two tickets or more), and words of the titles
(jieba without its statistical model, so unknown names fall apart into single characters, which are
dropped; stop words, numbers and Latin letters removed; two tickets or more). Words are counted over at
most HOT_WORDS_MAX_TITLES newest titles of each period; above that the count is scaled to the period's
intake and marked estimated.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import rjieba
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, NullIf, TruncDay, TruncMonth, TruncWeek

from hotline import clock
from hotline.errors import ApplicationError, NotPermitted

from .calendar import TZ
from .models import (
    Category,
    DailyCounts,
    Department,
    Region,
    RegionLevel,
    ReplyResult,
    Role,
    Satisfaction,
    Ticket,
    TicketEvent,
    User,
)
from .selectors import sees_everything, user_actionable_department_ids
from .workflow import Status, Transition

GROUPINGS = ("department", "region", "category", "day", "week", "month")
GROUPING_LABELS = {
    "department": "承办单位",
    "region": "区县",
    "category": "诉求大类",
    "day": "日",
    "week": "周",
    "month": "月",
}
# A longer period grouped by day would be thousands of rows; reports over years go by month.
MAX_PERIOD_DAYS = 366
HOT_WORDS_MAX_TITLES = 2000
# A place or a word of a single ticket is not a topic, and may point at one person.
HOT_PLACES_MIN_TICKETS = 2
HOT_WORDS_MIN_TICKETS = 2

DEFAULT_RANKING_WEIGHTS = {"response": 30, "resolution": 35, "satisfaction": 35}
RANKED_RATES = ("response", "resolution", "satisfaction")

T = Transition
# Each starts a department hold with a fresh accept deadline.
HOLD_STARTS = (T.DISPATCH.value, T.REASSIGN.value, T.REOPEN.value)
# What ends a hold: the department's acceptance or return, or the centre taking the ticket away.
HOLD_ENDS = (T.ACCEPT.value, T.RETURN.value, T.REASSIGN.value, T.MERGE.value)
CALLBACK_ENDS = (T.CLOSE.value, T.REOPEN.value)
MEASURED_KINDS = (
    *HOLD_STARTS,
    T.RETURN.value,
    T.REJECT_RETURN.value,
    T.REPLY.value,
    T.APPROVE_REPLY.value,
    T.CLOSE.value,
    T.INSTANT_REPLY.value,
)
RESOLVED_RESULTS = (ReplyResult.SOLVED.value, ReplyResult.EXPLAINED.value)
# The groupings the day counts can serve (a ticket's region and category may still be corrected after steps of
# it were counted, so those are read from the trail).
DAY_COUNT_GROUPINGS = frozenset({"department", "day", "week", "month"})
# Intake is every status but draft, spelled out so the (status, created_at) index serves the period.
INTAKE_STATUSES = tuple(s.value for s in Status if s != Status.DRAFT)


# ---------------------------------------------------------------------------------------------------------
# periods and visibility


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def from_dates(cls, start: dt.date, end: dt.date) -> Period:
        """Local days [start, end): the end date itself is not included."""
        if end <= start:
            raise ApplicationError("结束日期必须晚于开始日期（统计区间含开始日、不含结束日）。", code="invalid_period")
        if (end - start).days > MAX_PERIOD_DAYS:
            raise ApplicationError(f"统计区间不能超过 {MAX_PERIOD_DAYS} 天。", code="period_too_long")
        return cls(_local_midnight(start), _local_midnight(end))

    @classmethod
    def days_ending_today(cls, days: int, *, now: dt.datetime | None = None) -> Period:
        today = (now or clock.now()).astimezone(TZ).date()
        return cls.from_dates(today - dt.timedelta(days=days - 1), today + dt.timedelta(days=1))

    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)

    @property
    def first_day(self) -> dt.date:
        return self.start.astimezone(TZ).date()

    @property
    def last_day(self) -> dt.date:
        """The last local day the period touches (its end is exclusive)."""
        return (self.end - dt.timedelta(microseconds=1)).astimezone(TZ).date()

    @property
    def whole_days(self) -> bool:
        """Starts and ends at local midnight (a period made by `from_dates` always does)."""
        return self.start == _local_midnight(self.first_day) and self.end == _local_midnight(
            self.last_day + dt.timedelta(days=1)
        )

    def label(self) -> str:
        if self.first_day == self.last_day:
            return f"{self.first_day:%Y-%m-%d}"
        return f"{self.first_day:%Y-%m-%d} 至 {self.last_day:%Y-%m-%d}"


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=TZ)


def measures_scope(user: User) -> frozenset[int] | None:
    """None: the whole hotline; otherwise the departments whose figures the user may see."""
    if user.is_authenticated and user.is_active:
        if sees_everything(user):
            return None
        if user.role == Role.DEPARTMENT_LEAD:
            departments = user_actionable_department_ids(user=user)
            if departments:
                return frozenset(departments)
    raise NotPermitted("只有督办人员、系统管理员和承办单位负责人可以查看统计。", code="measures_not_permitted")


# ---------------------------------------------------------------------------------------------------------
# counts and rates


@dataclass
class Counts:
    intake: int = 0
    instant_replies: int = 0
    dispatched: int = 0
    accepted_on_time: int = 0
    accepted_late: int = 0
    accept_lapsed: int = 0
    returns: int = 0
    returns_refused: int = 0
    replied: int = 0
    replied_on_time: int = 0
    replies_approved: int = 0
    resolved: int = 0
    satisfied: int = 0
    fairly_satisfied: int = 0
    dissatisfied: int = 0
    callback_unreachable: int = 0

    def add(self, other: Counts) -> None:
        # Through the instance dictionaries: a month by day and department is thousands of additions.
        mine, theirs = vars(self), vars(other)
        for name in COUNT_NAMES:
            mine[name] += theirs[name]

    @property
    def response_due(self) -> int:
        return self.accepted_on_time + self.accepted_late + self.accept_lapsed

    @property
    def callbacks_answered(self) -> int:
        return self.satisfied + self.fairly_satisfied + self.dissatisfied

    @property
    def callbacks_concluded(self) -> int:
        return self.callbacks_answered + self.callback_unreachable

    @property
    def reopened(self) -> int:
        return self.dissatisfied

    def rates(self) -> dict[str, float | None]:
        return {
            "instant_reply_share": _rate(self.instant_replies, self.intake),
            "response": _rate(self.accepted_on_time, self.response_due),
            "resolution": _rate(self.resolved, self.replies_approved),
            "satisfaction": _rate(self.satisfied + self.fairly_satisfied, self.callbacks_answered),
            "return": _rate(self.returns, self.dispatched),
            "reopen": _rate(self.reopened, self.callbacks_concluded),
            "reply_on_time": _rate(self.replied_on_time, self.replied),
        }

    def as_dict(self) -> dict[str, int]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            response_due=self.response_due,
            callbacks_answered=self.callbacks_answered,
            callbacks_concluded=self.callbacks_concluded,
            reopened=self.reopened,
        )
        return values


COUNT_NAMES = tuple(f.name for f in fields(Counts))
# What the day counts hold: every count but the lapsed holds, which depend on the moment asked.
DAY_COUNTED = tuple(name for name in COUNT_NAMES if name != "accept_lapsed")


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


COUNT_LABELS = {
    "intake": "受理量",
    "instant_replies": "即时答复量",
    "dispatched": "派单量",
    "accepted_on_time": "按时签收量",
    "accepted_late": "超时签收量",
    "accept_lapsed": "超时未签收量",
    "response_due": "应签收量",
    "returns": "退单申请量",
    "returns_refused": "退单被驳回量",
    "replied": "答复量",
    "replied_on_time": "按时答复量",
    "replies_approved": "审核通过答复量",
    "resolved": "已解决量",
    "satisfied": "满意",
    "fairly_satisfied": "基本满意",
    "dissatisfied": "不满意",
    "callbacks_answered": "有效回访量",
    "callback_unreachable": "回访未联系上",
    "callbacks_concluded": "回访办结量",
    "reopened": "重办量",
}
RATE_LABELS = {
    "instant_reply_share": "即时答复率",
    "response": "响应率",
    "resolution": "解决率",
    "satisfaction": "满意率",
    "return": "退单率",
    "reopen": "重办率",
    "reply_on_time": "按时答复率",
}


@dataclass
class Row:
    key: str | None
    label: str
    counts: Counts


@dataclass
class Report:
    period: Period
    group_by: str | None
    total: Counts
    rows: list[Row] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# the two aggregate queries


def _data_text(key: str) -> Any:
    """A key of the event's data as text; NULL when missing or JSON null (SQLite spells that "null")."""
    return NullIf(KT(f"data__{key}"), Value("null"))


def _event_department() -> Any:
    # "department" names who acted (accept, return, reply) or received a reopened ticket; otherwise the lead
    # department after the transition is the one the ticket was handed to (dispatch, reassign) or is with.
    return Cast(Coalesce(_data_text("department"), _data_text("lead_department")), BigIntegerField())


def _group_key(group_by: str | None, *, events: bool) -> Any:
    """The grouping expression over tickets, or over events (the ticket's region and category, the event's
    department and time)."""
    ticket = "ticket__" if events else ""
    if group_by == "department":
        return _event_department() if events else F("lead_department_id")
    if group_by == "region":
        return F(f"{ticket}region_id")
    if group_by == "category":
        return Coalesce(F(f"{ticket}category__parent_id"), F(f"{ticket}category_id"))
    if group_by == "day":
        return TruncDay("created_at", tzinfo=TZ)
    if group_by == "week":
        return TruncWeek("created_at", tzinfo=TZ)
    if group_by == "month":
        return TruncMonth("created_at", tzinfo=TZ)
    return Value(None, output_field=CharField())


def _hold_outcome(now: dt.datetime) -> Any:
    """How the department hold that an event starts ended: on_time, late, return, reassign, merge; while it
    lasts, lapsed once its accept deadline has passed, else NULL.

    A hold that has not ended is the ticket's latest, so the ticket's own accept deadline is the hold's; the
    ticket is read only for those (COALESCE evaluates its second argument only when the first is NULL).
    """
    ends = (
        TicketEvent.objects.filter(ticket_id=OuterRef("ticket_id"), id__gt=OuterRef("id"), kind__in=HOLD_ENDS)
        .order_by("id")
        .annotate(
            outcome=Case(
                When(kind=T.ACCEPT.value, data__late=True, then=Value("late")),
                When(kind=T.ACCEPT.value, then=Value("on_time")),
                default=F("kind"),
                output_field=CharField(),
            )
        )
        .values("outcome")[:1]
    )
    lapsed = Ticket.objects.filter(pk=OuterRef("ticket_id"), status=Status.DISPATCHED, accept_due_at__lt=now)
    return Coalesce(
        Subquery(ends, output_field=CharField()),
        Case(When(Exists(lapsed), then=Value("lapsed")), default=None, output_field=CharField()),
    )


def _callback_outcome() -> Subquery:
    """What the callback after an approved reply did: close or reopen; NULL while it is pending."""
    ends = (
        TicketEvent.objects.filter(ticket_id=OuterRef("ticket_id"), id__gt=OuterRef("id"), kind__in=CALLBACK_ENDS)
        .order_by("id")
        .values("kind")[:1]
    )
    return Subquery(ends, output_field=CharField())


def _event_counts(
    *, period: Period, groupings: tuple[str, ...], scope: frozenset[int] | None, now: dt.datetime
) -> dict[tuple[Any, ...], Counts]:
    """One GROUP BY over the period's trail: (groups..., kind, outcome, detail) -> number of events.

    The outcome subqueries run once per hold or approval (CASE evaluates only the branch taken), and the
    handful of rows per group are folded into counts here.
    """
    events = TicketEvent.objects.filter(
        created_at__gte=period.start, created_at__lt=period.end, kind__in=MEASURED_KINDS
    )
    if scope is not None:
        events = events.alias(department=_event_department()).filter(department__in=sorted(scope))
    buckets = {f"bucket{i}": _group_key(group_by, events=True) for i, group_by in enumerate(groupings)}
    rows = (
        events.annotate(
            **buckets,
            outcome=Case(
                When(kind__in=HOLD_STARTS, then=_hold_outcome(now)),
                When(kind=T.APPROVE_REPLY.value, then=_callback_outcome()),
                When(kind=T.REPLY.value, data__late=True, then=Value("late")),
                When(kind=T.REPLY.value, then=Value("on_time")),
                When(kind=T.CLOSE.value, then=_data_text("satisfaction")),
                default=Value(""),
                output_field=CharField(),
            ),
            detail=Case(
                When(kind=T.APPROVE_REPLY.value, then=_data_text("result")),
                default=Value(""),
                output_field=CharField(),
            ),
        )
        .values(*buckets, "kind", "outcome", "detail")
        .annotate(n=Count("id"))
        .order_by()
    )
    result: dict[tuple[Any, ...], Counts] = defaultdict(Counts)
    for row in rows:
        key = tuple(_normal_key(row[name]) for name in buckets)
        _fold_event(result[key], row["kind"], row["outcome"], row["detail"], row["n"])
    return result


def _fold_event(counts: Counts, kind: str, outcome: str | None, detail: str | None, n: int) -> None:
    if kind in HOLD_STARTS:
        counts.dispatched += n
        if kind == T.REOPEN.value:
            counts.dissatisfied += n
        if outcome == "on_time":
            counts.accepted_on_time += n
        elif outcome == "late":
            counts.accepted_late += n
        elif outcome == "lapsed":
            counts.accept_lapsed += n
    elif kind == T.RETURN.value:
        counts.returns += n
    elif kind == T.REJECT_RETURN.value:
        counts.returns_refused += n
    elif kind == T.REPLY.value:
        counts.replied += n
        if outcome == "on_time":
            counts.replied_on_time += n
    elif kind == T.APPROVE_REPLY.value:
        counts.replies_approved += n
        if detail in RESOLVED_RESULTS and outcome != T.REOPEN.value:
            counts.resolved += n
    elif kind == T.CLOSE.value:
        if outcome == Satisfaction.SATISFIED.value:
            counts.satisfied += n
        elif outcome == Satisfaction.FAIRLY_SATISFIED.value:
            counts.fairly_satisfied += n
        else:
            counts.callback_unreachable += n
    elif kind == T.INSTANT_REPLY.value:
        counts.instant_replies += n


def _intake_tickets(*, period: Period, scope: frozenset[int] | None) -> QuerySet[Ticket]:
    tickets = Ticket.objects.filter(status__in=INTAKE_STATUSES, created_at__gte=period.start, created_at__lt=period.end)
    if scope is not None:
        tickets = tickets.filter(lead_department_id__in=sorted(scope))
    return tickets


def _intake_counts(
    *, period: Period, groupings: tuple[str, ...], scope: frozenset[int] | None
) -> dict[tuple[Any, ...], int]:
    buckets = {f"bucket{i}": _group_key(group_by, events=False) for i, group_by in enumerate(groupings)}
    rows = (
        _intake_tickets(period=period, scope=scope)
        .annotate(**buckets)
        .values(*buckets)
        .annotate(n=Count("id"))
        .order_by()
    )
    result: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        result[tuple(_normal_key(row[name]) for name in buckets)] += row["n"]
    return result


def _normal_key(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(TZ).date()
    return value


def _trail_counts(
    *, period: Period, groupings: tuple[str, ...], scope: frozenset[int] | None, now: dt.datetime
) -> dict[tuple[Any, ...], Counts]:
    combined = _event_counts(period=period, groupings=groupings, scope=scope, now=now)
    for key, n in _intake_counts(period=period, groupings=groupings, scope=scope).items():
        combined[key].intake += n
    return combined


# ---------------------------------------------------------------------------------------------------------
# the same counts from the day counts


def _day_counts(
    *, period: Period, groupings: tuple[str, ...], scope: frozenset[int] | None, now: dt.datetime
) -> dict[tuple[Any, ...], Counts] | None:
    """The counts from the day counts (rollups.py) and the lapsed holds now; None where they cannot serve."""
    if not period.whole_days or not DAY_COUNT_GROUPINGS.issuperset(groupings):
        return None
    rows = DailyCounts.objects.filter(day__gte=period.first_day, day__lte=period.last_day)
    if scope is not None:
        rows = rows.filter(department_id__in=sorted(scope))
    result: dict[tuple[Any, ...], Counts] = defaultdict(Counts)
    for day, department, *values in rows.values_list("day", "department_id", *DAY_COUNTED).order_by():
        # A row whose counts all moved elsewhere (intake follows the lead department) is no group of the trail.
        if not any(values):
            continue
        counts = vars(result[tuple(_day_group(group_by, day, department) for group_by in groupings)])
        for name, value in zip(DAY_COUNTED, values, strict=True):
            counts[name] += value
    for started_at, department in _lapsed_holds(period=period, scope=scope, now=now):
        key = tuple(_day_group(group_by, started_at.astimezone(TZ).date(), department) for group_by in groupings)
        result[key].accept_lapsed += 1
    return result


def _day_group(group_by: str, day: dt.date, department: int | None) -> Any:
    if group_by == "department":
        return department
    if group_by == "week":
        return day - dt.timedelta(days=day.weekday())
    if group_by == "month":
        return day.replace(day=1)
    return day


def _lapsed_holds(
    *, period: Period, scope: frozenset[int] | None, now: dt.datetime
) -> list[tuple[dt.datetime, int | None]]:
    """(start, department) of the period's holds still not accepted with the accept deadline passed.

    A hold that has not ended keeps the ticket dispatched, and is the ticket's latest hold start (a ticket leaves
    `dispatched` only through what ends a hold); so these are the dispatched tickets past their accept deadline
    whose latest hold started in the period, a few hundred rows at most."""
    latest = TicketEvent.objects.filter(ticket_id=OuterRef("pk"), kind__in=HOLD_STARTS).order_by("-id")
    holds = (
        Ticket.objects.filter(status=Status.DISPATCHED, accept_due_at__lt=now)
        .annotate(
            started_at=Subquery(latest.values("created_at")[:1]),
            department=Subquery(latest.annotate(d=_event_department()).values("d")[:1]),
        )
        .filter(started_at__gte=period.start, started_at__lt=period.end)
    )
    if scope is not None:
        holds = holds.filter(department__in=sorted(scope))
    return list(holds.values_list("started_at", "department"))


# ---------------------------------------------------------------------------------------------------------
# measures by group


def measures(
    *,
    user: User,
    period: Period,
    group_by: str | None = None,
    now: dt.datetime | None = None,
    from_trail: bool = False,
) -> Report:
    """The counts and rates of the period, in total and (with `group_by`) per group."""
    groupings = (group_by,) if group_by is not None else ()
    return measures_grouped(user=user, period=period, groupings=groupings, now=now, from_trail=from_trail)[
        group_by or ""
    ]


def measures_grouped(
    *,
    user: User,
    period: Period,
    groupings: tuple[str, ...],
    now: dt.datetime | None = None,
    from_trail: bool = False,
) -> dict[str, Report]:
    """The period's report for each of `groupings` (and the total under ""), grouped by all of them at once:
    from the day counts where they serve (whole days; by department, day, week or month), otherwise from one
    pass over the trail and one over the tickets. `from_trail`: from the trail even so (checks, the benchmark)."""
    if any(g not in GROUPINGS for g in groupings):
        raise ApplicationError(
            "分组方式无效，可选：" + "、".join(f"{k}（{v}）" for k, v in GROUPING_LABELS.items()) + "。",
            code="invalid_group_by",
            extra={"field": "group_by"},
        )
    scope = measures_scope(user)
    now = now or clock.now()
    combined = None if from_trail else _day_counts(period=period, groupings=groupings, scope=scope, now=now)
    if combined is None:
        combined = _trail_counts(period=period, groupings=groupings, scope=scope, now=now)
    total = Counts()
    per_grouping: list[dict[Any, Counts]] = [defaultdict(Counts) for _ in groupings]
    for key, counts in combined.items():
        total.add(counts)
        for index, value in enumerate(key):
            per_grouping[index][value].add(counts)
    reports = {"": Report(period=period, group_by=None, total=total)}
    for group_by, by_group in zip(groupings, per_grouping, strict=True):
        if group_by == "region":
            by_group = _fold_regions(by_group)
        rows = _rows(group_by, by_group, period)
        reports[group_by] = Report(period=period, group_by=group_by, total=total, rows=rows)
    return reports


def _fold_regions(by_region: Mapping[Any, Counts]) -> dict[Any, Counts]:
    """Regions below a district count for their district; the city and above for no district."""
    districts = _district_of([key for key in by_region if key is not None])
    folded: dict[Any, Counts] = defaultdict(Counts)
    for key, counts in by_region.items():
        folded[districts.get(key) if key is not None else None].add(counts)
    return folded


def _district_of(region_ids: Iterable[int]) -> dict[int, int | None]:
    """Each region's district-level ancestor (itself at that level), walking up one level per query."""
    pending = {rid: rid for rid in region_ids}
    result: dict[int, int | None] = {}
    while pending:
        nodes = {
            r["id"]: r for r in Region.objects.filter(id__in=set(pending.values())).values("id", "level", "parent_id")
        }
        next_pending: dict[int, int] = {}
        for origin, current in pending.items():
            node = nodes.get(current)
            if node is None or node["level"] < RegionLevel.DISTRICT:
                result[origin] = None
            elif node["level"] == RegionLevel.DISTRICT:
                result[origin] = current
            elif node["parent_id"] is None:
                result[origin] = None
            else:
                next_pending[origin] = node["parent_id"]
        pending = next_pending
    return result


def _rows(group_by: str, by_group: dict[Any, Counts], period: Period) -> list[Row]:
    if group_by in ("day", "week", "month"):
        keys = _calendar_buckets(group_by, period)
        for key in by_group:
            if key not in keys:
                keys.append(key)
        keys.sort()
        return [
            Row(key=key.isoformat(), label=_bucket_label(group_by, key), counts=by_group.get(key) or Counts())
            for key in keys
        ]
    names = _group_names(group_by, [k for k in by_group if k is not None])
    rows = [
        Row(key=str(key), label=names.get(key, str(key)), counts=c) for key, c in by_group.items() if key is not None
    ]
    rows.sort(key=lambda r: (-r.counts.dispatched, -r.counts.intake, r.label))
    if None in by_group:
        rows.append(Row(key=None, label=_NO_GROUP[group_by], counts=by_group[None]))
    return rows


_NO_GROUP = {"department": "未派单（热线中心直接办理）", "region": "未指定区县", "category": "未分类"}


def _group_names(group_by: str, keys: list[Any]) -> dict[Any, str]:
    if group_by == "department":
        return dict(Department.objects.filter(id__in=keys).values_list("id", "name"))
    if group_by == "region":
        return dict(Region.objects.filter(id__in=keys).values_list("id", "name"))
    return dict(Category.objects.filter(id__in=keys).values_list("id", "name"))


def _calendar_buckets(group_by: str, period: Period) -> list[dt.date]:
    day, last = period.first_day, period.last_day
    if group_by == "week":
        day -= dt.timedelta(days=day.weekday())
    elif group_by == "month":
        day = day.replace(day=1)
    buckets = []
    while day <= last:
        buckets.append(day)
        if group_by == "day":
            day += dt.timedelta(days=1)
        elif group_by == "week":
            day += dt.timedelta(days=7)
        else:
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return buckets


def _bucket_label(group_by: str, day: dt.date) -> str:
    if group_by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}年第{week}周（{day:%m-%d}起）"
    if group_by == "month":
        return f"{day:%Y-%m}"
    return f"{day:%Y-%m-%d}"


# ---------------------------------------------------------------------------------------------------------
# department ranking


@dataclass
class RankingRow:
    department_id: int
    code: str
    name: str
    counts: Counts
    rates: dict[str, float | None]
    score: float | None
    rank: int | None


def ranking_weights() -> dict[str, float]:
    raw = getattr(settings, "HOTLINE_RANKING_WEIGHTS", DEFAULT_RANKING_WEIGHTS)
    if not isinstance(raw, Mapping) or set(raw) - set(RANKED_RATES):
        raise ImproperlyConfigured(f"HOTLINE_RANKING_WEIGHTS 只能包含 {', '.join(RANKED_RATES)}。")
    weights = {name: float(raw.get(name, 0)) for name in RANKED_RATES}
    if any(w < 0 for w in weights.values()) or not sum(weights.values()):
        raise ImproperlyConfigured("HOTLINE_RANKING_WEIGHTS 的权重不能为负，且不能全为 0。")
    return weights


def department_ranking(*, user: User, period: Period, now: dt.datetime | None = None) -> list[RankingRow]:
    """Departments with any dispatch, approved reply or callback in the period, best first."""
    return ranking_from(measures(user=user, period=period, group_by="department", now=now))


def ranking_from(report: Report) -> list[RankingRow]:
    """The ranking of a report grouped by department."""
    weights = ranking_weights()
    by_id = {int(r.key): r.counts for r in report.rows if r.key is not None}
    rows = []
    for department in Department.objects.filter(id__in=by_id).values("id", "code", "name"):
        counts = by_id[department["id"]]
        if not (counts.dispatched or counts.replies_approved or counts.callbacks_concluded):
            continue
        rates = counts.rates()
        rows.append(
            RankingRow(
                department_id=department["id"],
                code=department["code"],
                name=department["name"],
                counts=counts,
                rates=rates,
                score=_score(rates, weights),
                rank=None,
            )
        )
    # Rounded for the comparison so that float noise in equal scores cannot decide the order.
    rows.sort(key=lambda r: (r.score is None, -round(r.score or 0, 6), -r.counts.dispatched, r.code))
    position = 0
    for row in rows:
        if row.score is not None:
            position += 1
            row.rank = position
    return rows


def _score(rates: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    present = {name: rates[name] for name in RANKED_RATES if rates[name] is not None and weights[name] > 0}
    total_weight = sum(weights[name] for name in present)
    if not total_weight:
        return None
    return 100 * sum(weights[name] * (rate or 0.0) for name, rate in present.items()) / total_weight


# ---------------------------------------------------------------------------------------------------------
# hot topics


@dataclass
class Topic:
    key: str
    label: str
    count: int
    previous: int
    estimated: bool = False

    @property
    def change(self) -> int:
        return self.count - self.previous

    @property
    def change_rate(self) -> float | None:
        return _rate(self.change, self.previous)


@dataclass
class HotTopics:
    period: Period
    previous_period: Period
    intake: int
    previous_intake: int
    categories: list[Topic]
    places: list[Topic]
    words: list[Topic]


def hot_topics(*, user: User, period: Period, limit: int = 10) -> HotTopics:
    if not 1 <= limit <= 50:
        raise ApplicationError("热点条数应在 1 到 50 之间。", code="invalid_limit", extra={"field": "limit"})
    scope = measures_scope(user)
    previous = period.previous()
    both = Period(previous.start, period.end)
    tickets = _intake_tickets(period=both, scope=scope)
    now_q, before_q = Q(created_at__gte=period.start), Q(created_at__lt=period.start)
    if both.whole_days:
        intake = _day_counted_intake(period=period, previous=previous, scope=scope)
    else:
        intake = tickets.aggregate(now=Count("id", filter=now_q), before=Count("id", filter=before_q))
    return HotTopics(
        period=period,
        previous_period=previous,
        intake=intake["now"],
        previous_intake=intake["before"],
        categories=_hot_categories(tickets, now_q, before_q, limit),
        places=_hot_places(tickets, now_q, before_q, limit),
        words=_hot_words(scope=scope, period=period, previous=previous, intake=intake, limit=limit),
    )


def _day_counted_intake(*, period: Period, previous: Period, scope: frozenset[int] | None) -> dict[str, int]:
    rows = DailyCounts.objects.filter(day__gte=previous.first_day, day__lte=period.last_day)
    if scope is not None:
        rows = rows.filter(department_id__in=sorted(scope))
    totals = rows.aggregate(
        now=Sum("intake", filter=Q(day__gte=period.first_day)), before=Sum("intake", filter=Q(day__lt=period.first_day))
    )
    return {name: value or 0 for name, value in totals.items()}


def _ranked(topics: list[Topic], limit: int) -> list[Topic]:
    topics = [t for t in topics if t.count > 0]
    topics.sort(key=lambda t: (-t.count, -t.change, t.label))
    return topics[:limit]


def _hot_categories(tickets: QuerySet[Ticket], now_q: Q, before_q: Q, limit: int) -> list[Topic]:
    rows = (
        tickets.filter(category__isnull=False)
        .values("category_id")
        .annotate(now=Count("id", filter=now_q), before=Count("id", filter=before_q))
        .order_by()
    )
    counted = {r["category_id"]: r for r in rows}
    names = {c.id: str(c) for c in Category.objects.select_related("parent").filter(id__in=counted)}
    topics = [Topic(str(cid), names[cid], r["now"], r["before"]) for cid, r in counted.items()]
    return _ranked(topics, limit)


PHONE_LIKE = re.compile(r"\d{7,}")


def _hot_places(tickets: QuerySet[Ticket], now_q: Q, before_q: Q, limit: int) -> list[Topic]:
    rows = list(
        tickets.exclude(location_text="")
        .values("region_id", "location_text")
        .annotate(now=Count("id", filter=now_q), before=Count("id", filter=before_q))
        .filter(now__gte=HOT_PLACES_MIN_TICKETS)
        .order_by("-now", "before", "region_id", "location_text")[:limit]
    )
    regions = dict(Region.objects.filter(id__in={r["region_id"] for r in rows}).values_list("id", "name"))
    topics = []
    for r in rows:
        # A place is an address, not a person; a number that looks like a phone number is masked anyway.
        place = PHONE_LIKE.sub("***", r["location_text"])
        region = regions.get(r["region_id"], "")
        topics.append(Topic(f"{r['region_id'] or ''}:{place}", f"{region} {place}".strip(), r["now"], r["before"]))
    return topics


# Words that say nothing about what a request is about (requests, forms of address, time, manner).
_STOP_WORDS_TEXT = """
反映 投诉 举报 咨询 建议 求助 表扬 问题 关于 请求 希望 要求 恳请 强烈 市民 居民 群众 业主 我们 你们 他们
自己 什么 怎么 怎样 为什么 为何 如何 是否 能否 可否 一个 一些 没有 不是 可以 请问 相关 情况 有关 进行
处理 解决 严重 影响 存在 现象 这个 那个 这里 那里 哪里 已经 还是 以及 非常 不能 不要 不让 不给 谁来 管管
领导 有人 长期 多次 至今 一直 迟迟 及时 尽快 马上 今年 去年 目前 现在 以来 之后 之前 期间 造成 导致 出现
发生 问询 询问 了解 知道 需要 应该 必须 给予 予以 得到 无人 没人 不管 不予 办理 落实 政策 规定 部门 政府
有关部门 相关部门 单位 工作人员 何时 什么时候 多久 时间 能不能 可不可以
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD_OK = re.compile(r"^[\u4e00-\u9fff]{2,}$")


@functools.cache
def _tokenizer() -> rjieba.Jieba:
    return rjieba.Jieba()  # jieba's dictionary (the Rust port), loaded once per process


@functools.lru_cache(maxsize=50_000)
def title_words(title: str) -> frozenset[str]:
    """The distinct topic words of one title (cached: a board reads the same titles every few seconds)."""
    # Without the statistical model, an unknown name is cut into single characters, which are dropped.
    words = _tokenizer().cut(title, False)
    return frozenset(w for w in words if _WORD_OK.match(w) and w not in STOP_WORDS)


def _hot_words(
    *, scope: frozenset[int] | None, period: Period, previous: Period, intake: Mapping[str, int], limit: int
) -> list[Topic]:
    counted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    estimated = False
    for index, (part, total) in enumerate(((period, intake["now"]), (previous, intake["before"]))):
        titles = list(
            _intake_tickets(period=part, scope=scope)
            .order_by("-created_at", "-id")
            .values_list("title", flat=True)[:HOT_WORDS_MAX_TITLES]
        )
        if not titles:
            continue
        scale = total / len(titles)
        estimated = estimated or len(titles) < total
        hits: dict[str, int] = defaultdict(int)
        for title in titles:
            for word in title_words(title):
                hits[word] += 1
        for word, n in hits.items():
            if index == 0 and n < HOT_WORDS_MIN_TICKETS:
                continue
            counted[word][index] = round(n * scale)
    topics = [Topic(word, word, now, before, estimated) for word, (now, before) in counted.items()]
    return _ranked(topics, limit)


# ---------------------------------------------------------------------------------------------------------
# deadlines now, and the supervisor board


@dataclass
class DeadlineSnapshot:
    accept_warning: int
    accept_overdue: int
    reply_warning: int
    reply_overdue: int
    most_overdue: list[dict[str, Any]]


def deadline_snapshot(*, user: User, now: dt.datetime | None = None, limit: int = 10) -> DeadlineSnapshot:
    """Tickets with a department whose accept or reply deadline is near (warning) or passed, now."""
    scope = measures_scope(user)
    now = now or clock.now()
    # The reply clock also runs while the centre reviews a return.
    running = Ticket.objects.filter(status__in=[Status.DISPATCHED, Status.ACCEPTED, Status.RETURN_PENDING])
    if scope is not None:
        running = running.filter(lead_department_id__in=sorted(scope))
    dispatched = Q(status=Status.DISPATCHED)
    figures = running.aggregate(
        accept_warning=Count("id", filter=dispatched & Q(accept_warning_at__lte=now, accept_due_at__gte=now)),
        accept_overdue=Count("id", filter=dispatched & Q(accept_due_at__lt=now)),
        reply_warning=Count("id", filter=Q(reply_warning_at__lte=now, reply_due_at__gte=now)),
        reply_overdue=Count("id", filter=Q(reply_due_at__lt=now)),
    )
    # The running deadline: acceptance while dispatched, the reply once accepted.
    due = Case(When(dispatched, then=F("accept_due_at")), default=F("reply_due_at"))
    overdue = (
        running.annotate(due=due, deadline=Case(When(dispatched, then=Value("accept")), default=Value("reply")))
        .filter(due__lt=now)
        .order_by("due", "id")
        .values("id", "number", "due", "deadline", "lead_department__name")[:limit]
    )
    most_overdue = [
        {
            "ticket_id": t["id"],
            "number": t["number"],
            "deadline": t["deadline"],
            "due_at": t["due"],
            "department": t["lead_department__name"] or "",
            "overdue_hours": round((now - t["due"]).total_seconds() / 3600, 1),
        }
        for t in overdue
    ]
    return DeadlineSnapshot(most_overdue=most_overdue, **figures)


BOARD_DAYS = 30
BOARD_HOT_DAYS = 7
# The board's slow panels (the last 30 days by day and by department, the hot topics: mostly the hot topics,
# now that the 30 days come from the day counts) change slowly, so they are computed at most once per this many
# seconds for each scope. Today's figures (and today's point of the trend) and the deadlines are read on every
# refresh.
BOARD_SLOW_SECONDS = 300


@dataclass
class Board:
    now: dt.datetime
    today: Report
    trend: Report
    ranking_period: Period
    ranking: list[RankingRow]
    hot: HotTopics
    deadlines: DeadlineSnapshot
    # When the slow panels were computed.
    slow_at: dt.datetime


@dataclass
class _SlowPanels:
    trend: Report
    ranking: list[RankingRow]
    hot: HotTopics
    computed_at: dt.datetime


def board_summary(*, user: User, now: dt.datetime | None = None) -> Board:
    """Everything the supervisor board shows: today's figures, the last 30 days by day, the ranking over the
    last 30 days, the last 7 days' hot topics against the 7 before, and deadlines now."""
    now = now or clock.now()
    scope = measures_scope(user)
    today = measures(user=user, period=Period.days_ending_today(1, now=now), now=now)
    slow = _slow_panels(user=user, scope=scope, now=now)
    # Today's point of the trend is today's live figures (the same definitions over the same day).
    trend = slow.trend
    if trend.rows and trend.rows[-1].key == today.period.first_day.isoformat():
        trend.rows[-1].counts = today.total
    return Board(
        now=now,
        today=today,
        trend=trend,
        ranking_period=trend.period,
        ranking=slow.ranking,
        hot=slow.hot,
        deadlines=deadline_snapshot(user=user, now=now),
        slow_at=slow.computed_at,
    )


def _slow_panels(*, user: User, scope: frozenset[int] | None, now: dt.datetime) -> _SlowPanels:
    period = Period.days_ending_today(BOARD_DAYS, now=now)
    who = "all" if scope is None else ",".join(map(str, sorted(scope)))
    key = f"ticketing:board:{who}:{period.first_day}:{int(now.timestamp()) // BOARD_SLOW_SECONDS}"
    cached = cache.get(key)
    if isinstance(cached, _SlowPanels):
        return cached
    # One pass grouped by day and by department gives both the trend and the ranking.
    reports = measures_grouped(user=user, period=period, groupings=("day", "department"), now=now)
    panels = _SlowPanels(
        trend=reports["day"],
        ranking=ranking_from(reports["department"]),
        hot=hot_topics(user=user, period=Period.days_ending_today(BOARD_HOT_DAYS, now=now)),
        computed_at=now,
    )
    cache.set(key, panels, BOARD_SLOW_SECONDS)
    return panels
