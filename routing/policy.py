"""The decision policy, in plain Python: from the rules that fired and the recommender's list to one outcome.

- an emergency rule: flag for immediate transfer to 110/119/120/122 (the agent transfers the call);
- a legal-route rule: tell the caller the legal route (litigation, arbitration, petition, disclosure);
- a rule with a lead department: dispatch automatically;
- else the best recommendation: at or above `threshold`, dispatch automatically (mode "auto") or pre-select it
  for the dispatcher (mode "preselect"); below it, or with none, the ticket stays in the dispatcher's queue.

Departments in `excluded` (they returned this ticket) are never dispatched to automatically.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from .models import Outcome
from .rules import RuleMatch, verdict
from .types import Reason, Recommendation

MODES = ("auto", "preselect")

DEFAULT_SCRIPTS = {
    "110": "请立即为来电人转接 110 报警电话。",
    "119": "请立即为来电人转接 119 火警电话，并提醒撤离到安全地带。",
    "120": "请立即为来电人转接 120 急救电话。",
    "122": "请立即为来电人转接 122 交通事故报警电话。",
}


@dataclass(frozen=True, slots=True)
class RoutingResult:
    outcome: str
    matches: tuple[RuleMatch, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    # The rule that decided (emergency, legal route or dispatch), if any.
    rule: RuleMatch | None = None
    lead_department_id: int | None = None
    assisting_department_ids: tuple[int, ...] = ()
    confidence: float | None = None
    urgency: str = ""
    external_target: str = ""
    script: str = ""
    mode: str = "preselect"
    note: str = ""

    @property
    def reason_text(self) -> str:
        if self.rule is not None:
            return self.rule.text
        if self.lead_department_id is not None and self.recommendations:
            return self.recommendations[0].reason_text
        return ""


def rule_recommendation(match: RuleMatch) -> Recommendation:
    """A dispatch rule, as a recommendation with confidence 1 and the rule as its reason."""
    return Recommendation(
        department_id=match.rule.lead_department_id or 0,
        confidence=1.0,
        reasons=(Reason(kind="rule", text=match.text, ref=str(match.rule.id), weight=1.0),),
        assisting_department_ids=match.rule.assisting_department_ids,
    )


def decide(
    *,
    matches: Sequence[RuleMatch],
    recommendations: Sequence[Recommendation],
    mode: str,
    threshold: float,
    excluded: Collection[int] = (),
) -> RoutingResult:
    if mode not in MODES:
        raise ValueError(f"routing mode must be one of {MODES}, not {mode!r}")
    found = verdict(matches)
    base = RoutingResult(
        outcome=Outcome.MANUAL,
        matches=tuple(matches),
        recommendations=tuple(recommendations),
        urgency=found.urgency,
        mode=mode,
    )
    if found.emergency is not None:
        target = found.emergency.rule.emergency_target
        return replace(
            base,
            outcome=Outcome.EMERGENCY,
            rule=found.emergency,
            external_target=target,
            script=found.emergency.rule.script or DEFAULT_SCRIPTS.get(target, ""),
        )
    if found.legal_route is not None:
        return replace(
            base,
            outcome=Outcome.LEGAL_ROUTE,
            rule=found.legal_route,
            external_target=found.legal_route.rule.legal_route,
            script=found.legal_route.rule.script,
        )
    note = ""
    if found.dispatch is not None:
        rule = found.dispatch.rule
        if rule.lead_department_id not in excluded:
            return replace(
                base,
                outcome=Outcome.AUTO_DISPATCHED,
                rule=found.dispatch,
                lead_department_id=rule.lead_department_id,
                assisting_department_ids=rule.assisting_department_ids,
                confidence=1.0,
            )
        note = f"规则「{rule.name}」指定的主办单位曾退回此工单，不再自动派给该单位。"
    best = next((r for r in recommendations if r.department_id not in excluded), None)
    if best is None or best.confidence < threshold:
        return replace(
            base,
            outcome=Outcome.MANUAL,
            confidence=best.confidence if best else None,
            note=note or ("推荐置信度不足，由派单员人工派单。" if best else "没有可用的推荐，由派单员人工派单。"),
        )
    return replace(
        base,
        outcome=Outcome.AUTO_DISPATCHED if mode == "auto" else Outcome.PRESELECTED,
        lead_department_id=best.department_id,
        assisting_department_ids=best.assisting_department_ids,
        confidence=best.confidence,
        note=note,
    )
