"""What to paste into an alert source so it sends to warroom (`warroom integration show ID`)."""

from __future__ import annotations

import json

from warroom.config.loader import resolve_secret
from warroom.config.schema import ENV_REF, Integration
from warroom.core.errors import ConfigError
from warroom.jobs.runtime import Runtime


def public_base(rt: Runtime) -> str:
    return (rt.settings.public_url or rt.settings.client_url).rstrip("/")


def token_text(rt: Runtime, integration: Integration) -> str:
    """The token to paste; a placeholder naming the variable when it is not set here."""
    try:
        return resolve_secret(integration.token, rt.env) or ""
    except ConfigError:
        m = ENV_REF.match(integration.token)
        return f"<value of ${m.group(1) if m else 'TOKEN'}>"


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def snippet(rt: Runtime, integration: Integration) -> str:
    base = public_base(rt)
    token = token_text(rt, integration)
    if integration.type == "alertmanager":
        return "\n".join(
            [
                f"# alertmanager.yml: receiver for warroom integration {integration.id!r}",
                "receivers:",
                "  - name: warroom",
                "    webhook_configs:",
                f"      - url: {_q(base + '/api/v1/integrations/alertmanager')}",
                "        send_resolved: true",
                "        max_alerts: 0",
                "        http_config:",
                "          authorization:",
                "            type: Bearer",
                f"            credentials: {_q(token)}",
                "# and route alerts to it, e.g.",
                "route:",
                "  receiver: warroom",
                "  group_by: [alertname, service]",
            ]
        )
    if integration.type == "pagerduty_v2":
        return "\n".join(
            [
                f"# PagerDuty Events API v2 compatible endpoint of {integration.id!r}",
                f"Events API URL: {base}/v2/enqueue",
                f"Routing key:    {token}",
                "# Point the tool's PagerDuty integration at that URL (instead of",
                "# https://events.pagerduty.com/v2/enqueue) and use the routing key above.",
                f"curl -sS -X POST {base}/v2/enqueue -H 'Content-Type: application/json' \\",
                f'  -d \'{{"routing_key": "{token}", "event_action": "trigger", '
                '"dedup_key": "test-1", "payload": {"summary": "test", "source": "cli", '
                '"severity": "warning"}}\'',
            ]
        )
    if integration.type == "webhook":
        lines = [
            f"# Generic JSON webhook {integration.id!r}",
            f"URL:    {base}/api/v1/integrations/webhook/{integration.id}",
        ]
        if integration.hmac_secret:
            lines += [
                "Auth:   header X-Warroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>",
                "        of '<t>.' + raw body with the integration's hmac_secret; max age 300 s",
            ]
        else:
            lines.append(f"Auth:   Authorization: Bearer {token}")
        lines.append("Mapping (dotted paths into the JSON body):")
        for key, path in sorted(integration.mapping.items()) or [("(none)", "defaults")]:
            lines.append(f"  {key}: {path}")
        return "\n".join(lines)
    # heartbeat
    url = f"{base}/api/v1/integrations/heartbeat/{integration.id}"
    every = integration.expect_every
    return "\n".join(
        [
            f"# Heartbeat {integration.id!r}: ping at least every {every}",
            f"URL: {url}  (GET or POST, Authorization: Bearer {token})",
            "# from cron, after the job succeeds:",
            f"curl -fsS -m 10 -H 'Authorization: Bearer {token}' {url}",
            "# or from Alertmanager, with Prometheus' always-firing Watchdog alert:",
            "receivers:",
            "  - name: warroom-heartbeat",
            "    webhook_configs:",
            f"      - url: {_q(url)}",
            "        http_config:",
            "          authorization:",
            "            type: Bearer",
            f"            credentials: {_q(token)}",
            "route:",
            "  routes:",
            "    - matchers: ['alertname=\"Watchdog\"']",
            "      receiver: warroom-heartbeat",
            "      repeat_interval: 1m",
        ]
    )
