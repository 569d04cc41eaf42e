"""ICS (RFC 5545) export of a schedule's shifts, for calendar apps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from icalendar import Calendar, Event

from warroom.config.schema import Config, Schedule
from warroom.oncall.schedule import Shift


def render(config: Config, schedule: Schedule, shifts: Sequence[Shift], *, now: datetime) -> bytes:
    """One VEVENT per shift, in UTC; the person id is in X-WARROOM-PERSON for tools."""
    cal = Calendar()
    cal.add("prodid", "-//warroom//on-call//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"On call: {schedule.name or schedule.id}")
    for shift in shifts:
        person = config.person(shift.person)
        name = person.name if person else shift.person
        event = Event()
        event.add("uid", f"{schedule.id}-{int(shift.starts_at.timestamp())}-{shift.person}@warroom")
        event.add("dtstamp", now)
        event.add("dtstart", shift.starts_at)
        event.add("dtend", shift.ends_at)
        event.add("summary", f"On call: {name} ({schedule.name or schedule.id})")
        event.add("description", f"person: {shift.person}\nsource: {shift.source}")
        event.add("x-warroom-person", shift.person)
        cal.add_component(event)
    return bytes(cal.to_ical())
