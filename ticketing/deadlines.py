"""Which deadline policy applies to a ticket, and the deadlines it sets.

Specificity decides between matching policies: a matching urgency weighs 8 (danger to life or property
must not wait for a category rule), the exact category 4, its first-level parent 2, the appeal type 1.
Ties go to the older policy.
"""

from dataclasses import dataclass
from datetime import datetime

from .calendar import WorkingCalendar
from .models import Category, DeadlinePolicy


def _score(policy: DeadlinePolicy, *, appeal_type: str, urgency: str, category: Category | None) -> int | None:
    score = 0
    if policy.urgency:
        if policy.urgency != urgency:
            return None
        score += 8
    if policy.category_id:
        if category is None:
            return None
        if policy.category_id == category.id:
            score += 4
        elif policy.category_id == category.parent_id:
            score += 2
        else:
            return None
    if policy.appeal_type:
        if policy.appeal_type != appeal_type:
            return None
        score += 1
    return score


def policy_for(*, appeal_type: str, urgency: str, category: Category | None) -> DeadlinePolicy | None:
    best: tuple[int, int, DeadlinePolicy] | None = None
    for policy in DeadlinePolicy.objects.filter(is_active=True).order_by("id"):
        score = _score(policy, appeal_type=appeal_type, urgency=urgency, category=category)
        if score is None:
            continue
        if best is None or score > best[0]:
            best = (score, -policy.id, policy)
    return best[2] if best else None


@dataclass(frozen=True)
class Deadlines:
    accept_due_at: datetime
    accept_warning_at: datetime
    return_due_at: datetime
    reply_due_at: datetime
    reply_warning_at: datetime


def warning_at(start: datetime, due: datetime, percent: int, *, calendar: WorkingCalendar, unit: str) -> datetime:
    """The warning falls when `percent` of the working time between start and deadline has passed, so it
    lands in working time (a warning at 03:00 on a Sunday reaches nobody)."""
    span = calendar.elapsed(start, due, unit)
    return calendar.add_time(start, span * percent / 100, unit)


def deadlines_from(*, policy: DeadlinePolicy, start: datetime, calendar: WorkingCalendar) -> Deadlines:
    accept_due = calendar.add(start, policy.accept_within, policy.accept_unit)
    reply_due = calendar.add(start, policy.reply_within, policy.reply_unit)
    return Deadlines(
        accept_due_at=accept_due,
        accept_warning_at=warning_at(
            start, accept_due, policy.warning_percent, calendar=calendar, unit=policy.accept_unit
        ),
        return_due_at=calendar.add(start, policy.return_within, policy.return_unit),
        reply_due_at=reply_due,
        reply_warning_at=warning_at(
            start, reply_due, policy.warning_percent, calendar=calendar, unit=policy.reply_unit
        ),
    )
