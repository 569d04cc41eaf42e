"""`warroom oncall …` and `warroom page …`: clients of the on-call REST API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from warroom.cli.errors import EXIT_PROBLEMS, fail, handled

app = typer.Typer(
    help="On-call schedules: who is on call, shifts, ICS, overrides.", no_args_is_help=True
)
override_app = typer.Typer(
    help="Run-time overrides (recorded in the audit log).", no_args_is_help=True
)
app.add_typer(override_app, name="override")
page_app = typer.Typer(
    help="Pages: test a person's contact methods, delivery log, retries.", no_args_is_help=True
)

UrlOpt = Annotated[str | None, typer.Option("--url", help="server URL (default: $WARROOM_URL)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _client(url: str | None) -> Any:
    from warroom.cli.client import ApiClient

    return ApiClient(url)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@app.command("now")
def now(
    schedule: Annotated[str | None, typer.Argument(help="schedule id (default: all)")] = None,
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 instant with offset")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Who is on call now, or at --at."""
    with handled():
        params = {"at": at} if at else {}
        client = _client(url)
        if schedule:
            data = client.get(f"/api/v1/oncall/{_seg(schedule)}", params={**params, "days": 0})
            rows = [data]
        else:
            data = client.get("/api/v1/oncall", params=params)
            rows = data["schedules"]
        if as_json:
            _echo_json(data)
            return
        if not rows:
            typer.echo("no schedules configured")
        for row in rows:
            who = row["person"] or "nobody"
            name = f" ({row['person_name']})" if row.get("person_name") else ""
            typer.echo(f"{row['schedule']}: {who}{name}  [{row['source']}] at {row['at']}")


@app.command("shifts")
def shifts(
    schedule: Annotated[str, typer.Argument(help="schedule id")],
    days: Annotated[float, typer.Option(help="how many days ahead")] = 14,
    at: Annotated[str | None, typer.Option("--at", help="start instant (ISO 8601)")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """The next shifts of a schedule."""
    with handled():
        params: dict[str, Any] = {"days": days}
        if at:
            params["at"] = at
        data = _client(url).get(f"/api/v1/oncall/{_seg(schedule)}", params=params)
        if as_json:
            _echo_json(data["shifts"])
            return
        for s in data["shifts"]:
            typer.echo(f"{s['from']}  {s['to']}  {s['person']:<16} {s['source']}")


@app.command("ics")
def ics(
    schedule: Annotated[str, typer.Argument(help="schedule id")],
    days: Annotated[int, typer.Option(help="how many days ahead")] = 60,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write to this file")] = None,
    link: Annotated[
        bool, typer.Option("--link", help="print a signed subscription URL for calendar apps")
    ] = False,
    url: UrlOpt = None,
) -> None:
    """Export the schedule as an iCalendar (.ics) file, or print a subscription link."""
    with handled():
        if link:
            data = _client(url).post(f"/api/v1/oncall/{_seg(schedule)}/ics-link")
            typer.echo(data["url"])
            typer.echo(f"valid until {data['expires_at']}", err=True)
            return
        body = _client(url).get(f"/api/v1/oncall/{_seg(schedule)}.ics", params={"days": days})
        if out is None:
            sys.stdout.write(body)
        else:
            out.write_text(body)
            typer.echo(f"wrote {out}", err=True)


@override_app.command("add")
def override_add(
    schedule: Annotated[str, typer.Argument(help="schedule id")],
    person: Annotated[str, typer.Argument(help="person id who takes over")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 start, with offset")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 end, with offset")],
    reason: Annotated[str, typer.Option(help="why (kept in the audit log)")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Put PERSON on call for SCHEDULE between --from and --to."""
    with handled():
        data = _client(url).post(
            f"/api/v1/oncall/{_seg(schedule)}/overrides",
            json={"person": person, "from": start, "to": end, "reason": reason},
        )
        if as_json:
            _echo_json(data)
        else:
            typer.echo(
                f"override {data['id']}: {person} on {schedule} {data['from']} → {data['to']}"
            )


@override_app.command("list")
def override_list(
    schedule: Annotated[str, typer.Argument(help="schedule id")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Active and future run-time overrides."""
    with handled():
        data = _client(url).get(f"/api/v1/oncall/{_seg(schedule)}/overrides")
        if as_json:
            _echo_json(data["overrides"])
            return
        for o in data["overrides"]:
            typer.echo(f"{o['id']:>5}  {o['person']:<16} {o['from']} → {o['to']}  {o['reason']}")


@override_app.command("remove")
def override_remove(
    schedule: Annotated[str, typer.Argument(help="schedule id")],
    override_id: Annotated[int, typer.Argument(help="override id")],
    url: UrlOpt = None,
) -> None:
    """Cancel a run-time override."""
    with handled():
        _client(url).request("DELETE", f"/api/v1/oncall/{_seg(schedule)}/overrides/{override_id}")
        typer.echo(f"override {override_id} cancelled")


@page_app.command("test")
def page_test(
    person: Annotated[str, typer.Argument(help="person id from warroom.yaml")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Send a test page through each of PERSON's contact methods; exit 1 if any failed."""
    with handled():
        data = _client(url).post(f"/api/v1/people/{_seg(person)}/test-page")
        if as_json:
            _echo_json(data)
        else:
            for d in data["deliveries"]:
                detail = d["result"] if d["state"] == "sent" else d["error"]
                typer.echo(f"{d['channel']:<12} {d['type']:<20} {d['state']:<6} {detail}")
        if not data["ok"]:
            raise typer.Exit(EXIT_PROBLEMS)


@page_app.command("log")
def page_log(
    incident: Annotated[int, typer.Argument(help="incident number")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """The delivery log of an incident: who was paged, how, and what happened."""
    with handled():
        data = _client(url).get(f"/api/v1/incidents/{incident}/deliveries")
        if as_json:
            _echo_json(data["deliveries"])
            return
        for d in data["deliveries"]:
            err = f"  {d['last_error']}" if d["last_error"] else ""
            typer.echo(
                f"{d['id']:>5} L{d['level'] + 1}/R{d['round'] + 1} {d['recipient']:<14} "
                f"{d['channel']:<10} {d['state']:<9} x{d['attempts']}{err}"
            )


@page_app.command("retry")
def page_retry(
    delivery: Annotated[int, typer.Argument(help="delivery id (see `warroom page log N`)")],
    url: UrlOpt = None,
) -> None:
    """Send a dead delivery again."""
    with handled():
        data = _client(url).post(f"/api/v1/deliveries/{delivery}/retry")
        if data is None:
            fail("empty answer from server")
        typer.echo(f"delivery {delivery} queued again ({data['channel']} to {data['recipient']})")
