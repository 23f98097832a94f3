"""The day counts (models.DailyCounts): what each trail event adds to the measures, per local day and department.

The measures are defined on the trail (measures.py); these counts are the same figures summed as the events are
written, so the board reads a month as a few thousand rows instead of a month of events. One function decides what
an event counts (`event_counts`, plus `intake_move` for intake, which follows the ticket's current lead
department): the services apply it to every event in the event's own transaction (`count_event`), `rebuild`
replays the whole trail through it (the migration that introduced the table; a repair), and the benchmark's
generator feeds its simulated trail through it. The tests compare these counts with the measures computed from
the trail on a varied data set.

An event counts on its own day and department (measures' "department of an event"), except two outcomes known
only when a later event ends a stage: an acceptance counts for the department hold it ends (on time or late,
on the day and department of the dispatch, reassignment or reopening that started the hold), and a reopening
takes back "resolved" from the approved reply whose callback it ends. A hold ends with the first acceptance,
return, reassignment or merge after it, which is always the transition out of `dispatched`, so the hold an
acceptance ends is the ticket's latest hold start before it; likewise the callback a reopening ends is the one
the ticket's latest approved reply opened.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.db import connections, transaction
from django.db.models import Count, F
from django.db.models.functions import TruncDate

from .calendar import TZ
from .measures import DAY_COUNTED, HOLD_STARTS, MEASURED_KINDS, RESOLVED_RESULTS
from .models import DailyCounts, Ticket, TicketEvent
from .workflow import Status, Transition

T = Transition
# An event of another kind counts nothing by itself and ends no counted stage.
COUNTED_KINDS = frozenset({*MEASURED_KINDS, T.ACCEPT.value})

Key = tuple[dt.date, int | None]
Deltas = dict[Key, Counter[str]]


@dataclass(frozen=True)
class Step:
    """What the counts need of one trail event."""

    kind: str
    data: Mapping[str, Any]
    at: dt.datetime


def event_department(data: Mapping[str, Any]) -> int | None:
    """As measures._event_department: the department the event names, else the lead department after it."""
    value = data.get("department")
    if value is None:
        value = data.get("lead_department")
    return int(value) if value is not None else None


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(TZ).date()


def _key(step: Step) -> Key:
    return local_day(step.at), event_department(step.data)


def event_counts(step: Step, *, hold: Step | None, approval: Step | None) -> Deltas:
    """What one trail event adds to the day counts. `hold`: for an acceptance, the start of the hold it ends;
    `approval`: for a reopening, the approved reply whose callback it ends (None when the trail has none)."""
    deltas: Deltas = defaultdict(Counter)
    kind, data = step.kind, step.data
    own = deltas[_key(step)] if kind in MEASURED_KINDS else Counter()
    if kind in HOLD_STARTS:
        own["dispatched"] += 1
        if kind == T.REOPEN.value:
            own["dissatisfied"] += 1
            if approval is not None and approval.data.get("result") in RESOLVED_RESULTS:
                deltas[_key(approval)]["resolved"] -= 1
    elif kind == T.ACCEPT.value:
        if hold is not None:
            deltas[_key(hold)]["accepted_late" if data.get("late") is True else "accepted_on_time"] += 1
    elif kind == T.RETURN.value:
        own["returns"] += 1
    elif kind == T.REJECT_RETURN.value:
        own["returns_refused"] += 1
    elif kind == T.REPLY.value:
        own["replied"] += 1
        if data.get("late") is not True:
            own["replied_on_time"] += 1
    elif kind == T.APPROVE_REPLY.value:
        own["replies_approved"] += 1
        if data.get("result") in RESOLVED_RESULTS:
            own["resolved"] += 1
    elif kind == T.CLOSE.value:
        satisfaction = data.get("satisfaction")
        if satisfaction == "satisfied":
            own["satisfied"] += 1
        elif satisfaction == "fairly_satisfied":
            own["fairly_satisfied"] += 1
        else:
            own["callback_unreachable"] += 1
    elif kind == T.INSTANT_REPLY.value:
        own["instant_replies"] += 1
    return deltas


def _lead_before(kind: str, data: Mapping[str, Any], lead_after: int | None) -> int | None:
    # Only these transitions change the lead department, and each names the one before: a ticket waiting for
    # dispatch has none; a reassignment records where it came from; an approved return, whose it was.
    if kind == T.DISPATCH.value:
        return None
    if kind == T.REASSIGN.value:
        return data.get("from_department")
    if kind == T.APPROVE_RETURN.value:
        return data.get("department")
    return lead_after


def intake_move(
    *, kind: str, from_status: str, to_status: str, data: Mapping[str, Any], created_at: dt.datetime, lead: int | None
) -> Deltas:
    """Intake counts a ticket taken in (not a draft) on its creation day for its current lead department (`lead`,
    after the event): leaving draft adds it, a change of lead department moves it."""
    deltas: Deltas = defaultdict(Counter)
    before = _lead_before(kind, data, lead)
    counted_before = from_status not in ("", Status.DRAFT.value)
    counted_after = to_status not in ("", Status.DRAFT.value)
    if (counted_before, before) == (counted_after, lead):
        return deltas
    day = local_day(created_at)
    if counted_before:
        deltas[(day, before)]["intake"] -= 1
    if counted_after:
        deltas[(day, lead)]["intake"] += 1
    return deltas


def merge(into: Deltas, more: Deltas) -> Deltas:
    for key, changes in more.items():
        into.setdefault(key, Counter()).update(changes)
    return into


# ---------------------------------------------------------------------------------------------------------
# as the services write events


def count_event(*, event: TicketEvent, ticket: Ticket) -> None:
    """Add what `event`, just written for `ticket` (saved as the event leaves it), counts. Runs in the
    service's transaction, so the counts commit or roll back with the event."""
    deltas = intake_move(
        kind=event.kind,
        from_status=event.from_status,
        to_status=event.to_status,
        data=event.data,
        created_at=ticket.created_at,
        lead=ticket.lead_department_id,
    )
    if event.kind in COUNTED_KINDS:
        hold = approval = None
        if event.kind == T.ACCEPT.value:
            hold = _latest(ticket_id=ticket.id, kinds=HOLD_STARTS, before=event.id)
        elif event.kind == T.REOPEN.value:
            approval = _latest(ticket_id=ticket.id, kinds=(T.APPROVE_REPLY.value,), before=event.id)
        merge(deltas, event_counts(Step(event.kind, event.data, event.created_at), hold=hold, approval=approval))
    _apply(deltas)


def _latest(*, ticket_id: int, kinds: Iterable[str], before: int) -> Step | None:
    row = (
        TicketEvent.objects.filter(ticket_id=ticket_id, kind__in=list(kinds), id__lt=before)
        .order_by("-id")
        .values_list("kind", "data", "created_at")
        .first()
    )
    return Step(*row) if row is not None else None


def _order(key: Key) -> tuple[dt.date, int]:
    return key[0], key[1] if key[1] is not None else 0


def _apply(deltas: Deltas) -> None:
    # Rows are always taken in the same order, so two transactions adding to the same rows cannot deadlock.
    for day, department in sorted(deltas, key=_order):
        changes = {name: n for name, n in deltas[(day, department)].items() if n}
        if not changes:
            continue
        rows = DailyCounts.objects.filter(day=day)
        rows = rows.filter(department_id=department) if department is not None else rows.filter(department=None)
        update = {name: F(name) + n for name, n in changes.items()}
        if not rows.update(**update):
            # The first count of the day for this department; a concurrent first one wins the insert, ours is
            # then a no-op and the update below adds to its row.
            DailyCounts.objects.bulk_create([DailyCounts(day=day, department_id=department)], ignore_conflicts=True)
            rows.update(**update)


# ---------------------------------------------------------------------------------------------------------
# from the whole trail


def rebuild(*, apps: Any = global_apps, using: str = "default") -> int:
    """Replace every day count by what the trail and the tickets say; returns the rows written.

    `apps`: the migration's historical models when called from one. On PostgreSQL the table is locked against
    writers first: a service that adds to the counts meanwhile waits, and its event, not yet committed when the
    trail is read, is then counted once, by that service."""
    event_model = apps.get_model("ticketing", "TicketEvent")
    ticket_model = apps.get_model("ticketing", "Ticket")
    counts_model = apps.get_model("ticketing", "DailyCounts")
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {counts_model._meta.db_table} IN EXCLUSIVE MODE")
        totals: Deltas = defaultdict(Counter)
        events = (
            event_model.objects.using(using)
            .filter(kind__in=sorted(COUNTED_KINDS))
            .order_by("ticket_id", "id")
            .values_list("ticket_id", "kind", "data", "created_at")
        )
        replay, previous = Replay(), None
        for ticket_id, kind, data, at in events.iterator(chunk_size=10_000):
            if ticket_id != previous and previous is not None:
                replay.forget(previous)
            previous = ticket_id
            merge(totals, replay.feed(ticket_id, Step(kind, data, at)))
        intake = (
            ticket_model.objects.using(using)
            .exclude(status=Status.DRAFT)
            .annotate(day=TruncDate("created_at", tzinfo=TZ))
            .values_list("day", "lead_department_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for day, department, n in intake:
            totals[(day, department)]["intake"] += n
        counts_model.objects.using(using).all().delete()
        rows = [
            counts_model(day=day, department_id=department, **{name: changes[name] for name in DAY_COUNTED})
            for (day, department), changes in sorted(totals.items(), key=lambda item: _order(item[0]))
            if any(changes[name] for name in DAY_COUNTED)
        ]
        counts_model.objects.using(using).bulk_create(rows, batch_size=2000)
    return len(rows)


class Replay:
    """Feeds trail events in id order, ticket after ticket or interleaved, remembering for each ticket the start
    of its hold and its latest approved reply, so an acceptance and a reopening know the stage they end."""

    def __init__(self) -> None:
        self._holds: dict[int, Step] = {}
        self._approvals: dict[int, Step] = {}

    def feed(self, ticket_id: int, step: Step) -> Deltas:
        deltas = event_counts(step, hold=self._holds.get(ticket_id), approval=self._approvals.get(ticket_id))
        if step.kind in HOLD_STARTS:
            self._holds[ticket_id] = step
        elif step.kind == T.APPROVE_REPLY.value:
            self._approvals[ticket_id] = step
        return deltas

    def forget(self, ticket_id: int) -> None:
        """The ticket's trail is complete (memory for a long replay)."""
        self._holds.pop(ticket_id, None)
        self._approvals.pop(ticket_id, None)
