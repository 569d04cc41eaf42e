"""Who is on call at an instant, and the shifts ahead: pure functions over config.Schedule.

Hand-offs happen at a wall-clock time in the schedule's time zone, so a daily
09:00 hand-off stays at 09:00 local across a daylight-saving change (the shift
that spans the change is 23 or 25 hours long). Rotations that are not a whole
number of days (`every: 12h`) count absolute time instead.

Precedence at an instant: a run-time override (newest first), then a config
override, then the last layer that covers the instant (later layers win), else
nobody.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from warroom.config.schema import WEEKDAYS, EveryRotation, Layer, Restriction, Schedule
from warroom.core.errors import InvalidInput

# Rotations without `start` count from this Monday, so the order is stable
# across restarts and the same on every replica.
EPOCH = date(2024, 1, 1)
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True)
class OverrideSpan:
    """An override from config or the database, in UTC."""

    person: str
    starts_at: datetime
    ends_at: datetime
    source: str = "config"  # config | runtime
    id: int | None = None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class Shift:
    person: str
    starts_at: datetime
    ends_at: datetime
    source: str  # layer:N | override:config | override:runtime


@dataclass(frozen=True)
class OnCall:
    person: str | None
    source: str  # layer:N, override:..., or "nobody"
    layer: int | None = None


def _parse_handoff(text: str) -> tuple[int | None, time]:
    """'monday 09:00' -> (0, 09:00); '09:00' -> (None, 09:00). Raises InvalidInput."""
    parts = text.strip().lower().split()
    weekday: int | None = None
    if len(parts) == 2:
        day = parts[0][:3]
        if day not in WEEKDAYS:
            raise InvalidInput(f"unknown weekday in handoff {text!r}", field="handoff")
        weekday = WEEKDAYS.index(day)
        clock = parts[1]
    elif len(parts) == 1:
        clock = parts[0]
    else:
        raise InvalidInput(f"handoff {text!r}: expected 'monday 09:00' or '09:00'", field="handoff")
    try:
        hh, mm = clock.split(":")
        return weekday, time(int(hh), int(mm))
    except ValueError:
        raise InvalidInput(f"handoff {text!r}: bad time {clock!r}", field="handoff") from None


def _hhmm(text: str) -> time | None:
    """'24:00' -> None (end of day)."""
    if text == "24:00":
        return None
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    # fold=0: in the repeated autumn hour the first occurrence; in the spring
    # gap Python maps the wall time forward by the gap, consistently.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


class _Rotation:
    """Boundaries of one layer's rotation: boundary(k) is the k-th hand-off instant."""

    def __init__(self, layer: Layer, tz: ZoneInfo) -> None:
        self.layer = layer
        self.tz = tz
        weekday, handoff = _parse_handoff(layer.handoff)
        rotation = layer.rotation
        self.step_days: int | None
        self.step: timedelta
        if rotation == "daily":
            self.step_days, self.step = 1, timedelta(days=1)
        elif rotation == "weekly":
            self.step_days, self.step = 7, timedelta(days=7)
        else:
            assert isinstance(rotation, EveryRotation)
            if rotation.every <= timedelta(0):
                raise InvalidInput("rotation 'every' must be positive", field="rotation")
            self.step = rotation.every
            whole = rotation.every % timedelta(days=1) == timedelta(0)
            self.step_days = rotation.every.days if whole else None
        if layer.start is not None:
            start = layer.start if layer.start.tzinfo else layer.start.replace(tzinfo=tz)
            local = start.astimezone(tz)
            self.anchor_day = local.date()
            self.anchor_time = local.timetz().replace(tzinfo=None)
        else:
            day = EPOCH
            if weekday is not None:
                day = EPOCH + timedelta(days=(weekday - EPOCH.weekday()) % 7)
            self.anchor_day = day
            self.anchor_time = handoff
        self.origin = _local(self.anchor_day, self.anchor_time, tz)

    def boundary(self, k: int) -> datetime:
        if self.step_days is not None:
            return _local(
                self.anchor_day + timedelta(days=k * self.step_days), self.anchor_time, self.tz
            )
        return self.origin + k * self.step

    def index(self, at: datetime) -> int:
        """The k with boundary(k) <= at < boundary(k+1)."""
        k = math.floor((at - self.origin) / self.step)
        for _ in range(4):  # DST moves a boundary by at most an hour or two
            if self.boundary(k) > at:
                k -= 1
            elif self.boundary(k + 1) <= at:
                k += 1
            else:
                break
        return k

    def member(self, at: datetime) -> str:
        members = self.layer.members
        return members[self.index(at) % len(members)]

    def boundaries(self, start: datetime, end: datetime) -> Iterable[datetime]:
        k = self.index(start) + 1
        while (b := self.boundary(k)) < end:
            yield b
            k += 1


def _restriction_covers(r: Restriction, local: datetime) -> bool:
    frm, to = _hhmm(r.from_) or time(0), _hhmm(r.to)
    t = local.time()
    day = WEEKDAYS[local.weekday()]
    prev_day = WEEKDAYS[(local.weekday() - 1) % 7]
    if to is None or frm < to:
        return day in r.days and frm <= t and (to is None or t < to)
    # an overnight window (18:00-09:00) belongs to the day it starts on
    if t >= frm:
        return day in r.days
    return t < to and prev_day in r.days


def _restriction_edges(
    r: Restriction, tz: ZoneInfo, start: datetime, end: datetime
) -> Iterable[datetime]:
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        for text in (r.from_, r.to):
            t = _hhmm(text)
            edge = _local(day + timedelta(days=1), time(0), tz) if t is None else _local(day, t, tz)
            if start < edge < end:
                yield edge
        day += timedelta(days=1)


def config_overrides(schedule: Schedule) -> list[OverrideSpan]:
    return [
        OverrideSpan(o.person, o.from_.astimezone(UTC), o.to.astimezone(UTC), "config")
        for o in schedule.overrides
    ]


def oncall_at(
    schedule: Schedule, at: datetime, runtime_overrides: Sequence[OverrideSpan] = ()
) -> OnCall:
    """Who is on call at `at` (aware). Runtime overrides are given newest first."""
    if at.tzinfo is None:
        raise InvalidInput("the instant needs a UTC offset", field="at")
    at = at.astimezone(UTC)
    for o in runtime_overrides:
        if o.covers(at):
            return OnCall(o.person, "override:runtime")
    for o in config_overrides(schedule):
        if o.covers(at):
            return OnCall(o.person, "override:config")
    tz = ZoneInfo(schedule.timezone)
    for i in range(len(schedule.layers) - 1, -1, -1):
        layer = schedule.layers[i]
        if layer.restrict is not None and not _restriction_covers(
            layer.restrict, at.astimezone(tz)
        ):
            continue
        rotation = _Rotation(layer, tz)
        if layer.start is not None and at < rotation.origin:
            continue  # the rotation has not begun yet
        return OnCall(rotation.member(at), f"layer:{i}", i)
    return OnCall(None, "nobody")


def shifts(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    runtime_overrides: Sequence[OverrideSpan] = (),
) -> list[Shift]:
    """Consecutive shifts between start and end (clipped), merging equal neighbours.

    Raises InvalidInput for a window that is reversed or longer than a year.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("window bounds need a UTC offset", field="at")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise InvalidInput("the window ends before it starts", field="days")
    if end - start > MAX_WINDOW:
        raise InvalidInput("the window is longer than a year", field="days")
    tz = ZoneInfo(schedule.timezone)
    points: set[datetime] = {start}
    for layer in schedule.layers:
        rotation = _Rotation(layer, tz)
        if start < rotation.origin < end:
            points.add(rotation.origin)
        points.update(rotation.boundaries(start, end))
        if layer.restrict is not None:
            points.update(_restriction_edges(layer.restrict, tz, start, end))
    for o in [*config_overrides(schedule), *runtime_overrides]:
        for edge in (o.starts_at, o.ends_at):
            if start < edge < end:
                points.add(edge)
    ordered = sorted(points)
    out: list[Shift] = []
    for i, point in enumerate(ordered):
        stop = ordered[i + 1] if i + 1 < len(ordered) else end
        who = oncall_at(schedule, point, runtime_overrides)
        if who.person is None:
            continue
        if (
            out
            and out[-1].person == who.person
            and out[-1].ends_at == point
            and out[-1].source == who.source
        ):
            out[-1] = Shift(who.person, out[-1].starts_at, stop, who.source)
        else:
            out.append(Shift(who.person, point, stop, who.source))
    return out
