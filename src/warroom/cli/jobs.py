"""`warroom jobs …`: admin view of the job engine, on the database directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from warroom.cli.errors import handled

app = typer.Typer(help="The job engine: dead jobs and retries.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="warroom.yaml (default: $WARROOM_CONFIG)")
]


@app.command("dead")
def dead(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="newest N")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: ConfigOpt = None,
) -> None:
    """Jobs that used up their attempts: what failed, and the last error (redacted)."""
    with handled():
        from warroom.cli.context import runtime
        from warroom.jobs import queue
        from warroom.web.api.jobs import job_dict

        rt = runtime(config)
        with rt.db.read() as s:
            rows = [job_dict(j) for j in queue.dead_jobs(s, limit=limit)]
        if as_json:
            typer.echo(json.dumps({"items": rows}, indent=2, sort_keys=True))
            return
        if not rows:
            typer.echo("no dead jobs")
            return
        for r in rows:
            typer.echo(
                f"{r['id']:>6} {r['kind']:<28} attempts {r['attempts']}/{r['max_attempts']} "
                f"incident {r['incident_id'] or '-'}  {(r['last_error'] or '').splitlines()[0:1]}"
            )


@app.command("retry")
def retry(
    job_id: Annotated[int, typer.Argument(min=1, help="id from `warroom jobs dead`")],
    config: ConfigOpt = None,
) -> None:
    """Send a dead job round again now (attempts reset). Recorded in the audit log."""
    with handled():
        import getpass

        from warroom.cli.context import runtime
        from warroom.core.errors import Conflict, NotFound
        from warroom.jobs import queue
        from warroom.jobs.models import Job
        from warroom.store import audit

        rt = runtime(config)
        with rt.db.transaction() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"job {job_id} does not exist", field="job_id")
            if not queue.requeue(s, job_id, now=rt.now()):
                raise Conflict(f"job {job_id} is {job.state}, not dead", field="job_id")
            try:
                actor = f"cli:{getpass.getuser()}"
            except (KeyError, OSError):
                actor = "cli"
            audit.record(
                s,
                at=rt.now(),
                actor=actor,
                action="job.retry",
                target=f"job:{job_id}",
                detail={"kind": job.kind},
                redactor=rt.redactor,
            )
        typer.echo(f"job {job_id} ({job.kind}) queued again")
