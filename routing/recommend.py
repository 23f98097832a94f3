"""Search-based routing: which departments should handle a request, how sure we are, and why.

Three sources of evidence, each a distribution over departments, are mixed with fixed weights
(`ROUTING_WEIGHTS`):

- similar tickets: tickets handled to the end (replied, in callback or closed) that search finds for the
  request's text vote, weighted by their search score relative to the best hit, for their final lead
  department (not for departments that merely saw them); a department that returned any of them is pushed
  down (`ROUTING_RETURN_PENALTY`): returns are how departments say "not ours";
- the responsibility lists (权责清单): the request's words against each item's words, rarer words counting
  more; the best item of each department is its match;
- the classifier (`routing.classifier`), when a model has been trained.

The mix is divided by the total weight of the sources that could answer, so the confidence of the top
department is the share of all available evidence pointing at it: high only when the sources agree, lower
when a source has nothing to say (no similar ticket found, no model). Then jurisdiction: a local department
(district, street, community) that does not cover the request's region hands its score to the department of
the same kind that does (the street office of the address, else the district government): street-level
matters go where the address is.

Department, region and responsibility data are cached per process for `ROUTING_CACHE_SECONDS`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from knowledge_base import search
from knowledge_base.search import text as search_text
from ticketing.models import Department, DepartmentKind, Region, ResponsibilityItem, Ticket, TicketEvent
from ticketing.workflow import Status, Transition

from . import classifier
from .types import Reason, Recommendation, RoutingInput

logger = logging.getLogger(__name__)

HANDLED_STATUSES = (Status.REPLIED, Status.CALLBACK, Status.CLOSED)
LOCAL_KINDS = frozenset(
    {
        DepartmentKind.DISTRICT_GOVERNMENT,
        DepartmentKind.DISTRICT_BUREAU,
        DepartmentKind.STREET_OFFICE,
        DepartmentKind.COMMUNITY,
    }
)
# Where a local matter goes when no department of the winner's own kind covers the address.
JURISDICTION_FALLBACK = (DepartmentKind.STREET_OFFICE, DepartmentKind.DISTRICT_GOVERNMENT)
RESPONSIBILITY_MIN_MATCH = 0.25
SHOWN_TICKETS = 3


def returns_given_up() -> Q:
    """Ticket events by which a department gave a ticket up: a return the centre approved, or a reassignment
    straight from the return review. A refused return is not one: the centre held the matter to be theirs."""
    return Q(kind=Transition.APPROVE_RETURN) | Q(kind=Transition.REASSIGN, from_status=Status.RETURN_PENDING)


def returning_department(kind: str, data: object) -> int | None:
    if not isinstance(data, dict):
        return None
    value = data.get("from_department") if kind == Transition.REASSIGN else data.get("department")
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class DepartmentInfo:
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    jurisdiction: frozenset[int]


@dataclass(frozen=True)
class ResponsibilityEntry:
    id: int
    department_id: int
    title: str
    words: frozenset[str]


@dataclass(frozen=True)
class Directory:
    """What routing needs of the organisation, read in a few queries and kept for a while."""

    departments: dict[int, DepartmentInfo]
    by_code: dict[str, int]
    region_parents: dict[int, int | None]
    region_names: dict[int, str]
    items: tuple[ResponsibilityEntry, ...]
    items_by_word: dict[str, tuple[int, ...]]
    idf: dict[str, float]
    loaded_at: float

    def region_chain(self, region_id: int) -> list[int]:
        """The region and its ancestors, nearest first."""
        chain: list[int] = []
        current: int | None = region_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.region_parents.get(current)
        return chain


_lock = threading.Lock()
_directory: Directory | None = None


def clear_caches() -> None:
    """Forget the cached organisation (after an import, in tests and evaluations)."""
    global _directory
    with _lock:
        _directory = None


def _load_directory() -> Directory:
    departments: dict[int, DepartmentInfo] = {}
    jurisdiction: dict[int, set[int]] = defaultdict(set)
    for department_id, region_id in Department.jurisdiction.through.objects.values_list("department_id", "region_id"):
        jurisdiction[department_id].add(region_id)
    for row in Department.objects.filter(is_active=True, accepts_dispatch=True).values(
        "id", "code", "name", "kind", "parent_id"
    ):
        departments[row["id"]] = DepartmentInfo(
            id=row["id"],
            code=row["code"],
            name=row["name"],
            kind=row["kind"],
            parent_id=row["parent_id"],
            jurisdiction=frozenset(jurisdiction.get(row["id"], ())),
        )
    region_parents: dict[int, int | None] = {}
    region_names: dict[int, str] = {}
    for region_id, parent_id, name in Region.objects.values_list("id", "parent_id", "name"):
        region_parents[region_id] = parent_id
        region_names[region_id] = name
    items: list[ResponsibilityEntry] = []
    for item_id, department_id, title, description in ResponsibilityItem.objects.filter(
        department_id__in=list(departments)
    ).values_list("id", "department_id", "title", "description"):
        words = frozenset(word for word in search_text.index_words(f"{title} {description}") if len(word) > 1)
        if words:
            items.append(ResponsibilityEntry(id=item_id, department_id=department_id, title=title, words=words))
    by_word: dict[str, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        for word in item.words:
            by_word[word].append(position)
    # A word in every item tells items apart no better than one in none.
    idf = {word: math.log(1 + len(items) / len(positions)) for word, positions in by_word.items()}
    return Directory(
        departments=departments,
        by_code={info.code: info.id for info in departments.values()},
        region_parents=region_parents,
        region_names=region_names,
        items=tuple(items),
        items_by_word={word: tuple(positions) for word, positions in by_word.items()},
        idf=idf,
        loaded_at=time.monotonic(),
    )


def directory() -> Directory:
    global _directory
    cached = _directory
    if cached is not None and time.monotonic() - cached.loaded_at < settings.ROUTING_CACHE_SECONDS:
        return cached
    with _lock:
        if _directory is None or time.monotonic() - _directory.loaded_at >= settings.ROUTING_CACHE_SECONDS:
            _directory = _load_directory()
        return _directory


# ---------------------------------------------------------------------------------------------------------
# the sources


@dataclass
class Evidence:
    """One source's distribution over departments, the reasons it gives, and whether it could answer."""

    available: bool
    shares: dict[int, float]
    reasons: dict[int, list[Reason]]
    penalties: dict[int, float]


def _empty(available: bool) -> Evidence:
    return Evidence(available=available, shares={}, reasons={}, penalties={})


def _similar_tickets(inp: RoutingInput, directory: Directory, *, exclude_ticket_id: int | None) -> Evidence:
    filters = search.SearchFilters(statuses=tuple(HANDLED_STATUSES))
    try:
        hits = search.similar_tickets(
            text=inp.text, exclude_ticket_id=exclude_ticket_id, filters=filters, limit=settings.ROUTING_SIMILAR_LIMIT
        )
    except search.SearchUnavailable:
        logger.warning("routing: search unavailable, recommending without similar tickets")
        return _empty(False)
    if not hits:
        return _empty(True)
    ids = [hit.doc_id for hit in hits]
    tickets = {
        ticket_id: (number, department_id)
        for ticket_id, number, department_id in Ticket.objects.filter(id__in=ids).values_list(
            "id", "number", "lead_department_id"
        )
    }
    returned: dict[int, set[int]] = defaultdict(set)
    for ticket_id, kind, data in (
        TicketEvent.objects.filter(returns_given_up())
        .filter(ticket_id__in=ids)
        .values_list("ticket_id", "kind", "data")
    ):
        department_id = returning_department(kind, data)
        if department_id is not None:
            returned[ticket_id].add(department_id)
    best = max(hit.score for hit in hits)
    votes: dict[int, float] = defaultdict(float)
    voters: dict[int, list[str]] = defaultdict(list)
    returns: dict[int, float] = defaultdict(float)
    returners: dict[int, list[str]] = defaultdict(list)
    total = 0.0
    for hit in hits:
        found = tickets.get(hit.doc_id)
        if found is None:
            continue  # deleted since it was indexed
        number, department_id = found
        weight = hit.score / best if best > 0 else 1.0
        total += weight
        if department_id in directory.departments:
            votes[department_id] += weight
            voters[department_id].append(number)
        for returner in returned.get(hit.doc_id, ()):
            if returner != department_id:
                returns[returner] += weight
                returners[returner].append(number)
    if total <= 0:
        return _empty(True)
    shares = {department_id: vote / total for department_id, vote in votes.items()}
    reasons: dict[int, list[Reason]] = defaultdict(list)
    for department_id, numbers in voters.items():
        shown = "、".join(numbers[:SHOWN_TICKETS]) + ("等" if len(numbers) > SHOWN_TICKETS else "")
        reasons[department_id].append(
            Reason(
                kind="similar_tickets",
                text=f"相似的已办工单 {shown} 共 {len(numbers)} 件由该单位办理（加权占 {shares[department_id]:.0%}）",
                ref=",".join(numbers),
                weight=round(shares[department_id], 4),
            )
        )
    penalties: dict[int, float] = {}
    for department_id, weight in returns.items():
        share = weight / total
        penalties[department_id] = share
        numbers = returners[department_id]
        shown = "、".join(numbers[:SHOWN_TICKETS]) + ("等" if len(numbers) > SHOWN_TICKETS else "")
        reasons[department_id].append(
            Reason(
                kind="returns",
                text=f"该单位曾退回相似工单 {shown}，排序降低",
                ref=",".join(numbers),
                weight=-round(share, 4),
            )
        )
    return Evidence(available=True, shares=shares, reasons=dict(reasons), penalties=penalties)


def _responsibilities(inp: RoutingInput, directory: Directory) -> Evidence:
    if not directory.items:
        return _empty(False)
    words = {word for word in search_text.index_words(inp.text) if len(word) > 1}
    matched: dict[int, set[str]] = defaultdict(set)
    for word in words:
        for position in directory.items_by_word.get(word, ()):
            matched[position].add(word)
    best: dict[int, tuple[float, ResponsibilityEntry, tuple[str, ...]]] = {}
    for position, common in matched.items():
        item = directory.items[position]
        score = sum(directory.idf[w] for w in common) / sum(directory.idf[w] for w in item.words)
        # One shared word is a coincidence more often than a match.
        if len(common) < 2 or score < RESPONSIBILITY_MIN_MATCH:
            continue
        if item.department_id not in best or score > best[item.department_id][0]:
            ordered = tuple(sorted(common, key=lambda w: -directory.idf[w]))
            best[item.department_id] = (score, item, ordered)
    if not best:
        return _empty(True)
    total = sum(score for score, _, _ in best.values())
    strength = max(score for score, _, _ in best.values())
    shares = {department_id: strength * score / total for department_id, (score, _, _) in best.items()}
    reasons = {
        department_id: [
            Reason(
                kind="responsibility",
                text=f"权责清单事项「{item.title}」与诉求相符（{'、'.join(common[:4])}）",
                ref=f"responsibility:{item.id}",
                weight=round(shares[department_id], 4),
            )
        ]
        for department_id, (_, item, common) in best.items()
    }
    return Evidence(available=True, shares=shares, reasons=reasons, penalties={})


def _classifier(inp: RoutingInput, directory: Directory) -> Evidence:
    model = classifier.current()
    if model is None:
        return _empty(False)
    shares: dict[int, float] = {}
    reasons: dict[int, list[Reason]] = {}
    for prediction in model.predict(inp.text, top=3):
        department_id = directory.by_code.get(prediction.label)
        if department_id is None:
            continue  # a department deactivated since training
        shares[department_id] = prediction.probability
        terms = f"（{'、'.join(prediction.terms)}）" if prediction.terms else ""
        reasons[department_id] = [
            Reason(
                kind="classifier",
                text=f"文本分类模型判断由该单位办理的概率为 {prediction.probability:.0%}{terms}",
                ref=",".join(prediction.terms),
                weight=round(prediction.probability, 4),
            )
        ]
    return Evidence(available=True, shares=shares, reasons=reasons, penalties={})


# ---------------------------------------------------------------------------------------------------------
# jurisdiction


def _covering(directory: Directory, region_id: int, kind: str) -> DepartmentInfo | None:
    """The department of `kind` whose jurisdiction holds the region, nearest level first."""
    for region in directory.region_chain(region_id):
        for info in directory.departments.values():
            if info.kind == kind and region in info.jurisdiction:
                return info
    return None


def _covers(directory: Directory, info: DepartmentInfo, region_id: int) -> bool:
    return any(region in info.jurisdiction for region in directory.region_chain(region_id))


def _apply_jurisdiction(
    scores: dict[int, float], reasons: dict[int, list[Reason]], directory: Directory, region_id: int
) -> None:
    """Local departments that do not cover the region hand their score to the one that does."""
    if region_id not in directory.region_parents:
        return
    region_name = directory.region_names.get(region_id, "")
    for department_id in sorted(scores, key=lambda d: -scores[d]):
        info = directory.departments[department_id]
        if info.kind not in LOCAL_KINDS or _covers(directory, info, region_id):
            continue
        target = None
        for kind in (info.kind, *JURISDICTION_FALLBACK):
            target = _covering(directory, region_id, kind)
            if target is not None:
                break
        if target is None:
            continue
        moved = scores.pop(department_id)
        scores[target.id] = scores.get(target.id, 0.0) + moved
        reasons.setdefault(target.id, []).append(
            Reason(
                kind="jurisdiction",
                text=f"诉求地址所在的「{region_name}」属该单位管辖（属地管理，代替「{info.name}」）",
                ref=f"region:{region_id}",
                weight=round(moved, 4),
            )
        )
        reasons.pop(department_id, None)


# ---------------------------------------------------------------------------------------------------------


def _weights() -> dict[str, float]:
    return {name: float(value) for name, value in settings.ROUTING_WEIGHTS.items()}


def recommend(inp: RoutingInput, *, limit: int = 5, exclude_ticket_id: int | None = None) -> list[Recommendation]:
    """Departments for `inp`, best first, each with a confidence in [0, 1] and its reasons (in Chinese).

    `exclude_ticket_id` (default: the input's own ticket) is never used as evidence. An empty list means no
    source had anything to say: the request goes to manual dispatch."""
    if not inp.text:
        return []
    found = directory()
    weights = _weights()
    exclude = exclude_ticket_id if exclude_ticket_id is not None else inp.ticket_id
    sources = {
        "similar_tickets": _similar_tickets(inp, found, exclude_ticket_id=exclude),
        "classifier": _classifier(inp, found),
        "responsibility": _responsibilities(inp, found),
    }
    available = sum(weights.get(name, 0.0) for name, evidence in sources.items() if evidence.available)
    if available <= 0:
        return []
    scores: dict[int, float] = defaultdict(float)
    reasons: dict[int, list[Reason]] = defaultdict(list)
    for name, evidence in sources.items():
        weight = weights.get(name, 0.0) / available
        for department_id, share in evidence.shares.items():
            scores[department_id] += weight * share
        for department_id, penalty in evidence.penalties.items():
            if department_id in scores:
                scores[department_id] -= weight * penalty * float(settings.ROUTING_RETURN_PENALTY)
        for department_id, given in evidence.reasons.items():
            reasons[department_id].extend(given)
    kept = {department_id: max(0.0, score) for department_id, score in scores.items() if score > 0}
    if inp.region_id is not None:
        _apply_jurisdiction(kept, reasons, found, inp.region_id)
    ranked = sorted(kept.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        Recommendation(
            department_id=department_id,
            confidence=round(min(1.0, score), 4),
            reasons=tuple(sorted(reasons.get(department_id, ()), key=lambda r: -abs(r.weight))),
        )
        for department_id, score in ranked
    ]


def department_codes(department_ids: Iterable[int]) -> dict[int, str]:
    """Codes of the given departments, from the cache (evaluation reports, the classifier's labels)."""
    found = directory()
    return {d: found.departments[d].code for d in department_ids if d in found.departments}
