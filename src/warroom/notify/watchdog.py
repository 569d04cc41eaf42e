"""Watch the watcher: alert the admins by email, directly, when no worker has checked in.

This runs as a thread in every `warroom serve` process and never goes through
the job queue, because the queue is exactly what has stopped. Replicas agree
on one email per hour through a unique delivery row (purpose `admin`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete

from warroom.core.clock import as_utc
from warroom.core.errors import Unavailable
from warroom.core.logging import get_logger
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import latest_heartbeat
from warroom.notify import channels
from warroom.notify import service as notify
from warroom.notify.models import Delivery

log = get_logger("warroom.watchdog")
ALERT_EVERY = timedelta(hours=1)


def _seconds(rt: Runtime, name: str, default: float) -> float:
    raw = rt.env(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


class Watchdog:
    """Checks the newest worker heartbeat every `every` seconds; stale after `after`."""

    def __init__(self, rt: Runtime, *, admin_emails: Callable[[], list[str]] | None = None) -> None:
        self.rt = rt
        self.after = timedelta(seconds=_seconds(rt, "WARROOM_WATCHDOG_AFTER", 60.0))
        self.every = _seconds(rt, "WARROOM_WATCHDOG_EVERY", 10.0)
        self.extra_admins = admin_emails or (lambda: [])
        self.started = rt.now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alerted = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="warroom-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.check()
            except Unavailable as exc:
                log.warning("watchdog_database_unavailable", error=exc.message)
            except Exception:
                log.exception("watchdog_failed")

    def stalled_since(self) -> datetime | None:
        """When the workers went quiet, or None when one checked in recently."""
        now = self.rt.now()
        hb = latest_heartbeat(self.rt)
        last = as_utc(hb.last_seen) if hb is not None else self.started
        return last if now - last > self.after else None

    def admins(self) -> list[str]:
        emails = [p.email for p in self.rt.config.people if p.role == "admin" and p.email]
        return sorted(set(emails) | set(self.extra_admins()))

    def check(self) -> bool:
        """Alert once per stall (at most hourly across replicas); True when an email went out."""
        since = self.stalled_since()
        if since is None:
            if self.alerted:
                log.info("watchdog_worker_back")
            self.alerted = False
            return False
        if self.alerted:
            return False
        log.error("worker_stalled", last_heartbeat=since.isoformat())
        smtp = next(
            ((cid, c) for cid, c in self.rt.config.channels.items() if c.type == "smtp"), None
        )
        to = self.admins()
        if smtp is None or not to:
            log.error("watchdog_cannot_alert", reason="no smtp channel or no admin email")
            self.alerted = True
            return False
        channel_id, channel = smtp
        now = self.rt.now()
        bucket = int(now.timestamp() // ALERT_EVERY.total_seconds())
        subject = "[warroom] worker stalled: pages and escalations are not being sent"
        text = (
            f"No warroom worker has checked in since {since.isoformat()}.\n"
            "Escalations, pages and runbook steps are waiting in the queue.\n"
            "Check the `warroom worker` processes (or `warroom serve` with its worker) "
            f"and {self.rt.settings.public_url or 'the server'}/readyz.\n"
        )
        with self.rt.db.transaction() as s:
            row = notify.create_row(
                s,
                incident_id=None,
                purpose=notify.Purpose.ADMIN,
                level=0,
                round_=bucket,
                target=notify.Target("admins", channel_id, ",".join(to)),
                subject=subject,
                body=text,
                now=now,
            )
            row_id = row.id if row is not None else None
        self.alerted = True
        if row_id is None:
            return False  # another replica alerted in this hour
        try:
            for address in to:
                msg = channels.Message(subject, text, f"watchdog-{bucket}-{address}", address)
                channels.send(channel, msg, env=self.rt.env, timeout=10)
        except channels.SendError as err:
            log.error("watchdog_email_failed", reason=err.reason)
            with self.rt.db.transaction() as s:
                s.execute(delete(Delivery).where(Delivery.id == row_id))
            self.alerted = False  # try again at the next check
            return False
        with self.rt.db.transaction() as s:
            d = s.get(Delivery, row_id)
            if d is not None:
                d.state = notify.State.SENT
                d.sent_at = d.updated_at = self.rt.now()
        log.warning("watchdog_alert_sent", to=len(to))
        return True
