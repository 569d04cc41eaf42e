"""Reports API: MTTA/MTTR, response-time compliance, incidents per service, drills done vs due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query

from warroom.core.durations import parse_duration
from warroom.core.errors import InvalidInput
from warroom.postmortems import reports
from warroom.postmortems.runbookrefs import load_catalog
from warroom.web.deps import RuntimeDep, Viewer

router = APIRouter(prefix="/api/v1", tags=["reports"])
DEFAULT_WINDOW = "30d"


def parse_point(value: str, now: datetime, *, field: str) -> datetime:
    """`30d` (that long before now) or an ISO 8601 time/date. Raises InvalidInput naming it."""
    text = value.strip()
    if text and text[0].isdigit() and not any(c in text for c in "-:T"):
        try:
            return now - parse_duration(text, field=field)
        except OverflowError:
            raise InvalidInput(f"{field}: {value[:60]!r} is too far back", field=field) from None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidInput(
            f"{field}: {value[:60]!r} is neither a duration nor an ISO 8601 time",
            field=field,
            hint="e.g. 30d, 2026-10-01 or 2026-10-01T00:00:00Z",
        ) from None
    if at.tzinfo is None:
        # a bare date or time means UTC: reports are about days, not wall clocks
        at = at.replace(tzinfo=now.tzinfo)
    return at


@router.get("/reports")
def report(
    rt: RuntimeDep,
    _p: Viewer,
    since: str = Query(DEFAULT_WINDOW, max_length=40),
    until: str | None = Query(None, max_length=40),
) -> dict[str, Any]:
    """The report for [since, until); `since` is a duration back from now or a time."""
    now = rt.now()
    end = parse_point(until, now, field="until") if until else now
    start = parse_point(since, end, field="since")
    if end - start > timedelta(days=3660):
        raise InvalidInput("report window longer than 10 years", field="since")
    with rt.db.read() as s:
        result = reports.compute(
            s, start, end, config=rt.config, catalog=load_catalog(rt.settings.runbooks_path)
        )
    return result.as_dict()
