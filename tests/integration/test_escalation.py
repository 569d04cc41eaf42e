"""Escalation engine and delivery semantics, in process, on SQLite and PostgreSQL.

Real aiosmtpd and a real HTTP receiver on loopback; the clock is frozen and
moved by hand, so escalation delays and backoff are checked without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.fakes.receivers import FakeChatServer, Received, SmtpSink, chat_server, smtp_server
from warroom.core.clock import FrozenClock
from warroom.incidents import jobs as incident_jobs
from warroom.incidents import service as incidents
from warroom.incidents.models import Incident, TimelineEvent
from warroom.jobs.models import Job, JobState
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, Worker
from warroom.notify import jobs as notify_jobs
from warroom.notify.models import Delivery
from warroom.oncall import jobs as oncall_jobs

pytestmark = pytest.mark.integration

HOOK_SECRET = "hook-secret-" + "s" * 20


def paging_config(smtp_port: int, hook_url: str, **over: Any) -> dict[str, Any]:
    retry = {"max_attempts": 3, "backoff_base": "1s", "backoff_cap": "8s", "timeout": "2s"}
    cfg: dict[str, Any] = {
        "people": [
            {
                "id": "alice",
                "name": "Alice",
                "email": "alice@example.com",
                "contact": [{"channel": "email"}, {"channel": "hook", "address": "@alice"}],
            },
            {"id": "bob", "name": "Bob", "email": "bob@example.com"},
            {"id": "carol", "name": "Carol Lead", "email": "carol@example.com"},
        ],
        "teams": [
            {"id": "devops-team", "name": "DevOps", "lead": "carol", "members": ["alice", "bob"]}
        ],
        "schedules": [
            {
                "id": "primary",
                "timezone": "UTC",
                "layers": [{"rotation": "weekly", "handoff": "monday 09:00", "members": ["alice"]}],
            }
        ],
        "channels": {
            "email": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "warroom@example.com",
                "to": "tickets@example.com",
                "retry": retry,
                "rate_limit_per_minute": 100,
            },
            "hook": {
                "type": "webhook",
                "url": hook_url,
                "secret": "env:WR_TEST_HOOK_SECRET",
                "fallback": "email",
                "retry": retry,
                "rate_limit_per_minute": 100,
            },
        },
        "escalation_policies": {
            "page-oncall": {
                "repeat": 1,
                "levels": [
                    {"notify": ["schedule:primary"], "after": "0s"},
                    {"notify": ["team:devops-team:lead"], "after": "15m"},
                ],
            },
            "notify-lead": {"levels": [{"notify": ["team:devops-team:lead"]}]},
            "ticket": {"levels": [{"notify": ["channel:hook"]}]},
            "backlog": {"levels": []},
        },
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpSink, FakeChatServer]]:
    with smtp_server() as smtp, chat_server() as hook:
        yield smtp, hook


@pytest.fixture
def env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WR_TEST_HOOK_SECRET", HOOK_SECRET)


Setup = tuple[Runtime, FrozenClock, SmtpSink, FakeChatServer]


@pytest.fixture
def setup(
    db_url: str,
    make_runtime: Callable[..., Runtime],
    clock: FrozenClock,
    sinks: tuple[SmtpSink, FakeChatServer],
    env_secret: None,
) -> Setup:
    smtp, hook = sinks
    rt = make_runtime(db_url, paging_config(smtp.port, hook.url), clock)
    return rt, clock, smtp, hook


@pytest.fixture
def lite(
    sqlite_url: str,
    make_runtime: Callable[..., Runtime],
    clock: FrozenClock,
    sinks: tuple[SmtpSink, FakeChatServer],
    env_secret: None,
) -> Setup:
    """SQLite only: behaviour that does not depend on the engine (keeps the suite lean)."""
    smtp, hook = sinks
    rt = make_runtime(sqlite_url, paging_config(smtp.port, hook.url), clock)
    return rt, clock, smtp, hook


def registry() -> Registry:
    r = Registry()
    incident_jobs.register(r)
    oncall_jobs.register(r)
    notify_jobs.register(r)
    return r


def drain(rt: Runtime) -> int:
    # a fresh worker runs the sweeps at once (they are rate limited per worker)
    return Worker(rt, registry()).drain()


def declare(rt: Runtime, severity: str = "P0", title: str = "Checkout down") -> int:
    with rt.db.transaction() as s:
        inc = incidents.create(
            s, config=rt.config, title=title, severity=severity, actor="test", now=rt.now()
        )
        return inc.number


def ack(rt: Runtime, number: int) -> None:
    with rt.db.transaction() as s:
        incidents.acknowledge(
            s, incidents.get_or_raise(s, number=number), actor="alice", now=rt.now()
        )


def deliveries(rt: Runtime, number: int) -> list[Delivery]:
    with rt.db.read() as s:
        inc = incidents.get_or_raise(s, number=number)
        return list(
            s.scalars(select(Delivery).where(Delivery.incident_id == inc.id).order_by(Delivery.id))
        )


def events(rt: Runtime, number: int, kind: str) -> list[TimelineEvent]:
    with rt.db.read() as s:
        inc = incidents.get_or_raise(s, number=number)
        return list(
            s.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == inc.id, TimelineEvent.kind == kind
                )
            )
        )


def test_p0_pages_oncall_by_email_and_webhook_in_the_first_cycle(setup: Setup) -> None:
    rt, _clock, smtp, hook = setup
    n = declare(rt)
    drain(rt)
    mails = smtp.to("alice@example.com")
    assert len(mails) == 1 and len(hook.ok) == 1
    assert "/ack/" in mails[0].get_content() and "Checkout down" in str(mails[0]["Subject"])
    body = hook.ok[0].json()
    assert body["incident"]["number"] == n and body["recipient"] == "@alice"
    assert {d.recipient for d in deliveries(rt, n)} == {"alice"}
    assert {d.state for d in deliveries(rt, n)} == {"sent"}
    sent = events(rt, n, "notify.sent")
    assert {e.data["channel"] for e in sent} == {"email", "hook"}
    assert not smtp.to("carol@example.com")


def test_webhook_is_signed_over_timestamp_and_body_with_an_idempotency_key(lite: Setup) -> None:
    rt, _clock, _smtp, hook = lite
    declare(rt)
    drain(rt)
    req: Received = hook.ok[0]
    ts = req.headers["x-warroom-timestamp"]
    expected = hmac.new(
        HOOK_SECRET.encode(), ts.encode() + b"." + req.body, hashlib.sha256
    ).hexdigest()
    assert req.headers["x-warroom-signature"] == "sha256=" + expected
    assert req.headers["idempotency-key"].startswith("wr-")
    assert HOOK_SECRET not in req.body.decode()


def test_lead_is_paged_at_the_escalation_delay_and_ack_stops_later_levels(setup: Setup) -> None:
    rt, clock, smtp, _hook = setup
    n = declare(rt)
    drain(rt)
    clock.advance(timedelta(minutes=14, seconds=59))
    drain(rt)
    assert not smtp.to("carol@example.com")
    clock.advance(timedelta(seconds=1))
    drain(rt)
    assert len(smtp.to("carol@example.com")) == 1
    ack(rt, n)
    before = len(smtp.messages)
    clock.advance(timedelta(hours=2))
    drain(rt)
    assert len(smtp.messages) == before  # round 2 never fires after the ack
    with rt.db.read() as s:
        inc = incidents.get_or_raise(s, number=n)
        assert inc.next_escalation_at is None


def test_unacked_incident_repeats_rounds_then_stops(lite: Setup) -> None:
    rt, clock, smtp, _hook = lite
    n = declare(rt)
    for _ in range(8):
        drain(rt)
        clock.advance(timedelta(minutes=15))
    # repeat: 1 -> two rounds of (alice, carol)
    assert len(smtp.to("alice@example.com")) == 2
    assert len(smtp.to("carol@example.com")) == 2
    assert len(events(rt, n, "escalation.exhausted")) == 1


def test_a_lost_escalation_job_is_recovered_by_the_sweep(setup: Setup) -> None:
    rt, clock, smtp, _hook = setup
    declare(rt)
    drain(rt)
    with rt.db.transaction() as s:  # the timer job vanished (the case OnCall #1206 hit)
        s.execute(
            update(Job).where(Job.kind == "escalation.level").values(state=JobState.CANCELLED)
        )
    clock.advance(timedelta(minutes=16))
    drain(rt)
    assert len(smtp.to("carol@example.com")) == 1


def test_duplicate_jobs_insert_no_duplicate_deliveries(setup: Setup) -> None:
    rt, clock, smtp, hook = setup
    n = declare(rt)
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=n)
        for i in range(3):  # the opened job delivered three times
            s.add(
                Job(
                    kind="incident.opened",
                    payload={"incident_id": inc.id, "generation": 0},
                    state=JobState.PENDING,
                    run_at=rt.now(),
                    created_at=rt.now(),
                    updated_at=rt.now(),
                    incident_id=inc.id,
                    dedup_key=f"dup-{i}",
                )
            )
    drain(rt)
    clock.advance(timedelta(minutes=15))
    with rt.db.transaction() as s:
        inc = incidents.get_or_raise(s, number=n)
        for i in range(3):
            s.add(
                Job(
                    kind="escalation.level",
                    payload={"incident_id": inc.id, "generation": 0, "round": 0, "level": 1},
                    state=JobState.PENDING,
                    run_at=rt.now(),
                    created_at=rt.now(),
                    updated_at=rt.now(),
                    incident_id=inc.id,
                    dedup_key=f"dup-level-{i}",
                )
            )
    drain(rt)
    assert len(smtp.to("alice@example.com")) == 1 and len(hook.ok) == 1
    assert len(smtp.to("carol@example.com")) == 1


def test_worker_outage_skips_past_rounds_instead_of_a_burst(lite: Setup) -> None:
    rt, clock, smtp, _hook = lite
    declare(rt)
    drain(rt)
    clock.advance(timedelta(minutes=40))  # round 0 level 1 and round 1 level 0 passed unseen
    drain(rt)
    assert len(smtp.to("carol@example.com")) == 0
    assert len(smtp.to("alice@example.com")) == 2  # one page now for the current round only


def test_p3_backlog_pages_nobody(lite: Setup) -> None:
    rt, clock, smtp, hook = lite
    n = declare(rt, "P3")
    drain(rt)
    clock.advance(timedelta(hours=3))
    drain(rt)
    assert smtp.messages == [] and hook.requests == []
    assert "no levels" in events(rt, n, "escalation.none")[0].text


def test_p2_ticket_goes_to_the_ticket_channel(lite: Setup) -> None:
    rt, _clock, _smtp, hook = lite
    declare(rt, "P2", "Slow search")
    drain(rt)
    assert len(hook.ok) == 1 and hook.ok[0].json()["incident"]["severity"] == "P2"


def test_severity_change_replans_escalation(lite: Setup) -> None:
    rt, _clock, smtp, _hook = lite
    n = declare(rt, "P3")
    drain(rt)
    with rt.db.transaction() as s:
        incidents.set_severity(
            s,
            incidents.get_or_raise(s, number=n),
            config=rt.config,
            severity="P0",
            actor="test",
            now=rt.now(),
        )
    drain(rt)
    assert len(smtp.to("alice@example.com")) == 1


def test_webhook_500s_are_retried_with_backoff_then_the_fallback_channel(setup: Setup) -> None:
    rt, clock, _smtp, hook = setup
    hook.respond = lambda _n, _r: (500, {})
    n = declare(rt, "P2")  # ticket -> channel:hook, falls back to email
    for _ in range(6):
        drain(rt)
        clock.advance(timedelta(seconds=10))
    assert len(hook.requests) == 3  # max_attempts
    d = next(x for x in deliveries(rt, n) if x.channel == "hook")
    assert d.state == "dead" and "HTTP 500" in (d.last_error or "")
    delays = [h["retry_in"] for h in d.data["history"] if "retry_in" in h]
    assert len(delays) == 2 and all(0.5 <= x <= 8 for x in delays)
    fb = next(x for x in deliveries(rt, n) if x.fallback_of == d.id)
    assert fb.channel == "email" and fb.state == "sent"
    assert "falling back to email" in events(rt, n, "notify.failed")[0].text


def test_webhook_400_is_never_retried(lite: Setup) -> None:
    rt, clock, _smtp, hook = lite
    hook.respond = lambda _n, _r: (400, {})
    n = declare(rt, "P2")
    for _ in range(4):
        drain(rt)
        clock.advance(timedelta(seconds=30))
    assert len(hook.requests) == 1
    assert next(x for x in deliveries(rt, n) if x.channel == "hook").state == "dead"


def test_429_retry_after_is_honoured(lite: Setup) -> None:
    rt, clock, _smtp, hook = lite
    hook.respond = lambda i, _r: (429, {"Retry-After": "7"}) if i == 1 else (200, {})
    n = declare(rt, "P2")
    drain(rt)
    clock.advance(timedelta(seconds=6))
    drain(rt)
    assert len(hook.requests) == 1  # not before Retry-After
    clock.advance(timedelta(seconds=2))
    drain(rt)
    assert len(hook.ok) == 1
    d = next(x for x in deliveries(rt, n) if x.channel == "hook")
    assert d.data["history"][0]["retry_in"] >= 7


def test_smtp_451_then_recovery_delivers_every_page_once(setup: Setup) -> None:
    rt, clock, smtp, _hook = setup
    smtp.refuse = True
    numbers = [declare(rt, "P0", f"Outage {i}") for i in range(3)]
    drain(rt)
    clock.advance(timedelta(seconds=3))
    drain(rt)
    assert smtp.refused >= 3 and smtp.messages == []
    smtp.refuse = False
    for _ in range(4):
        clock.advance(timedelta(seconds=10))
        drain(rt)
    ids = smtp.message_ids()
    assert len(ids) == 3 and len(set(ids)) == 3
    for n in numbers:
        assert [d.state for d in deliveries(rt, n) if d.channel == "email"] == ["sent"]


def test_ack_while_backed_off_sends_nothing_after_the_ack(setup: Setup) -> None:
    rt, clock, smtp, hook = setup
    smtp.refuse = True
    hook.respond = lambda _n, _r: (503, {})
    n = declare(rt)
    drain(rt)
    assert smtp.refused == 1 and len(hook.requests) == 1
    ack(rt, n)
    smtp.refuse = False
    hook.respond = lambda _n, _r: (200, {})
    for _ in range(4):
        clock.advance(timedelta(seconds=20))
        drain(rt)
    assert smtp.messages == [] and len(hook.requests) == 1
    assert {d.state for d in deliveries(rt, n)} == {"cancelled"}


def test_recheck_in_the_claim_drops_a_page_whose_job_survived_the_ack(lite: Setup) -> None:
    rt, clock, smtp, _hook = lite
    smtp.refuse = True
    n = declare(rt)
    drain(rt)
    ack(rt, n)
    with rt.db.transaction() as s:  # as if the cancel had missed the job
        s.execute(update(Job).where(Job.kind == "notify.delivery").values(state=JobState.PENDING))
    smtp.refuse = False
    clock.advance(timedelta(seconds=30))
    drain(rt)
    assert smtp.messages == []


def test_ack_link_token_names_the_incident_and_expires(lite: Setup) -> None:
    from warroom.core.security import unsign

    rt, _clock, smtp, _hook = lite
    n = declare(rt)
    drain(rt)
    text = smtp.messages[0].get_content()
    token = text.split("/ack/", 1)[1].split()[0]
    payload = unsign(token, key=rt.settings.secret_key, purpose="ack", now=rt.now())
    assert payload["n"] == n and payload["who"] == "alice"
    assert payload["exp"] == int((rt.now() + timedelta(hours=24)).timestamp())


def test_rate_limit_defers_pages_then_bundles_them_into_one_digest(
    db_url: str,
    make_runtime: Callable[..., Runtime],
    clock: FrozenClock,
    sinks: tuple[SmtpSink, FakeChatServer],
    env_secret: None,
) -> None:
    smtp, hook = sinks
    cfg = paging_config(smtp.port, hook.url)
    cfg["channels"]["email"]["rate_limit_per_minute"] = 2
    rt = make_runtime(db_url, cfg, clock)
    numbers = [declare(rt, "P0", f"Storm {i}") for i in range(5)]
    drain(rt)
    assert len(smtp.to("alice@example.com")) == 2
    clock.advance(timedelta(minutes=2))
    drain(rt)
    clock.advance(timedelta(seconds=5))
    drain(rt)
    mails = smtp.to("alice@example.com")
    assert len(mails) == 3  # two pages, then one digest instead of a flood
    digest = mails[2]
    assert "3 unacknowledged incidents" in str(digest["Subject"])
    assert digest.get_content().count("/ack/") == 3
    for n in numbers:
        rows = [d for d in deliveries(rt, n) if d.channel == "email"]
        assert [d.state for d in rows] == ["sent"]
        assert len(events(rt, n, "notify.sent")) == 2  # email + webhook, each recorded once


def test_dead_delivery_can_be_retried(lite: Setup) -> None:
    from warroom.notify import service as notify

    rt, _clock, _smtp, hook = lite
    hook.respond = lambda _n, _r: (400, {})
    n = declare(rt, "P2")
    drain(rt)
    d = next(x for x in deliveries(rt, n) if x.channel == "hook")
    assert d.state == "dead"
    hook.respond = lambda _n, _r: (200, {})
    with rt.db.transaction() as s:
        notify.requeue(s, notify.get_or_raise(s, d.id), now=rt.now(), actor="test")
    drain(rt)
    assert next(x for x in deliveries(rt, n) if x.id == d.id).state == "sent"
    assert len(hook.ok) == 1


def test_incident_row_keeps_the_policy_snapshot(lite: Setup) -> None:
    rt, _clock, _smtp, _hook = lite
    n = declare(rt)
    drain(rt)
    with rt.db.read() as s:
        inc = s.scalar(select(Incident).where(Incident.number == n))
        assert inc is not None and inc.escalation_snapshot is not None
        assert inc.escalation_snapshot["name"] == "page-oncall"
        assert [lv["after_seconds"] for lv in inc.escalation_snapshot["levels"]] == [0, 900]
        assert (inc.escalation_round, inc.escalation_level) == (0, 0)


def test_a_delivery_whose_job_was_cancelled_by_hand_is_requeued(lite: Setup) -> None:
    rt, clock, smtp, _hook = lite
    smtp.refuse = True
    n = declare(rt)
    drain(rt)
    with rt.db.transaction() as s:  # an operator cancelled the retry job by mistake
        s.execute(update(Job).where(Job.kind == "notify.delivery").values(state=JobState.CANCELLED))
    smtp.refuse = False
    clock.advance(timedelta(minutes=3))
    drain(rt)
    clock.advance(timedelta(seconds=1))
    drain(rt)
    assert len(smtp.to("alice@example.com")) == 1
    assert [d.state for d in deliveries(rt, n) if d.channel == "email"] == ["sent"]


def test_next_level_fires_on_time_while_the_first_channels_keep_failing(lite: Setup) -> None:
    rt, clock, smtp, hook = lite
    hook.respond = lambda _n, _r: (503, {})
    smtp.refuse = True
    n = declare(rt)
    for _ in range(3):
        drain(rt)
        clock.advance(timedelta(minutes=5))
    drain(rt)
    assert smtp.messages == [] and len(hook.requests) == 3
    carol = [d for d in deliveries(rt, n) if d.recipient == "carol"]
    assert len(carol) == 1 and carol[0].level == 1  # created at 15 min despite the failures


def test_stale_backlog_after_an_outage_pages_only_open_unacked_incidents(setup: Setup) -> None:
    # RELIABILITY R11: the worker was down while incidents came and went
    rt, clock, smtp, _hook = setup
    numbers = [declare(rt, "P0", f"Backlog {i}") for i in range(5)]
    ack(rt, numbers[0])
    ack(rt, numbers[1])
    with rt.db.transaction() as s:
        incidents.resolve(s, incidents.get_or_raise(s, number=numbers[2]), actor="t", now=rt.now())
    clock.advance(timedelta(minutes=20))
    drain(rt)
    pages = [d for n in numbers for d in deliveries(rt, n) if d.state == "sent"]
    assert {d.incident_id for d in pages} == {
        incident_id for incident_id in (_id(rt, numbers[3]), _id(rt, numbers[4]))
    }
    # recomputed, not replayed: each open incident paged alice once and carol once
    assert len(smtp.to("alice@example.com")) == 2 and len(smtp.to("carol@example.com")) == 2


def _id(rt: Runtime, number: int) -> int:
    with rt.db.read() as s:
        return incidents.get_or_raise(s, number=number).id


def test_clock_moved_back_never_pages_a_level_early(lite: Setup) -> None:
    # RELIABILITY R9: a level job that wakes before its due time (clock went back) waits
    rt, clock, smtp, _hook = lite
    n = declare(rt)
    drain(rt)
    with rt.db.transaction() as s:  # the level-2 job is claimable now, but not due by the clock
        s.execute(
            update(Job)
            .where(Job.kind == "escalation.level", Job.state == JobState.PENDING)
            .values(run_at=rt.now())
        )
    drain(rt)
    assert smtp.to("carol@example.com") == []
    clock.advance(timedelta(minutes=15))
    drain(rt)
    assert len(smtp.to("carol@example.com")) == 1
    assert len([d for d in deliveries(rt, n) if d.recipient == "carol"]) == 1


def test_level_channel_choice_and_whole_team_targets(
    sqlite_url: str,
    make_runtime: Callable[..., Runtime],
    clock: FrozenClock,
    sinks: tuple[SmtpSink, FakeChatServer],
    env_secret: None,
) -> None:
    smtp, hook = sinks
    cfg = paging_config(smtp.port, hook.url)
    cfg["escalation_policies"]["page-oncall"] = {
        "levels": [
            {"notify": ["schedule:primary"], "channels": ["hook"]},  # chat only for level 1
            {"notify": ["team:devops-team"], "after": "5m"},  # every member
        ]
    }
    rt = make_runtime(sqlite_url, cfg, clock)
    n = declare(rt)
    drain(rt)
    assert smtp.messages == [] and len(hook.ok) == 1
    clock.advance(timedelta(minutes=5))
    drain(rt)
    assert len(smtp.to("alice@example.com")) == 1 and len(smtp.to("bob@example.com")) == 1
    assert sorted({d.recipient for d in deliveries(rt, n) if d.level == 1}) == ["alice", "bob"]


def test_nobody_on_call_is_written_on_the_timeline(
    sqlite_url: str,
    make_runtime: Callable[..., Runtime],
    clock: FrozenClock,
    sinks: tuple[SmtpSink, FakeChatServer],
    env_secret: None,
) -> None:
    smtp, hook = sinks
    cfg = paging_config(smtp.port, hook.url)
    cfg["schedules"][0]["layers"][0]["restrict"] = {"days": ["sat"], "from": "00:00", "to": "01:00"}
    rt = make_runtime(sqlite_url, cfg, clock)  # the frozen clock is a Monday
    n = declare(rt)
    drain(rt)
    level = events(rt, n, "escalation.level")[0]
    assert "nobody is on call for schedule 'primary'" in level.text


def test_secrets_in_an_incident_title_are_redacted_from_pages(lite: Setup) -> None:
    rt, _clock, smtp, hook = lite
    secret = "AKIA" + "ABCDEFGHIJKLMNOP"
    n = declare(rt, "P0", f"Leaked key {secret} in logs")
    drain(rt)
    mail = smtp.to("alice@example.com")[0]
    assert secret not in str(mail["Subject"]) and secret not in mail.get_content()
    assert secret not in hook.ok[0].body.decode()
    assert all(secret not in d.subject + d.body for d in deliveries(rt, n))
    assert "/ack/" in mail.get_content()


def test_two_workers_in_parallel_page_each_incident_once(setup: Setup) -> None:
    import threading

    rt, _clock, smtp, hook = setup
    numbers = [declare(rt, "P0", f"Parallel {i}") for i in range(12)]
    workers = [Worker(rt, registry(), worker_id=f"w{i}") for i in range(2)]
    errors: list[BaseException] = []

    def run(w: Worker) -> None:
        try:
            for _ in range(3):
                w.drain()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    ids = smtp.message_ids()
    assert len(ids) == len(set(ids)) == 12
    assert len(hook.keys()) == len(set(hook.keys())) == 12
    for n in numbers:
        assert sorted(d.state for d in deliveries(rt, n)) == ["sent", "sent"]


def test_digest_interrupted_after_send_is_resent_with_the_same_message_id(
    sqlite_url: str,
    make_runtime: Callable[..., Runtime],
    clock: FrozenClock,
    sinks: tuple[SmtpSink, FakeChatServer],
    env_secret: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from warroom.core import faults

    smtp, hook = sinks
    cfg = paging_config(smtp.port, hook.url)
    cfg["channels"]["email"]["rate_limit_per_minute"] = 1
    rt = make_runtime(sqlite_url, cfg, clock)
    numbers = [declare(rt, "P0", f"Storm {i}") for i in range(3)]
    drain(rt)
    assert len(smtp.to("alice@example.com")) == 1
    state = {"armed": True}

    def hit(point: str) -> None:  # dies between the provider's OK and our record, once
        if point == "after_send" and state["armed"] and len(smtp.messages) == 2:
            state["armed"] = False
            raise RuntimeError("simulated crash after send")

    monkeypatch.setattr(faults, "hit", hit)
    clock.advance(timedelta(minutes=2))
    drain(rt)
    clock.advance(timedelta(seconds=10))
    drain(rt)
    mails = smtp.to("alice@example.com")
    assert not state["armed"] and len(mails) == 3
    assert mails[1]["Message-ID"] == mails[2]["Message-ID"]  # the repeat is droppable
    assert "2 unacknowledged incidents" in str(mails[2]["Subject"])
    for n in numbers:
        assert [d.state for d in deliveries(rt, n) if d.channel == "email"] == ["sent"]
