"""`warroom runbook …`: list, show, lint, index, run, stale and review; works offline on files.

`run --json` prints one object: {"run": {id, runbook, file_hash, actor,
trigger, params, outcome, started_at, finished_at, incident}, "steps": [{id,
phase, kind, outcome, exit_status, duration_ms, output, truncated}]}.
Exit codes: 0 ok; 1 lint/stale found problems or a run did not succeed;
2 bad usage or input; 4 runbook or incident not found.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warroom.cli.errors import EXIT_PROBLEMS, fail, handled

if TYPE_CHECKING:
    from warroom.config.schema import Config
    from warroom.runbooks.model import Catalog, Runbook

app = typer.Typer(help="Executable Markdown runbooks.", no_args_is_help=True)

DirOpt = Annotated[
    Path | None,
    typer.Option("--runbooks", "-r", help="runbook folder (default: $WARROOM_RUNBOOKS)"),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="warroom.yaml (default: $WARROOM_CONFIG)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _folder(runbooks: Path | None) -> Path:
    from warroom.cli.context import settings

    return runbooks or settings().runbooks_path


def _catalog(runbooks: Path | None) -> Catalog:
    from warroom.runbooks.loader import load_folder

    return load_folder(_folder(runbooks))


def _find(ref: str, runbooks: Path | None) -> Runbook:
    """A runbook by id from the folder, or by file path."""
    from warroom.core.errors import NotFound
    from warroom.runbooks.loader import load_file

    path = Path(ref)
    if ref.endswith(".md") or path.is_file():
        return load_file(path)
    catalog = _catalog(runbooks)
    rb = catalog.get(ref)
    if rb is None:
        known = ", ".join(sorted(catalog.runbooks)[:20]) or "none"
        raise NotFound(f"no runbook {ref!r} in {catalog.root} (known: {known})")
    return rb


def _config(config: Path | None, *, required: bool = False) -> Config | None:
    """warroom.yaml when there is one; runbook commands also work without it."""
    from warroom.cli.context import settings
    from warroom.config.loader import load_config

    path = config or settings().config_path
    if not path.exists() and not required and config is None:
        return None
    return load_config(path)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _today() -> date:
    from warroom.core.clock import SystemClock

    return SystemClock().now().date()


@app.command("list")
def list_(runbooks: DirOpt = None, as_json: JsonOpt = False) -> None:
    """Every runbook in the folder with owner, severity and review date."""
    with handled():
        catalog = _catalog(runbooks)
        items = [rb.summary() for rb in catalog]
        if as_json:
            _echo_json({"runbooks": items, "problems": [p.as_dict() for p in catalog.problems]})
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for col in ("id", "title", "sev", "owner", "steps", "review due"):
            table.add_column(col)
        for it in items:
            table.add_row(
                *(
                    escape(str(v))
                    for v in (
                        it["id"],
                        it["title"],
                        it["severity"],
                        it["owner"] or "-",
                        it["steps"],
                        it["review_due"] or "-",
                    )
                )
            )
        Console().print(table)
        for problem in catalog.problems:
            typer.echo(str(problem), err=True)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="runbook id or file")],
    runbooks: DirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Front matter, parameters, phases and steps of one runbook."""
    with handled():
        rb = _find(ref, runbooks)
        if as_json:
            data = rb.as_dict()
            data["problems"] = [p.as_dict() for p in rb.problems]
            _echo_json(data)
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        con = Console(highlight=False)
        con.print(f"[bold]{escape(rb.title)}[/bold]  ({escape(rb.id)}, {escape(str(rb.path))})")
        con.print(
            f"owner {rb.owner or '-'} · severity {rb.severity} · services "
            f"{', '.join(rb.services) or '-'} · last reviewed {rb.last_reviewed or 'never'}"
            f"{' by ' + rb.reviewed_by if rb.reviewed_by else ''}",
            markup=False,
        )
        for trig in rb.trigger_text:
            con.print(f"trigger: {trig}", markup=False)
        if rb.params:
            con.print("[bold]parameters[/bold]")
            for p in rb.params.values():
                extra = f" choices={list(p.choices)}" if p.choices else ""
                con.print(
                    f"  {p.name} ({p.type.value}, default {p.default!r}){extra}  {p.description}",
                    markup=False,
                )
        table = Table(box=None, header_style="bold")
        for col in ("step", "phase", "kind", "flags", "line", "title"):
            table.add_column(col)
        for s in rb.steps:
            flags = " ".join(f for f, on in (("auto", s.auto), ("mutates", s.mutates)) if on) + (
                f" conn={s.conn}" if s.conn else ""
            )
            cells = (s.id, s.phase.value, s.kind.value, flags.strip(), str(s.line), s.title)
            table.add_row(*(escape(c) for c in cells))
        con.print(table)
        for problem in rb.problems:
            typer.echo(str(problem), err=True)


@app.command("lint")
def lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="files or folders (default: the runbook folder)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    config: ConfigOpt = None,
) -> None:
    """Check runbooks; `file:line: error|warning: message`; exit 1 when there is an error."""
    if fmt not in ("text", "json"):
        fail(f"--format must be text or json, not {fmt!r}")
    with handled():
        from warroom.runbooks.lint import has_errors, lint_paths

        cfg = _config(config)
        owners = cfg.owners() if cfg is not None else None
        conns = set(cfg.connections) if cfg is not None else None
        targets = list(paths) if paths else [_folder(None)]
        problems, runbooks = lint_paths(targets, today=_today(), owners=owners, connections=conns)
        if fmt == "json":
            _echo_json(
                {
                    "problems": [p.as_dict() for p in problems],
                    "runbooks": len(runbooks),
                    "errors": sum(p.level == "error" for p in problems),
                    "warnings": sum(p.level == "warning" for p in problems),
                }
            )
        else:
            for p in problems:
                typer.echo(str(p))
            errors = sum(p.level == "error" for p in problems)
            typer.echo(
                f"{len(runbooks)} runbook(s), {errors} error(s), "
                f"{len(problems) - errors} warning(s)",
                err=True,
            )
    if has_errors(problems):
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("index")
def index(
    write: Annotated[bool, typer.Option("--write", help="update the README in place")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="exit 1 when the README index is out of date")
    ] = False,
    runbooks: DirOpt = None,
) -> None:
    """The runbook index table (front matter of every runbook) for the folder's README."""
    with handled():
        from warroom.runbooks import index as idx

        folder = _folder(runbooks)
        catalog = _catalog(runbooks)
        table = idx.render(catalog, relative_to=folder)
        if not write and not check:
            typer.echo(table, nl=False)
            return
        readme = folder / "README.md"
        try:
            current = readme.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"{readme}: cannot read: {exc.strerror or exc}")
        updated = idx.splice(current, table)
        if check:
            if updated != current:
                typer.echo(
                    f"{readme}: runbook index is out of date (run: warroom runbook index --write)"
                )
                raise typer.Exit(EXIT_PROBLEMS)
            typer.echo(f"{readme}: runbook index is up to date")
            return
        if updated != current:
            readme.write_text(updated, encoding="utf-8")
            typer.echo(f"{readme}: index updated ({len(catalog.runbooks)} runbooks)")
        else:
            typer.echo(f"{readme}: index already up to date")


@app.command("stale")
def stale(
    runbooks: DirOpt = None,
    as_json: JsonOpt = False,
    at: Annotated[
        str | None, typer.Option("--at", help="date to check against (YYYY-MM-DD)")
    ] = None,
) -> None:
    """Reviews and drills that are overdue; exit 1 when any is (for CI)."""
    with handled():
        from warroom.core.errors import InvalidInput
        from warroom.runbooks.maintenance import stale as find_stale

        try:
            today = date.fromisoformat(at) if at else _today()
        except ValueError:
            raise InvalidInput(f"--at {at!r} is not a date (YYYY-MM-DD)", field="at") from None
        items = find_stale(_catalog(runbooks), today)
        if as_json:
            _echo_json({"today": today.isoformat(), "overdue": [i.as_dict() for i in items]})
        else:
            for it in items:
                when = (
                    f"due {it.due.isoformat()}, {it.days_overdue} day(s) overdue"
                    if it.due
                    else "never done"
                )
                typer.echo(
                    f"{it.path}: {it.kind} overdue: {it.runbook_id} ({when}; owner {it.owner or '-'})"
                )
            if not items:
                typer.echo("every review and drill is up to date")
    if items:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("review")
def review(
    ref: Annotated[str, typer.Argument(help="runbook id or file")],
    by: Annotated[str, typer.Option("--by", help="who reviewed it")],
    on: Annotated[str | None, typer.Option("--on", help="review date (default today)")] = None,
    runbooks: DirOpt = None,
) -> None:
    """Record a review: only the last_reviewed and reviewed_by lines of the file change."""
    with handled():
        from warroom.core.errors import InvalidInput
        from warroom.runbooks.maintenance import review as record

        try:
            day = date.fromisoformat(on) if on else _today()
        except ValueError:
            raise InvalidInput(f"--on {on!r} is not a date (YYYY-MM-DD)", field="on") from None
        rb = _find(ref, runbooks)
        record(rb.path, by, day)
        typer.echo(f"{rb.path}: reviewed by {by} on {day.isoformat()}")


def _parse_params(items: list[str]) -> dict[str, str]:
    from warroom.core.errors import InvalidInput

    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidInput(f"--param {item!r}: expected NAME=VALUE", field="param")
        out[key.strip()] = value
    return out


@app.command("run")
def run(
    ref: Annotated[str, typer.Argument(help="runbook id or file")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="render every step, run nothing")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="confirm mutating steps")] = False,
    phase: Annotated[
        list[str] | None, typer.Option("--phase", help="only steps of this phase")
    ] = None,
    step: Annotated[list[str] | None, typer.Option("--step", help="only this step id")] = None,
    incident: Annotated[
        int | None, typer.Option("--incident", help="post the run on this incident's timeline")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--as", help="who runs it (default: login name)")
    ] = None,
    as_json: JsonOpt = False,
    runbooks: DirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run a runbook's steps; mutating steps need confirmation (or --yes)."""
    with handled():
        code = _run(
            ref,
            params=_parse_params(param or []),
            dry_run=dry_run,
            yes=yes,
            phases=phase or [],
            steps=step or [],
            incident=incident,
            actor=actor,
            as_json=as_json,
            runbooks=runbooks,
            config=config,
        )
    if code:
        raise typer.Exit(code)


def _run(
    ref: str,
    *,
    params: dict[str, str],
    dry_run: bool,
    yes: bool,
    phases: list[str],
    steps: list[str],
    incident: int | None,
    actor: str | None,
    as_json: bool,
    runbooks: Path | None,
    config: Path | None,
) -> int:
    import getpass

    from warroom.config.schema import Config
    from warroom.core.errors import InvalidInput
    from warroom.runbooks import executor
    from warroom.runbooks.model import Phase, Step

    rb = _find(ref, runbooks)
    cfg = _config(config) or Config()
    for ph in phases:
        if ph not in {p.value for p in Phase}:
            raise InvalidInput(
                f"--phase {ph!r} is not one of {', '.join(p.value for p in Phase)}", field="phase"
            )
    select: Any = None
    if phases or steps:
        unknown = sorted(set(steps) - {s.id for s in rb.steps})
        if unknown:
            raise InvalidInput(f"runbook {rb.id} has no step {unknown[0]!r}", field="step")
        wanted_steps, wanted_phases = set(steps), set(phases)

        def select(s: Step) -> bool:
            return s.id in wanted_steps or s.phase.value in wanted_phases

    if dry_run:
        planned = executor.dry_run(rb, cfg.connections, params=params, select=select)
        if as_json:
            _echo_json(
                {
                    "runbook": rb.id,
                    "dry_run": True,
                    "steps": [{**p.step.as_dict(), "rendered": p.display} for p in planned],
                }
            )
        else:
            for p in planned:
                flags = " [mutates]" if p.step.mutates else " [auto]" if p.step.auto else ""
                typer.echo(f"## {p.step.phase.value} · {p.step.id} ({p.step.kind.value}){flags}")
                typer.echo(p.display.rstrip("\n"))
                typer.echo("")
            typer.echo(f"dry run: {len(planned)} step(s) rendered, nothing ran", err=True)
        return 0
    who = actor or _login(getpass)
    rt = _runtime(config, cfg)
    incident_row_id = _incident_id(rt, incident) if incident is not None else None
    interactive = sys.stdin.isatty() and not as_json
    mutating = {s.id for s in rb.steps if s.mutates}
    confirmed = set(mutating) if yes else set()
    ui = _Ui(enabled=not as_json)

    def confirm(s: Step) -> bool:
        if not interactive:
            return False
        ui.pause()
        if s.kind.value == "manual":
            return typer.confirm(f"[manual] {s.title} — done?", default=False)
        typer.echo(f"\nstep {s.id} CHANGES THINGS:\n{s.code.rstrip()}")
        return typer.confirm("run it?", default=False)

    timeline = _Timeline(rt, incident_row_id, who) if incident_row_id is not None else None
    step_rows: list[Any] = []

    def on_step(s: Step, row: Any) -> None:
        step_rows.append(row)
        ui.finished(s, row)
        if timeline is not None:
            timeline.step(rb, s, row)

    if timeline is not None:
        timeline.started(rb, params)
    run_row = executor.execute(
        rt,
        rb,
        params=params,
        actor=who,
        trigger="manual",
        incident_id=incident_row_id,
        labels=_incident_labels(rt, incident_row_id) if incident_row_id is not None else None,
        select=select,
        confirmed=confirmed,
        confirm=confirm,
        on_event=ui.event,
        on_step=on_step,
    )
    if timeline is not None:
        timeline.finished(rb, run_row)
    if as_json:
        _echo_json(
            {
                "run": {
                    "id": run_row.id,
                    "runbook": run_row.runbook_id,
                    "file_hash": run_row.file_hash,
                    "actor": run_row.actor,
                    "trigger": run_row.trigger,
                    "params": run_row.params,
                    "outcome": run_row.outcome,
                    "started_at": run_row.started_at.isoformat(),
                    "finished_at": run_row.finished_at.isoformat() if run_row.finished_at else None,
                    "incident": incident,
                },
                "steps": [
                    {
                        "id": r.step_id,
                        "phase": r.phase,
                        "kind": r.kind,
                        "outcome": r.outcome,
                        "exit_status": r.exit_status,
                        "duration_ms": r.duration_ms,
                        "output": r.output,
                        "truncated": r.truncated,
                    }
                    for r in step_rows
                ],
            }
        )
    else:
        ui.summary(run_row)
    return 0 if run_row.outcome == "succeeded" else EXIT_PROBLEMS


def _login(getpass: Any) -> str:
    try:
        return str(getpass.getuser())
    except Exception:  # no login name in a bare container
        return "cli"


def _runtime(config: Path | None, cfg: Config) -> Any:
    from warroom.bootstrap import build_runtime
    from warroom.cli.context import settings
    from warroom.core.errors import Unavailable
    from warroom.store import migrate

    rt = build_runtime(settings(config), config=cfg, require_key=False)
    rt.db.ping()  # Unavailable with a clear message when the database is down
    try:
        current = migrate.is_current(rt.db)
    except Exception as exc:  # any driver error here means we cannot record the run
        raise Unavailable(f"cannot read the database schema: {type(exc).__name__}") from None
    if not current:
        # run records need the schema; the embedded SQLite file is created on first use
        if rt.db.dialect != "sqlite":
            raise Unavailable(
                "the database schema is not current", hint="run `warroom db upgrade` first"
            )
        migrate.upgrade(rt.db)
    return rt


def _incident_labels(rt: Any, incident_id: int) -> dict[str, str]:
    """Labels of the incident's first alert: parameters not given fall back to them."""
    from sqlalchemy import select

    from warroom.alerts.models import Alert

    with rt.db.read() as s:
        alert = s.scalars(
            select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id).limit(1)
        ).first()
    return {str(k): str(v) for k, v in (alert.labels if alert else {}).items()}


def _incident_id(rt: Any, number: int) -> int:
    from warroom.incidents import service

    with rt.db.read() as s:
        return int(service.get_or_raise(s, number=number).id)


class _Timeline:
    """Posts the run and each step's result on the incident's timeline as it happens."""

    def __init__(self, rt: Any, incident_id: int, actor: str) -> None:
        self.rt, self.incident_id, self.actor = rt, incident_id, actor

    def _add(self, kind: str, text: str, data: dict[str, Any]) -> None:
        from warroom.incidents import timeline
        from warroom.incidents.models import Incident

        with self.rt.db.transaction() as s:
            incident = s.get(Incident, self.incident_id)
            timeline.add(
                s,
                incident,
                kind=kind,
                actor=self.actor,
                at=self.rt.now(),
                text=text,
                data=data,
                redactor=self.rt.redactor,
            )

    def started(self, rb: Runbook, params: dict[str, str]) -> None:
        self._add(
            "runbook.started", f"runbook {rb.id} started", {"runbook": rb.id, "params": params}
        )

    def step(self, rb: Runbook, s: Any, row: Any) -> None:
        tail = row.output[-2000:]
        self._add(
            "runbook.step",
            f"{rb.id} · {s.id}: {row.outcome}"
            + (f" (exit {row.exit_status})" if row.exit_status is not None else ""),
            {
                "runbook": rb.id,
                "run_id": row.run_id,
                "step": s.id,
                "kind": row.kind,
                "outcome": row.outcome,
                "exit_status": row.exit_status,
                "duration_ms": row.duration_ms,
                "output": tail,
            },
        )

    def finished(self, rb: Runbook, run: Any) -> None:
        self._add(
            "runbook.finished",
            f"runbook {rb.id} {run.outcome}",
            {"runbook": rb.id, "run_id": run.id, "outcome": run.outcome},
        )


class _Ui:
    """Rich status lines around each step; output streams through as it comes."""

    ICONS = {
        "succeeded": ("✔", "green"),
        "ticked": ("✔", "green"),
        "failed": ("✘", "red"),
        "timeout": ("⏱", "red"),
        "refused": ("⛔", "yellow"),
        "skipped": ("–", "dim"),
    }

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._con: Any = None
        if enabled:
            from rich.console import Console

            self._con = Console(highlight=False)

    def pause(self) -> None:
        sys.stdout.flush()

    def event(self, s: Any, kind: str, text: str) -> None:
        if not self.enabled:
            return
        from rich.markup import escape

        if kind == "start":
            flags = " [mutates]" if s.mutates else ""
            self._con.print(
                f"[bold cyan]▶ {s.phase.value} · {s.id}[/] [dim]({s.kind.value}){flags} {escape(s.title)}[/]"
            )
        elif kind == "output":
            sys.stdout.write(text)
            sys.stdout.flush()
        elif kind in ("refused", "skipped") and text:
            self._con.print(f"[yellow]{kind}: {s.id}: {escape(text)}[/]")

    def finished(self, s: Any, row: Any) -> None:
        if not self.enabled:
            return
        icon, colour = self.ICONS.get(row.outcome, ("?", "white"))
        status = f" exit {row.exit_status}" if row.exit_status is not None else ""
        self._con.print(
            f"[{colour}]{icon} {s.id} {row.outcome}{status} in {row.duration_ms / 1000:.2f}s[/]"
        )

    def summary(self, run: Any) -> None:
        if not self.enabled:
            return
        icon, colour = self.ICONS.get(run.outcome, ("?", "white"))
        self._con.print(f"[bold {colour}]{icon} run {run.id} of {run.runbook_id}: {run.outcome}[/]")
