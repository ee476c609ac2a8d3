"""Cron expressions and their fire times, in any time zone.

Standard five fields (minute hour day-of-month month day-of-week) with lists,
ranges, steps and names, plus the ``@daily``-style macros; nothing beyond that
(no seconds field, no ``L``/``W``/``#``), so an expression means the same here
as in crontab(5).

Daylight saving follows Vixie/ISC cron (and cronsim):

* An expression whose minute or hour field starts with ``*`` (``@hourly``,
  ``*/15 * * * *``, ``0 * * * *``) is a *wildcard* job: it fires at every real
  instant whose local wall-clock time matches. A skipped hour has no such
  instants; a repeated hour has them twice.
* Any other expression is a *fixed-time* job: it fires once per matching local
  wall-clock time. A time skipped by a spring-forward jump fires at the first
  instant after the jump; a time repeated by a fall-back fires at its first
  occurrence only. Several skipped times (and a real one equal to the first
  instant after the jump) fire once between them.

cronsim differs in one case, where it is wrong: wildcard jobs on the change
days of a zone that shifts by 30 minutes (Australia/Lord_Howe). It steps whole
hours from a wall time the shift moved to HH:30, so it misses HH:00-HH:29,
which exist and match; they fire here. (It also reads ``5-5/10`` as ``5/10``;
here that is just 5, as crontab(5) says.)

When both day fields are restricted a day matches if either does; a field
counts as unrestricted when it starts with ``*`` (so ``*/2`` is unrestricted
for this rule, as in Vixie cron and cronsim).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

UTC = timezone.utc

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
# (name, lowest, highest, names): 7 is Sunday as well as 0.
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day-of-week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Any possible day recurs within this many years (Feb 29 on a given weekday
# comes back within 40 years, across a century that is not a leap year).
_SEARCH_YEARS = 60


@dataclass(frozen=True)
class Cron:
    """A parsed expression. Build it with ``parse``."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 (Sunday) to 6
    days_or: bool  # both day fields restricted: a day matches if either does
    wildcard: bool  # the minute or hour field starts with '*': fire at real instants

    def day_matches(self, day: date) -> bool:
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        return (dom or dow) if self.days_or else (dom and dow)

    def next_after(self, after: datetime, tz: tzinfo = UTC) -> datetime:
        """The first fire time strictly after ``after`` (aware), as an aware time in ``tz``."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("next_after needs an aware datetime")
        after = after.astimezone(UTC)
        local = after.astimezone(tz)
        wall = local.replace(tzinfo=None, fold=0)
        try:
            if not self.wildcard:
                found = self._first_fixed(wall, after, tz)
            else:
                found = self._first_real(wall, after, tz, second=False)
                # In a repeated hour the second occurrences of earlier wall
                # times can come before the next first occurrence.
                shift = local.replace(fold=0).utcoffset() - local.replace(fold=1).utcoffset()  # type: ignore[operator]
                if shift:
                    start = wall - shift if local.fold == 0 else wall
                    found = min(found, self._first_real(start, after, tz, second=True))
        except OverflowError:
            raise ValueError(f"{self.expression!r} has no fire time after {after.isoformat()}") from None
        return found.astimezone(tz)

    # --- the search --------------------------------------------------------------

    def walls(self, start: datetime) -> Iterator[datetime]:
        """Matching wall-clock minutes (naive) at or after ``start``'s minute, in order."""
        day = start.date()
        hour, minute = start.hour, start.minute
        limit = date(min(day.year + _SEARCH_YEARS, 9999), 12, 31)
        while day <= limit:
            if day.month not in self.months:
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                hour = minute = 0
                continue
            if self.day_matches(day):
                for h in self.hours[bisect_left(self.hours, hour) :]:
                    first = minute if h == hour else 0
                    for m in self.minutes[bisect_left(self.minutes, first) :]:
                        yield datetime(day.year, day.month, day.day, h, m)
            day += timedelta(days=1)
            hour = minute = 0
        raise ValueError(f"{self.expression!r} does not fire within {_SEARCH_YEARS} years of {start:%Y-%m-%d}")

    def _first_fixed(self, wall: datetime, after: datetime, tz: tzinfo) -> datetime:
        for candidate in self.walls(wall):
            instant = _first_instant(candidate, tz)
            if instant is None:  # skipped by a jump: the first instant after it
                instant = _after_gap(candidate, tz)
            if instant > after:
                return instant
        raise AssertionError("unreachable")  # walls() raises when it runs out

    def _first_real(self, wall: datetime, after: datetime, tz: tzinfo, *, second: bool) -> datetime:
        """The first real instant after ``after`` whose wall time matches, taking
        each wall time's first occurrence (or, with ``second``, its last)."""
        for candidate in self.walls(wall):
            instant = _first_instant(candidate, tz)
            if instant is None:
                continue  # a skipped wall time never happens
            if second:
                instant = candidate.replace(tzinfo=tz, fold=1).astimezone(UTC)
            if instant > after:
                return instant
        raise AssertionError("unreachable")


def _first_instant(wall: datetime, tz: tzinfo) -> datetime | None:
    """The (first) UTC instant showing this wall time, or None if it is skipped."""
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return instant


def _after_gap(wall: datetime, tz: tzinfo) -> datetime:
    """The first instant after the jump that skipped ``wall``: the smallest
    instant whose wall time is later than ``wall`` (found to the second)."""
    a = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = (min(a, b), max(a, b)) if a != b else (a - timedelta(hours=26), a + timedelta(hours=26))
    lo -= timedelta(seconds=1)
    while hi - lo > timedelta(seconds=1):  # lo shows an earlier wall time, hi a later one
        mid = lo + (hi - lo) // 2
        mid -= timedelta(microseconds=mid.microsecond)
        if mid <= lo:
            mid = lo + timedelta(seconds=1)
        if mid.astimezone(tz).replace(tzinfo=None) > wall:
            hi = mid
        else:
            lo = mid
    return hi


# --- parsing ------------------------------------------------------------------------


def parse(expression: str) -> Cron:
    """Parse a five-field expression or macro; ValueError says what is wrong."""
    if not isinstance(expression, str):
        raise ValueError("a cron expression must be a string")
    text = " ".join(expression.split())
    if text.startswith("@"):
        fields_text = MACROS.get(text.lower())
        if fields_text is None:
            raise ValueError(f"unknown macro {text!r}; expected one of {', '.join(MACROS)}")
    else:
        fields_text = text
    parts = fields_text.split(" ") if fields_text else []
    if len(parts) != 5:
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily, got {len(parts)}"
        )
    minutes, hours, days, months, weekdays = (_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True))
    dom_star, dow_star = parts[2].startswith("*"), parts[4].startswith("*")
    days_or = not dom_star and not dow_star
    if not days_or and not any(day <= _LONGEST_MONTH[month] for day in days for month in months):
        raise ValueError(
            f"it never fires: day-of-month {parts[2]!r} does not occur in month {parts[3]!r}"
            f" (a day-of-week field that starts with '*' does not widen it)"
        )
    return Cron(
        expression=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(day % 7 for day in weekdays),
        days_or=days_or,
        wildcard=parts[0].startswith("*") or parts[1].startswith("*"),
    )


def _field(text: str, name: str, lo: int, hi: int, names: dict[str, int] | None) -> set[int]:
    values: set[int] = set()
    for term in text.split(","):
        values.update(_term(term, text, name, lo, hi, names))
    return values


def _term(term: str, text: str, name: str, lo: int, hi: int, names: dict[str, int] | None) -> range:
    where = f"{name} field {text!r}"
    if not term:
        raise ValueError(f"{where}: empty list item")
    base, slash, step_text = term.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
            raise ValueError(f"{where}: step {step_text!r} must be a whole number of 1 or more")
        step = int(step_text)
    if base == "*":
        return range(lo, hi + 1, step)
    first_text, dash, last_text = base.partition("-")
    first = _value(first_text, where, lo, hi, names)
    if dash:
        last = _value(last_text, where, lo, hi, names)
        if last < first:
            raise ValueError(f"{where}: range {base!r} goes backwards")
        return range(first, last + 1, step)
    # "5/15" means from 5 to the end in steps of 15, as in cronie and cronsim.
    return range(first, (hi if slash else first) + 1, step)


def _value(text: str, where: str, lo: int, hi: int, names: dict[str, int] | None) -> int:
    if names is not None and text.upper() in names:
        return names[text.upper()]
    if not (text.isascii() and text.isdigit()):
        kind = f"a number or a name ({', '.join(names)})" if names else "a number"
        raise ValueError(f"{where}: {text!r} is not {kind}")
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"{where}: {value} is out of range {lo}-{hi}")
    return value


# --- time zones ---------------------------------------------------------------------


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name``: from the system's database (zoneinfo), or,
    where the system has none, the copy python-dateutil bundles."""
    if not isinstance(name, str) or not name or len(name) > 100:
        raise ValueError(f"unknown time zone {str(name)[:100]!r}")
    if name.upper() == "UTC":
        return UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - not found, or not a valid key: try dateutil's copy
        pass
    from dateutil.zoneinfo import get_zonefile_instance

    found = get_zonefile_instance().get(name)
    if found is None:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name like Europe/Berlin)")
    return found
