"""Postmortem drafts from the real record, on SQLite and PostgreSQL; reminders until published."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select

from tests.fakes.receivers import SmtpSink, smtp_server
from warroom.core.clock import FrozenClock
from warroom.core.errors import Conflict, InvalidInput
from warroom.incidents import service as incidents
from warroom.incidents import timeline
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.models import Job
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, Worker
from warroom.notify.models import Delivery
from warroom.oncall import jobs as oncall_jobs
from warroom.postmortems import actions
from warroom.postmortems import jobs as pm_jobs
from warroom.postmortems import service as postmortems

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SMTP = {"email": {"type": "smtp", "host": "127.0.0.1", "port": 9, "from": "warroom@example.com"}}


def _resolved_p1(rt: Runtime, clock: FrozenClock) -> Incident:
    """A P1 from an alert, with a runbook run, notes, status changes and a hostile note."""
    with rt.db.transaction() as s:
        inc = incidents.create(
            s,
            config=rt.config,
            title="Checkout | errors *spike* <b>now</b>",
            severity="P1",
            actor="alertmanager",
            now=clock.now(),
            services=["api"],
            customer_impact="About 30% of checkouts failed for EU customers",
            summary="Error rate on the checkout API rose to 30%.",
            source="alert",
            detected_at=clock.now() - timedelta(minutes=4),
            page=False,
        )
        timeline.add(
            s,
            inc,
            kind="alert.firing",
            actor="alertmanager",
            at=clock.now(),
            text="Alert HighErrorRate firing (service=api)",
        )
        number = inc.number
    steps: list[tuple[timedelta, Callable[[Incident, object], None]]] = [
        (
            timedelta(minutes=6),
            lambda i, s: incidents.acknowledge(s, i, actor="alice", now=clock.now()),  # type: ignore[arg-type]
        ),
        (
            timedelta(minutes=3),
            lambda i, s: timeline.add(
                s,  # type: ignore[arg-type]
                i,
                kind="runbook.run",
                actor="alice",
                at=clock.now(),
                text="Runbook high-error-rate run 3: 4 steps succeeded",
            ),
        ),
        (
            timedelta(minutes=2),
            lambda i, s: incidents.add_note(
                s,  # type: ignore[arg-type]
                i,
                text="# not a heading\n[click](javascript:alert(1)) <script>x</script> | a | b |",
                actor="bob",
                now=clock.now(),
            ),
        ),
        (
            timedelta(minutes=5),
            lambda i, s: incidents.set_status(
                s,
                i,
                status="identified",
                actor="alice",
                now=clock.now(),  # type: ignore[arg-type]
            ),
        ),
        (
            timedelta(minutes=10),
            lambda i, s: incidents.set_status(
                s,
                i,
                status="monitoring",
                actor="alice",
                now=clock.now(),  # type: ignore[arg-type]
            ),
        ),
        (
            timedelta(minutes=36),
            lambda i, s: incidents.resolve(s, i, actor="alice", now=clock.now()),  # type: ignore[arg-type]
        ),
    ]
    for delta, act in steps:
        clock.advance(delta)
        with rt.db.transaction() as s:
            act(incidents.get_or_raise(s, number=number), s)
    with rt.db.read() as s:
        return incidents.get_or_raise(s, number=number)


def _section(md: str, heading: str) -> list[str]:
    body = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


def test_resolved_p1_yields_markdown_whose_timeline_matches_the_events(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, clock=clock)
    incident = _resolved_p1(rt, clock)
    clock.advance(timedelta(hours=1))
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=incident.number)
        pm = postmortems.create(
            s, incident=inc, author="alice", now=clock.now(), redactor=rt.redactor
        )
        actions.create(
            s,
            title="Alert on checkout error budget burn",
            kind="monitoring",
            now=clock.now(),
            actor="alice",
            incident=inc,
            owner="bob",
            due_date="2026-11-20",
        )
        md = postmortems.to_markdown(
            pm,
            incident=inc,
            items=postmortems.action_items(s, incident=inc),
            config=rt.config,
            now=clock.now(),
        )
        events = s.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == inc.id, TimelineEvent.kind != "postmortem.created")
            .order_by(TimelineEvent.id)
        ).all()

    # header: date, duration (detection 09:56 -> resolution 11:02), severity, impact
    assert "- **Date:** 2026-11-02 09:56" in md
    assert "- **Duration:** 1h 6m" in md
    assert "- **Severity:** P1 (High)" in md
    assert "- **Impact:** About 30% of checkouts failed for EU customers" in md

    # timeline: detection, then every incident event in order, each `- HH:MM - text`
    lines = _section(md, "Timeline")[1:]  # first line says the time zone
    assert lines[0] == "- 09:56 - Problem detected"
    entries = lines[1:]
    assert len(entries) == len(events)
    kinds = [e.kind for e in events]
    assert kinds == [
        "incident.declared",
        "alert.firing",
        "incident.acknowledged",
        "runbook.run",
        "note",
        "incident.status",
        "incident.status",
        "incident.resolved",
    ]
    for line, event in zip(entries, events, strict=True):
        assert re.fullmatch(r"- \d\d:\d\d - .+", line), line
        assert line.startswith(f"- {event.at.strftime('%H:%M')} - ")
    assert "Acknowledged by alice" in entries[2]
    assert "Runbook high\\-error\\-rate run 3" in entries[3] or "high-error-rate" in entries[3]
    assert entries[4].startswith("- 10:11 - Note by bob: \\# not a heading")

    # action items as a task list
    assert _section(md, "Action Items") == [
        "- [ ] Alert on checkout error budget burn (monitoring, owner bob, due 2026-11-20)"
    ]

    # renders as plain Markdown: exactly our sections, no HTML, no links from user data
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    headings = [
        "".join(c.content for c in tokens[i + 1].children or [] if c.type == "text")
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    assert headings == [
        "Postmortem: Checkout | errors *spike* <b>now</b>",
        "Summary",
        "Timeline",
        "Root Cause",
        "Resolution",
        "Action Items",
        "Lessons Learned",
    ]
    flat = [t for tok in tokens for t in [tok, *(tok.children or [])]]
    assert not [
        t for t in flat if t.type in ("html_block", "html_inline", "link_open", "table_open")
    ]


def test_draft_is_editable_until_published(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, clock=clock)
    incident = _resolved_p1(rt, clock)
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=incident.number)
        pm = postmortems.create(s, incident=inc, author="alice", now=clock.now())
        with pytest.raises(Conflict, match="already has a postmortem"):
            postmortems.create(s, incident=inc, author="alice", now=clock.now())
        postmortems.update(
            s,
            pm,
            changes={
                "root_cause": "A config push disabled the connection pool.",
                "timeline": [
                    {"at": "2026-11-02T10:30:00+00:00", "text": "Rolled back the config push"},
                    {"at": "2026-11-02T09:50:00+00:00", "text": "Config pushed"},
                ],
            },
            actor="alice",
            now=clock.now(),
        )
        with pytest.raises(InvalidInput, match="ISO 8601") as bad:
            postmortems.update(
                s,
                pm,
                changes={"timeline": [{"at": "yesterday", "text": "x"}]},
                actor="a",
                now=clock.now(),
            )
        assert bad.value.field == "timeline.0.at"
        with pytest.raises(InvalidInput, match="unknown field"):
            postmortems.update(s, pm, changes={"state": "published"}, actor="a", now=clock.now())
        md = postmortems.to_markdown(pm, incident=inc, items=[], config=rt.config, now=clock.now())
        assert _section(md, "Timeline")[1:] == [
            "- 09:50 - Config pushed",
            "- 10:30 - Rolled back the config push",
        ]
        assert "A config push disabled the connection pool." in md
        postmortems.publish(s, pm, incident=inc, actor="carol", now=clock.now())
        with pytest.raises(Conflict, match="published"):
            postmortems.update(s, pm, changes={"lessons": "x"}, actor="a", now=clock.now())


def test_configured_template_is_used_and_a_broken_one_is_named(
    sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    clock = FrozenClock(T0)
    tpl = "# {{ title }}\n{{ severity }} lasted {{ duration }}\n{% for e in timeline %}* {{ e.text }}\n{% endfor %}"
    rt = make_runtime(sqlite_url, {"templates": {"postmortem": tpl}}, clock=clock)
    incident = _resolved_p1(rt, clock)
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=incident.number)
        pm = postmortems.create(s, incident=inc, author="alice", now=clock.now())
        md = postmortems.to_markdown(pm, incident=inc, items=[], config=rt.config, now=clock.now())
        assert md.startswith(
            "# Checkout \\| errors \\*spike\\* \\<b\\>now\\</b\\>\nP1 lasted 1h 6m\n"
        )
        broken = rt.config.model_copy(
            update={
                "templates": rt.config.templates.model_copy(update={"postmortem": "{{ nope }}"})
            }
        )
        with pytest.raises(InvalidInput, match=r"templates\.postmortem"):
            postmortems.to_markdown(pm, incident=inc, items=[], config=broken, now=clock.now())


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_server() as smtp:
        yield smtp


def test_reminders_follow_resolution_until_the_postmortem_is_published(
    db_url: str, make_runtime: Callable[..., Runtime], sink: SmtpSink
) -> None:
    clock = FrozenClock(T0)
    channels = {"email": {**SMTP["email"], "port": sink.port}}
    rt = make_runtime(
        db_url,
        {"channels": channels, "policies": {"postmortem_reminder_every": "1d"}},
        clock=clock,
    )
    registry = Registry()
    pm_jobs.register(registry)
    oncall_jobs.register(registry)  # the delivery handler that really sends mail
    worker = Worker(rt, registry)
    incident = _resolved_p1(rt, clock)
    with rt.db.transaction() as s:  # a P2 and a drill need no postmortem
        for sev, drill in (("P2", False), ("P0", True)):
            other = incidents.create(
                s,
                config=rt.config,
                title=f"other {sev}",
                severity=sev,
                actor="bob",
                now=clock.now(),
                is_drill=drill,
                page=False,
            )
            incidents.resolve(s, other, actor="bob", now=clock.now())
        # resolved 90 days ago: past its 60 daily reminders, it no longer takes a sweep slot
        old = incidents.create(
            s,
            config=rt.config,
            title="old P1",
            severity="P1",
            actor="bob",
            now=clock.now() - timedelta(days=90),
            page=False,
        )
        incidents.resolve(s, old, actor="bob", now=clock.now() - timedelta(days=90))

    def reminders() -> list[TimelineEvent]:
        with rt.db.read() as s:
            return list(
                s.scalars(select(TimelineEvent).where(TimelineEvent.kind == pm_jobs.REMINDER_EVENT))
            )

    assert pm_jobs.sweep_reminders(rt) == 1  # due at resolution
    assert pm_jobs.sweep_reminders(rt) == 0  # the same reminder is not queued twice
    for _ in range(5):  # the reminder job, then the delivery job it wrote
        if not worker.run_once():
            break
    (mail,) = sink.wait_for(1, address="alice@example.com")
    assert mail["Subject"] == f"Postmortem due for incident #{incident.number} (P1)"
    assert f"warroom postmortem create {incident.number}" in mail.get_content()
    sent = reminders()
    assert [e.incident_id for e in sent] == [incident.id]
    assert "alice" in sent[0].text
    with rt.db.read() as s:
        mails = s.scalars(select(Delivery).where(Delivery.purpose == "reminder")).all()
        assert [(d.recipient, d.channel) for d in mails] == [("alice", "email")]
        assert f"#{incident.number}" in mails[0].subject

    clock.advance(timedelta(hours=23))
    assert pm_jobs.sweep_reminders(rt) == 0
    clock.advance(timedelta(hours=2))
    assert pm_jobs.sweep_reminders(rt) == 1
    worker.run_once()
    assert len(reminders()) == 2

    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=incident.number)
        pm = postmortems.create(s, incident=inc, author="alice", now=clock.now())
        postmortems.publish(s, pm, incident=inc, actor="alice", now=clock.now())
    clock.advance(timedelta(days=3))
    assert pm_jobs.sweep_reminders(rt) == 0
    with rt.db.read() as s:
        kinds = {j.kind for j in s.scalars(select(Job))}
    assert pm_jobs.JOB_REMINDER in kinds
    assert len(reminders()) == 2


def test_two_people_creating_the_draft_at_once_get_one_draft_and_a_conflict(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, clock=clock)
    incident = _resolved_p1(rt, clock)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def create(author: str) -> None:
        barrier.wait(timeout=10)
        try:
            with rt.db.transaction() as s:
                inc = incidents.get_or_raise(s, number=incident.number)
                postmortems.create(s, incident=inc, author=author, now=clock.now())
            results.append("created")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=create, args=(name,)) for name in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["conflict", "created"]
