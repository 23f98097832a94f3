"""Measures on a known data set: tickets driven through the real services with the clock frozen at chosen
times, then every count and rate checked exactly for each grouping, the ranking, hot topics, the Excel
workbook, the API and the supervisor board."""

import datetime as dt
import io
from dataclasses import dataclass

import openpyxl
import pytest
from django.urls import reverse

from hotline import clock
from hotline.errors import ApplicationError, NotPermitted
from tests.factories import CategoryFactory, UserFactory
from tests.helpers import ticket_input
from ticketing import measures, services
from ticketing.calendar import TZ
from ticketing.measures import Period
from ticketing.measures_export import measures_workbook
from ticketing.models import Role, Ticket

pytestmark = pytest.mark.django_db


# Monday 17 to Wednesday 19 November 2025: ordinary working days. The period is the Monday and Tuesday.
PERIOD = Period.from_dates(dt.date(2025, 11, 17), dt.date(2025, 11, 19))
NOW = dt.datetime(2025, 11, 19, 10, 0, tzinfo=TZ)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 11, day, hour, minute, tzinfo=TZ)


@dataclass
class Data:
    org: object
    noise: object  # 环境保护/噪声污染
    tickets: dict[str, Ticket]


@pytest.fixture
def data(org) -> Data:  # type: ignore[no-untyped-def]
    """The data set of docs/measures.md ("a worked example"): one line per ticket.

    t0  15th, previous period: pending, 物业管理.
    t1  B1: dispatched, accepted on time, replied solved, approved, satisfied.
    t2  B1: dispatched, accepted late (day 2), replied partly solved, approved, fairly satisfied.
    t3  B1: dispatched, never accepted: the deadline has passed by NOW (lapsed).
    t4  B1 returns it (the centre agrees); B2 accepts on time, replies "explained", approved; dissatisfied:
        reopened to B2 (the reopened hold is still within its accept deadline at NOW).
    t5, t6  instant replies.  t7  waits for dispatch.  t8  a draft (not intake).
    t9  street office: accepted on time, replied not solved, approved, callback unreachable.
    t10 created the 16th (previous period), dispatched to B2 on the 17th, reassigned to B1 before B2
        accepted; B1 accepts on time; replied the 19th (after the period).
    t11 created the 19th (after the period).
    """
    top = org.category.parent
    noise = CategoryFactory(name="噪声污染", parent=CategoryFactory(name="环境保护"))
    b1, b2, street = org.bureau, org.other_bureau, org.street_office
    h1, h2, hs = org.handler, org.other_handler, org.street_handler
    d = org.dispatcher
    t: dict[str, Ticket] = {}

    def create(name: str, when: dt.datetime, *, draft: bool = False, **fields: object) -> Ticket:
        with clock.frozen(when):
            t[name] = services.ticket_create(data=ticket_input(**fields), actor=org.agent, draft=draft)
        return t[name]

    def step(when: dt.datetime, service, name: str, **kwargs: object) -> None:  # type: ignore[no-untyped-def]
        with clock.frozen(when):
            service(ticket_id=t[name].id, **kwargs)

    place = {"region_id": org.street.id, "location_text": "幸福小区"}
    create("t0", at(15, 9), title="光明路积水严重", category_id=org.category.id, **place)
    create("t10", at(16, 15), title="幸福小区垃圾清运不及时", **place)
    create("t1", at(17, 9, 0), title="幸福小区电梯长期故障", category_id=org.category.id, **place)
    create("t2", at(17, 9, 1), title="幸福小区电梯停运", category_id=org.category.id, **place)
    create("t3", at(17, 9, 2), title="幸福小区电梯噪音扰民", category_id=org.category.id, **place)
    noisy = {"region_id": org.other_district.id, "location_text": "青年大街88886666号", "category_id": noise.id}
    create("t4", at(17, 9, 3), title="青年大街夜间施工噪音", **noisy)
    create("t5", at(17, 9, 4), title="青年大街噪音何时治理", appeal_type="inquiry", **noisy)
    create("t6", at(17, 9, 5), title="物业费标准咨询", appeal_type="inquiry", category_id=top.id)
    create("t7", at(17, 9, 6), title="路灯不亮", region_id=org.city.id)
    create("t8", at(17, 9, 7), title="通话中草稿", draft=True)
    create("t9", at(17, 9, 8), title="中山路积水", category_id=org.category.id, region_id=org.district.id)

    # day 1
    step(at(17, 9, 10), services.ticket_dispatch, "t1", actor=d, lead_department_id=b1.id)
    step(at(17, 9, 12), services.ticket_dispatch, "t2", actor=d, lead_department_id=b1.id)
    step(at(17, 9, 14), services.ticket_dispatch, "t3", actor=d, lead_department_id=b1.id)
    step(at(17, 9, 16), services.ticket_dispatch, "t4", actor=d, lead_department_id=b1.id)
    step(at(17, 9, 20), services.ticket_instant_reply, "t5", actor=org.agent, reply_text="已告知治理安排。")
    step(at(17, 9, 21), services.ticket_instant_reply, "t6", actor=org.agent, reply_text="已告知收费标准。")
    step(at(17, 9, 30), services.ticket_dispatch, "t9", actor=d, lead_department_id=street.id)
    step(at(17, 9, 40), services.ticket_dispatch, "t10", actor=d, lead_department_id=b2.id)
    step(at(17, 10, 0), services.ticket_accept, "t1", actor=h1)
    step(at(17, 10, 0), services.ticket_accept, "t9", actor=hs)
    step(at(17, 10, 30), services.ticket_reassign, "t10", actor=d, lead_department_id=b1.id, reason="职责调整。")
    step(at(17, 11, 0), services.ticket_return, "t4", actor=h1, reason="不属于本单位职责。")
    step(at(17, 11, 5), services.ticket_approve_return, "t4", actor=d)
    step(at(17, 11, 0), services.ticket_accept, "t10", actor=h1)
    step(at(17, 11, 10), services.ticket_dispatch, "t4", actor=d, lead_department_id=b2.id)
    step(at(17, 11, 20), services.ticket_accept, "t4", actor=h2)
    step(at(17, 15, 0), services.ticket_reply, "t4", actor=h2, reply_text="已解释施工许可。", result="explained")
    step(at(17, 15, 30), services.ticket_approve_reply, "t4", actor=d)
    step(at(17, 16, 0), services.ticket_reply, "t9", actor=hs, reply_text="暂无法解决。", result="not_solved")
    step(at(17, 16, 30), services.ticket_approve_reply, "t9", actor=d)
    # day 2
    step(at(18, 10, 0), services.ticket_reply, "t1", actor=h1, reply_text="已修复。", result="solved")
    step(at(18, 10, 30), services.ticket_approve_reply, "t1", actor=d)
    step(at(18, 12, 0), services.ticket_accept, "t2", actor=h1)
    step(at(18, 13, 0), services.ticket_reply, "t2", actor=h1, reply_text="部分修复。", result="partly_solved")
    step(at(18, 13, 30), services.ticket_approve_reply, "t2", actor=d)
    step(at(18, 15, 0), services.ticket_close, "t1", actor=org.agent, satisfaction="satisfied")
    step(at(18, 16, 0), services.ticket_close, "t2", actor=org.agent, satisfaction="fairly_satisfied")
    step(at(18, 16, 0), services.ticket_reopen, "t4", actor=org.agent, comment="施工仍在继续。")
    step(at(18, 17, 0), services.ticket_close, "t9", actor=org.agent, satisfaction=None)
    # day 3, after the period
    create("t11", at(19, 9, 30), title="幸福小区电梯又坏了", **place)
    step(at(19, 9, 45), services.ticket_reply, "t10", actor=h1, reply_text="已处理。", result="solved")
    return Data(org=org, noise=noise, tickets=t)


def figures(counts: measures.Counts) -> dict[str, object]:
    """The counts that matter and the rates, rounded for comparison."""
    rates = {k: (round(v, 4) if v is not None else None) for k, v in counts.rates().items()}
    return {**counts.as_dict(), **{f"rate_{k}": v for k, v in rates.items()}}


def expect(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "intake": 0,
        "instant_replies": 0,
        "dispatched": 0,
        "accepted_on_time": 0,
        "accepted_late": 0,
        "accept_lapsed": 0,
        "returns": 0,
        "returns_refused": 0,
        "replied": 0,
        "replied_on_time": 0,
        "replies_approved": 0,
        "resolved": 0,
        "satisfied": 0,
        "fairly_satisfied": 0,
        "dissatisfied": 0,
        "callback_unreachable": 0,
    }
    base.update(values)
    counts = measures.Counts(**{k: v for k, v in base.items() if not k.startswith("rate_")})  # type: ignore[arg-type]
    full = figures(counts)
    full.update({k: v for k, v in values.items() if k.startswith("rate_")})
    return full


def r(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4)


TOTAL = expect(
    intake=8,
    instant_replies=2,
    dispatched=9,
    accepted_on_time=4,
    accepted_late=1,
    accept_lapsed=1,
    returns=1,
    replied=4,
    replied_on_time=4,
    replies_approved=4,
    resolved=1,
    satisfied=1,
    fairly_satisfied=1,
    dissatisfied=1,
    callback_unreachable=1,
    rate_instant_reply_share=r(2, 8),
    rate_response=r(4, 6),
    rate_resolution=r(1, 4),
    rate_satisfaction=r(2, 3),
    rate_return=r(1, 9),
    rate_reopen=r(1, 4),
    rate_reply_on_time=1.0,
)


def by_label(report: measures.Report) -> dict[str, dict[str, object]]:
    return {row.label: figures(row.counts) for row in report.rows}


# --- totals and groupings --------------------------------------------------------------------------------


def test_totals_of_the_period(data, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        report = measures.measures(user=data.org.supervisor, period=PERIOD, now=NOW)
    assert report.rows == []
    assert figures(report.total) == TOTAL


def test_the_same_period_seen_later_keeps_its_figures_except_what_was_still_running(data):
    # At NOW t3's accept deadline has passed; a day earlier it had not, so t3 was not yet due either.
    earlier = measures.measures(user=data.org.supervisor, period=PERIOD, now=at(17, 18))
    assert earlier.total.accept_lapsed == 0
    assert earlier.total.accepted_on_time == 4


def test_by_department(data, django_assert_max_num_queries):
    org = data.org
    with django_assert_max_num_queries(3):
        report = measures.measures(user=org.supervisor, period=PERIOD, group_by="department", now=NOW)
    rows = by_label(report)
    assert [row.label for row in report.rows] == [
        org.bureau.name,
        org.other_bureau.name,
        org.street_office.name,
        "未派单（热线中心直接办理）",
    ]
    assert rows[org.bureau.name] == expect(
        intake=3, dispatched=5, accepted_on_time=2, accepted_late=1, accept_lapsed=1, returns=1, replied=2,
        replied_on_time=2, replies_approved=2, resolved=1, satisfied=1, fairly_satisfied=1,
        rate_response=r(2, 4), rate_resolution=r(1, 2), rate_satisfaction=1.0, rate_return=r(1, 5),
        rate_reopen=0.0, rate_reply_on_time=1.0, rate_instant_reply_share=0.0,
    )  # fmt: skip
    assert rows[org.other_bureau.name] == expect(
        intake=1, dispatched=3, accepted_on_time=1, replied=1, replied_on_time=1, replies_approved=1,
        dissatisfied=1, rate_response=1.0, rate_resolution=0.0, rate_satisfaction=0.0, rate_return=0.0,
        rate_reopen=1.0, rate_reply_on_time=1.0, rate_instant_reply_share=0.0,
    )  # fmt: skip
    assert rows[org.street_office.name] == expect(
        intake=1, dispatched=1, accepted_on_time=1, replied=1, replied_on_time=1, replies_approved=1,
        callback_unreachable=1, rate_response=1.0, rate_resolution=0.0, rate_satisfaction=None,
        rate_return=0.0, rate_reopen=0.0, rate_reply_on_time=1.0, rate_instant_reply_share=0.0,
    )  # fmt: skip
    assert rows["未派单（热线中心直接办理）"] == expect(
        intake=3, instant_replies=2, rate_instant_reply_share=r(2, 3), rate_response=None, rate_resolution=None,
        rate_satisfaction=None, rate_return=None, rate_reopen=None, rate_reply_on_time=None,
    )  # fmt: skip
    assert figures(report.total) == TOTAL


def test_by_region_folds_streets_into_their_district(data, django_assert_max_num_queries):
    org = data.org
    with django_assert_max_num_queries(6):
        report = measures.measures(user=org.supervisor, period=PERIOD, group_by="region", now=NOW)
    rows = by_label(report)
    assert set(rows) == {"和平区", "沈河区", "未指定区县"}
    # t1, t2, t3 and t10 lie in a street of 和平区, t9 in the district itself.
    assert rows["和平区"] == expect(
        intake=4, dispatched=6, accepted_on_time=3, accepted_late=1, accept_lapsed=1, replied=3,
        replied_on_time=3, replies_approved=3, resolved=1, satisfied=1, fairly_satisfied=1,
        callback_unreachable=1, rate_instant_reply_share=0.0, rate_response=r(3, 5), rate_resolution=r(1, 3),
        rate_satisfaction=1.0, rate_return=0.0, rate_reopen=0.0, rate_reply_on_time=1.0,
    )  # fmt: skip
    assert rows["沈河区"] == expect(
        intake=2, instant_replies=1, dispatched=3, accepted_on_time=1, returns=1, replied=1, replied_on_time=1,
        replies_approved=1, dissatisfied=1, rate_instant_reply_share=r(1, 2), rate_response=1.0,
        rate_resolution=0.0, rate_satisfaction=0.0, rate_return=r(1, 3), rate_reopen=1.0, rate_reply_on_time=1.0,
    )  # fmt: skip
    # t6 has no region, t7 lies at city level.
    assert rows["未指定区县"] == expect(
        intake=2, instant_replies=1, rate_instant_reply_share=r(1, 2), rate_response=None, rate_resolution=None,
        rate_satisfaction=None, rate_return=None, rate_reopen=None, rate_reply_on_time=None,
    )  # fmt: skip
    assert figures(report.total) == TOTAL


def test_by_first_level_category(data):
    org = data.org
    report = measures.measures(user=org.supervisor, period=PERIOD, group_by="category", now=NOW)
    rows = by_label(report)
    assert set(rows) == {"城乡建设", "环境保护", "未分类"}
    # t1, t2, t3, t9 in a sub-category, t6 in the first-level category itself.
    assert rows["城乡建设"]["intake"] == 5 and rows["城乡建设"]["instant_replies"] == 1
    assert rows["城乡建设"]["dispatched"] == 4 and rows["城乡建设"]["rate_response"] == r(2, 4)
    assert rows["城乡建设"]["rate_satisfaction"] == 1.0 and rows["城乡建设"]["rate_resolution"] == r(1, 3)
    assert rows["环境保护"]["intake"] == 2 and rows["环境保护"]["dispatched"] == 3
    assert rows["环境保护"]["rate_reopen"] == 1.0 and rows["环境保护"]["rate_return"] == r(1, 3)
    assert rows["未分类"]["intake"] == 1 and rows["未分类"]["dispatched"] == 2
    assert figures(report.total) == TOTAL


def test_by_day(data):
    report = measures.measures(user=data.org.supervisor, period=PERIOD, group_by="day", now=NOW)
    assert [row.key for row in report.rows] == ["2025-11-17", "2025-11-18"]
    day1, day2 = (figures(row.counts) for row in report.rows)
    assert day1 == expect(
        intake=8, instant_replies=2, dispatched=8, accepted_on_time=4, accepted_late=1, accept_lapsed=1,
        returns=1, replied=2, replied_on_time=2, replies_approved=2, rate_instant_reply_share=r(2, 8),
        rate_response=r(4, 6), rate_resolution=0.0, rate_satisfaction=None, rate_return=r(1, 8),
        rate_reopen=None, rate_reply_on_time=1.0,
    )  # fmt: skip
    # The reopened hold started on day 2 and is still within its accept deadline: not due yet.
    assert day2 == expect(
        dispatched=1, replied=2, replied_on_time=2, replies_approved=2, resolved=1, satisfied=1,
        fairly_satisfied=1, dissatisfied=1, callback_unreachable=1, rate_instant_reply_share=None,
        rate_response=None, rate_resolution=r(1, 2), rate_satisfaction=r(2, 3), rate_return=0.0,
        rate_reopen=r(1, 4), rate_reply_on_time=1.0,
    )  # fmt: skip


def test_by_week_and_month_fill_the_calendar(data):
    supervisor = data.org.supervisor
    weeks = measures.measures(
        user=supervisor, period=Period.from_dates(dt.date(2025, 11, 10), dt.date(2025, 11, 24)), group_by="week"
    )
    assert [(row.key, row.label, row.counts.intake) for row in weeks.rows] == [
        ("2025-11-10", "2025年第46周（11-10起）", 2),  # t0 on Saturday 15th, t10 on Sunday 16th
        ("2025-11-17", "2025年第47周（11-17起）", 9),
    ]
    months = measures.measures(
        user=supervisor, period=Period.from_dates(dt.date(2025, 10, 1), dt.date(2025, 12, 1)), group_by="month"
    )
    assert [(row.key, row.counts.intake, row.counts.dispatched) for row in months.rows] == [
        ("2025-10-01", 0, 0),
        ("2025-11-01", 11, 9),
    ]


def test_a_day_ends_at_midnight_in_shanghai(org):
    with clock.frozen(dt.datetime(2025, 11, 17, 23, 59, tzinfo=TZ)):
        services.ticket_create(data=ticket_input(), actor=org.agent)
    with clock.frozen(dt.datetime(2025, 11, 18, 0, 0, tzinfo=TZ)):
        services.ticket_create(data=ticket_input(), actor=org.agent)
    day = measures.measures(user=org.supervisor, period=Period.from_dates(dt.date(2025, 11, 17), dt.date(2025, 11, 18)))
    assert day.total.intake == 1


def test_a_refused_return_and_a_late_reply(org):
    """The department asks to return, the centre refuses (the department keeps it, as accepted), and the
    reply comes after the reply deadline (5 working days: Monday 24th 09:00 -> Monday 1st 09:00)."""
    with clock.frozen(at(24, 9)):
        ticket = services.ticket_create(data=ticket_input(), actor=org.agent)
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    with clock.frozen(at(24, 10)):
        services.ticket_return(ticket_id=ticket.id, actor=org.handler, reason="不属于本单位职责。")
    with clock.frozen(at(24, 11)):
        services.ticket_reject_return(ticket_id=ticket.id, actor=org.dispatcher, reason="属于住建局职责。")
    with clock.frozen(dt.datetime(2025, 12, 2, 10, tzinfo=TZ)):
        services.ticket_reply(ticket_id=ticket.id, actor=org.handler, reply_text="已处理。", result="solved")
    report = measures.measures(
        user=org.supervisor, period=Period.from_dates(dt.date(2025, 11, 24), dt.date(2025, 12, 5)), now=at(28, 9)
    )
    assert figures(report.total) == expect(
        intake=1, dispatched=1, returns=1, returns_refused=1, replied=1, rate_instant_reply_share=0.0,
        rate_response=None, rate_resolution=None, rate_satisfaction=None, rate_return=1.0, rate_reopen=None,
        rate_reply_on_time=0.0,
    )  # fmt: skip


# --- visibility ------------------------------------------------------------------------------------------


def test_a_department_lead_sees_its_subtree_only(data):
    org = data.org
    report = measures.measures(user=org.lead, period=PERIOD, group_by="department", now=NOW)
    assert [row.label for row in report.rows] == [org.bureau.name]
    assert report.total.dispatched == 5 and report.total.instant_replies == 0
    district = measures.measures(user=org.district_lead, period=PERIOD, now=NOW)
    assert district.total.dispatched == 1 and district.total.intake == 1  # the street office's t9


@pytest.mark.parametrize("role", ["agent", "dispatcher", "handler"])
def test_others_may_not_see_measures(data, role):
    with pytest.raises(NotPermitted):
        measures.measures(user=getattr(data.org, role), period=PERIOD)
    with pytest.raises(NotPermitted):
        measures.hot_topics(user=getattr(data.org, role), period=PERIOD)


def test_bad_periods_and_groupings_are_refused():
    with pytest.raises(ApplicationError) as backwards:
        Period.from_dates(dt.date(2025, 11, 19), dt.date(2025, 11, 17))
    assert backwards.value.code == "invalid_period"
    with pytest.raises(ApplicationError) as long:
        Period.from_dates(dt.date(2024, 1, 1), dt.date(2025, 11, 17))
    assert long.value.code == "period_too_long"


def test_an_unknown_grouping_is_refused(org):
    with pytest.raises(ApplicationError) as refused:
        measures.measures(user=org.supervisor, period=PERIOD, group_by="street")
    assert refused.value.code == "invalid_group_by"


# --- ranking ---------------------------------------------------------------------------------------------


def test_ranking_with_configured_weights(data, settings):
    org = data.org
    settings.HOTLINE_RANKING_WEIGHTS = {"response": 50, "resolution": 25, "satisfaction": 25}
    ranking = measures.department_ranking(user=org.supervisor, period=PERIOD, now=NOW)
    assert [(row.name, row.rank, round(row.score, 2)) for row in ranking] == [
        # no answered callback: satisfaction's weight is shared by the other two rates
        (org.street_office.name, 1, round(100 * (50 * 1 + 25 * 0) / 75, 2)),
        (org.bureau.name, 2, 62.5),
        (org.other_bureau.name, 3, 50.0),
    ]


def test_ranking_with_the_default_weights(data, settings):
    org = data.org
    del settings.HOTLINE_RANKING_WEIGHTS
    ranking = measures.department_ranking(user=org.supervisor, period=PERIOD, now=NOW)
    assert [(row.name, round(row.score, 2)) for row in ranking] == [
        (org.bureau.name, 67.5),
        (org.street_office.name, round(100 * 30 / 65, 2)),
        (org.other_bureau.name, 30.0),
    ]


def test_ranking_ties_go_to_the_department_with_more_dispatches_then_the_code(data, settings):
    org = data.org
    settings.HOTLINE_RANKING_WEIGHTS = {"response": 1, "resolution": 0, "satisfaction": 0}
    ranking = measures.department_ranking(user=org.supervisor, period=PERIOD, now=NOW)
    # B2 and the street office both respond 100%; B2 had 3 dispatches, the street office 1.
    assert [(row.name, row.rank, row.score) for row in ranking] == [
        (org.other_bureau.name, 1, 100.0),
        (org.street_office.name, 2, 100.0),
        (org.bureau.name, 3, 50.0),
    ]


def test_bad_weights_are_a_configuration_error(data, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.HOTLINE_RANKING_WEIGHTS = {"response": 0, "resolution": 0, "satisfaction": 0}
    with pytest.raises(ImproperlyConfigured):
        measures.department_ranking(user=data.org.supervisor, period=PERIOD)
    settings.HOTLINE_RANKING_WEIGHTS = {"speed": 1}
    with pytest.raises(ImproperlyConfigured):
        measures.department_ranking(user=data.org.supervisor, period=PERIOD)


# --- hot topics ------------------------------------------------------------------------------------------


def test_hot_topics_against_the_previous_period(data, django_assert_max_num_queries):
    org = data.org
    with django_assert_max_num_queries(8):
        hot = measures.hot_topics(user=org.supervisor, period=PERIOD, limit=3)
    assert hot.previous_period == Period.from_dates(dt.date(2025, 11, 15), dt.date(2025, 11, 17))
    assert (hot.intake, hot.previous_intake) == (8, 2)
    assert [(t.label, t.count, t.previous, t.change) for t in hot.categories] == [
        ("城乡建设/物业管理", 4, 1, 3),
        ("环境保护/噪声污染", 2, 0, 2),
        ("城乡建设", 1, 0, 1),
    ]
    assert hot.categories[0].change_rate == 3.0 and hot.categories[1].change_rate is None
    # Places need two tickets; a number as long as a phone number is masked.
    assert [(t.label, t.count, t.previous) for t in hot.places] == [
        ("太原街街道 幸福小区", 3, 2),
        ("沈河区 青年大街***号", 2, 0),
    ]
    words = measures.hot_topics(user=org.supervisor, period=PERIOD, limit=10).words
    # Most tickets first, then the larger rise; words of one ticket only (故障, 停运, 积水) are left out.
    assert [(t.label, t.count, t.previous) for t in words] == [
        ("噪音", 3, 0),
        ("电梯", 3, 0),
        ("小区", 3, 1),
        ("幸福", 3, 1),
        ("大街", 2, 0),
        ("青年", 2, 0),
    ]
    assert not any(t.estimated for t in words)


def test_hot_words_leave_out_stop_words_numbers_and_words_of_one_ticket(org):
    with clock.frozen(at(17, 9)):
        for title in ["张伟反映幸福小区供暖不热", "李娜投诉幸福小区供暖不热", "13812345678 供暖", "关于供暖的咨询"]:
            services.ticket_create(data=ticket_input(title=title), actor=org.agent)
    hot = measures.hot_topics(user=org.supervisor, period=PERIOD, limit=10)
    assert {t.label: t.count for t in hot.words} == {"供暖": 4, "幸福": 2, "小区": 2}


def test_hot_words_beyond_the_sample_are_scaled_and_marked(org, monkeypatch):
    monkeypatch.setattr(measures, "HOT_WORDS_MAX_TITLES", 2)
    for minute, title in enumerate(["供暖不热", "供暖不热", "停水", "停水"]):
        with clock.frozen(at(17, 9, minute)):
            services.ticket_create(data=ticket_input(title=title), actor=org.agent)
    words = measures.hot_topics(user=org.supervisor, period=PERIOD).words
    # The two newest titles are read ("停水" twice) and stand for all four tickets of the period.
    assert [(t.label, t.count, t.estimated) for t in words] == [("停水", 4, True)]


# --- deadlines and the board's summary ---------------------------------------------------------------------


def test_deadlines_now(data):
    # t3 dispatched 17th 09:14, due 18th 09:14: overdue. t4 reopened 18th 16:00, due 19th 16:00, warned at 80%
    # of the way (19th 11:12).
    before_warning = measures.deadline_snapshot(user=data.org.supervisor, now=NOW)
    assert (before_warning.accept_overdue, before_warning.accept_warning) == (1, 0)
    snapshot = measures.deadline_snapshot(user=data.org.supervisor, now=at(19, 12))
    assert (snapshot.accept_overdue, snapshot.accept_warning) == (1, 1)
    assert (snapshot.reply_overdue, snapshot.reply_warning) == (0, 0)
    assert [(t["number"], t["deadline"], t["overdue_hours"]) for t in snapshot.most_overdue] == [
        (data.tickets["t3"].number, "accept", 26.8),
    ]


def test_board_summary_reads_every_part(data, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        board = measures.board_summary(user=data.org.supervisor, now=NOW)
    assert board.today.total.intake == 1  # t11
    assert len(board.trend.rows) == 30 and board.trend.rows[-3].counts.intake == 8
    assert board.trend.rows[-1].counts.intake == 1
    # The 30 days hold the period's dispatches (B1 5, B2 3, street office 1) and t10's reply on the 19th.
    assert [(row.code, row.counts.dispatched) for row in board.ranking] == [
        (data.org.bureau.code, 5),
        (data.org.street_office.code, 1),
        (data.org.other_bureau.code, 3),
    ]
    # The 7 days from the 13th: t0, t10, the period's 8 and t11.
    assert (board.hot.intake, board.hot.categories[0].label) == (11, "城乡建设/物业管理")


def test_the_board_recomputes_its_slow_panels_only_every_few_minutes(data, django_assert_max_num_queries):
    org = data.org
    first = measures.board_summary(user=org.supervisor, now=NOW)
    with clock.frozen(NOW + dt.timedelta(minutes=1)):
        services.ticket_create(data=ticket_input(title="新的来电"), actor=org.agent)
    a_minute_later = NOW + dt.timedelta(minutes=2)
    # Today's figures and deadlines only.
    with django_assert_max_num_queries(5):
        later = measures.board_summary(user=org.supervisor, now=a_minute_later)
    assert later.slow_at == first.slow_at == NOW
    assert later.today.total.intake == 2 and later.trend.rows[-1].counts.intake == 2
    assert later.hot.intake == first.hot.intake == 11
    # NOW falls on a 5-minute boundary, so this is the next slot.
    recomputed = measures.board_summary(
        user=org.supervisor, now=NOW + dt.timedelta(seconds=measures.BOARD_SLOW_SECONDS)
    )
    assert recomputed.slow_at > NOW and recomputed.hot.intake == 12
    # Each scope has its own panels.
    lead = measures.board_summary(user=org.lead, now=a_minute_later)
    assert [row.code for row in lead.ranking] == [org.bureau.code]


# --- Excel -----------------------------------------------------------------------------------------------


def test_the_workbook_has_the_four_sheets_with_chinese_headers_and_percentages(data, settings):
    org = data.org
    settings.HOTLINE_RANKING_WEIGHTS = {"response": 50, "resolution": 25, "satisfaction": 25}
    content = measures_workbook(user=org.supervisor, period=PERIOD, now=NOW)
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames == ["汇总", "按单位", "排名", "热点"]

    summary = {row[0].value: row[1] for row in book["汇总"].iter_rows(min_row=4) if row[0].value}
    assert summary["受理量"].value == 8
    assert summary["响应率"].value == pytest.approx(4 / 6) and summary["响应率"].number_format == "0.0%"
    assert summary["满意率"].value == pytest.approx(2 / 3)
    assert book["汇总"]["B2"].value == "2025-11-17 至 2025-11-18"

    sheet = book["按单位"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["承办单位", "受理量", "即时答复量"] and "响应率" in header
    first = {header[i]: c for i, c in enumerate(sheet[2])}
    assert first["承办单位"].value == org.bureau.name and first["派单量"].value == 5
    assert first["响应率"].value == pytest.approx(0.5) and first["响应率"].number_format == "0.0%"

    ranking = [[c.value for c in row] for row in book["排名"].iter_rows(min_row=2)]
    assert [(row[0], row[1]) for row in ranking] == [
        (1, org.street_office.name),
        (2, org.bureau.name),
        (3, org.other_bureau.name),
    ]
    hot = [[c.value for c in row] for row in book["热点"].iter_rows(min_row=2)]
    assert ["诉求分类", "城乡建设/物业管理", 4, 1, 3] in [row[:5] for row in hot]


def test_the_workbook_holds_no_personal_data(data):
    content = measures_workbook(user=data.org.supervisor, period=PERIOD, now=NOW)
    book = openpyxl.load_workbook(io.BytesIO(content))
    text = " ".join(str(c.value) for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None)
    assert "张三" not in text and "13812345678" not in text and "88886666" not in text


# --- API -------------------------------------------------------------------------------------------------


def test_api_measures_grouped(data, api_as):
    with clock.frozen(NOW):
        response = api_as(data.org.supervisor).get(
            "/api/v1/measures/", {"start": "2025-11-17", "end": "2025-11-19", "group_by": "department"}
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"] == {"start": "2025-11-17", "end": "2025-11-19", "label": "2025-11-17 至 2025-11-18"}
    assert body["total"]["counts"]["dispatched"] == 9
    assert body["total"]["rates"]["response"] == pytest.approx(4 / 6)
    first = body["rows"][0]
    assert first["label"] == data.org.bureau.name and first["key"] == str(data.org.bureau.id)
    assert first["counts"]["accept_lapsed"] == 1


def test_api_ranking_and_hot_topics(data, api_as, settings):
    settings.HOTLINE_RANKING_WEIGHTS = {"response": 50, "resolution": 25, "satisfaction": 25}
    client = api_as(data.org.supervisor)
    with clock.frozen(NOW):
        ranking = client.get("/api/v1/measures/ranking/", {"start": "2025-11-17", "end": "2025-11-19"}).json()
        hot = client.get("/api/v1/measures/hot-topics/", {"start": "2025-11-17", "end": "2025-11-19", "limit": 2})
    assert ranking["weights"] == {"response": 50.0, "resolution": 25.0, "satisfaction": 25.0}
    assert [(row["rank"], row["code"], row["score"]) for row in ranking["rows"]] == [
        (1, data.org.street_office.code, 66.67),
        (2, data.org.bureau.code, 62.5),
        (3, data.org.other_bureau.code, 50.0),
    ]
    assert hot.status_code == 200
    categories = hot.json()["categories"]
    assert [(c["label"], c["count"], c["previous"], c["change"]) for c in categories] == [
        ("城乡建设/物业管理", 4, 1, 3),
        ("环境保护/噪声污染", 2, 0, 2),
    ]


def test_api_export_is_an_attachment(data, api_as):
    response = api_as(data.org.supervisor).get(
        "/api/v1/measures/export.xlsx", {"start": "2025-11-17", "end": "2025-11-19"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "2025-11-17_2025-11-18" in response["Content-Disposition"]
    assert openpyxl.load_workbook(io.BytesIO(response.content)).sheetnames == ["汇总", "按单位", "排名", "热点"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-13-01", "end": "2025-11-19"}, "start"),
        ({"start": "2025-11-19", "end": "2025-11-17"}, None),
        ({"start": "2024-01-01", "end": "2025-11-19"}, None),
        ({"start": "2025-11-17"}, "end"),
        ({"start": "2025-11-17", "end": "2025-11-19", "group_by": "street"}, "group_by"),
        ({"start": "2025-11-17", "end": "2025-11-19", "colour": "red"}, "colour"),
    ],
)
def test_api_refuses_bad_parameters_in_chinese(org, api_as, params, field):
    response = api_as(org.supervisor).get("/api/v1/measures/", params)
    assert response.status_code == 400
    body = response.json()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])
    if field:
        assert field in body.get("errors", {}), body


def test_api_hot_topics_limit_is_checked(org, api_as):
    response = api_as(org.supervisor).get(
        "/api/v1/measures/hot-topics/", {"start": "2025-11-17", "end": "2025-11-19", "limit": 500}
    )
    assert response.status_code == 400 and "limit" in response.json()["errors"]


@pytest.mark.parametrize("url", ["/api/v1/measures/", "/api/v1/measures/ranking/", "/api/v1/measures/hot-topics/",
                                 "/api/v1/measures/export.xlsx"])  # fmt: skip
def test_api_permissions(org, api, api_as, url):
    params = {"start": "2025-11-17", "end": "2025-11-19"}
    assert api.get(url, params).status_code == 401
    refused = api_as(org.agent).get(url, params)
    assert refused.status_code == 403 and refused.json()["code"] == "measures_not_permitted"
    assert api_as(org.lead).get(url, params).status_code == 200
    assert api_as(org.administrator).get(url, params).status_code == 200


def test_api_defaults_to_the_last_30_days(org, api_as):
    with clock.frozen(NOW):
        body = api_as(org.supervisor).get("/api/v1/measures/").json()
    assert body["period"]["start"] == "2025-10-21" and body["period"]["end"] == "2025-11-20"


# --- the board page --------------------------------------------------------------------------------------


def test_the_board_renders_for_a_supervisor(data, client):
    client.force_login(data.org.supervisor)
    with clock.frozen(NOW):
        response = client.get(reverse("ticketing:board"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "ticketing/board.js" in page and "ticketing/board.css" in page
    assert "今日受理" in page and "响应率" in page and "单位排名" in page and "热点" in page
    assert data.org.bureau.name in page
    assert 'data-ws="/ws/supervisor/"' in page
    # Each chart has a table alternative.
    assert page.count("<table") >= 4
    fragment = client.get(reverse("ticketing:board"), {"fragment": "1"})
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()


def test_the_board_is_refused_to_an_agent_and_asks_strangers_to_sign_in(org, client):
    anonymous = client.get(reverse("ticketing:board"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(org.agent)
    assert client.get(reverse("ticketing:board")).status_code == 403
    client.force_login(org.lead)
    assert client.get(reverse("ticketing:board")).status_code == 403


def test_the_board_works_for_an_administrator_on_an_empty_database(db, client):
    admin = UserFactory(username="boss", role=Role.ADMINISTRATOR)
    client.force_login(admin)
    response = client.get(reverse("ticketing:board"))
    assert response.status_code == 200
    assert "—" in response.content.decode()
