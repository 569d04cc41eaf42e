"""`warroom postmortem|drill|action|report`: clients of the REST API (--url / WARROOM_URL, WARROOM_TOKEN)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from warroom.cli.errors import fail, handled

app = typer.Typer(
    help="Postmortems: drafts from the record, editing, export.", no_args_is_help=True
)
drill_app = typer.Typer(help="Drills: rehearse a runbook and record RTO/RPO.", no_args_is_help=True)
action_app = typer.Typer(help="Action items from postmortems.", no_args_is_help=True)

UrlOpt = Annotated[str | None, typer.Option("--url", help="warroom server (default: $WARROOM_URL)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (stable, documented)")]


def _client(url: str | None) -> Any:
    from warroom.cli.client import ApiClient

    return ApiClient(url)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from datetime import timedelta

    from warroom.core.durations import format_duration

    return format_duration(timedelta(seconds=seconds))


# ------------------------------------------------------------------ postmortem


@app.command("create")
def pm_create(
    number: Annotated[int, typer.Argument(help="incident number")],
    regenerate: Annotated[
        bool, typer.Option(help="rebuild the draft's timeline from the record")
    ] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Write the first draft of incident N's postmortem from its record."""
    with handled():
        data = _client(url).post(
            f"/api/v1/incidents/{number}/postmortem", json={"regenerate": regenerate}
        )
        if as_json:
            _print_json(data)
            return
        typer.echo(
            f"postmortem draft for incident #{number}: {len(data['timeline'])} timeline entries; "
            f"export with `warroom postmortem export {number}`"
        )


@app.command("show")
def pm_show(
    number: Annotated[int, typer.Argument(help="incident number")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Print incident N's postmortem (Markdown, or JSON with --json)."""
    with handled():
        client = _client(url)
        path = f"/api/v1/incidents/{number}/postmortem"
        if as_json:
            _print_json(client.get(path))
        else:
            typer.echo(client.get(path, headers={"Accept": "text/markdown"}), nl=False)


@app.command("export")
def pm_export(
    number: Annotated[int, typer.Argument(help="incident number")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write to FILE instead of stdout")
    ] = None,
    url: UrlOpt = None,
) -> None:
    """Export incident N's postmortem as Markdown (renders on any Git host)."""
    with handled():
        text = _client(url).get(
            f"/api/v1/incidents/{number}/postmortem", headers={"Accept": "text/markdown"}
        )
        if out is None:
            sys.stdout.write(text)
            return
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
        typer.echo(f"wrote {out}", err=True)


@app.command("edit")
def pm_edit(
    number: Annotated[int, typer.Argument(help="incident number")],
    title: Annotated[str | None, typer.Option(help="document title")] = None,
    summary: Annotated[str | None, typer.Option(help="what happened")] = None,
    impact: Annotated[str | None, typer.Option(help="who was hurt and how much")] = None,
    root_cause: Annotated[str | None, typer.Option("--root-cause", help="why it happened")] = None,
    resolution: Annotated[str | None, typer.Option(help="what fixed it")] = None,
    lessons: Annotated[str | None, typer.Option(help="lessons learned")] = None,
    url: UrlOpt = None,
) -> None:
    """Edit a draft's text fields (Markdown allowed; '-' reads the value from stdin)."""
    with handled():
        fields = {
            "title": title,
            "summary": summary,
            "impact": impact,
            "root_cause": root_cause,
            "resolution": resolution,
            "lessons": lessons,
        }
        changes = {
            k: (sys.stdin.read() if v == "-" else v) for k, v in fields.items() if v is not None
        }
        if not changes:
            fail("nothing to change", hint="give at least one of --summary, --root-cause, ...")
        _client(url).request("PATCH", f"/api/v1/incidents/{number}/postmortem", json=changes)
        typer.echo(f"postmortem of incident #{number} updated: {', '.join(sorted(changes))}")


@app.command("publish")
def pm_publish(
    number: Annotated[int, typer.Argument(help="incident number")], url: UrlOpt = None
) -> None:
    """Publish incident N's postmortem (no more edits; reminders stop)."""
    with handled():
        _client(url).post(f"/api/v1/incidents/{number}/postmortem/publish")
        typer.echo(f"postmortem of incident #{number} published")


# ------------------------------------------------------------------ drills


def _drill_line(d: dict[str, Any]) -> str:
    failures = "; ".join(d.get("failures") or [])
    return (
        f"drill {d['id']}  {d['runbook']}  incident #{d['incident']}  {d['outcome']}  "
        f"RTO {_duration(d.get('rto_seconds'))}  RPO {_duration(d.get('rpo_seconds'))}"
        + (f"  failed: {failures}" if failures else "")
    )


@drill_app.command("start")
def drill_start(
    runbook: Annotated[str, typer.Argument(help="runbook id")],
    page: Annotated[bool, typer.Option(help="page people as for a real incident")] = False,
    severity: Annotated[str | None, typer.Option(help="P0..P3 (default: the runbook's)")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Open a drill of RUNBOOK: an incident flagged as a drill (no pages unless --page)."""
    with handled():
        data = _client(url).post(
            "/api/v1/drills", json={"runbook": runbook, "page": page, "severity": severity}
        )
        if as_json:
            _print_json(data)
            return
        typer.echo(
            f"drill {data['id']} started: incident #{data['incident']} (DRILL)"
            f"{'' if page else ', no pages'}; finish with `warroom drill finish {data['id']}`"
        )


@drill_app.command("finish")
def drill_finish(
    drill_id: Annotated[int, typer.Argument(metavar="N", help="drill id")],
    rto: Annotated[
        str | None, typer.Option(help="time to recover, e.g. 4m30s (default: since start)")
    ] = None,
    rpo: Annotated[str | None, typer.Option(help="data loss window, e.g. 0s or 2m")] = None,
    failed: Annotated[
        list[str] | None, typer.Option("--failed", help="what failed (repeat for several)")
    ] = None,
    notes: Annotated[str, typer.Option(help="free text")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Record drill N's result: RTO, RPO and what failed; resolves its incident."""
    with handled():
        from warroom.core.durations import parse_duration
        from warroom.core.errors import InvalidInput

        body: dict[str, Any] = {"failed": failed or [], "notes": notes}
        for name, text in (("rto", rto), ("rpo", rpo)):
            if text is None:
                continue
            try:
                body[name] = parse_duration(text, field=name).total_seconds()
            except OverflowError:
                raise InvalidInput(f"--{name} {text[:40]!r} is far too long") from None
        data = _client(url).post(f"/api/v1/drills/{drill_id}/finish", json=body)
        if as_json:
            _print_json(data)
            return
        typer.echo(_drill_line(data))


@drill_app.command("list")
def drill_list(
    runbook: Annotated[str | None, typer.Option(help="only this runbook")] = None,
    overdue: Annotated[
        bool, typer.Option(help="only runbooks overdue for a drill; exit 1 when any is (for CI)")
    ] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Drills held, and which runbooks are due or overdue for one (`drill_every`)."""
    with handled():
        params = {"runbook": runbook} if runbook else None
        data = _client(url).get("/api/v1/drills", params=params)
    late = [d for d in data["due"] if d["overdue"]]
    if as_json:
        _print_json({"due": late} if overdue else data)
    else:
        if not overdue:
            for d in data["drills"]:
                typer.echo(_drill_line(d))
            if not data["drills"]:
                typer.echo("no drills yet")
        for due in late if overdue else data["due"]:
            state = "OVERDUE" if due["overdue"] else f"next due {due['due_at']}"
            last = due["last_drill_at"] or "never"
            typer.echo(f"due: {due['runbook']}  last drill {last}  {state}")
        if overdue and not late:
            typer.echo("no drill is overdue")
    if overdue and late:
        raise typer.Exit(1)


# ------------------------------------------------------------------ action items


def _item_line(i: dict[str, Any]) -> str:
    where = f"#{i['incident']}" if i.get("incident") else "-"
    due = i.get("due_date") or "no due date"
    flag = "  OVERDUE" if i.get("overdue") else ""
    runbook = f"  runbook {i['runbook']}" if i.get("runbook") else ""
    return (
        f"{i['id']:>5}  {i['state']:<11} {i['kind']:<14} {where:<6} {i['owner'] or '-':<12} "
        f"{due}{flag}{runbook}  {i['title']}"
    )


@action_app.command("list")
def action_list(
    overdue: Annotated[bool, typer.Option(help="only open items past their due date")] = False,
    open_only: Annotated[bool, typer.Option("--open", help="only open items")] = False,
    incident: Annotated[int | None, typer.Option(help="only this incident's items")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """List action items. With --overdue, exit 1 when any is overdue (for CI)."""
    with handled():
        params: dict[str, Any] = {"overdue": overdue, "open": open_only}
        if incident is not None:
            params["incident"] = incident
        data = _client(url).get("/api/v1/actions", params=params)
    if as_json:
        _print_json(data)
    else:
        for item in data["items"]:
            typer.echo(_item_line(item))
        if not data["items"]:
            typer.echo("no overdue action items" if overdue else "no action items")
    if overdue and data["items"]:
        raise typer.Exit(1)


@action_app.command("add")
def action_add(
    title: Annotated[str, typer.Argument(help="what to do")],
    kind: Annotated[
        str, typer.Option(help="preventive | monitoring | runbook_update | other")
    ] = "preventive",
    owner: Annotated[str, typer.Option(help="who does it")] = "",
    due: Annotated[str | None, typer.Option(help="due date YYYY-MM-DD")] = None,
    incident: Annotated[int | None, typer.Option(help="incident number")] = None,
    runbook: Annotated[str | None, typer.Option(help="runbook id (runbook_update items)")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Add an action item."""
    with handled():
        from warroom.postmortems.actions import parse_due, parse_kind

        body = {
            "title": title,
            "kind": parse_kind(kind).value,
            "owner": owner,
            "due_date": (d.isoformat() if (d := parse_due(due)) else None),
            "incident": incident,
            "runbook": runbook,
        }
        data = _client(url).post("/api/v1/actions", json=body)
        if as_json:
            _print_json(data)
            return
        typer.echo(f"action item {data['id']} added: {data['title']}")


@action_app.command("done")
def action_done(
    item_id: Annotated[int, typer.Argument(metavar="ID", help="action item id")],
    reason: Annotated[str, typer.Option(help="why it is done")] = "",
    url: UrlOpt = None,
) -> None:
    """Mark an action item done."""
    with handled():
        data = _client(url).post(f"/api/v1/actions/{item_id}/done", json={"reason": reason})
        typer.echo(f"action item {data['id']} done")


# ------------------------------------------------------------------ report


def _fmt_times(t: dict[str, Any]) -> str:
    return (
        f"{t['incidents']:>5}  MTTA {_duration(t['mtta_median']):>8} / p90 "
        f"{_duration(t['mtta_p90']):>8}   MTTR {_duration(t['mttr_median']):>8} / p90 "
        f"{_duration(t['mttr_p90']):>8}"
    )


def report(
    since: Annotated[
        str, typer.Option(help="window start: a duration back (30d) or a date")
    ] = "30d",
    until: Annotated[str | None, typer.Option(help="window end (default: now)")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """MTTA, MTTR, response-time compliance, incidents per service, drills done vs due."""
    with handled():
        params = {"since": since}
        if until:
            params["until"] = until
        data = _client(url).get("/api/v1/reports", params=params)
        if as_json:
            _print_json(data)
            return
        typer.echo(f"Incidents {data['since']} .. {data['until']} ({data['timezone']})")
        typer.echo(f"{'all':<16}{_fmt_times(data['overall'])}")
        for title, key in (
            ("Severity", "by_severity"),
            ("Service", "by_service"),
            ("Month", "by_month"),
        ):
            typer.echo(f"\n{title}")
            for name, t in data[key].items():
                typer.echo(f"  {name:<14}{_fmt_times(t)}")
        typer.echo("\nResponse-time compliance")
        for sev, c in data["compliance"].items():
            rate = "-" if c["rate"] is None else f"{c['rate'] * 100:.1f}%"
            typer.echo(f"  {sev:<14}{rate:>7}  ({c['within']}/{c['decided']} within respond-by)")
        typer.echo(f"\nDrills: {data['drills_done']} done / {data['drills_due']} due")
        for d in data["drills"]:
            flag = "  OVERDUE" if d["overdue"] else ""
            typer.echo(f"  {d['runbook']:<28}{d['done']} / {d['due']}{flag}")
