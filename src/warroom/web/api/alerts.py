"""Inbound alert endpoints (integration token, not a user) and the alert list (viewer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from warroom.alerts import inbound
from warroom.alerts import service as alerts
from warroom.core.errors import TooLarge
from warroom.incidents import service as incidents
from warroom.web.deps import RuntimeDep, Viewer, public
from warroom.web.errors import UnsupportedMediaType

router = APIRouter(tags=["alerts"])

AM_PATH = "/api/v1/integrations/alertmanager"
PD_PATH = "/v2/enqueue"
WEBHOOK_PATH = "/api/v1/integrations/webhook/{key}"
HEARTBEAT_PATH = "/api/v1/integrations/heartbeat/{key}"

public("POST", AM_PATH)
public("POST", PD_PATH)
public("POST", WEBHOOK_PATH)
public("POST", HEARTBEAT_PATH)
public("GET", HEARTBEAT_PATH)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType(
            f"request body must be JSON, got content type {ctype or 'none'!r}",
            field="content-type",
            hint="send 'Content-Type: application/json'",
        )


async def _body(request: Request, limit: int | None = None) -> bytes:
    if limit is not None:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise TooLarge(f"body larger than {limit} bytes")
    raw = await request.body()
    if limit is not None and len(raw) > limit:
        raise TooLarge(f"body larger than {limit} bytes")
    return raw


@router.post(AM_PATH, summary="Alertmanager webhook (version 4), bearer integration token")
async def alertmanager_webhook(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    token = _bearer(request)
    _require_json(request)
    raw = await _body(request)
    result = await run_in_threadpool(inbound.alertmanager, rt, raw, token)
    return {"status": "ok", **result.as_dict()}


@router.post(
    PD_PATH, summary="PagerDuty Events API v2 compatible (routing_key = integration token)"
)
async def pagerduty_enqueue(request: Request, rt: RuntimeDep) -> JSONResponse:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > inbound.PD_MAX_BODY:
        answer = inbound.PdAnswer(
            413,
            {
                "status": "invalid event",
                "message": "Request too large",
                "errors": [f"body larger than {inbound.PD_MAX_BODY} bytes"],
            },
            {},
        )
    else:
        raw = await request.body()
        answer = await run_in_threadpool(
            inbound.pagerduty, rt, raw, request.headers.get("content-type", "")
        )
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


@router.post(WEBHOOK_PATH, summary="Generic JSON webhook mapped by the integration's `mapping`")
async def generic_webhook(key: str, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    _require_json(request)
    raw = await _body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    result = await run_in_threadpool(inbound.webhook, rt, key, raw, headers, _bearer(request))
    return {"status": "ok", **result.as_dict()}


@router.post(HEARTBEAT_PATH, summary="Heartbeat check-in (POST, e.g. Alertmanager's Watchdog)")
async def heartbeat_ping(key: str, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    # the body (e.g. Alertmanager's Watchdog notification) is read and ignored
    await _body(request, limit=1024 * 1024)
    return await run_in_threadpool(inbound.heartbeat_ping, rt, key, _bearer(request))


@router.get(HEARTBEAT_PATH, summary="Heartbeat check-in (GET, e.g. curl from a cron job)")
async def heartbeat_ping_get(key: str, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    return await run_in_threadpool(inbound.heartbeat_ping, rt, key, _bearer(request))


@router.get("/api/v1/alerts", summary="Alerts, newest first")
def list_alerts(
    rt: RuntimeDep,
    _viewer: Viewer,
    status: Annotated[str | None, Query(description="firing|acknowledged|resolved|active")] = None,
    integration: Annotated[str | None, Query(max_length=100)] = None,
    incident: Annotated[int | None, Query(ge=1, description="incident number")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with rt.db.read() as s:
        incident_id = None
        if incident is not None:
            incident_id = incidents.get_or_raise(s, number=incident).id
        rows = alerts.list_alerts(
            s, status=status, integration=integration, incident_id=incident_id, limit=limit
        )
        counts = alerts.counts(s)
        return {
            "alerts": [rt.redactor.redact_obj(alerts.alert_dict(a, number=n)) for a, n in rows],
            "counts": counts,
        }
