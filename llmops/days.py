"""Days as people read reports: local calendar days in ``LLMOPS_TIMEZONE``, and their bounds in UTC.

Rollups, digests, drift checks and the pinning audit all cut time at local midnight; they take
their day and its bounds from here, so that a day is the same day everywhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from llmops import settings


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(timestamp: datetime, timezone: str) -> date:
    """The calendar day of a naive-UTC or aware timestamp in ``timezone``.

    Args:
        timestamp: A time; naive means UTC (as the store keeps it).
        timezone: An IANA timezone name.

    Returns:
        The local date; called for every ingested trace, so the zone is looked up once.

    Example:
        >>> local_day(datetime(2025, 11, 15, 23, 30), "Europe/Berlin")
        datetime.date(2025, 11, 16)
    """
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return timestamp.astimezone(_zone(timezone)).date()


def default_day(timezone: ZoneInfo | None = None) -> date:
    """Yesterday in ``timezone`` (default ``LLMOPS_TIMEZONE``): the last complete day.

    Args:
        timezone: Where the day is cut; ``None`` reads ``LLMOPS_TIMEZONE``.

    Returns:
        The date of yesterday in that zone.

    Example:
        >>> from zoneinfo import ZoneInfo
        >>> default_day(ZoneInfo("UTC")) < date.today() + timedelta(days=1)
        True
    """
    return datetime.now(timezone or settings.timezone()).date() - timedelta(days=1)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local ``day`` in ``zone`` as a half-open UTC interval ``[start, end)``.

    Args:
        day: A calendar day.
        zone: The timezone whose midnight starts and ends it (a DST day lasts 23 or 25 hours).

    Returns:
        ``(start, end)`` as timezone-aware UTC datetimes; the store's timestamp columns accept them.

    Example:
        >>> day_bounds(date(2026, 3, 29), ZoneInfo("Europe/Berlin"))[1].hour
        22
    """
    start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return start, end
