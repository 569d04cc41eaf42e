"""`warroom incident …`: a client of the incidents REST API (--url / WARROOM_URL, WARROOM_TOKEN).

`--json` prints the API's JSON unchanged (the shapes are defined once, in
`warroom.incidents.views`, and listed in the OpenAPI document at /docs), so
scripts get the same stable shape as API clients; `show --json` adds the
`timeline` list.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from warroom.cli.errors import fail, handled

app = typer.Typer(
    help="Incidents: declare, list, show, acknowledge, status, severity, notes, roles, updates.",
    no_args_is_help=True,
)

UrlOpt = Annotated[str | None, typer.Option("--url", help="server URL (default: $WARROOM_URL)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
NumberArg = Annotated[int, typer.Argument(min=1, help="incident number")]


def _client(url: str | None) -> Any:
    from warroom.cli.client import ApiClient

    return ApiClient(url)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


def _line(data: dict[str, Any]) -> str:
    return f"#{data['number']} [{data['severity']}] {data['status']}: {data['title']}"


def _print_header(inc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    console.print(
        f"[bold]{escape(_line(inc))}[/bold]" + ("  (drill)" if inc.get("is_drill") else "")
    )
    clocks = inc.get("clocks", {})
    console.print(
        f"declared {_when(clocks.get('declared_at'))} by {escape(str(inc.get('created_by')))}"
        f" · respond by {_when(clocks.get('respond_by'))}"
        + (
            f" · [red]BREACHED {_when(clocks.get('breached_at'))}[/red]"
            if clocks.get("breached_at")
            else ""
        )
    )
    if clocks.get("acknowledged_at"):
        console.print(
            f"acknowledged {_when(clocks['acknowledged_at'])} by {escape(str(inc.get('acknowledged_by')))}"
        )
    if clocks.get("resolved_at"):
        console.print(f"resolved {_when(clocks['resolved_at'])}")
    roles = inc.get("roles", {})
    people = [f"{k} {v}" for k, v in roles.items() if v and k != "responders"]
    if roles.get("responders"):
        people.append("responders " + ", ".join(roles["responders"]))
    if people:
        console.print(escape("roles: " + "; ".join(people)))
    if inc.get("services"):
        console.print(escape("services: " + ", ".join(inc["services"])))
    if inc.get("runbooks"):
        console.print(escape("runbooks: " + ", ".join(inc["runbooks"])))
    room = inc.get("war_room", {})
    bits = [f"{k} {room[k]}" for k in ("video", "chat", "bridge", "status_page") if room.get(k)]
    if bits:
        console.print(escape("war room: " + " · ".join(bits)))
    for alert in inc.get("alerts", []):
        console.print(escape(f"alert {alert['name']} ({alert['status']}, x{alert['count']})"))
    for run in inc.get("runs", []):
        console.print(escape(f"run {run['id']} {run['runbook']}: {run['outcome']}"))


@app.command("declare")
def declare(
    title: Annotated[str, typer.Option("--title", "-t", help="what is wrong, in one line")],
    severity: Annotated[str, typer.Option("--severity", "-s", help="P0, P1, P2 or P3")],
    service: Annotated[
        list[str] | None, typer.Option("--service", help="affected service (repeatable)")
    ] = None,
    runbook: Annotated[
        list[str] | None, typer.Option("--runbook", help="runbook id to link (repeatable)")
    ] = None,
    summary: Annotated[str, typer.Option(help="what we know so far")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Declare an incident; starts its respond-by clock and escalation."""
    with handled():
        body: dict[str, Any] = {
            "title": title,
            "severity": severity,
            "services": service or [],
            "runbooks": runbook or [],
        }
        if summary:
            body["summary"] = summary
        data = _client(url).post("/api/v1/incidents", json=body)
        if as_json:
            _echo_json(data)
            return
        typer.echo(f"declared {_line(data)}; respond by {_when(data['respond_by'])}")


@app.command("list")
def list_(
    open_only: Annotated[bool, typer.Option("--open", help="only incidents not resolved")] = False,
    severity: Annotated[str | None, typer.Option(help="only this severity")] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    service: Annotated[
        str | None, typer.Option(help="only incidents touching this service")
    ] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="text in the title")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """List incidents, newest first."""
    with handled():
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if open_only:
            params["open"] = "true"
        for key, value in (
            ("severity", severity),
            ("status", status),
            ("service", service),
            ("q", query),
        ):
            if value:
                params[key] = value
        data = _client(url).get("/api/v1/incidents", params=params)
        if as_json:
            _echo_json(data)
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(
            "#", "sev", "status", "title", "declared", "ack", title=f"{data['total']} incident(s)"
        )
        for row in data["items"]:
            table.add_row(
                str(row["number"]),
                row["severity"],
                row["status"],
                escape(row["title"]),
                _when(row["declared_at"]),
                escape(row["acknowledged_by"] or ("BREACHED" if row["breached_at"] else "-")),
            )
        Console(highlight=False).print(table)


@app.command("show")
def show(number: NumberArg, as_json: JsonOpt = False, url: UrlOpt = None) -> None:
    """One incident: header (clocks, roles, war room, alerts, runs) and its timeline."""
    with handled():
        client = _client(url)
        inc = client.get(f"/api/v1/incidents/{number}")
        tl = client.get(f"/api/v1/incidents/{number}/timeline", params={"limit": 1000})
        if as_json:
            _echo_json({**inc, "timeline": tl["events"]})
            return
        from rich.console import Console
        from rich.markup import escape

        _print_header(inc)
        console = Console(highlight=False)
        console.print("")
        for ev in tl["events"]:
            console.print(
                f"{_when(ev['at'])}  {escape(ev['actor']):<14} {escape(ev['kind']):<22} "
                + escape(ev["text"])
            )


def _action(
    number: int, path: str, body: dict[str, Any] | None, as_json: bool, url: str | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    data: dict[str, Any] = _client(url).post(f"/api/v1/incidents/{number}/{path}", **kwargs)
    if as_json:
        _echo_json(data)
    return data


@app.command("ack")
def ack(number: NumberArg, as_json: JsonOpt = False, url: UrlOpt = None) -> None:
    """Acknowledge: stops the respond-by clock and escalation."""
    with handled():
        data = _action(number, "ack", None, as_json, url)
        if not as_json:
            what = "acknowledged" if data.get("changed") else "was already acknowledged"
            typer.echo(f"#{number} {what} (by {data['acknowledged_by']})")


@app.command("resolve")
def resolve(
    number: NumberArg,
    text: Annotated[str, typer.Option("--text", help="how it was resolved")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Resolve (commander role)."""
    with handled():
        data = _action(number, "resolve", {"text": text} if text else None, as_json, url)
        if not as_json:
            typer.echo(f"#{number} resolved at {_when(data['resolved_at'])}")


@app.command("status")
def status(
    number: NumberArg,
    new_status: Annotated[
        str,
        typer.Argument(metavar="STATUS", help="investigating, identified, monitoring or resolved"),
    ],
    text: Annotated[str, typer.Option("--text", help="why")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Change status (moving a resolved incident back reopens it)."""
    with handled():
        data = _action(number, "status", {"status": new_status, "text": text}, as_json, url)
        if not as_json:
            typer.echo(f"#{number} is {data['status']}")


@app.command("severity")
def severity(
    number: NumberArg,
    new_severity: Annotated[str, typer.Argument(metavar="SEVERITY", help="P0, P1, P2 or P3")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Change severity (commander role); the respond-by clock is re-computed."""
    with handled():
        data = _action(number, "severity", {"severity": new_severity}, as_json, url)
        if not as_json:
            typer.echo(f"#{number} is {data['severity']}; respond by {_when(data['respond_by'])}")


@app.command("note")
def note(
    number: NumberArg,
    text: Annotated[str, typer.Argument(help="the note ('-' reads it from stdin)")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Add a note to the timeline."""
    with handled():
        if text == "-":
            import sys

            text = sys.stdin.read()
        data = _action(number, "notes", {"text": text}, as_json, url)
        if not as_json:
            typer.echo(f"note {data['id']} added to #{number}")


@app.command("role")
def role(
    number: NumberArg,
    role_name: Annotated[
        str, typer.Argument(metavar="ROLE", help="commander, communications, scribe or responder")
    ],
    person: Annotated[str, typer.Argument(help="person id or user name ('-' clears the role)")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Assign an incident role (commander role needed)."""
    with handled():
        who = None if person == "-" else person
        _action(number, "roles", {"role": role_name, "person": who}, as_json, url)
        if not as_json:
            typer.echo(f"#{number}: {role_name} → {who or 'nobody'}")


@app.command("update")
def update(
    number: NumberArg,
    template: Annotated[
        str,
        typer.Argument(help="internal_update, status_page, customer_notice or executive_summary"),
    ],
    message: Annotated[
        str, typer.Option("--message", "-m", help="text added to the template")
    ] = "",
    public: Annotated[
        bool, typer.Option("--public", help="also post to the status page (commander)")
    ] = False,
    public_title: Annotated[
        str | None, typer.Option("--public-title", help="title on the status page, first time only")
    ] = None,
    preview: Annotated[bool, typer.Option("--preview", help="render only; record nothing")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Render a communications template and record it as sent on the timeline."""
    with handled():
        if preview:
            data = _client(url).get(
                f"/api/v1/incidents/{number}/comms/{template}", params={"message": message}
            )
            if as_json:
                _echo_json(data)
            else:
                typer.echo(data["body"], nl=False)
            return
        body: dict[str, Any] = {"template": template, "message": message, "public": public}
        if public_title:
            body["public_title"] = public_title
        data = _action(number, "updates", body, as_json, url)
        if not as_json:
            typer.echo(data["text"], nl=False)
            typer.echo(f"\n(recorded as event {data['id']} on #{number})", err=True)


@app.command("edit")
def edit(
    number: NumberArg,
    summary: Annotated[str | None, typer.Option(help="what we know so far")] = None,
    impact: Annotated[str | None, typer.Option(help="customer impact")] = None,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="affected services (replaces the list)")
    ] = None,
    runbook: Annotated[
        list[str] | None, typer.Option("--runbook", help="linked runbooks (replaces the list)")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Update summary, customer impact, services or linked runbooks (only the options given)."""
    with handled():
        body: dict[str, Any] = {}
        if summary is not None:
            body["summary"] = summary
        if impact is not None:
            body["customer_impact"] = impact
        if service:
            body["services"] = service
        if runbook:
            body["runbooks"] = runbook
        if not body:
            fail("nothing to change", hint="give --summary, --impact, --service or --runbook")
        data = _action(number, "details", body, as_json, url)
        if not as_json:
            typer.echo(f"#{number} updated")
            if data.get("services"):
                typer.echo("services: " + ", ".join(data["services"]))
