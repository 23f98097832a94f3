"""Rule evaluation: each condition, explanations in Chinese, time windows across midnight, patterns refused
when bad, loading in order with subtrees, and how matches combine."""

from datetime import UTC, datetime, time

import pytest
from django.core.exceptions import ValidationError

from routing import rules
from routing.models import Rule
from routing.rules import CompiledRule, evaluate, explain, load_rules, verdict
from routing.types import RoutingInput
from tests.factories import CategoryFactory, DepartmentFactory, RegionFactory

# 2026-03-04 is a Wednesday; 10:00 in Shanghai is 02:00 UTC.
WEDNESDAY_10 = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


def shanghai(hour: int, minute: int = 0, day: int = 4) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=rules.TZ)


def inp(**overrides) -> RoutingInput:  # type: ignore[no-untyped-def]
    values = {"title": "小区暖气不热", "content": "家里暖气片冰凉，室温只有十二度。", "appeal_type": "complaint"}
    return RoutingInput(**{**values, **overrides})


def rule(**overrides) -> CompiledRule:  # type: ignore[no-untyped-def]
    return CompiledRule(**{"id": 1, "name": "测试规则", "order": 1, **overrides})


# --- each condition ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "matching", "other", "explanation"),
    [
        ({"appeal_types": frozenset({"complaint"})}, {}, {"appeal_type": "inquiry"}, "诉求类型为「投诉」"),
        (
            {"category_ids": frozenset({5, 6}), "category_names": ("城乡建设",)},
            {"category_id": 6},
            {"category_id": 7},
            "诉求分类属于「城乡建设」",
        ),
        ({"keywords": ("暖气", "供热")}, {}, {"content": "路灯不亮", "title": "路灯"}, "含关键词：暖气"),
        (
            {"patterns": (r"室温.{0,4}度",)},
            {},
            {"content": "暖气不热", "title": ""},
            "正则「室温.{0,4}度」匹配「室温只有十二度」",
        ),
        (
            {"region_ids": frozenset({10, 11}), "region_names": ("和平区",)},
            {"region_id": 11},
            {"region_id": 12},
            "区域在「和平区」范围内",
        ),
        ({"channels": frozenset({"phone"})}, {"channel": "phone"}, {"channel": "web"}, "来源渠道为「电话」"),
        (
            {"hotline_lines": frozenset({"8890"})},
            {"hotline_line": "8890"},
            {"hotline_line": "12345"},
            "热线号码为 8890",
        ),
        ({"weekdays": frozenset({3})}, {}, {"received_at": shanghai(10, day=7)}, "受理日为周三"),
        (
            {"time_from": time(9), "time_to": time(17)},
            {},
            {"received_at": shanghai(18)},
            "受理时间 10:00 在 09:00–17:00 时段内",
        ),
    ],
    ids=["appeal_type", "category", "keywords", "pattern", "region", "channel", "line", "weekday", "time"],
)
def test_each_condition_fires_with_its_explanation_and_not_otherwise(condition, matching, other, explanation):
    candidate = rule(**condition)
    assert explain(candidate, inp(**matching), WEDNESDAY_10) == (explanation,)
    assert explain(candidate, inp(**{**matching, **other}), WEDNESDAY_10) is None


def test_all_conditions_must_hold_and_each_is_explained():
    candidate = rule(appeal_types=frozenset({"complaint"}), keywords=("暖气",), channels=frozenset({"phone"}))
    assert explain(candidate, inp(channel="phone"), WEDNESDAY_10) == (
        "诉求类型为「投诉」",
        "含关键词：暖气",
        "来源渠道为「电话」",
    )
    assert explain(candidate, inp(channel="web"), WEDNESDAY_10) is None


def test_a_rule_without_conditions_never_fires():
    assert explain(rule(lead_department_id=3), inp(), WEDNESDAY_10) is None


def test_all_keywords_mode_needs_every_keyword():
    candidate = rule(keywords=("暖气", "物业"), keyword_mode="all")
    assert explain(candidate, inp(), WEDNESDAY_10) is None
    assert explain(candidate, inp(content="物业不管，暖气不热"), WEDNESDAY_10) == ("含全部关键词：暖气、物业",)


def test_keywords_and_patterns_ignore_width_and_case():
    assert explain(rule(keywords=("wifi",)), inp(content="小区ＷＩＦＩ信号差"), WEDNESDAY_10) is not None
    assert explain(rule(patterns=(r"\d+号楼",)), inp(content="３号楼停水"), WEDNESDAY_10) == (
        "正则「\\d+号楼」匹配「3号楼」",
    )


@pytest.mark.parametrize(
    ("hour", "minute", "fires"),
    [(21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True), (5, 59, True), (6, 0, False), (12, 0, False)],
)
def test_a_time_window_may_wrap_midnight(hour, minute, fires):
    candidate = rule(time_from=time(22), time_to=time(6))
    assert (explain(candidate, inp(received_at=shanghai(hour, minute)), WEDNESDAY_10) is not None) is fires


def test_time_conditions_use_now_when_the_request_has_no_time_yet():
    candidate = rule(time_from=time(22), time_to=time(6))
    assert explain(candidate, inp(), shanghai(23)) is not None
    assert explain(candidate, inp(), shanghai(12)) is None
    # The request's own time wins over now: a night call routed the next morning still counts as night.
    assert explain(candidate, inp(received_at=shanghai(23)), shanghai(9, day=5)) is not None


def test_evaluate_keeps_rule_order():
    first, second, never = rule(id=1, keywords=("暖气",)), rule(id=2, keywords=("室温",)), rule(id=3, keywords=("x",))
    assert [m.rule.id for m in evaluate([first, second, never], inp(), WEDNESDAY_10)] == [1, 2]


# --- combining matches ---------------------------------------------------------------------------------------


def test_verdict_takes_the_first_rule_of_each_action_and_the_highest_urgency():
    matches = evaluate(
        [
            rule(id=1, keywords=("暖气",), urgency="urgent"),
            rule(id=2, keywords=("暖气",), lead_department_id=7),
            rule(id=3, keywords=("暖气",), lead_department_id=8, legal_route="petition", script="s"),
            rule(id=4, keywords=("暖气",), legal_route="arbitration", script="s"),
        ],
        inp(),
        WEDNESDAY_10,
    )
    found = verdict(matches)
    assert found.dispatch is not None and found.dispatch.rule.id == 2
    assert found.legal_route is not None and found.legal_route.rule.id == 3
    assert found.emergency is None and found.urgency == "urgent"


def test_an_emergency_makes_the_verdict_critical():
    found = verdict(evaluate([rule(keywords=("暖气",), emergency_target="119")], inp(), WEDNESDAY_10))
    assert found.emergency is not None and found.urgency == "critical"


# --- patterns refused ----------------------------------------------------------------------------------------


def test_pattern_errors_lists_each_bad_pattern():
    assert rules.pattern_errors("着火\n燃气.{0,3}泄漏") == []
    problems = rules.pattern_errors("好的\n(未闭合\n[z-a]\n" + "a" * 201)
    assert len(problems) == 3
    assert "(未闭合" in problems[0] and "[z-a]" in problems[1] and "过长" in problems[2]


@pytest.mark.django_db
def test_a_rule_with_a_bad_pattern_is_refused_by_validation():
    bad = Rule(name="坏规则", patterns="(未闭合", keywords="暖气")
    with pytest.raises(ValidationError) as refused:
        bad.full_clean()
    assert "patterns" in refused.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"time_from": time(9)}, "time_to"),
        ({"time_from": time(9), "time_to": time(9)}, "time_to"),
        ({"emergency_target": "119", "legal_route": "petition", "script": "x"}, "legal_route"),
        ({"legal_route": "petition"}, "script"),
    ],
)
def test_rule_validation_refuses_incomplete_actions_and_windows(fields, field):
    with pytest.raises(ValidationError) as refused:
        Rule(name="规则", keywords="暖气", **fields).full_clean()
    assert field in refused.value.message_dict


# --- loading -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_rules_reads_enabled_rules_in_order_with_subtrees():
    city = RegionFactory(code="210100", name="沈阳市", level=2)
    district = RegionFactory(code="210102", name="和平区", level=3, parent=city)
    street = RegionFactory(code="210102001", name="太原街街道", level=4, parent=district)
    top = CategoryFactory(name="城乡建设")
    child = CategoryFactory(name="物业管理", parent=top)
    other = CategoryFactory(name="教育文体")
    heating = DepartmentFactory(code="GN", name="供暖集团")
    helper = DepartmentFactory(code="ZJ", name="住建局")

    late = Rule.objects.create(name="后", order=20, keywords="暖气", lead_department=heating)
    early = Rule.objects.create(name="先", order=10, keywords="暖气\n供热，采暖", keyword_mode="all")
    early.categories.set([top])
    early.regions.set([district])
    late.assisting_departments.set([helper])
    Rule.objects.create(name="停用", order=1, keywords="暖气", enabled=False)

    loaded = load_rules()
    assert [r.name for r in loaded] == ["先", "后"]
    first, second = loaded
    assert first.category_ids == {top.id, child.id} and other.id not in first.category_ids
    assert first.region_ids == {district.id, street.id}
    assert first.keywords == ("暖气", "供热", "采暖") and first.keyword_mode == "all"
    assert (second.lead_department_id, second.lead_department_name) == (heating.id, "供暖集团")
    assert second.assisting_department_ids == (helper.id,)
    assert [r.name for r in load_rules(include_disabled=True)] == ["停用", "先", "后"]


@pytest.mark.django_db
def test_a_bad_pattern_written_around_validation_is_skipped_not_raised():
    Rule.objects.create(name="绕过校验", patterns="(未闭合\n暖气", lead_department=DepartmentFactory())
    (loaded,) = load_rules()
    assert loaded.patterns == ("暖气",)
    assert evaluate(load_rules(), inp(), WEDNESDAY_10)[0].explanations == ("正则「暖气」匹配「暖气」",)


def test_compiled_patterns_are_cached():
    rules.compiled.cache_clear()
    rules.compiled("暖气")
    rules.compiled("暖气")
    assert rules.compiled.cache_info().hits == 1
