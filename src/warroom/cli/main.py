"""Entry point of `warroom`. Heavy modules are imported inside commands so --help is fast."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from warroom.cli.errors import handled

app = typer.Typer(
    name="warroom",
    help="Incident response from your runbook folder: runbooks, incidents, alerts, on-call.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="warroom.yaml.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

# Sub-apps per domain: (module, attribute, command name). Each module imports
# only typer at the top level.
SUBAPPS = (
    ("warroom.cli.runbook", "app", "runbook"),
    ("warroom.cli.incident", "app", "incident"),
    ("warroom.cli.users", "user_app", "user"),
    ("warroom.cli.users", "token_app", "token"),
    ("warroom.cli.users", "audit_app", "audit"),
    ("warroom.cli.jobs", "app", "jobs"),
    ("warroom.cli.alert", "app", "alert"),
    ("warroom.cli.alert", "integration_app", "integration"),
    ("warroom.cli.oncall", "app", "oncall"),
    ("warroom.cli.oncall", "page_app", "page"),
    ("warroom.cli.postmortem", "app", "postmortem"),
    ("warroom.cli.postmortem", "drill_app", "drill"),
    ("warroom.cli.postmortem", "action_app", "action"),
)
TOP_LEVEL = (("warroom.cli.postmortem", "report"),)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="warroom.yaml (default: $WARROOM_CONFIG)")
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only (scale-out mode)")
    ] = False,
    config: ConfigOpt = None,
    migrate: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate", help="upgrade the schema first (default: on SQLite)"
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="embedded demo: sample config, generated keys")
    ] = False,
) -> None:
    """Run the API, web UI and (unless --no-worker) one worker in this process."""
    with handled():
        from warroom.server import serve as run_server

        run_server(
            host=host, port=port, worker=not no_worker, config=config, migrate=migrate, demo=demo
        )


@app.command()
def worker(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option(help="run due jobs until none is due, then exit")] = False,
) -> None:
    """Run a worker on its own: escalations, deliveries, runbook steps, sweeps."""
    with handled():
        from warroom.server import run_worker

        run_worker(config=config, once=once)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (run once per release before starting replicas)."""
    with handled():
        from warroom.cli.context import settings
        from warroom.store.db import Database
        from warroom.store.migrate import upgrade

        s = settings()
        db = Database(s.database_url)
        upgrade(db)
        typer.echo(f"database at {_safe_url(s.database_url)} is up to date")


@config_app.command("check")
def config_check(
    file: Annotated[
        Path | None, typer.Argument(help="config file (default: $WARROOM_CONFIG)")
    ] = None,
    strict_env: Annotated[
        bool, typer.Option("--env/--no-env", help="also require every env: variable to be set")
    ] = False,
) -> None:
    """Validate warroom.yaml: one line per problem; exit 1 when there are problems."""
    from warroom.cli.context import settings
    from warroom.config.loader import load_config, missing_env
    from warroom.core.errors import ConfigError
    from warroom.settings import env

    path = file or settings().config_path
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"{exc.source}: {problem}", err=True)
        raise typer.Exit(1) from None
    missing = missing_env(cfg, env)
    for line in missing:
        typer.echo(f"{path}: {'error' if strict_env else 'warning'}: {line}", err=True)
    if strict_env and missing:
        raise typer.Exit(1)
    typer.echo(
        f"{path}: ok ({len(cfg.people)} people, {len(cfg.schedules)} schedules, "
        f"{len(cfg.integrations)} integrations, {len(cfg.routes)} routes)"
    )


@app.command()
def version() -> None:
    """Print the version."""
    from warroom import __version__

    typer.echo(__version__)


def _safe_url(url: str) -> str:
    from warroom.core.redact import Redactor

    return Redactor().redact(url)


def attach(argv: list[str] | None = None) -> None:
    """Attach sub-apps. With a sub-command named in argv, only its module is imported.

    `warroom runbook run …` then pays for the runbook module alone; `warroom
    --help` (no sub-command) still lists everything.
    """
    wanted = next((a for a in (argv or []) if not a.startswith("-")), None)
    known = {name for _, _, name in SUBAPPS} | {name for _, name in TOP_LEVEL}
    only = wanted if wanted in known else None
    for module_name, attr, name in SUBAPPS:
        if only is not None and name != only:
            continue
        app.add_typer(getattr(importlib.import_module(module_name), attr), name=name)
    for module_name, attr in TOP_LEVEL:
        if only is not None and attr != only:
            continue
        app.command(name=attr)(getattr(importlib.import_module(module_name), attr))


def run() -> None:
    attach(sys.argv[1:])
    app()
