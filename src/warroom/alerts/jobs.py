"""Job kinds and sweeps of the alerts domain: automatic diagnostics and heartbeat checks."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from warroom.alerts import diagnostics, heartbeat
from warroom.alerts.service import JOB_DIAGNOSTICS
from warroom.core.logging import get_logger
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry

log = get_logger("warroom.alerts")
HEARTBEAT_SWEEP_SECONDS = 5.0


def heartbeat_sweep(rt: Runtime) -> None:
    """Each heartbeat integration in its own transaction, so one failure does not stop the rest."""
    for integration in rt.config.integrations:
        if integration.type != "heartbeat":
            continue
        try:
            with rt.db.transaction() as s:
                number = heartbeat.check(s, config=rt.config, integration=integration, now=rt.now())
        except IntegrityError:
            continue  # another worker created the row at the same moment; next sweep checks
        if number is not None:
            log.warning("heartbeat_missed", integration=integration.id, incident=number)


def register(registry: Registry) -> None:
    registry.handler(JOB_DIAGNOSTICS, diagnostics.run, backoff_base=2.0, backoff_cap=60.0)
    registry.sweep("alerts.heartbeats", HEARTBEAT_SWEEP_SECONDS, heartbeat_sweep)
