"""Report figures match an independent computation over a generated history of 600 incidents."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from warroom.core.clock import FrozenClock
from warroom.core.errors import InvalidInput
from warroom.incidents.models import Incident
from warroom.jobs.runtime import Runtime
from warroom.postmortems import reports
from warroom.postmortems.models import Drill
from warroom.postmortems.runbookrefs import RunbookRef

pytestmark = pytest.mark.integration

SINCE = datetime(2026, 6, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
RESPOND = {"P0": 15 * 60, "P1": 3600, "P2": 4 * 3600, "P3": 24 * 3600}
SERVICES = ["api", "web", "db", "queue"]


def _history(seed: int, n: int) -> list[dict[str, Any]]:
    """Incidents spread over (and a little outside) the window, with every clock shape."""
    rng = random.Random(seed)
    out = []
    span = (UNTIL - SINCE).total_seconds()
    for i in range(n):
        # 5% outside the window on either side, 5% drills: both must be left out
        offset = rng.uniform(-0.05, 1.05) * span
        declared = SINCE + timedelta(seconds=round(offset))
        detected = declared - timedelta(seconds=rng.choice([0, 0, 30, 300, 1800]))
        sev = rng.choice(["P0", "P1", "P1", "P2", "P2", "P3"])
        acked = declared + timedelta(seconds=rng.randint(5, 3 * RESPOND[sev]))
        if rng.random() < 0.05:
            acked = declared + timedelta(seconds=RESPOND[sev])  # exactly at respond-by: in time
        if rng.random() < 0.08:
            acked = None  # never acknowledged (still open, or resolved by nobody)
        resolved = None
        if rng.random() < 0.85:
            resolved = (acked or declared) + timedelta(seconds=rng.randint(60, 3 * 86400))
        services = rng.sample(SERVICES, k=rng.choice([0, 1, 1, 2]))
        respond_by = declared + timedelta(seconds=RESPOND[sev])
        if rng.random() < 0.1:
            respond_by = None  # old rows: the policy decides
        out.append(
            {
                "number": i + 1,
                "severity": sev,
                "services": services,
                "detected_at": detected,
                "declared_at": declared,
                "acknowledged_at": acked,
                "resolved_at": resolved,
                "respond_by": respond_by,
                "is_drill": rng.random() < 0.05,
            }
        )
    return out


def _insert(rt: Runtime, rows: list[dict[str, Any]]) -> None:
    with rt.db.transaction() as s:
        for r in rows:
            s.add(
                Incident(
                    number=r["number"],
                    title=f"generated {r['number']}",
                    severity=r["severity"],
                    status="resolved" if r["resolved_at"] else "investigating",
                    services=r["services"],
                    runbooks=[],
                    responders=[],
                    created_by="gen",
                    detected_at=r["detected_at"],
                    declared_at=r["declared_at"],
                    acknowledged_at=r["acknowledged_at"],
                    resolved_at=r["resolved_at"],
                    respond_by=r["respond_by"],
                    is_drill=r["is_drill"],
                    created_at=r["declared_at"],
                    updated_at=r["declared_at"],
                )
            )


def _nearest_rank(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = -(-pct * len(ordered) // 100)  # ceil without floats
    return ordered[k - 1]


def _middle(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The same definitions as the module docstring, written out longhand."""
    kept = [r for r in rows if not r["is_drill"] and SINCE <= r["declared_at"] < UNTIL]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in kept:
        keys = [("severity", r["severity"]), ("month", r["declared_at"].strftime("%Y-%m"))]
        keys += [("service", s) for s in (r["services"] or ["(none)"])]
        for key in keys:
            groups.setdefault(key, []).append(r)

    def figures(members: list[dict[str, Any]]) -> dict[str, Any]:
        tta = [
            (r["acknowledged_at"] - r["detected_at"]).total_seconds()
            for r in members
            if r["acknowledged_at"]
        ]
        ttr = [
            (r["resolved_at"] - r["detected_at"]).total_seconds()
            for r in members
            if r["resolved_at"]
        ]
        return {
            "incidents": len(members),
            "acknowledged": len(tta),
            "resolved": len(ttr),
            "mtta_median": _middle(tta),
            "mtta_p90": _nearest_rank(tta, 90),
            "mttr_median": _middle(ttr),
            "mttr_p90": _nearest_rank(ttr, 90),
        }

    compliance: dict[str, dict[str, Any]] = {}
    for r in kept:
        deadline = r["respond_by"] or r["declared_at"] + timedelta(seconds=RESPOND[r["severity"]])
        c = compliance.setdefault(r["severity"], {"decided": 0, "within": 0})
        if r["acknowledged_at"] is not None:
            c["decided"] += 1
            c["within"] += r["acknowledged_at"] <= deadline
        elif deadline <= UNTIL:
            c["decided"] += 1
    for c in compliance.values():
        c["rate"] = c["within"] / c["decided"] if c["decided"] else None
    return {
        "total": len(kept),
        "overall": figures(kept),
        "by_severity": {k: figures(v) for (kind, k), v in groups.items() if kind == "severity"},
        "by_service": {k: figures(v) for (kind, k), v in groups.items() if kind == "service"},
        "by_month": {k: figures(v) for (kind, k), v in groups.items() if kind == "month"},
        "compliance": compliance,
    }


def _close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return set(actual) == set(expected) and all(
            _close(actual[k], expected[k]) for k in expected
        )
    if isinstance(expected, float) or isinstance(actual, float):
        return actual is not None and expected is not None and abs(actual - expected) < 1e-6
    return bool(actual == expected)


def test_report_matches_independent_figures_for_600_incidents(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rows = _history(seed=7, n=600)
    rt = make_runtime(db_url, clock=FrozenClock(UNTIL))
    _insert(rt, rows)
    with rt.db.read() as s:
        got = reports.compute(s, SINCE, UNTIL, config=rt.config).as_dict()
    want = _expected(rows)
    assert want["total"] >= 500
    assert got["total"] == want["total"]
    for section in ("overall", "by_severity", "by_service", "by_month", "compliance"):
        assert _close(got[section], want[section]), section
    assert got["incidents_per_service"] == {
        k: v["incidents"] for k, v in want["by_service"].items()
    }
    assert sum(got["incidents_per_service"].values()) >= got["total"]  # multi-service counts twice


def test_report_drills_done_against_due(
    sqlite_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_runtime(sqlite_url, clock=FrozenClock(UNTIL))
    with rt.db.transaction() as s:
        for finished in (SINCE + timedelta(days=10), SINCE - timedelta(days=10)):
            s.add(
                Drill(
                    runbook_id="disaster-recovery",
                    started_by="alice",
                    started_at=finished - timedelta(hours=1),
                    finished_at=finished,
                    outcome="passed",
                    failures=[],
                )
            )
    ref = RunbookRef(
        id="disaster-recovery",
        title="DR",
        owner="devops-team",
        severity="P0",
        path=tmp_path / "dr.md",
        file_hash="0" * 64,
        last_reviewed=date(2026, 6, 1),
        reviewed_by="alice",
        drill_every=timedelta(days=90),
    )
    with rt.db.read() as s:
        got = reports.compute(s, SINCE, UNTIL, config=rt.config, catalog=[ref])
    # 153 days at one drill per 90 days: 2 due, 1 held inside the window
    assert (got.drills_done, got.drills_due) == (1, 2)
    assert got.drills[0].overdue is True  # last drill 143 days before `until`


def test_report_rejects_an_empty_window(
    sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    with rt.db.read() as s, pytest.raises(InvalidInput, match="until must be after since"):
        reports.compute(s, UNTIL, SINCE, config=rt.config)


def test_metric_lines_count_acks_breaches_deliveries_and_overdue_items(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    from warroom.notify.models import Delivery
    from warroom.postmortems.models import ActionItem

    rt = make_runtime(db_url, clock=FrozenClock(UNTIL))
    rows = _history(seed=3, n=40)
    _insert(rt, rows)
    with rt.db.transaction() as s:
        breached = s.get(Incident, 1)
        assert breached is not None
        breached.breached_at = breached.declared_at + timedelta(hours=1)
        for i, state in enumerate(["sent", "sent", "dead", "queued"]):
            s.add(
                Delivery(
                    recipient="alice",
                    channel="email",
                    idempotency_key=f"k{i}",
                    state=state,
                    created_at=UNTIL,
                    updated_at=UNTIL,
                )
            )
        s.add(ActionItem(title="late", due_date=date(2026, 10, 1), created_at=UNTIL))
        s.add(ActionItem(title="done", due_date=date(2026, 10, 1), state="done", created_at=UNTIL))
    with rt.db.read() as s:
        text = "\n".join(reports.metric_lines(s, today=UNTIL.date()))
    real = [r for r in rows if not r["is_drill"]]
    for sev in ("P0", "P1", "P2", "P3"):
        of_sev = [r for r in real if r["severity"] == sev]
        acked = sum(1 for r in of_sev if r["acknowledged_at"])
        assert f'warroom_incidents_total{{severity="{sev}"}} {len(of_sev)}' in text
        assert f'warroom_incidents_acknowledged_total{{severity="{sev}"}} {acked}' in text
    sev1 = rows[0]["severity"]
    assert (
        f'warroom_response_breaches_total{{severity="{sev1}"}} {0 if rows[0]["is_drill"] else 1}'
        in text
    )
    assert 'warroom_deliveries{state="sent"} 2' in text
    assert 'warroom_deliveries{state="dead"} 1' in text
    assert 'warroom_deliveries{state="cancelled"} 0' in text
    assert "warroom_action_items_overdue 1" in text
