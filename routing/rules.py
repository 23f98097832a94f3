"""Rule evaluation: `load_rules()` reads the enabled rules in order into plain values (subtrees expanded,
patterns compiled), and `evaluate(rules, inp, now)` is pure: which rules fire for a request, and why, one
Chinese explanation per condition that held."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from ticketing.models import AppealType, Channel, Urgency
from ticketing.selectors import region_subtree_ids

from .models import PATTERN_MAX_LENGTH, WEEKDAY_CHOICES, EmergencyTarget, LegalRoute, Rule
from .types import RoutingInput

TZ = ZoneInfo("Asia/Shanghai")
_SEPARATORS = re.compile(r"[\n,，、;；]+")
WEEKDAY_NAMES = dict(WEEKDAY_CHOICES)


def split_words(text: str) -> tuple[str, ...]:
    """Keywords as an administrator types them: one a line, or separated by commas or 、."""
    return tuple(dict.fromkeys(w.strip() for w in _SEPARATORS.split(text or "") if w.strip()))


def split_patterns(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern[str]:
    """The compiled-pattern cache: rules are loaded for every call in progress, patterns rarely change."""
    return re.compile(pattern, re.IGNORECASE)


def pattern_errors(text: str) -> list[str]:
    """Why each bad pattern of a rule's pattern text is refused (empty: all are valid)."""
    problems = []
    for pattern in split_patterns(text):
        if len(pattern) > PATTERN_MAX_LENGTH:
            problems.append(f"正则表达式过长（最多 {PATTERN_MAX_LENGTH} 个字符）：{pattern[:30]}…")
            continue
        try:
            compiled(pattern)
        except re.error as error:
            problems.append(f"正则表达式「{pattern}」有误：{error}")
    return problems


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: int
    name: str
    order: int
    appeal_types: frozenset[str] = frozenset()
    # The chosen categories with the children of first-level ones; `category_names` for explanations.
    category_ids: frozenset[int] = frozenset()
    category_names: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    keyword_mode: str = "any"
    patterns: tuple[str, ...] = ()
    region_ids: frozenset[int] = frozenset()
    region_names: tuple[str, ...] = ()
    channels: frozenset[str] = frozenset()
    hotline_lines: frozenset[str] = frozenset()
    time_from: time | None = None
    time_to: time | None = None
    weekdays: frozenset[int] = frozenset()
    # actions
    lead_department_id: int | None = None
    lead_department_name: str = ""
    assisting_department_ids: tuple[int, ...] = ()
    urgency: str = ""
    emergency_target: str = ""
    legal_route: str = ""
    script: str = ""

    @property
    def has_condition(self) -> bool:
        return bool(
            self.appeal_types
            or self.category_ids
            or self.keywords
            or self.patterns
            or self.region_ids
            or self.channels
            or self.hotline_lines
            or self.time_from is not None
            or self.weekdays
        )

    def actions(self) -> dict[str, object]:
        return {
            "lead_department_id": self.lead_department_id,
            "assisting_department_ids": list(self.assisting_department_ids),
            "urgency": self.urgency,
            "emergency_target": self.emergency_target,
            "legal_route": self.legal_route,
            "script": self.script,
        }


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: CompiledRule
    explanations: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"规则「{self.rule.name}」：" + "；".join(self.explanations)

    def as_json(self) -> dict[str, object]:
        return {
            "rule_id": self.rule.id,
            "name": self.rule.name,
            "explanations": list(self.explanations),
            "actions": self.rule.actions(),
        }


def _in_window(moment: time, start: time, end: time) -> bool:
    if start < end:
        return start <= moment < end
    # The window wraps midnight (22:00–06:00).
    return moment >= start or moment < end


def _label(choices: type[AppealType] | type[Channel], value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def explain(rule: CompiledRule, inp: RoutingInput, now: datetime) -> tuple[str, ...] | None:
    """The explanation of each condition of `rule` if all of them hold for `inp`, else None."""
    if not rule.has_condition:
        return None
    reasons: list[str] = []
    if rule.appeal_types:
        if inp.appeal_type not in rule.appeal_types:
            return None
        reasons.append(f"诉求类型为「{_label(AppealType, inp.appeal_type)}」")
    if rule.category_ids:
        if inp.category_id not in rule.category_ids:
            return None
        reasons.append(f"诉求分类属于「{'、'.join(rule.category_names)}」")
    if rule.keywords or rule.patterns:
        text = normalize(inp.text)
        if rule.keywords:
            found = [word for word in rule.keywords if normalize(word) in text]
            wanted_all = rule.keyword_mode == "all"
            if not found or (wanted_all and len(found) < len(rule.keywords)):
                return None
            reasons.append(("含全部关键词：" if wanted_all else "含关键词：") + "、".join(found))
        if rule.patterns:
            for pattern in rule.patterns:
                hit = compiled(pattern).search(text)
                if hit:
                    reasons.append(f"正则「{pattern}」匹配「{hit.group(0)}」")
                    break
            else:
                return None
    if rule.region_ids:
        if inp.region_id not in rule.region_ids:
            return None
        reasons.append(f"区域在「{'、'.join(rule.region_names)}」范围内")
    if rule.channels:
        if inp.channel not in rule.channels:
            return None
        reasons.append(f"来源渠道为「{_label(Channel, inp.channel)}」")
    if rule.hotline_lines:
        if inp.hotline_line not in rule.hotline_lines:
            return None
        reasons.append(f"热线号码为 {inp.hotline_line}")
    local = (inp.received_at or now).astimezone(TZ)
    if rule.time_from is not None and rule.time_to is not None:
        if not _in_window(local.time(), rule.time_from, rule.time_to):
            return None
        reasons.append(f"受理时间 {local:%H:%M} 在 {rule.time_from:%H:%M}–{rule.time_to:%H:%M} 时段内")
    if rule.weekdays:
        if local.isoweekday() not in rule.weekdays:
            return None
        reasons.append(f"受理日为{WEEKDAY_NAMES[local.isoweekday()]}")
    return tuple(reasons)


def evaluate(rules: Iterable[CompiledRule], inp: RoutingInput, now: datetime) -> list[RuleMatch]:
    """The rules that fire, in rule order, each with why. Time conditions use `inp.received_at` (the
    moment the request came in), or `now` for text that has no such time yet; both in Asia/Shanghai."""
    matches = []
    for rule in rules:
        reasons = explain(rule, inp, now)
        if reasons is not None:
            matches.append(RuleMatch(rule=rule, explanations=reasons))
    return matches


# ---------------------------------------------------------------------------------------------------------
# what the matches decide


URGENCY_RANK = {Urgency.NORMAL.value: 0, Urgency.URGENT.value: 1, Urgency.CRITICAL.value: 2}


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """The actions of the matches combined: the first matching rule (in order) that has an action of a kind
    decides that kind; the highest urgency any match sets wins (a rule never lowers urgency)."""

    emergency: RuleMatch | None = None
    legal_route: RuleMatch | None = None
    dispatch: RuleMatch | None = None
    urgency: str = ""


def verdict(matches: Sequence[RuleMatch]) -> RuleVerdict:
    emergency = next((m for m in matches if m.rule.emergency_target), None)
    legal = next((m for m in matches if m.rule.legal_route), None)
    dispatch = next((m for m in matches if m.rule.lead_department_id), None)
    urgencies = [m.rule.urgency for m in matches if m.rule.urgency]
    if emergency is not None:
        urgencies.append(Urgency.CRITICAL.value)
    urgency = max(urgencies, key=lambda u: URGENCY_RANK.get(u, 0), default="")
    return RuleVerdict(emergency=emergency, legal_route=legal, dispatch=dispatch, urgency=urgency)


# ---------------------------------------------------------------------------------------------------------
# loading


def compile_rule(rule: Rule, *, children: dict[int, list[int]]) -> CompiledRule:
    """`rule` with categories, regions and departments prefetched; `children` maps first-level category ids
    to their children's ids."""
    categories = list(rule.categories.all())
    category_ids: set[int] = set()
    for category in categories:
        category_ids.add(category.id)
        category_ids.update(children.get(category.id, ()))
    regions = list(rule.regions.all())
    region_ids = region_subtree_ids(region_ids=[r.id for r in regions]) if regions else set()
    return CompiledRule(
        id=rule.id,
        name=rule.name,
        order=rule.order,
        appeal_types=frozenset(rule.appeal_types or ()),
        category_ids=frozenset(category_ids),
        category_names=tuple(c.name for c in categories),
        keywords=split_words(rule.keywords),
        keyword_mode=rule.keyword_mode,
        # A pattern that no longer compiles (written around the admin) is left out, never raised mid-call.
        patterns=tuple(p for p in split_patterns(rule.patterns) if not pattern_errors(p)),
        region_ids=frozenset(region_ids),
        region_names=tuple(r.name for r in regions),
        channels=frozenset(rule.channels or ()),
        hotline_lines=frozenset(rule.hotline_lines or ()),
        time_from=rule.time_from,
        time_to=rule.time_to,
        weekdays=frozenset(int(d) for d in rule.weekdays or ()),
        lead_department_id=rule.lead_department_id,
        lead_department_name=rule.lead_department.name if rule.lead_department else "",
        assisting_department_ids=tuple(sorted(d.id for d in rule.assisting_departments.all())),
        urgency=rule.urgency,
        emergency_target=rule.emergency_target,
        legal_route=rule.legal_route,
        script=rule.script,
    )


def load_rules(*, include_disabled: bool = False) -> list[CompiledRule]:
    """The rules in evaluation order (enabled ones only unless asked)."""
    from ticketing.models import Category

    rows = Rule.objects.select_related("lead_department").prefetch_related(
        "categories", "regions", "assisting_departments"
    )
    if not include_disabled:
        rows = rows.filter(enabled=True)
    rules = list(rows.order_by("order", "id"))
    chosen = {c.id for rule in rules for c in rule.categories.all()}
    children: dict[int, list[int]] = {}
    if chosen:
        for child_id, parent_id in Category.objects.filter(parent_id__in=chosen).values_list("id", "parent_id"):
            children.setdefault(parent_id, []).append(child_id)
    return [compile_rule(rule, children=children) for rule in rules]


EXTERNAL_LABELS = {**dict(EmergencyTarget.choices), **dict(LegalRoute.choices)}
