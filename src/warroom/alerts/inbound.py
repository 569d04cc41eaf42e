"""Inbound requests: authenticate the integration, decode, translate, ingest in one transaction.

The web routes are thin wrappers around these functions; the CLI dry run and
the benchmark use the same code.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from warroom.alerts import heartbeat, payload, sources
from warroom.alerts.catalog import catalog
from warroom.alerts.ratelimit import Buckets
from warroom.alerts.service import IngestResult, ingest
from warroom.config.loader import resolve_secret
from warroom.config.schema import Integration
from warroom.core import faults
from warroom.core.errors import ConfigError, InvalidInput, RateLimited, Unauthenticated
from warroom.core.logging import get_logger
from warroom.core.security import hmac_sha256_hex
from warroom.jobs.runtime import Runtime

log = get_logger("warroom.alerts")

SIGNATURE_HEADER = "x-warroom-signature"
SIGNATURE_MAX_AGE = 300  # seconds; older signed requests are replays
PD_MAX_BODY = 512 * 1024  # PagerDuty's documented event size limit


def _token_of(rt: Runtime, integration: Integration) -> str:
    try:
        return (
            resolve_secret(integration.token, rt.env, field=f"integrations.{integration.id}") or ""
        )
    except ConfigError:
        log.warning("integration_token_unset", integration=integration.id)
        return ""


def authenticate(rt: Runtime, token: str | None, *, kind: str) -> Integration:
    """The integration of type `kind` whose token this is. Raises Unauthenticated.

    Every candidate is compared in constant time, so timing does not reveal
    which integration (or how much of a token) matched.
    """
    found: Integration | None = None
    given = (token or "").encode()
    for integration in rt.config.integrations:
        if integration.type != kind:
            continue
        expected = _token_of(rt, integration).encode()
        if expected and hmac.compare_digest(given, expected) and found is None:
            found = integration
    if found is None or not token:
        raise Unauthenticated(f"no {kind} integration has this token")
    return found


def by_id(rt: Runtime, integration_id: str, *, kind: str) -> Integration:
    integration = rt.config.integration(integration_id)
    if integration is None or integration.type != kind:
        # same answer as a bad token: do not reveal which ids exist
        raise Unauthenticated(f"no {kind} integration accepts this request")
    return integration


def check_token(rt: Runtime, integration: Integration, token: str | None) -> None:
    expected = _token_of(rt, integration).encode()
    if not token or not expected or not hmac.compare_digest(token.encode(), expected):
        raise Unauthenticated(f"bad token for integration {integration.id!r}")


def check_signature(
    rt: Runtime,
    integration: Integration,
    raw: bytes,
    header: str | None,
    *,
    now: float | None = None,
) -> None:
    """`X-Warroom-Signature: t=<unix>,v1=<hex hmac-sha256 of "<t>." + body>`. Raises Unauthenticated."""
    secret = resolve_secret(integration.hmac_secret, rt.env, field="hmac_secret") or ""
    if not header:
        raise Unauthenticated(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
    stamp, sig = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not sig:
        raise Unauthenticated(f"malformed {SIGNATURE_HEADER} header (want t=<unix>,v1=<hex>)")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > SIGNATURE_MAX_AGE:
        raise Unauthenticated("signature timestamp is too old or in the future (replay?)")
    expected = hmac_sha256_hex(secret, stamp.encode() + b"." + raw)
    if not hmac.compare_digest(sig.lower().encode(), expected.encode()):
        raise Unauthenticated("signature does not match the body")


def limiter(rt: Runtime) -> Buckets:
    found = rt.extras.get("alerts.buckets")
    if not isinstance(found, Buckets):
        found = Buckets()
        rt.extras["alerts.buckets"] = found
    return found


def _writer_lock(rt: Runtime) -> contextlib.AbstractContextManager[Any]:
    # SQLite has one writer at a time anyway. Queueing our own request threads on a
    # lock (instead of on SQLite's busy timeout) keeps a storm from timing out with
    # 503s, and holding it while parsing too keeps waiting threads off the GIL, so
    # the thread that holds the database lock is not starved between statements.
    if rt.db.dialect != "sqlite":
        return contextlib.nullcontext()
    lock = rt.extras.get("alerts.sqlite_writer")
    if lock is None:
        lock = rt.extras.setdefault("alerts.sqlite_writer", threading.RLock())
    return cast(contextlib.AbstractContextManager[Any], lock)


def store(rt: Runtime, integration: Integration, alerts: list[sources.Normalized]) -> IngestResult:
    """One transaction for the whole batch, committed before the caller answers."""
    cat = catalog(rt)
    with _writer_lock(rt), rt.db.transaction() as s:
        result = ingest(
            s,
            config=rt.config,
            integration=integration,
            alerts=alerts,
            now=rt.now(),
            catalog=cat,
            redactor=rt.redactor,
        )
    faults.hit("after_ingest_commit")
    if result.opened:
        log.info("alert_incidents_opened", integration=integration.id, incidents=result.opened)
    return result


def alertmanager(rt: Runtime, raw: bytes, token: str | None) -> IngestResult:
    integration = authenticate(rt, token, kind="alertmanager")
    limiter(rt).take(integration.id, rate=integration.rate_limit_per_second)
    with _writer_lock(rt):
        alerts = sources.alertmanager(payload.decode(raw))
        return store(rt, integration, alerts)


@dataclass
class PdAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def _pd_invalid(errors: list[str], message: str = "Event object is invalid") -> PdAnswer:
    return PdAnswer(400, {"status": "invalid event", "message": message, "errors": errors}, {})


def pagerduty(rt: Runtime, raw: bytes, content_type: str) -> PdAnswer:
    """Events API v2 with PagerDuty's answers: 202 success, 400 invalid, 403, 413, 429."""
    if len(raw) > PD_MAX_BODY:
        return PdAnswer(
            413,
            {
                "status": "invalid event",
                "message": "Request too large",
                "errors": [f"body larger than {PD_MAX_BODY} bytes"],
            },
            {},
        )
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        return PdAnswer(
            415,
            {
                "status": "invalid event",
                "message": "Unsupported content type",
                "errors": [f"Content-Type must be application/json, got {ctype or 'none'!r}"],
            },
            {},
        )
    try:
        body = payload.decode(raw)
    except InvalidInput as exc:
        return _pd_invalid([exc.message], "Event object is invalid")
    try:
        key = sources.pd_routing_key(body)
    except sources.PdError as exc:
        return _pd_invalid(exc.errors, exc.message)
    try:
        integration = authenticate(rt, key, kind="pagerduty_v2")
    except Unauthenticated:
        return PdAnswer(
            403,
            {
                "status": "invalid event",
                "message": "Forbidden",
                "errors": ["routing_key does not belong to a pagerduty_v2 integration"],
            },
            {},
        )
    try:
        limiter(rt).take(integration.id, rate=integration.rate_limit_per_second)
    except RateLimited as exc:  # PagerDuty's throttle answer
        retry = exc.retry_after
        return PdAnswer(
            429,
            {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly. Please retry later.",
            },
            {"Retry-After": str(max(1, round(retry)))},
        )
    try:
        event = sources.pagerduty(body)
    except sources.PdError as exc:
        return _pd_invalid(exc.errors, exc.message)
    store(rt, integration, [event.alert])
    return PdAnswer(
        202, {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}, {}
    )


def webhook(
    rt: Runtime, integration_id: str, raw: bytes, headers: Mapping[str, str], token: str | None
) -> IngestResult:
    integration = by_id(rt, integration_id, kind="webhook")
    if integration.hmac_secret:
        check_signature(rt, integration, raw, headers.get(SIGNATURE_HEADER))
    else:
        check_token(rt, integration, token)
    limiter(rt).take(integration.id, rate=integration.rate_limit_per_second)
    with _writer_lock(rt):
        alerts = sources.webhook(payload.decode(raw), integration.mapping)
        return store(rt, integration, alerts)


def heartbeat_ping(rt: Runtime, integration_id: str, token: str | None) -> dict[str, Any]:
    integration = by_id(rt, integration_id, kind="heartbeat")
    check_token(rt, integration, token)
    limiter(rt).take(integration.id, rate=integration.rate_limit_per_second)
    now = rt.now()
    with rt.db.transaction() as s:
        before = heartbeat.ping(s, config=rt.config, integration=integration, now=now)
    return {
        "status": "ok",
        "integration": integration.id,
        "at": now.isoformat(),
        "recovered": before == heartbeat.MISSED,
    }
