"""WARROOM_FAULT crash windows (RELIABILITY R1b) on a real server: the process dies at the point,
restarts, and the page is still delivered; a repeat happens only in the after-send window,
with the same Message-ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.paging import declare, deliveries, events, runtime_for, server_config, wait_until
from tests.fakes.receivers import SmtpSink, smtp_server
from tests.support import run_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


def _crash_and_recover(
    tmp_path: Path, db_url: str, smtp: SmtpSink, point: str
) -> tuple[int, list[str]]:
    cfg = server_config(smtp.port, "http://127.0.0.1:9/unused", lead_after="1h")
    cfg["people"][0]["contact"] = [{"channel": "email"}]
    env = {"WARROOM_FAULT": point, "WARROOM_JOB_LEASE": "2"}
    with run_server(tmp_path, db_url=db_url, config=cfg, extra_env=env) as server:
        rt = runtime_for(server, cfg)
        try:
            n = declare(server, rt, None, title=f"Crash at {point}")
            assert server.process.wait(timeout=30) == 137, server.log()[-2000:]
            before = smtp.message_ids()
            server.env.pop("WARROOM_FAULT")
            server.restart()
            wait_until(
                lambda: [d for d in deliveries(rt, n) if d.state == "sent"], what="delivery sent"
            )
            wait_until(lambda: events(rt, n, "notify.sent"), what="timeline entry")
            smtp.wait_for(1)
            rows = deliveries(rt, n)
            assert len(rows) == 1 and rows[0].state == "sent"
            assert len(events(rt, n, "notify.sent")) == 1
            ids = smtp.message_ids()
            assert all(i == ids[0] for i in ids)  # a repeat carries the same Message-ID
            assert rows[0].idempotency_key in ids[0]
            return len(before), ids
        finally:
            rt.db.dispose()


def test_crash_after_claim_delivers_once_after_lease_expiry(
    tmp_path: Path, sqlite_url: str, smtp: SmtpSink
) -> None:
    before, ids = _crash_and_recover(tmp_path, sqlite_url, smtp, "after_claim")
    assert before == 0 and len(ids) == 1


def test_crash_after_send_repeats_at_most_once_with_the_same_message_id(
    tmp_path: Path, sqlite_url: str, smtp: SmtpSink
) -> None:
    before, ids = _crash_and_recover(tmp_path, sqlite_url, smtp, "after_send")
    assert before == 1  # the provider had accepted it when we died
    assert len(ids) == 2 and len(set(ids)) == 1  # one repeat, dropped by a dedup sink


def test_crash_after_mark_sent_writes_the_timeline_after_restart(
    tmp_path: Path, sqlite_url: str, smtp: SmtpSink
) -> None:
    before, ids = _crash_and_recover(tmp_path, sqlite_url, smtp, "after_mark_sent")
    assert before == 1 and len(ids) == 1  # no repeat: it was recorded as sent
