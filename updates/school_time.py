"""The school's clock: its zone, and how every page and message writes a time.

Separate from ``scheduling`` (which reads the windows from the models) so the
models' own progress messages can use it too.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings

SCHOOL_TIME_FORMAT = "%a %d %b %Y, %H:%M %Z"


def school_zone() -> ZoneInfo:
    return ZoneInfo(settings.UPDATES_SCHOOL_TIME_ZONE)


def format_school_time(moment: datetime | None, fmt: str = SCHOOL_TIME_FORMAT) -> str:
    """An aware time as the school reads it: ``Mon 30 Nov 2026, 22:00 GMT``."""
    if moment is None:
        return "-"
    return moment.astimezone(school_zone()).strftime(fmt)
