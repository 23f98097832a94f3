"""Working time on the Chinese statutory calendar, with make-up working days.

A duration in working days or working hours is counted as elapsed working time: only the time inside a
working day (working days) or inside the configured working hours of a working day (working hours) counts.
So "5 working days" from Monday 10:00 ends next Monday 10:00, and from Saturday 15:00 it ends at the end of
Friday (Saturday 00:00), because counting starts on Monday. Minutes are plain clock minutes, for urgent
cases that cannot wait for Monday.
"""

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import chinese_calendar

logger = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
# A deadline is never more than this many calendar days away; a longer search means a broken calendar.
MAX_SPAN_DAYS = 3660


class CalendarError(ValueError):
    pass


def statutory_is_working_day(day: dt.date) -> bool | None:
    """The State Council's calendar as published in `chinese_calendar`; None for years it does not cover."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass
class WorkingCalendar:
    """Statutory calendar, then local overrides (which win), then Monday to Friday for unknown years."""

    overrides: Mapping[dt.date, bool] = field(default_factory=dict)
    working_hours: Iterable[tuple[str, str]] = (("09:00", "12:00"), ("13:00", "17:00"))
    _warned_years: set[int] = field(default_factory=set, repr=False)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        statutory = statutory_is_working_day(day)
        if statutory is not None:
            return statutory
        if day.year not in self._warned_years:
            self._warned_years.add(day.year)
            logger.warning(
                "calendar: no statutory holidays known for %s; counting Monday to Friday until they are "
                "added as calendar overrides",
                day.year,
            )
        return day.weekday() < 5

    def _periods(self, day: dt.date, unit: str) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.is_working_day(day):
            return []
        start_of_day = dt.datetime.combine(day, dt.time(0), tzinfo=TZ)
        if unit == "working_days":
            return [(start_of_day, start_of_day + dt.timedelta(days=1))]
        periods = []
        for begin, end in self.working_hours:
            periods.append(
                (
                    dt.datetime.combine(day, dt.time.fromisoformat(begin), tzinfo=TZ),
                    dt.datetime.combine(day, dt.time.fromisoformat(end), tzinfo=TZ),
                )
            )
        return periods

    def add(self, start: dt.datetime, amount: int, unit: str) -> dt.datetime:
        """The moment `amount` units of working time have elapsed after `start` (an aware datetime)."""
        if start.tzinfo is None:
            raise CalendarError("start must be an aware datetime")
        if amount < 0:
            raise CalendarError("amount must not be negative")
        if unit == "minutes":
            return start + dt.timedelta(minutes=amount)
        if unit == "working_days":
            remaining = dt.timedelta(days=amount)
        elif unit == "working_hours":
            remaining = dt.timedelta(hours=amount)
        else:
            raise CalendarError(f"unknown unit {unit!r}")

        if amount == 0:
            return start.astimezone(TZ)
        return self._advance(start, remaining, unit)

    def _advance(self, start: dt.datetime, remaining: dt.timedelta, unit: str) -> dt.datetime:
        cursor = start.astimezone(TZ)
        day = cursor.date()
        for _ in range(MAX_SPAN_DAYS):
            for begin, end in self._periods(day, unit):
                segment_start = max(begin, cursor)
                if segment_start >= end:
                    continue
                available = end - segment_start
                if remaining <= available:
                    return segment_start + remaining
                remaining -= available
            day += dt.timedelta(days=1)
        raise CalendarError(f"no working time found within {MAX_SPAN_DAYS} days of {start.isoformat()}")

    def elapsed(self, start: dt.datetime, end: dt.datetime, unit: str) -> dt.timedelta:
        """The working time between `start` and `end` (aware datetimes), counted as `add` counts it, so
        `add(start, …)` of the result gives back `end` whenever `end` lies in working time."""
        if start.tzinfo is None or end.tzinfo is None:
            raise CalendarError("start and end must be aware datetimes")
        if end <= start:
            return dt.timedelta(0)
        if unit == "minutes":
            return end - start
        if unit not in ("working_days", "working_hours"):
            raise CalendarError(f"unknown unit {unit!r}")
        start, end = start.astimezone(TZ), end.astimezone(TZ)
        total = dt.timedelta(0)
        day = start.date()
        for _ in range(MAX_SPAN_DAYS + 1):
            if day > end.date():
                return total
            for begin, finish in self._periods(day, unit):
                segment = min(finish, end) - max(begin, start)
                if segment > dt.timedelta(0):
                    total += segment
            day += dt.timedelta(days=1)
        raise CalendarError(f"span from {start.isoformat()} to {end.isoformat()} is too long")

    def add_time(self, start: dt.datetime, amount: dt.timedelta, unit: str) -> dt.datetime:
        """The moment `amount` of working time (as `elapsed` counts it) has passed after `start`."""
        if start.tzinfo is None:
            raise CalendarError("start must be an aware datetime")
        if unit == "minutes":
            return start + amount
        if unit not in ("working_days", "working_hours"):
            raise CalendarError(f"unknown unit {unit!r}")
        if amount <= dt.timedelta(0):
            return start.astimezone(TZ)
        return self._advance(start, amount, unit)
