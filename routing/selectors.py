"""Reads: routing previews (no writes, hit counts untouched), duplicates of a request, decisions and alerts.

Ticket visibility is ticketing's (`ticket_visible_to`); routing adds only that its data is for the hotline
centre (agents, dispatchers, supervisors, administrators), not for departments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from hotline import clock
from hotline.errors import NotFound, NotPermitted
from knowledge_base import search
from knowledge_base.search import text as search_text
from ticketing.models import Role, Ticket, User
from ticketing.selectors import ticket_visible_to
from ticketing.workflow import Status

from . import policy, rules
from .models import ProactiveAlert, RoutingDecision
from .policy import RoutingResult
from .recommend import returning_department, returns_given_up
from .types import Recommendation, RoutingInput

logger = logging.getLogger(__name__)

CENTRE_ROLES = frozenset({Role.AGENT, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMINISTRATOR})
DISPATCH_ROLES = frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMINISTRATOR})
SUPERVISION_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
# Tickets still being worked on: a new request about the same matter should join them.
OPEN_STATUSES = (
    Status.PENDING_DISPATCH,
    Status.DISPATCHED,
    Status.ACCEPTED,
    Status.SUSPENDED,
    Status.REPLIED,
    Status.CALLBACK,
)


def has_role(user: User, roles: Collection[str]) -> bool:
    return bool(user.is_authenticated and user.is_active and (user.is_superuser or user.role in roles))


def require_role(user: User, roles: Collection[str], message: str) -> None:
    if not has_role(user, roles):
        raise NotPermitted(message)


# ---------------------------------------------------------------------------------------------------------
# routing a request


def routing_input(ticket: Ticket) -> RoutingInput:
    return RoutingInput(
        title=ticket.title,
        content=ticket.content,
        appeal_type=ticket.appeal_type,
        category_id=ticket.category_id,
        region_id=ticket.region_id,
        location_text=ticket.location_text,
        channel=ticket.channel,
        hotline_line=ticket.hotline_line,
        caller_phone=ticket.caller_phone,
        received_at=ticket.created_at,
        ticket_id=ticket.id,
    )


def recommender() -> Callable[..., list[Recommendation]]:
    """The recommender named by ROUTING_RECOMMENDER (a dotted path; tests name a fake)."""
    function: Callable[..., list[Recommendation]] = import_string(settings.ROUTING_RECOMMENDER)
    return function


def recommendations_for(inp: RoutingInput, *, limit: int = 5) -> tuple[list[Recommendation], str]:
    """The recommender's list, and a note when it failed. A failing recommender (search unreachable, a bug)
    never stops routing: rules, emergencies and legal routes still work, and the ticket goes to the queue."""
    try:
        found = list(recommender()(inp, limit=limit))
    except search.SearchUnavailable:
        logger.warning("routing: search unavailable, routing by rules only")
        return [], "检索服务不可用，仅按规则派单。"
    except Exception:
        logger.exception("routing: the recommender failed; routing by rules only")
        return [], "推荐服务出错，仅按规则派单。"
    return sorted(found, key=lambda r: r.confidence, reverse=True), ""


def route(
    inp: RoutingInput, *, now: datetime | None = None, excluded: Collection[int] = (), limit: int = 5
) -> RoutingResult:
    """What routing would do with `inp`: rules, then the recommender, then the policy. Writes nothing (rule
    hit counts included): used for dry runs, calls in progress, and by `services.route_ticket`."""
    now = now or clock.now()
    matches = rules.evaluate(rules.load_rules(), inp, now)
    found, note = recommendations_for(inp, limit=limit)
    result = policy.decide(
        matches=matches,
        recommendations=found,
        mode=settings.ROUTING_MODE,
        threshold=settings.ROUTING_AUTO_DISPATCH_CONFIDENCE,
        excluded=excluded,
    )
    if note:
        result = replace(result, note="；".join(n for n in (result.note, note) if n))
    return result


def departments_that_returned(*, ticket_id: int) -> set[int]:
    from ticketing.models import TicketEvent

    rows = TicketEvent.objects.filter(returns_given_up()).filter(ticket_id=ticket_id).values_list("kind", "data")
    return {d for kind, data in rows if (d := returning_department(kind, data)) is not None}


# ---------------------------------------------------------------------------------------------------------
# duplicates


@dataclass(frozen=True, slots=True)
class Duplicate:
    ticket_id: int
    number: str
    title: str
    status: str
    created_at: datetime
    # "same_caller" or "same_place"
    kind: str
    reason: str
    score: float


def duplicates_for(inp: RoutingInput, *, user: User, now: datetime | None = None, limit: int = 10) -> list[Duplicate]:
    """Open tickets that `inp` may repeat, among those `user` may see: the same caller's open tickets, and
    open tickets of the same region and category from the last ROUTING_DUPLICATE_WINDOW_DAYS days whose
    text search finds similar. Offered for merging; nothing is merged here."""
    now = now or clock.now()
    visible = ticket_visible_to(user=user).filter(status__in=OPEN_STATUSES)
    if inp.ticket_id is not None:
        visible = visible.exclude(pk=inp.ticket_id)
    found: dict[int, Duplicate] = {}
    phone = inp.caller_phone.strip()
    if phone:
        for ticket in visible.filter(caller_phone=phone).order_by("-created_at")[:limit]:
            found[ticket.id] = Duplicate(
                ticket_id=ticket.id,
                number=ticket.number,
                title=ticket.title,
                status=ticket.status,
                created_at=ticket.created_at,
                kind="same_caller",
                reason="同一来电人尚有未办结的工单",
                score=1.0,
            )
    if inp.region_id is not None and inp.category_id is not None:
        since = now - timedelta(days=settings.ROUTING_DUPLICATE_WINDOW_DAYS)
        nearby = visible.filter(region_id=inp.region_id, category_id=inp.category_id, created_at__gte=since)
        words = text_words(inp.text)
        scored = []
        for ticket in nearby.order_by("-created_at")[:DUPLICATE_CANDIDATES]:
            if ticket.id in found:
                continue
            score = similarity(words, text_words(f"{ticket.title}\n{ticket.content}"))
            if score >= settings.ROUTING_DUPLICATE_MIN_SIMILARITY:
                scored.append((score, ticket))
        for score, ticket in sorted(scored, key=lambda pair: -pair[0]):
            found[ticket.id] = Duplicate(
                ticket_id=ticket.id,
                number=ticket.number,
                title=ticket.title,
                status=ticket.status,
                created_at=ticket.created_at,
                kind="same_place",
                reason=(
                    f"同一区域、同一分类，{settings.ROUTING_DUPLICATE_WINDOW_DAYS} 天内的相似诉求"
                    f"（{ticket.created_at.astimezone(rules.TZ):%m-%d %H:%M}，相似度 {score:.0%}）"
                ),
                score=round(score, 4),
            )
    return list(found.values())[:limit]


# The newest open tickets of one region and category compared with a request; more would be a cluster,
# which the proactive alert reports.
DUPLICATE_CANDIDATES = 200


def text_words(text: str) -> frozenset[str]:
    """The words of a text as search indexes them (jieba, synonyms' spelling kept), single characters left
    out: they carry little meaning on their own."""
    return frozenset(word for word in search_text.index_words(text) if len(word) > 1)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Dice coefficient of two word sets. Compared on title and content only: the search index also holds
    the region and category names, which every candidate here shares, so a search hit alone says little; and
    the request's own words need no index, so a ticket taken a minute ago is found before `search_sync`."""
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


# ---------------------------------------------------------------------------------------------------------
# decisions and alerts


def ticket_for_routing(*, user: User, ticket_id: int) -> Ticket:
    require_role(user, CENTRE_ROLES, "只有热线中心人员可以查看派单建议。")
    ticket = ticket_visible_to(user=user).filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound("工单不存在，或您无权查看。")
    return ticket


def decisions_of(*, user: User, ticket_id: int) -> QuerySet[RoutingDecision]:
    ticket_for_routing(user=user, ticket_id=ticket_id)
    return RoutingDecision.objects.filter(ticket_id=ticket_id).select_related("lead_department", "rule", "actor")


def alert_list(*, user: User, open_only: bool = False) -> QuerySet[ProactiveAlert]:
    require_role(user, CENTRE_ROLES - {Role.AGENT}, "只有派单、督办人员可以查看未诉先办预警。")
    alerts = ProactiveAlert.objects.select_related("region", "category", "category__parent", "acknowledged_by")
    if open_only:
        alerts = alerts.filter(acknowledged_at__isnull=True)
    return alerts
