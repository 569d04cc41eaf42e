"""Page text built from plain incident data (never rendered as a template: alert text is data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class PageInfo:
    number: int
    title: str
    severity: str
    status: str
    services: list[str]
    url: str
    ack_url: str
    war_room: dict[str, str]
    level: int = 0
    round: int = 0


def page(info: PageInfo, *, recipient_name: str) -> tuple[str, str]:
    """(subject, text) of a page."""
    subject = _one_line(f"[warroom] {info.severity} #{info.number}: {info.title}", 250)
    lines = [
        f"{recipient_name}, you are paged for incident #{info.number} ({info.severity}).",
        "",
        f"Title:    {_one_line(info.title, 300)}",
        f"Status:   {info.status}",
    ]
    if info.services:
        lines.append(f"Services: {_one_line(', '.join(info.services))}")
    if info.level or info.round:
        lines.append(f"Escalation level {info.level + 1}, round {info.round + 1}")
    lines += ["", f"Acknowledge: {info.ack_url}", f"Incident:    {info.url}"]
    for key, value in info.war_room.items():
        lines.append(f"War room ({key}): {_one_line(value)}")
    return subject, "\n".join(lines) + "\n"


def test_page(*, person_name: str, channel: str, public_url: str) -> tuple[str, str]:
    subject = f"[warroom] test page for {person_name} via {channel}"
    text = (
        f"This is a test page for {person_name} through the {channel} channel.\n"
        "Nothing is wrong; no action is needed.\n"
        f"Sent by warroom at {public_url}\n"
    )
    return subject, text


def webhook_data(info: PageInfo, *, event: str = "page") -> dict[str, Any]:
    return {
        "event": event,
        "ack_url": info.ack_url,
        "incident": {
            "number": info.number,
            "title": info.title,
            "severity": info.severity,
            "status": info.status,
            "services": info.services,
            "url": info.url,
        },
        "level": info.level,
        "round": info.round,
    }
