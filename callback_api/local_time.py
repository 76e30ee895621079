"""Times as people read them: the panel shows every time in Europe/Amsterdam (CET/CEST); the
database stores UTC and the API speaks ISO 8601 with an offset.

``local_time`` is the one Jinja filter every template uses for a time (registered in app.py):
``{{ call.started_at | local_time }}`` → ``2026-07-01 14:00:00``, ``| local_time("%H:%M")``.
A naive datetime is taken as UTC (SQLite returns them naive; they were stored as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PANEL_ZONE = ZoneInfo("Europe/Amsterdam")
DEFAULT_FORMAT = "%Y-%m-%d %H:%M:%S"


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_time(value: datetime | None, fmt: str = DEFAULT_FORMAT) -> str:
    """``value`` in Europe/Amsterdam, formatted; "" for None."""
    if value is None:
        return ""
    return as_utc(value).astimezone(PANEL_ZONE).strftime(fmt)


def iso_local(value: datetime | None) -> str:
    """ISO 8601 in Europe/Amsterdam with its offset (``<time datetime>``, scripts)."""
    if value is None:
        return ""
    return as_utc(value).astimezone(PANEL_ZONE).isoformat()


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset (``2026-07-01T12:00:00+00:00``): the API's form."""
    return as_utc(value).isoformat()


def parse_local(text: str) -> datetime:
    """A ``datetime-local`` form value (``2026-07-01T14:00``), meant in Europe/Amsterdam, as UTC.

    ValueError when it is no such value. An ISO value with its own offset keeps that offset."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PANEL_ZONE)
    return parsed.astimezone(UTC)
