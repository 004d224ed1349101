"""`/daily` arguments in, and times out in the user's own clock: pure functions, so they are easy to test.

People write offsets the way they see them on their phone (`+3`, `-5`, `+5:30`, `UTC+3`); anything else is
refused (None) rather than guessed, so a typo never schedules a pick at a surprising hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

DEFAULT_HOUR = 9
MIN_OFFSET_MINUTES = -12 * 60  # the database's bounds: every real time zone lies between them
MAX_OFFSET_MINUTES = 14 * 60

_HOUR = re.compile(r"(\d{1,2})(?::00)?")
_OFFSET = re.compile(r"(?:utc|gmt)?([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


@dataclass(frozen=True)
class DailyCommand:
    action: Literal["status", "on", "off"]
    hour: int = DEFAULT_HOUR
    utc_offset_minutes: int = 0


def parse_hour(text: str) -> int | None:
    """`9`, `09` or `09:00` → 9; None outside 0–23 or for anything else."""
    match = _HOUR.fullmatch(text)
    if match is None or int(match.group(1)) > 23:
        return None
    return int(match.group(1))


def parse_offset(text: str) -> int | None:
    """`+3` → 180, `-5` → -300, `+5:30` → 330 (`UTC+3` too); None when malformed or no such time zone."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if minutes >= 60:
        return None
    total = (hours * 60 + minutes) * (-1 if sign == "-" else 1)
    return total if MIN_OFFSET_MINUTES <= total <= MAX_OFFSET_MINUTES else None


def parse_daily(args: str | None, default_offset_minutes: int) -> DailyCommand | None:
    """`` → status; `off`; `on [HH] [±H[:MM]]` (both optional, in that order); None means: show the usage."""
    words = (args or "").split()
    if not words:
        return DailyCommand("status")
    action, rest = words[0].lower(), words[1:]
    if action == "off" and not rest:
        return DailyCommand("off")
    if action != "on" or len(rest) > 2:
        return None
    hour, offset = DEFAULT_HOUR, default_offset_minutes
    if rest and rest[0][0] not in "+-" and not rest[0].lower().startswith(("utc", "gmt")):
        parsed_hour = parse_hour(rest.pop(0))
        if parsed_hour is None:
            return None
        hour = parsed_hour
    if rest:
        parsed_offset = parse_offset(rest.pop(0))
        if parsed_offset is None:
            return None
        offset = parsed_offset
    if rest:  # two hours, or an offset before the hour
        return None
    return DailyCommand("on", hour, offset)


def format_offset(minutes: int) -> str:
    """180 → `UTC+3`, -300 → `UTC-5`, 330 → `UTC+5:30`, 0 → `UTC`."""
    if minutes == 0:
        return "UTC"
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def local_time(at: datetime, utc_offset_minutes: int) -> str:
    """`2026-11-24 09:00`: a moment on the user's clock (ISO order reads the same in every language)."""
    return (at.astimezone(UTC) + timedelta(minutes=utc_offset_minutes)).strftime("%Y-%m-%d %H:%M")
