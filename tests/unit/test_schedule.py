"""Schedules: hand-offs in two time zones across DST, overrides, restrictions, ICS export."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from warroom.config.loader import parse_config
from warroom.config.schema import Schedule
from warroom.core.errors import InvalidInput
from warroom.oncall import ics
from warroom.oncall.schedule import OverrideSpan, oncall_at, shifts

pytestmark = pytest.mark.unit

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
PEOPLE = [
    {"id": n, "name": n.title(), "email": f"{n}@example.com"}
    for n in ("alice", "bob", "carol", "dave")
]


def make_schedule(**over: Any) -> Schedule:
    data: dict[str, Any] = {
        "id": "primary",
        "timezone": "Europe/Berlin",
        "layers": [{"rotation": "daily", "handoff": "09:00", "members": ["alice", "bob"]}],
    }
    data.update(over)
    cfg = parse_config({"people": PEOPLE, "schedules": [data]})
    return cfg.schedules[0]


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def test_daily_handoff_stays_at_local_0900_across_autumn_dst_in_berlin() -> None:
    s = make_schedule()
    # Berlin leaves summer time on Sunday 2026-10-25 at 03:00 local
    before = local(BERLIN, 2026, 10, 24, 9, 0)
    after = local(BERLIN, 2026, 10, 25, 9, 0)
    assert before.astimezone(UTC).hour == 7 and after.astimezone(UTC).hour == 8
    for handoff in (before, after, local(BERLIN, 2026, 10, 26, 9, 0)):
        just_before = oncall_at(s, handoff - timedelta(seconds=1)).person
        at = oncall_at(s, handoff).person
        assert at != just_before, handoff
    spans = shifts(s, before, before + timedelta(days=2))
    lengths = [sp.ends_at - sp.starts_at for sp in spans]
    assert lengths == [timedelta(hours=25), timedelta(hours=24)]


def test_daily_handoff_across_spring_dst_gives_a_23_hour_shift() -> None:
    s = make_schedule()
    start = local(BERLIN, 2026, 3, 28, 9, 0)  # summer time starts 2026-03-29 02:00
    spans = shifts(s, start, start + timedelta(days=2))
    assert next(sp.ends_at - sp.starts_at for sp in spans) == timedelta(hours=23)
    assert spans[1].starts_at == local(BERLIN, 2026, 3, 29, 9, 0).astimezone(UTC)


def test_weekly_handoff_in_new_york_across_dst_is_monday_0900_local() -> None:
    s = make_schedule(
        timezone="America/New_York",
        layers=[
            {"rotation": "weekly", "handoff": "monday 09:00", "members": ["alice", "bob", "carol"]}
        ],
    )
    # US summer time ends Sunday 2026-11-01
    mon1 = local(NEW_YORK, 2026, 10, 26, 9, 0)
    mon2 = local(NEW_YORK, 2026, 11, 2, 9, 0)
    assert mon2.astimezone(UTC) - mon1.astimezone(UTC) == timedelta(days=7, hours=1)
    a, b = oncall_at(s, mon1).person, oncall_at(s, mon2).person
    assert a != b
    assert oncall_at(s, mon2 - timedelta(minutes=1)).person == a
    assert oncall_at(s, local(NEW_YORK, 2026, 11, 1, 23, 0)).person == a
    # three members: the person three weeks later is the same again
    assert oncall_at(s, mon1 + timedelta(days=21, hours=1)).person == a


def test_same_instant_differs_between_time_zones() -> None:
    berlin = make_schedule()
    ny = make_schedule(timezone="America/New_York")
    t = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # 13:00 Berlin (after 09:00), 07:00 NY (before)
    assert oncall_at(berlin, t).person != oncall_at(ny, t).person


def test_every_rotation_with_start_counts_from_start() -> None:
    s = make_schedule(
        layers=[
            {
                "rotation": {"every": "3d"},
                "start": "2026-11-02T08:00:00+01:00",
                "members": ["alice", "bob"],
            }
        ]
    )
    t0 = local(BERLIN, 2026, 11, 2, 8, 0)
    assert oncall_at(s, t0 - timedelta(minutes=1)).person is None  # not begun
    assert oncall_at(s, t0).person == "alice"
    assert oncall_at(s, t0 + timedelta(days=3)).person == "bob"
    assert oncall_at(s, t0 + timedelta(days=6)).person == "alice"


def test_config_override_inside_a_shift_and_across_a_handoff() -> None:
    s = make_schedule(
        overrides=[
            {
                "person": "carol",
                "from": "2026-11-03T12:00:00+01:00",
                "to": "2026-11-03T14:00:00+01:00",
            },
            {
                "person": "dave",
                "from": "2026-11-04T20:00:00+01:00",
                "to": "2026-11-05T12:00:00+01:00",
            },
        ]
    )
    regular = oncall_at(s, local(BERLIN, 2026, 11, 3, 11, 0)).person
    assert oncall_at(s, local(BERLIN, 2026, 11, 3, 12, 30)).source == "override:config"
    assert oncall_at(s, local(BERLIN, 2026, 11, 3, 12, 30)).person == "carol"
    assert oncall_at(s, local(BERLIN, 2026, 11, 3, 14, 0)).person == regular
    # dave covers the 09:00 hand-off on the 5th and gives back to the new person
    assert oncall_at(s, local(BERLIN, 2026, 11, 5, 9, 0)).person == "dave"
    after = oncall_at(s, local(BERLIN, 2026, 11, 5, 12, 0)).person
    assert after != oncall_at(s, local(BERLIN, 2026, 11, 4, 19, 0)).person
    spans = shifts(s, local(BERLIN, 2026, 11, 4, 9, 0), local(BERLIN, 2026, 11, 5, 18, 0))
    assert [sp.person for sp in spans][1] == "dave"
    assert spans[1].ends_at == local(BERLIN, 2026, 11, 5, 12, 0).astimezone(UTC)


def test_runtime_override_wins_over_config_and_newest_first() -> None:
    s = make_schedule(
        overrides=[
            {
                "person": "carol",
                "from": "2026-11-03T00:00:00+01:00",
                "to": "2026-11-04T00:00:00+01:00",
            }
        ]
    )
    t = local(BERLIN, 2026, 11, 3, 10, 0)
    spans = [
        OverrideSpan("dave", t - timedelta(hours=1), t + timedelta(hours=1), "runtime", 2),
        OverrideSpan("alice", t - timedelta(hours=5), t + timedelta(hours=5), "runtime", 1),
    ]
    assert oncall_at(s, t, spans).person == "dave"
    assert oncall_at(s, t + timedelta(hours=2), spans).person == "alice"
    assert oncall_at(s, t + timedelta(hours=6), spans).person == "carol"


def test_business_hours_restriction_layer_wins_only_inside_its_window() -> None:
    s = make_schedule(
        layers=[
            {"rotation": "weekly", "handoff": "monday 09:00", "members": ["alice"]},
            {
                "rotation": "daily",
                "handoff": "09:00",
                "members": ["carol"],
                "restrict": {
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                    "from": "09:00",
                    "to": "18:00",
                },
            },
        ]
    )
    assert oncall_at(s, local(BERLIN, 2026, 11, 4, 10, 0)).person == "carol"  # Wednesday
    assert oncall_at(s, local(BERLIN, 2026, 11, 4, 18, 0)).person == "alice"
    assert oncall_at(s, local(BERLIN, 2026, 11, 4, 8, 59)).person == "alice"
    assert oncall_at(s, local(BERLIN, 2026, 11, 7, 12, 0)).person == "alice"  # Saturday
    week = shifts(s, local(BERLIN, 2026, 11, 2, 0, 0), local(BERLIN, 2026, 11, 9, 0, 0))
    assert sum(1 for sp in week if sp.person == "carol") == 5
    assert all(
        sp.ends_at - sp.starts_at == timedelta(hours=9) for sp in week if sp.person == "carol"
    )


def test_overnight_restriction_belongs_to_the_day_it_starts() -> None:
    s = make_schedule(
        layers=[
            {
                "rotation": "daily",
                "members": ["bob"],
                "restrict": {"days": ["fri"], "from": "18:00", "to": "09:00"},
            }
        ]
    )
    assert oncall_at(s, local(BERLIN, 2026, 11, 6, 19, 0)).person == "bob"  # Friday evening
    assert oncall_at(s, local(BERLIN, 2026, 11, 7, 8, 0)).person == "bob"  # Saturday morning
    assert oncall_at(s, local(BERLIN, 2026, 11, 7, 19, 0)).person is None


def test_bad_windows_and_naive_instants_are_refused() -> None:
    s = make_schedule()
    t = datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        oncall_at(s, datetime(2026, 11, 2))
    with pytest.raises(InvalidInput):
        shifts(s, t, t - timedelta(days=1))
    with pytest.raises(InvalidInput):
        shifts(s, t, t + timedelta(days=400))


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_ics_parses_and_matches_oncall_at_sampled_instants(tz: str) -> None:
    s = make_schedule(
        timezone=tz,
        layers=[
            {"rotation": "weekly", "handoff": "monday 09:00", "members": ["alice", "bob"]},
            {
                "rotation": "daily",
                "members": ["carol", "dave"],
                "restrict": {
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                    "from": "09:00",
                    "to": "18:00",
                },
            },
        ],
        overrides=[
            {
                "person": "dave",
                "from": "2026-10-31T22:00:00+00:00",
                "to": "2026-11-01T10:00:00+00:00",
            }
        ],
    )
    cfg = parse_config({"people": PEOPLE, "schedules": [s.model_dump(by_alias=True, mode="json")]})
    start = datetime(2026, 10, 20, tzinfo=UTC)
    end = start + timedelta(days=21)  # spans both DST changes
    body = ics.render(cfg, cfg.schedules[0], shifts(cfg.schedules[0], start, end), now=start)
    cal = icalendar.Calendar.from_ical(body)
    events = [
        (c.decoded("dtstart"), c.decoded("dtend"), str(c.get("x-warroom-person")))
        for c in cal.walk("VEVENT")
    ]
    assert len(events) > 20
    rng = random.Random(5)
    for _ in range(300):
        t = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        covering = [p for a, b, p in events if a <= t < b]
        expected = oncall_at(cfg.schedules[0], t).person
        assert covering == ([expected] if expected else []), t
