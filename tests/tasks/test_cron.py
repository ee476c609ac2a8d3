"""Cron expressions: the syntax of crontab(5), fire times in time zones with
daylight saving, and agreement with cronsim (an independent implementation
of the same Vixie/ISC rules) over random expressions and start times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jobqueue.tasks import cron

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def fires(expression: str, start: datetime, tz: object = UTC, n: int = 5) -> list[str]:
    """The next ``n`` fire times after ``start``, as local ISO text with offsets."""
    parsed = cron.parse(expression)
    out, t = [], start
    for _ in range(n):
        t = parsed.next_after(t, tz)  # type: ignore[arg-type]
        out.append(t.isoformat())
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- syntax ---------------------------------------------------------------------------


def test_fields_lists_ranges_steps_and_names() -> None:
    c = cron.parse("*/15 9-17/4 1,15 JAN-MAR,dec mon-fri")
    assert c.minutes == (0, 15, 30, 45)
    assert c.hours == (9, 13, 17)
    assert c.days == {1, 15}
    assert c.months == {1, 2, 3, 12}
    assert c.weekdays == {1, 2, 3, 4, 5}
    assert c.days_or and c.wildcard  # the minute field starts with '*': a wildcard job
    assert cron.parse("5/20 * * * *").minutes == (5, 25, 45)  # N/step: from N to the end
    assert cron.parse("1-10/3 * * * *").minutes == (1, 4, 7, 10)
    assert cron.parse("0 0 * * 7").weekdays == cron.parse("0 0 * * 0").weekdays == {0}
    assert cron.parse("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert cron.parse("0 0 * * SUN,Sat").weekdays == {0, 6}


def test_single_value_range_with_a_step_is_that_value() -> None:
    """crontab(5): a step applies to the range it follows, so 5-5/10 is just 5.
    (cronsim reads it as 5/10, i.e. 5,15,...,55; the property test avoids it.)"""
    assert cron.parse("5-5/10 * * * *").minutes == (5,)


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros_mean_their_five_fields(macro: str, fields: str) -> None:
    start = utc(2024, 2, 27, 13, 7)
    assert fires(macro, start, BERLIN, 3) == fires(fields, start, BERLIN, 3)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * * x", "day-of-week field 'x': 'x' is not a number or a name (SUN, MON"),
        ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
        ("0 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("0 0 1 13 *", "month field '13': 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field '8': 8 is out of range 0-7"),
        ("0 0 * FOO *", "month field 'FOO': 'FOO' is not a number or a name (JAN"),
        ("*/0 * * * *", "minute field '*/0': step '0' must be a whole number of 1 or more"),
        ("*/x * * * *", "step 'x'"),
        ("5-1 * * * *", "minute field '5-1': range '5-1' goes backwards"),
        ("1,,2 * * * *", "minute field '1,,2': empty list item"),
        ("-1 * * * *", "minute field '-1': '' is not a number"),
        ("0 0 * *", "expected 5 fields"),
        ("0 0 0 * * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("@reboot", "unknown macro '@reboot'"),
        ("0 0 30 2 *", "never fires: day-of-month '30' does not occur in month '2'"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 L * *", "day-of-month field 'L'"),
        ("0 0 * * 1#2", "day-of-week field '1#2'"),
        ("0 0 * * ١", "is not a number"),  # a digit, but not an ASCII one
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        cron.parse(expression)
    assert message in str(caught.value)


def test_feb_29_fires_in_leap_years_only() -> None:
    assert fires("0 12 29 2 *", utc(2025, 1, 1), n=3) == [
        "2028-02-29T12:00:00+00:00",
        "2032-02-29T12:00:00+00:00",
        "2036-02-29T12:00:00+00:00",
    ]
    # Restricted by day-of-week too, through a field that starts with '*':
    # both must match, and Feb 29 falls on a Sunday only every 28 years or so.
    assert fires("0 0 29 2 */7", utc(2025, 1, 1), n=2) == ["2032-02-29T00:00:00+00:00", "2060-02-29T00:00:00+00:00"]


def test_either_day_field_matches_when_both_are_restricted() -> None:
    # The 13th, and every Friday (Vixie cron's OR rule).
    assert fires("0 0 13 * FRI", utc(2024, 9, 1), n=4) == [
        "2024-09-06T00:00:00+00:00",
        "2024-09-13T00:00:00+00:00",
        "2024-09-20T00:00:00+00:00",
        "2024-09-27T00:00:00+00:00",
    ]
    # A field starting with '*' is not a restriction for this rule: both must match.
    # */10 is the 1st, 11th, 21st and 31st.
    assert fires("0 0 */10 * FRI", utc(2024, 9, 1), n=2) == [
        "2024-10-11T00:00:00+00:00",
        "2024-11-01T00:00:00+00:00",
    ]


def test_strictly_after_the_start() -> None:
    assert fires("0 3 * * *", utc(2024, 5, 1, 3, 0), n=1) == ["2024-05-02T03:00:00+00:00"]
    assert fires("0 3 * * *", utc(2024, 5, 1, 2, 59, 59, 999999), n=1) == ["2024-05-01T03:00:00+00:00"]
    assert fires("* * * * *", utc(2024, 5, 1, 3, 0, 0, 1), n=1) == ["2024-05-01T03:01:00+00:00"]


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        cron.parse("* * * * *").next_after(datetime(2024, 1, 1), UTC)


def test_time_zones_from_zoneinfo_or_dateutils_copy() -> None:
    assert cron.zone("UTC") is UTC
    assert cron.zone("Europe/Berlin") == BERLIN
    for bad in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "Europe"):
        with pytest.raises(ValueError, match="unknown time zone"):
            cron.zone(bad)
    # The fallback where the system has no zone data: python-dateutil's bundled
    # copy gives the same fire times across both of 2024's changes.
    from dateutil.zoneinfo import get_zonefile_instance

    bundled = get_zonefile_instance().get("Europe/Berlin")
    for start in (utc(2024, 3, 30, 20), utc(2024, 10, 26, 20)):
        for expression in ("30 2 * * *", "0 * * * *", "*/20 2 * * *"):
            a = [t for t in fires(expression, start, BERLIN, 6)]
            b = [t for t in fires(expression, start, bundled, 6)]
            assert [datetime.fromisoformat(x) for x in a] == [datetime.fromisoformat(x) for x in b], expression


# --- daylight saving --------------------------------------------------------------------


def test_spring_forward_runs_a_skipped_time_once_right_after_the_jump() -> None:
    # Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST.
    assert fires("30 2 * * *", utc(2024, 3, 30, 12), BERLIN, 3) == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
        "2024-04-02T02:30:00+02:00",
    ]
    # Several skipped times, and a real one at the instant after the jump: once.
    assert fires("0,15,30,45 2 * * *", utc(2024, 3, 30, 12), BERLIN, 2) == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:00:00+02:00",
    ]
    assert fires("0 2,3 * * *", utc(2024, 3, 30, 12), BERLIN, 3) == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:00:00+02:00",
        "2024-04-01T03:00:00+02:00",
    ]
    # New York, 2024-03-10 at 02:00 EST.
    assert fires("15 2 * * *", utc(2024, 3, 9, 12), NEW_YORK, 2) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:15:00-04:00",
    ]
    # Lord Howe moves by half an hour: 2024-10-06 02:00 becomes 02:30.
    assert fires("15 2 * * *", utc(2024, 10, 5), LORD_HOWE, 2) == [
        "2024-10-06T02:30:00+11:00",
        "2024-10-07T02:15:00+11:00",
    ]


def test_fall_back_runs_a_repeated_time_once_at_its_first_occurrence() -> None:
    # Berlin, 2024-10-27: 03:00 CEST becomes 02:00 CET, so 02:00-02:59 happens twice.
    assert fires("30 2 * * *", utc(2024, 10, 26, 12), BERLIN, 2) == [
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
    ]
    # Even asked from inside the second pass through that hour.
    inside = datetime(2024, 10, 27, 2, 10, tzinfo=BERLIN, fold=1)
    assert fires("30 2 * * *", inside, BERLIN, 1) == ["2024-10-28T02:30:00+01:00"]
    # Lord Howe 2024-04-07: 02:00 becomes 01:30.
    assert fires("45 1 * * *", utc(2024, 4, 6), LORD_HOWE, 2) == [
        "2024-04-07T01:45:00+11:00",
        "2024-04-08T01:45:00+10:30",
    ]


def test_wildcard_hours_fire_every_real_hour() -> None:
    # 25 real hours on Berlin's fall-back day, 23 on its spring-forward day.
    fall = [datetime.fromisoformat(t) for t in fires("@hourly", utc(2024, 10, 26, 22), BERLIN, 25)]
    assert all(b - a == timedelta(hours=1) for a, b in zip(fall, fall[1:], strict=False))
    assert fires("@hourly", utc(2024, 10, 26, 23), BERLIN, 3) == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]
    assert fires("@hourly", utc(2024, 3, 30, 23, 30), BERLIN, 3) == [
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T04:00:00+02:00",
    ]
    # A minute field starting with '*' is a wildcard job too: the repeated hour
    # runs twice, in order, and the skipped hour not at all.
    assert fires("*/30 2 * * *", utc(2024, 10, 26, 23), BERLIN, 5) == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-28T02:00:00+01:00",
    ]
    assert fires("*/30 2 * * *", utc(2024, 3, 30, 23), BERLIN, 1) == ["2024-04-01T02:00:00+02:00"]
    # Every real half hour through Lord Howe's half-hour fall-back.
    half = fires("*/30 * * * *", utc(2024, 4, 6, 14), LORD_HOWE, 4)
    assert half == [
        "2024-04-07T01:30:00+11:00",
        "2024-04-07T01:30:00+10:30",
        "2024-04-07T02:00:00+10:30",
        "2024-04-07T02:30:00+10:30",
    ]


def test_where_cronsim_misses_real_times_after_a_half_hour_shift() -> None:
    """The one class where cronsim and this module differ (besides 5-5/10): a
    wildcard job in a zone that shifts by 30 minutes. cronsim steps hours in
    3600 s from a wall time the shift moved off the hour, so on Lord Howe's
    change days it lands on HH:30 and misses HH:00-HH:29. Those times exist
    and match the expression; Vixie cron runs wildcard jobs at every matching
    real minute, so they fire here."""
    start = utc(2024, 10, 5, 12)
    assert fires("0 */3 * * *", start, LORD_HOWE, 2) == ["2024-10-06T00:00:00+10:30", "2024-10-06T03:00:00+11:00"]
    midnight = datetime.fromisoformat("2024-10-06T00:00:00+10:30")
    assert _cronsim_after("0 */3 * * *", midnight, LORD_HOWE) == [datetime.fromisoformat("2024-10-06T06:00:00+11:00")]


# --- against cronsim ---------------------------------------------------------------------

ZONES = {"Europe/Berlin": BERLIN, "America/New_York": NEW_YORK, "Australia/Lord_Howe": LORD_HOWE, "UTC": UTC}
# Instants near the 2024-2025 changes of every zone above, where the edges are.
TRANSITIONS = [
    utc(2024, 3, 31, 1),  # Berlin spring
    utc(2024, 10, 27, 1),  # Berlin fall
    utc(2024, 3, 10, 7),  # New York spring
    utc(2024, 11, 3, 6),  # New York fall
    utc(2024, 4, 6, 15),  # Lord Howe fall (southern hemisphere)
    utc(2024, 10, 5, 15, 30),  # Lord Howe spring
    utc(2025, 3, 30, 1),
    utc(2025, 4, 5, 15),
]
_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _field(lo: int, hi: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    number = st.integers(lo, hi)

    def value(n: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
        if not names:
            return n.map(str)
        return st.tuples(n, st.booleans()).map(
            lambda nb: names[nb[0] - lo] if nb[1] and nb[0] - lo < len(names) else str(nb[0])
        )

    step = st.integers(1, hi - lo + 1).map(str)
    pair = st.tuples(number, number)
    inclusive = pair.filter(lambda ab: ab[0] <= ab[1])
    # A range with a step has a < b: cronsim reads "5-5/10" as "5/10" (see above).
    strict = pair.filter(lambda ab: ab[0] < ab[1])
    term = st.one_of(
        value(number),
        st.tuples(value(inclusive.map(lambda ab: ab[0])), value(st.just(hi))).map("-".join),
        st.tuples(inclusive.flatmap(lambda ab: st.tuples(value(st.just(ab[0])), value(st.just(ab[1]))))).map(
            lambda t: "-".join(t[0])
        ),
        st.tuples(strict.flatmap(lambda ab: st.tuples(value(st.just(ab[0])), value(st.just(ab[1])))), step).map(
            lambda t: "-".join(t[0]) + "/" + t[1]
        ),
        st.tuples(value(number), step).map("/".join),
    )
    return st.one_of(
        st.just("*"),
        step.map(lambda s: f"*/{s}"),
        term,
        st.lists(term, min_size=2, max_size=4).map(",".join),
    )


EXPRESSIONS = st.tuples(
    _field(0, 59),
    _field(0, 23),
    _field(1, 31),
    _field(1, 12, _MONTH_NAMES),
    _field(0, 7, _DAY_NAMES),
).map(" ".join) | st.sampled_from(sorted(cron.MACROS))

STARTS = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    st.tuples(st.sampled_from(TRANSITIONS), st.integers(-24 * 60, 24 * 60), st.sampled_from([0, 0, 30, 59])).map(
        lambda t: t[0] + timedelta(minutes=t[1], seconds=t[2])
    ),
)


def _cronsim_after(expression: str, start: datetime, tz: object = None) -> list[datetime]:
    """cronsim's next fire time strictly after ``start`` (in UTC). cronsim, started
    inside a repeated hour's second pass, may first return the hour's first
    pass (before the start): those are skipped, as its iteration would."""
    local = start.astimezone(tz or start.tzinfo)  # type: ignore[arg-type]
    for moment in CronSim(expression, local):
        if moment.astimezone(UTC) > start.astimezone(UTC):
            return [moment.astimezone(UTC)]
    return []


def _brute_force(parsed: cron.Cron, after: datetime, tz: ZoneInfo, until: datetime) -> datetime | None:
    """A wildcard job's first real minute after ``after`` whose wall time matches,
    by walking real time minute by minute (skipping days that cannot match)."""
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t <= until:
        local = t.astimezone(tz)
        if local.month not in parsed.months or not parsed.day_matches(local.date()):
            t += timedelta(minutes=max(1, 1440 - local.hour * 60 - local.minute - 90))
            continue
        if local.hour in parsed.hours and local.minute in parsed.minutes:
            return t
        t += timedelta(minutes=1)
    return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expression=EXPRESSIONS, start=STARTS, zone=st.sampled_from(sorted(ZONES)))
def test_fire_times_agree_with_cronsim(expression: str, start: datetime, zone: str) -> None:
    try:
        parsed = cron.parse(expression)
    except ValueError:
        with pytest.raises(Exception):  # noqa: B017 - cronsim must refuse it too
            CronSim(expression, start)
        assume(False)
        return
    tz = ZONES[zone]
    fields = cron.MACROS.get(expression, expression)  # cronsim has no macros
    t = start
    for _ in range(4):
        mine = parsed.next_after(t, tz).astimezone(UTC)
        assert mine > t
        theirs = _cronsim_after(fields, t, tz)
        if theirs != [mine]:
            # Only in the documented class, and then the brute-force walk through
            # real time, the rule itself, agrees with this module.
            assert zone == "Australia/Lord_Howe" and parsed.wildcard, (expression, zone, t, mine, theirs)
            assert _brute_force(parsed, t, tz, mine) == mine, (expression, zone, t, mine, theirs)
        t = mine


# --- the latest missed slot ------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=st.sampled_from(
        ["* * * * *", "*/7 * * * *", "0 * * * *", "30 2 * * *", "*/20 2 * * *", "15 3,4 * * SUN", "0 0 1 * *"]
    ),
    start=STARTS,
    gap_minutes=st.integers(0, 3 * 24 * 60),
    zone=st.sampled_from(sorted(ZONES)),
)
def test_the_latest_missed_slot_is_the_last_one_walking_forward(
    expression: str, start: datetime, gap_minutes: int, zone: str
) -> None:
    """After an outage catch_up="latest" finds its slot by search and bisection;
    walking every slot forward from the cursor must end on the same one."""
    from jobqueue.tasks.periodic import Schedule

    schedule = Schedule(name="s", expression=expression, task="echo", timezone=zone)
    now = start + timedelta(minutes=gap_minutes, seconds=17)
    walked, t = [], start
    while (t := schedule.next_after(t)) <= now:
        walked.append(t)
    due = schedule.due(start, now)
    assert due == walked[-1:]
    assert (
        Schedule(name="a", expression=expression, task="echo", timezone=zone, catch_up="all").due(start, now)
        == (walked[:1000])
    )
