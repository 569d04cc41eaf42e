"""Runbook upkeep: which reviews and drills are overdue, and recording a review in place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from warroom.core.errors import InvalidInput
from warroom.runbooks.model import Catalog

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+ -]{0,99}")


@dataclass(frozen=True)
class Overdue:
    runbook_id: str
    kind: str  # review | drill
    due: date | None  # None: never done
    days_overdue: int
    path: str
    owner: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook_id,
            "kind": self.kind,
            "due": self.due.isoformat() if self.due else None,
            "days_overdue": self.days_overdue,
            "path": self.path,
            "owner": self.owner,
        }


def stale(catalog: Catalog, now: datetime | date) -> list[Overdue]:
    """Reviews and drills that are due before `now`'s date (never done counts as overdue)."""
    today = now.date() if isinstance(now, datetime) else now
    out: list[Overdue] = []
    for rb in catalog:
        if rb.review_every is not None:
            due = rb.review_due()
            if due is None or due < today:
                days = (today - due).days if due else 0
                out.append(Overdue(rb.id, "review", due, days, str(rb.path), rb.owner))
        if rb.drill_every is not None:
            due = rb.last_drill + rb.drill_every if rb.last_drill else None
            if due is None or due < today:
                days = (today - due).days if due else 0
                out.append(Overdue(rb.id, "drill", due, days, str(rb.path), rb.owner))
    return out


def _set_line(lines: list[str], end: int, key: str, value: str) -> int:
    """Replace the value of `key:` keeping spacing and a trailing comment; add it if absent.

    Returns the new index of the closing '---' line.
    """
    pattern = re.compile(rf"^({key}[ \t]*:[ \t]*)([^#\r\n]*?)([ \t]*(?:#[^\r\n]*)?)(\r?\n?)$")
    for i in range(1, end):
        match = pattern.match(lines[i])
        if match:
            lines[i] = match.group(1) + value + match.group(3) + match.group(4)
            return end
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    lines.insert(end, f"{key}: {value}{newline}")
    return end + 1


def review(path: Path | str, by: str, on: date) -> None:
    """Record a review: only the `last_reviewed` and `reviewed_by` lines change.

    Every other byte of the file stays as it was. Raises InvalidInput when the
    file has no front matter or `by` is not a plain name.
    """
    p = Path(path)
    if not _NAME.fullmatch(by) or by != by.strip():
        raise InvalidInput(
            f"reviewer {by!r} must be a plain name (letters, digits, _.@+- and spaces)", field="by"
        )
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{p}: not UTF-8 text") from None
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") not in ("---", "\ufeff---"):
        raise InvalidInput(f"{p}:1: no front matter to record the review in")
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip("\r\n") == "---"), None)
    if end is None:
        raise InvalidInput(f"{p}:1: front matter is never closed")
    end = _set_line(lines, end, "last_reviewed", on.isoformat())
    value = by if re.fullmatch(r"[A-Za-z0-9_.@+-]+", by) else '"' + by + '"'
    _set_line(lines, end, "reviewed_by", value)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes("".join(lines).encode("utf-8"))
    tmp.replace(p)
