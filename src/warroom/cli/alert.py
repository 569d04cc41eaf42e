"""`warroom alert …` and `warroom integration …`: send, list and dry-run route alerts; setup snippets."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from warroom.cli.errors import fail, handled

app = typer.Typer(
    help="Alerts: send a test alert, list alerts, dry-run routing.", no_args_is_help=True
)
integration_app = typer.Typer(
    help="Alert source integrations (warroom.yaml).", no_args_is_help=True
)

UrlOpt = Annotated[str | None, typer.Option("--url", help="server URL (default: $WARROOM_URL)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="warroom.yaml (default: $WARROOM_CONFIG)")
]


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{what} {item!r} is not NAME=VALUE", hint="write e.g. service=api")
        out[key.strip()] = value
    return out


@app.command("send")
def send(
    name: Annotated[str, typer.Argument(help="alertname")],
    labels: Annotated[list[str] | None, typer.Argument(help="more labels as name=value")] = None,
    annotation: Annotated[
        list[str] | None, typer.Option("--annotation", "-a", help="annotation name=value")
    ] = None,
    resolve: Annotated[bool, typer.Option("--resolve", help="send it as resolved")] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="WARROOM_INTEGRATION_TOKEN",
            help="the Alertmanager integration's token (default: $WARROOM_INTEGRATION_TOKEN)",
        ),
    ] = None,
    integration: Annotated[
        str | None,
        typer.Option("--integration", help="take the token of this integration from the config"),
    ] = None,
    config: ConfigOpt = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test alert to the Alertmanager endpoint, like `amtool alert add`."""
    with handled():
        lab = {"alertname": name, **_pairs(labels or [], "label")}
        ann = _pairs(annotation or [], "annotation")
        if token is None:
            token = _integration_token(config, integration)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        alert: dict[str, Any] = {
            "status": "resolved" if resolve else "firing",
            "labels": lab,
            "annotations": ann,
            "startsAt": now,
            "generatorURL": "warroom-cli",
        }
        if resolve:
            alert["endsAt"] = now
        from warroom.cli.client import ApiClient

        client = ApiClient(url, token=token)
        data = client.post(
            "/api/v1/integrations/alertmanager",
            json={"version": "4", "status": alert["status"], "receiver": "cli", "alerts": [alert]},
        )
        if as_json:
            typer.echo(json.dumps(data, indent=2, sort_keys=True))
            return
        opened = data.get("incidents_opened") or []
        joined = data.get("incidents_joined") or []
        what = "resolved" if resolve else "firing"
        typer.echo(f"sent {name} ({what})")
        for n in opened:
            typer.echo(f"opened incident #{n}")
        for n in joined:
            typer.echo(f"joined incident #{n}")


def _integration_token(config: Path | None, integration: str | None) -> str:
    from warroom.alerts.dryrun import pick_integration
    from warroom.alerts.snippets import token_text
    from warroom.cli import context

    rt = context.runtime(config)
    try:
        found = pick_integration(rt, integration)
        if found.type != "alertmanager":
            fail(f"integration {found.id!r} is a {found.type}, not alertmanager")
        text = token_text(rt, found)
    finally:
        rt.db.dispose()
    if text.startswith("<value of"):
        fail(f"the token of {found.id!r} is {text}: set it, or pass --token")
    return text


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option(help="firing | acknowledged | resolved | active")
    ] = None,
    integration: Annotated[str | None, typer.Option(help="only this integration")] = None,
    incident: Annotated[int | None, typer.Option(help="only alerts of incident N")] = None,
    limit: Annotated[int, typer.Option(help="at most this many (1-1000)")] = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Alerts, newest first (needs a viewer token in $WARROOM_TOKEN)."""
    with handled():
        from warroom.cli.client import ApiClient

        params: dict[str, Any] = {"limit": limit}
        for key, value in (
            ("status", status),
            ("integration", integration),
            ("incident", incident),
        ):
            if value is not None:
                params[key] = value
        data = ApiClient(url).get("/api/v1/alerts", params=params)
        if as_json:
            typer.echo(json.dumps(data, indent=2, sort_keys=True))
            return
        rows = data["alerts"]
        if not rows:
            typer.echo("no alerts")
            return
        for a in rows:
            inc = f"#{a['incident']}" if a["incident"] else "-"
            typer.echo(
                f"{a['status']:<12} {a['name'][:40]:<40} x{a['count']:<4} {inc:<6} "
                f"{a['integration']}  last {a['last_seen'][:19]}"
            )


@app.command("route")
def route(
    file: Annotated[Path, typer.Argument(help="payload file (JSON), or - for stdin")],
    integration: Annotated[
        str | None, typer.Option(help="parse as this integration (default: the first alertmanager)")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: which route, severity, incident, runbook and pages a payload would get. Changes nothing."""
    with handled():
        from warroom.alerts import dryrun
        from warroom.cli import context
        from warroom.core.errors import InvalidInput

        if str(file) == "-":
            raw = sys.stdin.buffer.read()
        else:
            try:
                raw = file.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"{file}: cannot read ({exc.strerror})", field="FILE") from None
        rt = context.runtime(config)
        try:
            try:
                rows = dryrun.route(rt, raw, integration_id=integration)
            except InvalidInput as exc:
                raise InvalidInput(f"{file}: {exc.message}", field=exc.field) from None
        finally:
            rt.db.dispose()
        if as_json:
            typer.echo(json.dumps(rows, indent=2, sort_keys=True))
            return
        for r in rows:
            route_text = (
                "default (no route matched)"
                if r["route"] is None
                else f"#{r['route']} {r['route_match']}"
            )
            typer.echo(f"{r['alert']} [{r['status']}]")
            typer.echo(f"  route:     {route_text}")
            typer.echo(
                f"  severity:  {r['severity']}"
                + (f"  service: {r['service']}" if r["service"] else "")
            )
            typer.echo(f"  group:     {r['group_key']}")
            typer.echo(f"  action:    would {r['action']}")
            if r["runbook"]:
                found = "" if r["runbook_found"] else " (NOT FOUND in the runbook folder)"
                auto = f"; auto steps: {', '.join(r['auto_steps'])}" if r["auto_steps"] else ""
                typer.echo(f"  runbook:   {r['runbook']} (by {r['runbook_source']}){found}{auto}")
            else:
                typer.echo("  runbook:   none")
            if r["escalation"]:
                typer.echo(f"  escalation: {r['escalation']}")
            for page in r["would_page"]:
                typer.echo(f"  would page: {page}")
            for problem in r["page_problems"]:
                typer.echo(f"  warning:   {problem}")


@integration_app.command("list")
def integration_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Integrations in the config (tokens not shown)."""
    with handled():
        from warroom.cli import context
        from warroom.config.loader import load_config

        cfg = load_config(context.settings(config).config_path)
        rows = [{"id": i.id, "type": i.type} for i in cfg.integrations]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            typer.echo(f"{r['id']:<30} {r['type']}")


@integration_app.command("show")
def integration_show(
    integration_id: Annotated[str, typer.Argument(metavar="ID", help="integration id")],
    config: ConfigOpt = None,
) -> None:
    """Print the snippet to paste into the alert source (it contains the token)."""
    with handled():
        from warroom.alerts.snippets import snippet
        from warroom.cli import context
        from warroom.core.errors import NotFound

        rt = context.runtime(config)
        try:
            found = rt.config.integration(integration_id)
            if found is None:
                known = ", ".join(i.id for i in rt.config.integrations) or "none"
                raise NotFound(
                    f"integration {integration_id!r} is not in the config", hint=f"known: {known}"
                )
            typer.echo(snippet(rt, found))
        finally:
            rt.db.dispose()
