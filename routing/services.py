"""Writes: routing a ticket waiting for dispatch, suggestions for a call in progress, proactive alerts, rule
switches, and following ticket events (`route_pending`).

Dispatch happens only through `ticketing.services` (as the acting dispatcher, or the system dispatcher
named by ROUTING_ACTOR); ticketing knows nothing of routing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from hotline import clock
from hotline.errors import ApplicationError, Conflict, InvalidTransition, NotFound
from hotline.realtime import events as rt
from hotline.realtime import groups
from hotline.realtime.broadcast import broadcast_on_commit
from ticketing import services as ticketing
from ticketing.models import Department, Ticket, User
from ticketing.selectors import ticket_events_missed, ticket_visible_to
from ticketing.workflow import Status

from . import selectors
from .models import Outcome, ProactiveAlert, RoutingCursor, RoutingDecision, Rule
from .policy import RoutingResult
from .rules import URGENCY_RANK
from .selectors import DISPATCH_ROLES, SUPERVISION_ROLES, Duplicate, require_role
from .types import RoutingInput

logger = logging.getLogger(__name__)


def system_actor() -> User:
    """The dispatcher account automatic routing acts as (ROUTING_ACTOR, a username)."""
    username = settings.ROUTING_ACTOR
    user = User.objects.filter(username=username, is_active=True).first() if username else None
    if user is None or not selectors.has_role(user, DISPATCH_ROLES):
        raise ApplicationError(
            "未配置自动派单账号：请把 ROUTING_ACTOR 设为一个在用的派单员用户名。", code="routing_actor_missing"
        )
    return user


# ---------------------------------------------------------------------------------------------------------
# events


def _department_names(ids: Iterable[int]) -> dict[int, str]:
    return dict(Department.objects.filter(id__in=set(ids)).values_list("id", "name"))


def suggestion_event(
    result: RoutingResult,
    *,
    ticket_id: int | None,
    call_id: str | None = None,
    duplicates: Iterable[Duplicate] = (),
) -> rt.RoutingSuggestion:
    """The agent's and dispatcher's view of a routing result: the chosen department first, then the rest
    of the recommendations, each with its reasons."""
    ranked: list[tuple[int, float, str]] = []
    if result.lead_department_id is not None:
        ranked.append((result.lead_department_id, result.confidence or 0.0, result.reason_text))
    for recommendation in result.recommendations:
        if recommendation.department_id != result.lead_department_id:
            ranked.append((recommendation.department_id, recommendation.confidence, recommendation.reason_text))
    names = _department_names(d for d, _, _ in ranked)
    return rt.RoutingSuggestion(
        call_id=call_id,
        ticket_id=ticket_id,
        departments=[
            rt.Suggestion(id=d, title=names.get(d, str(d)), score=round(score, 4), reason=reason)
            for d, score, reason in ranked
        ],
        outcome=str(result.outcome),
        external_target=result.external_target,
        script=result.script,
        rules=[m.rule.name for m in result.matches],
        duplicates=[
            rt.Suggestion(id=d.ticket_id, title=f"{d.number} {d.title}", score=d.score, reason=d.reason)
            for d in duplicates
        ],
    )


def suggestions_push(
    *, inp: RoutingInput, agent: User, call_id: str | None = None, result: RoutingResult | None = None
) -> RoutingResult:
    """Routing for a call in progress, pushed to the agent's screen (not stored, no hit counted): the
    department, an emergency or legal route with what to tell the caller, and open tickets it may repeat.
    `result` is a routing the caller already computed for the same input (to decide whether to push)."""
    result = result or selectors.route(inp)
    duplicates = selectors.duplicates_for(inp, user=agent)
    event = suggestion_event(result, ticket_id=inp.ticket_id, call_id=call_id, duplicates=duplicates)
    broadcast_on_commit(event, groups.agent(agent.id))
    return result


# ---------------------------------------------------------------------------------------------------------
# routing a ticket


def _recommendations_json(result: RoutingResult, names: dict[int, str]) -> list[dict[str, object]]:
    return [
        {
            "department_id": r.department_id,
            "department_name": names.get(r.department_id, ""),
            "confidence": round(r.confidence, 4),
            "assisting_department_ids": list(r.assisting_department_ids),
            "reasons": [{"kind": x.kind, "text": x.text, "ref": x.ref, "weight": x.weight} for x in r.reasons],
        }
        for r in result.recommendations
    ]


def _count_hits(result: RoutingResult, now: datetime) -> None:
    ids = [m.rule.id for m in result.matches]
    if ids:
        Rule.objects.filter(pk__in=ids).update(hit_count=F("hit_count") + 1, last_hit_at=now)


def _raise_urgency(ticket: Ticket, result: RoutingResult, actor: User) -> str:
    """A rule may raise the ticket's urgency (before dispatch, so the deadlines follow it), never lower it."""
    if not result.urgency or URGENCY_RANK.get(result.urgency, 0) <= URGENCY_RANK.get(ticket.urgency, 0):
        return ""
    ticketing.ticket_update(ticket_id=ticket.id, actor=actor, changes={"urgency": result.urgency})
    return result.urgency


def _dispatch(ticket: Ticket, result: RoutingResult, actor: User) -> RoutingResult:
    assert result.lead_department_id is not None
    note = "智能派单：" + (result.reason_text or "按规则或推荐派单")
    try:
        # A savepoint: a refused dispatch (department stopped taking tickets) leaves the ticket as it was.
        with transaction.atomic():
            ticketing.ticket_dispatch(
                ticket_id=ticket.id,
                actor=actor,
                lead_department_id=result.lead_department_id,
                assisting_department_ids=result.assisting_department_ids,
                note=note[:500],
            )
    except ApplicationError as error:
        logger.warning("routing: automatic dispatch of ticket %s refused: %s", ticket.number, error.code)
        return replace(
            result,
            outcome=Outcome.PRESELECTED,
            note="；".join(n for n in (result.note, f"自动派单未成功（{error.message}），请派单员确认。") if n),
        )
    return result


@transaction.atomic
def route_ticket(*, ticket_id: int, actor: User | None = None) -> RoutingDecision:
    """Route a ticket waiting for dispatch: rules, then the recommender, then the policy; dispatch (auto),
    keep the choice for the dispatcher (preselect), or leave it in the queue (manual). Emergencies and legal
    routes are flagged with what to tell the caller; the transfer is the agent's. Records the decision,
    counts rule hits, tells the screens, and checks for a proactive alert."""
    started = time.monotonic()
    actor = actor or system_actor()
    require_role(actor, DISPATCH_ROLES, "只有派单员、督办人员和管理员可以派单。")
    ticket = ticket_visible_to(user=actor).select_for_update().filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound("工单不存在，或您无权查看。")
    if ticket.status != Status.PENDING_DISPATCH:
        raise InvalidTransition(
            f"工单当前状态为「{Status(ticket.status).label}」，只有待派单的工单可以智能派单。",
            code="not_pending_dispatch",
            extra={"status": ticket.status},
        )
    now = clock.now()
    inp = selectors.routing_input(ticket)
    result = selectors.route(inp, now=now, excluded=selectors.departments_that_returned(ticket_id=ticket.id))
    _count_hits(result, now)
    raised = _raise_urgency(ticket, result, actor)
    if result.outcome == Outcome.AUTO_DISPATCHED:
        result = _dispatch(ticket, result, actor)
    names = _department_names([r.department_id for r in result.recommendations])
    decision = RoutingDecision.objects.create(
        ticket=ticket,
        outcome=result.outcome,
        mode=result.mode,
        lead_department_id=result.lead_department_id,
        assisting_department_ids=list(result.assisting_department_ids),
        confidence=result.confidence,
        rule_id=result.rule.rule.id if result.rule else None,
        rule_name=result.rule.rule.name if result.rule else "",
        matches=[m.as_json() for m in result.matches],
        recommendations=_recommendations_json(result, names),
        urgency=raised,
        external_target=result.external_target,
        script=result.script,
        note=result.note[:500],
        actor=actor,
        decided_at=now,
        latency_ms=int((time.monotonic() - started) * 1000),
    )
    event = suggestion_event(result, ticket_id=ticket.id)
    audience = [groups.ticket(ticket.id), groups.supervisors()]
    if ticket.created_by_id:
        audience.append(groups.agent(ticket.created_by_id))
    broadcast_on_commit(event, *audience)
    logger.info("routing: ticket %s %s in %d ms", ticket.number, decision.outcome, decision.latency_ms)
    clusters_check(ticket=ticket, now=now)
    return decision


# ---------------------------------------------------------------------------------------------------------
# proactive alerts (未诉先办)


CLUSTER_EXCLUDED = (Status.DRAFT, Status.CANCELLED)


def clusters_check(*, ticket: Ticket, now: datetime | None = None) -> ProactiveAlert | None:
    """Raise a proactive alert when ROUTING_CLUSTER_MIN_TICKETS tickets of `ticket`'s region and category
    came in within ROUTING_CLUSTER_DAYS days (3 in 7 by default). One open alert per place and category:
    while it is open, new tickets join it silently; after it is acknowledged, a new alert needs as many
    new tickets again. Returns the alert raised now, if any."""
    if ticket.region_id is None or ticket.category_id is None:
        return None
    now = now or clock.now()
    days = settings.ROUTING_CLUSTER_DAYS
    threshold = settings.ROUTING_CLUSTER_MIN_TICKETS
    with transaction.atomic():
        place = ProactiveAlert.objects.filter(region_id=ticket.region_id, category_id=ticket.category_id)
        latest = place.select_for_update().order_by("-raised_at", "-id").first()
        if latest is not None and latest.acknowledged_at is None:
            if ticket.id not in latest.ticket_ids:
                latest.ticket_ids = [*latest.ticket_ids, ticket.id]
                latest.save(update_fields=["ticket_ids"])
            return None
        since = now - timedelta(days=days)
        if latest is not None and latest.raised_at > since:
            since = latest.raised_at
        ids = list(
            Ticket.objects.filter(region_id=ticket.region_id, category_id=ticket.category_id, created_at__gte=since)
            .exclude(status__in=CLUSTER_EXCLUDED)
            .order_by("created_at", "id")
            .values_list("id", flat=True)
        )
        if len(ids) < threshold:
            return None
        try:
            with transaction.atomic():
                alert = ProactiveAlert.objects.create(
                    region_id=ticket.region_id,
                    category_id=ticket.category_id,
                    ticket_ids=ids,
                    window_days=days,
                    threshold=threshold,
                    window_start=since,
                    raised_at=now,
                )
        except IntegrityError:
            return None  # another process raised it first; this ticket joins it on its next check
    alert = ProactiveAlert.objects.select_related("region", "category", "category__parent").get(pk=alert.pk)
    broadcast_on_commit(alert_event(alert), groups.supervisors())
    logger.warning("routing: proactive alert %s raised (%d tickets)", alert.pk, len(ids))
    return alert


def alert_event(alert: ProactiveAlert) -> rt.ProactiveAlertRaised:
    count = len(alert.ticket_ids)
    return rt.ProactiveAlertRaised(
        alert_id=alert.pk,
        region_id=alert.region_id,
        region_name=alert.region.name,
        category_id=alert.category_id,
        category_name=str(alert.category),
        ticket_ids=list(alert.ticket_ids),
        count=count,
        window_days=alert.window_days,
        text=(
            f"{alert.region.name}「{alert.category}」{alert.window_days} 天内已有 {count} 件诉求，"
            "请提前处置（未诉先办）。"
        ),
        raised_at=alert.raised_at,
    )


@transaction.atomic
def alert_acknowledge(*, alert_id: int, actor: User, note: str = "") -> ProactiveAlert:
    require_role(actor, SUPERVISION_ROLES | DISPATCH_ROLES, "只有派单、督办人员可以确认未诉先办预警。")
    alert = ProactiveAlert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("预警不存在。")
    if alert.acknowledged_at is not None:
        raise Conflict("该预警已确认。", code="already_acknowledged")
    alert.acknowledged_by = actor
    alert.acknowledged_at = clock.now()
    alert.note = note.strip()[:500]
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "note"])
    return alert


# ---------------------------------------------------------------------------------------------------------
# rules


@transaction.atomic
def rule_create(
    *,
    fields: dict[str, Any],
    category_ids: Iterable[int] = (),
    region_ids: Iterable[int] = (),
    assisting_department_ids: Iterable[int] = (),
) -> Rule:
    """A rule from code (the demo seed, imports), validated like the admin form: bad patterns, incomplete
    time windows, an emergency together with a legal route are refused (ValidationError)."""
    rule = Rule(**fields)
    rule.full_clean()
    rule.save()
    rule.categories.set(list(category_ids))
    rule.regions.set(list(region_ids))
    rule.assisting_departments.set(list(assisting_department_ids))
    return rule


@transaction.atomic
def rule_set_enabled(*, rule_ids: Iterable[int], enabled: bool, actor: User) -> int:
    require_role(actor, {"administrator"}, "只有系统管理员可以启用或停用派单规则。")
    return Rule.objects.filter(pk__in=list(rule_ids)).update(enabled=enabled, updated_at=clock.now())


# ---------------------------------------------------------------------------------------------------------
# following ticket events


CURSOR = "pending"
# Ticket events after which a ticket waits for dispatch.
ENTERS_QUEUE = ("created", "submit", "approve_return")


@dataclass
class PendingReport:
    routed: int = 0
    skipped: int = 0
    failed: int = 0
    outcomes: dict[str, int] | None = None


def _locked_cursor() -> RoutingCursor:
    try:
        with transaction.atomic():
            RoutingCursor.objects.get_or_create(name=CURSOR, defaults={"updated_at": clock.now()})
    except IntegrityError:
        pass  # another process created it first
    return RoutingCursor.objects.select_for_update().get(name=CURSOR)


def route_pending(*, actor: User | None = None, limit: int = 200) -> PendingReport:
    """Route the tickets that entered the dispatch queue (created as pending, submitted, returned) since the
    cursor. Each ticket is routed in its own transaction; one that fails is logged and left to the
    dispatcher. The cursor moves only after its batch, so a crash routes a ticket at most once more, and a
    ticket already decided after it entered the queue is skipped."""
    actor = actor or system_actor()
    report = PendingReport(outcomes={})
    grace = timedelta(seconds=settings.SEARCH_TICKET_GRACE_SECONDS)
    while True:
        with transaction.atomic():
            cursor = _locked_cursor()
            missed = ticket_events_missed(
                scope=Q(kind__in=ENTERS_QUEUE, to_status=Status.PENDING_DISPATCH),
                after=cursor.last_event_id,
                grace=grace,
                limit=limit,
            )
            recent = {int(k): v for k, v in (cursor.recent or {}).items()}
            fresh = [e for e in missed.events if e.pk not in recent]
            entered: dict[int, datetime] = {}
            for event in fresh:
                entered[event.ticket_id] = max(entered.get(event.ticket_id, event.created_at), event.created_at)
            for ticket_id, at in entered.items():
                _route_one(ticket_id=ticket_id, entered_at=at, actor=actor, report=report)
            for event in fresh:
                recent[event.pk] = event.created_at.isoformat()
            if recent:
                newest = max(datetime.fromisoformat(at) for at in recent.values())
                recent = {
                    k: v
                    for k, v in recent.items()
                    if k <= missed.last_event_id and datetime.fromisoformat(v) >= newest - grace
                }
            cursor.last_event_id = missed.last_event_id
            cursor.recent = {str(k): v for k, v in sorted(recent.items())}
            cursor.updated_at = clock.now()
            cursor.save(update_fields=["last_event_id", "recent", "updated_at"])
        if not missed.truncated:
            return report


def _route_one(*, ticket_id: int, entered_at: datetime, actor: User, report: PendingReport) -> None:
    status = Ticket.objects.filter(pk=ticket_id).values_list("status", flat=True).first()
    already = RoutingDecision.objects.filter(ticket_id=ticket_id, decided_at__gte=entered_at).exists()
    if status != Status.PENDING_DISPATCH or already:
        report.skipped += 1
        return
    try:
        with transaction.atomic():
            decision = route_ticket(ticket_id=ticket_id, actor=actor)
    except Exception:
        logger.exception("routing: could not route ticket %s; it stays in the dispatcher's queue", ticket_id)
        report.failed += 1
        return
    report.routed += 1
    assert report.outcomes is not None
    report.outcomes[decision.outcome] = report.outcomes.get(decision.outcome, 0) + 1
