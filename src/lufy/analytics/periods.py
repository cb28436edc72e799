"""Dashboard periods: `range` / `from` / `to` / `tz` into UTC instants and bucket boundaries.

Calendar periods (days, ISO weeks, months) are those of the requested zone, so a day may last
23 or 25 hours; everything is returned as UTC instants for the queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from lufy.errors import LufyError

__all__ = [
    "GRANULARITIES",
    "BadQueryError",
    "Period",
    "boundaries",
    "local_midnight",
    "resolve_period",
    "zone",
]

GRANULARITIES = ("minute", "hour", "day", "week", "month")
MAX_DAYS = 400
MAX_POINTS = 10_000
_DAYS = re.compile(r"^([1-9][0-9]{0,2})d$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadQueryError(LufyError):
    status = 400
    title = "Invalid query parameter"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    tz: ZoneInfo
    default_granularity: str


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - {"localtime"}  # the server's zone, not a name


def zone(name: str | None) -> ZoneInfo:
    name = name or "UTC"
    # Only names of the IANA database: ZoneInfo would also open folders ("Europe"), paths
    # ("posix/Europe/Paris") and "localtime", some of them failing with OSError.
    if name not in _zone_names():
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise BadQueryError(f"tz: {shown!r} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadQueryError(f"tz: {name!r} is not an IANA time zone name") from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of `day` in `tz`, as UTC (fold=0 maps a skipped midnight to the
    first instant that exists)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


_FIRST_YEAR, _LAST_YEAR = 1970, 2200


def _parse_bound(name: str, text: str) -> date | datetime:
    try:
        value = _parse_bound_unchecked(name, text)
    except OverflowError:
        raise BadQueryError(f"{name}: {text!r} is outside {_FIRST_YEAR}-{_LAST_YEAR}") from None
    # Far years overflow date arithmetic (the previous period, the end of the day).
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        raise BadQueryError(f"{name}: {text!r} is outside {_FIRST_YEAR}-{_LAST_YEAR}")
    return value


def _parse_bound_unchecked(name: str, text: str) -> date | datetime:
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise BadQueryError(f"{name}: {text!r} is not a calendar date") from None
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadQueryError(
            f"{name}: {text!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"
        ) from None
    if moment.tzinfo is None:
        raise BadQueryError(f"{name}: an instant needs a UTC offset (e.g. Z or +02:00)")
    return moment.astimezone(UTC)


def resolve_period(
    range_: str | None, from_: str | None, to: str | None, tz_name: str | None, now: datetime
) -> Period:
    tz = zone(tz_name)
    if from_ is not None or to is not None:
        if range_ is not None:
            raise BadQueryError("range: give either range or from/to, not both")
        if from_ is None or to is None:
            raise BadQueryError("from/to: both are required together")
        return _explicit(_parse_bound("from", from_), _parse_bound("to", to), tz)
    range_ = range_ or "28d"
    today = now.astimezone(tz).date()
    if match := _DAYS.match(range_):
        days = int(match.group(1))
        if days > MAX_DAYS:
            raise BadQueryError(f"range: at most {MAX_DAYS}d")
        first = today - timedelta(days=days - 1)
        return Period(
            local_midnight(first, tz),
            local_midnight(today + timedelta(days=1), tz),
            local_midnight(first - timedelta(days=days), tz),
            local_midnight(first, tz),
            tz,
            "day",
        )
    if range_ == "24h":
        # The 24 whole hours ending with the current one (so hourly charts have 24 points).
        local = now.astimezone(tz).replace(minute=0, second=0, microsecond=0)
        end = local.astimezone(UTC) + timedelta(hours=1)
        start = end - timedelta(hours=24)
        return Period(start, end, start - timedelta(hours=24), start, tz, "hour")
    if range_ == "12m":
        first = _month_start(today, 11)
        following = _month_start(today, -1)
        return Period(
            local_midnight(first, tz),
            local_midnight(following, tz),
            local_midnight(_month_start(today, 23), tz),
            local_midnight(first, tz),
            tz,
            "month",
        )
    raise BadQueryError(f"range: {range_!r} is not one of 7d, 28d, 90d (any Nd), 24h, 12m")


def _explicit(start: date | datetime, end: date | datetime, tz: ZoneInfo) -> Period:
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise BadQueryError("from/to: give two dates or two instants, not one of each")
    if isinstance(start, datetime) and isinstance(end, datetime):
        if end <= start:
            raise BadQueryError("to: must be after from")
        if end - start > timedelta(days=MAX_DAYS):
            raise BadQueryError(f"from/to: at most {MAX_DAYS} days")
        span = end - start
        grain = "hour" if span <= timedelta(days=2) else "day"
        return Period(start, end, start - span, start, tz, grain)
    assert isinstance(start, date)
    assert isinstance(end, date)
    if end < start:
        raise BadQueryError("to: must not be before from")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise BadQueryError(f"from/to: at most {MAX_DAYS} days")
    return Period(
        local_midnight(start, tz),
        local_midnight(end + timedelta(days=1), tz),
        local_midnight(start - timedelta(days=days), tz),
        local_midnight(start, tz),
        tz,
        "day",
    )


def boundaries(start: datetime, end: datetime, tz: ZoneInfo, granularity: str) -> list[datetime]:
    """Bucket boundaries b0 <= start < ... < bn >= end (UTC): bucket i is [b(i), b(i+1)),
    each the calendar hour, day, ISO week or month of `tz` containing part of the range."""
    local = start.astimezone(tz)
    out: list[datetime] = []
    if granularity in ("minute", "hour"):
        step = timedelta(minutes=1) if granularity == "minute" else timedelta(hours=1)
        floor = local.replace(second=0, microsecond=0)
        if granularity == "hour":
            floor = floor.replace(minute=0)
        moment = floor.astimezone(UTC)
        while True:
            out.append(moment)
            if moment >= end or len(out) > MAX_POINTS + 1:
                break
            moment += step
    else:
        day = local.date()
        if granularity == "week":
            day -= timedelta(days=day.weekday())
        elif granularity == "month":
            day = day.replace(day=1)
        elif granularity != "day":
            raise BadQueryError(
                f"granularity: {granularity!r} is not one of hour, day, week, month"
            )
        while True:
            moment = local_midnight(day, tz)
            out.append(moment)
            if moment >= end or len(out) > MAX_POINTS + 1:
                break
            if granularity == "day":
                day += timedelta(days=1)
            elif granularity == "week":
                day += timedelta(days=7)
            else:
                day = _month_start(day, -1)
    if len(out) > MAX_POINTS + 1:
        raise BadQueryError(
            f"granularity: more than {MAX_POINTS} points; choose a coarser granularity"
        )
    return out
