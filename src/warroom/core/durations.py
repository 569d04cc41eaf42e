"""Durations as people write them in config and front matter: 30s, 15m, 4h, 1d, 2w."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from warroom.core.errors import InvalidInput

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 10 * 366 * 86400
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float, *, field: str | None = None) -> timedelta:
    """Parse `1h30m`, `15m`, `90s` or a number of seconds.

    Raises InvalidInput naming the text when it is not a duration.
    """
    if isinstance(text, bool):
        raise InvalidInput(f"not a duration: {text!r}", field=field)
    if isinstance(text, int | float):
        if text < 0 or math.isnan(text):
            raise InvalidInput(f"duration must not be negative: {text}", field=field)
        if text > MAX_SECONDS:
            raise InvalidInput(f"duration too long: {text}", field=field, hint="at most 10 years")
        return timedelta(seconds=text)
    raw = str(text).strip().lower()
    if not raw:
        raise InvalidInput("empty duration", field=field, hint="write e.g. 30s, 15m, 4h, 1d")
    pos = 0
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw):
        raise InvalidInput(
            f"not a duration: {text!r}", field=field, hint="write e.g. 30s, 15m, 4h, 1d or 1h30m"
        )
    if total > MAX_SECONDS:
        raise InvalidInput(f"duration too long: {text!r}", field=field, hint="at most 10 years")
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    """Short human form: 1h 5m, 45s, 2d 3h."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    if secs and not days and not hours:
        parts.append(f"{secs}s")
    return sign + (" ".join(parts) or "0s")
