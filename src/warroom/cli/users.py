"""`warroom user|token|audit …`: admin commands that work on the database directly.

Users come from `warroom user add`, or from `people:` in warroom.yaml (with
their `role:`): `warroom user sync` creates every configured person as a user,
and `warroom token create PERSON` creates the user for a configured person on
first use. Every change here writes an audit entry.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warroom.cli.errors import EXIT_PROBLEMS, fail, handled

if TYPE_CHECKING:
    from warroom.jobs.runtime import Runtime

user_app = typer.Typer(
    help=(
        "Users and their roles (viewer, responder, commander, admin). Users are added here, "
        "or come from `people:` in warroom.yaml with the `role:` given there: `user sync` "
        "creates them all, and `token create PERSON` creates one on first use. The database "
        "is the authority afterwards (`user sync --update-roles` re-applies config roles)."
    ),
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="API tokens: shown once at creation, stored hashed.", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="warroom.yaml (default: $WARROOM_CONFIG)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _runtime(config: Path | None) -> Runtime:
    """Runtime for admin commands; SQLite is migrated like `serve` does, PostgreSQL must be."""
    from warroom.cli.context import runtime
    from warroom.core.errors import Unavailable
    from warroom.store import migrate

    rt = runtime(config)
    if not migrate.is_current(rt.db):
        if rt.db.dialect == "sqlite":
            migrate.upgrade(rt.db)
        else:
            raise Unavailable(
                "the database schema is not current", hint="run `warroom db upgrade` first"
            )
    return rt


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _audit(rt: Runtime, s: Any, action: str, target: str, **detail: Any) -> None:
    from warroom.store import audit

    audit.record(
        s,
        at=rt.now(),
        actor=_actor(),
        action=action,
        target=target,
        detail=detail,
        redactor=rt.redactor,
    )


def _read_password() -> str:
    text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        fail("no password on standard input")
    return text


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="login name: lowercase letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help="viewer, responder, commander or admin")],
    email: Annotated[str | None, typer.Option(help="e-mail address")] = None,
    display_name: Annotated[str, typer.Option("--display-name", help="full name")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read a web-login password from stdin")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Create a user. Give them an API token with `warroom token create NAME`."""
    with handled():
        from warroom.auth import service as auth

        password = _read_password() if password_stdin else None
        rt = _runtime(config)
        with rt.db.transaction() as s:
            user = auth.create_user(
                s,
                name=name,
                role=role,
                now=rt.now(),
                email=email,
                display_name=display_name,
                password=password,
            )
            _audit(rt, s, "user.add", f"user:{user.name}", role=user.role)
        typer.echo(f"user {user.name} created ({user.role})")


@user_app.command("list")
def user_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List users and roles."""
    with handled():
        from rich.console import Console
        from rich.table import Table

        from warroom.auth import service as auth

        rt = _runtime(config)
        with rt.db.read() as s:
            rows = [auth.user_dict(u) for u in auth.list_users(s)]
        if as_json:
            _echo_json({"items": rows})
            return
        table = Table("name", "role", "email", "state")
        for r in rows:
            table.add_row(
                r["name"], r["role"], r["email"] or "", "disabled" if r["disabled"] else "active"
            )
        Console().print(table)


@user_app.command("sync")
def user_sync(
    update_roles: Annotated[
        bool, typer.Option("--update-roles", help="also set existing users' roles from config")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Create a user for every person in warroom.yaml `people:`, with the role given there."""
    with handled():
        from warroom.auth import service as auth

        rt = _runtime(config)
        with rt.db.transaction() as s:
            done = auth.sync_people(s, config=rt.config, now=rt.now(), update_roles=update_roles)
            changed = {n: what for n, what in done if what != "unchanged"}
            if changed:
                _audit(rt, s, "user.sync", "users", changes=changed)
        for name, what in done:
            typer.echo(f"{name}: {what}")


def _set_disabled(name: str, disabled: bool, config: Path | None) -> None:
    from warroom.auth import service as auth

    rt = _runtime(config)
    with rt.db.transaction() as s:
        auth.set_disabled(s, name=name, disabled=disabled)
        _audit(rt, s, "user.disable" if disabled else "user.enable", f"user:{name}")
    typer.echo(f"user {name} {'disabled' if disabled else 'enabled'}")


@user_app.command("disable")
def user_disable(name: str, config: ConfigOpt = None) -> None:
    """Disable a user: their tokens and sessions stop working at once."""
    with handled():
        _set_disabled(name, True, config)


@user_app.command("enable")
def user_enable(name: str, config: ConfigOpt = None) -> None:
    """Enable a disabled user again."""
    with handled():
        _set_disabled(name, False, config)


@user_app.command("password")
def user_password(name: str, config: ConfigOpt = None) -> None:
    """Set a user's web-login password, read from the first line of stdin (at least 12 chars)."""
    with handled():
        from warroom.auth import service as auth
        from warroom.core.errors import NotFound

        password = _read_password()
        rt = _runtime(config)
        with rt.db.transaction() as s:
            user = auth.get_user(s, name=name)
            if user is None:
                raise NotFound(f"user {name!r} does not exist", field="name")
            auth.set_password(s, user, password)
            _audit(rt, s, "user.password", f"user:{name}")
        typer.echo(f"password of {name} set")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="user name, or a person id from warroom.yaml")],
    name: Annotated[str, typer.Option("--name", help="what the token is for")] = "cli",
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, max=3650, help="expire after N days")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="print only the token (for scripts)")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Create an API token for a user and print it once; only its hash is stored.

    USER may be a person id from warroom.yaml `people:` that has no user yet:
    the user is created with the role from the config file.
    """
    with handled():
        from warroom.auth import service as auth

        rt = _runtime(config)
        with rt.db.transaction() as s:
            existed = auth.get_user(s, name=user) is not None
            u = auth.user_for_token(s, name=user, config=rt.config, now=rt.now())
            if not existed:
                _audit(rt, s, "user.add", f"user:{u.name}", role=u.role, source="config")
            token, row = auth.issue_token(
                s, user=u, name=name, now=rt.now(), expires_in_days=expires_days
            )
            _audit(rt, s, "token.create", f"user:{u.name}", token_id=row.id, name=row.name)
        if quiet:
            typer.echo(token)
            return
        typer.echo(f"token {row.id} for {u.name} ({u.role}); it is shown only now:", err=True)
        typer.echo(token)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="only this user's tokens")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List tokens by id, owner and prefix (the tokens themselves are not stored)."""
    with handled():
        from rich.console import Console
        from rich.table import Table

        from warroom.auth import service as auth

        rt = _runtime(config)
        with rt.db.read() as s:
            rows = [auth.token_dict(t, u) for t, u in auth.list_tokens(s, user=user)]
        if as_json:
            _echo_json({"items": rows})
            return
        table = Table("id", "user", "name", "prefix", "created", "state")
        for r in rows:
            state = "revoked" if r["revoked_at"] else ("active" if r["active"] else "disabled")
            table.add_row(
                str(r["id"]), r["user"], r["name"], r["prefix"] + "…", r["created_at"][:16], state
            )
        Console().print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="token id from `warroom token list`")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a token; it stops working at once."""
    with handled():
        from warroom.auth import service as auth

        rt = _runtime(config)
        with rt.db.transaction() as s:
            auth.revoke_token(s, token_id=token_id, now=rt.now())
            _audit(rt, s, "token.revoke", f"token:{token_id}")
        typer.echo(f"token {token_id} revoked")


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(help="a head hash recorded earlier outside the database (detects cut tails)"),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Check the audit chain; exit 1 naming each entry that was changed, removed or reordered."""
    with handled():
        from warroom.store import audit

        rt = _runtime(config)
        with rt.db.read() as s:
            result = audit.verify(s, anchor=anchor)
        if as_json:
            _echo_json(
                {
                    "ok": result.ok,
                    "checked": result.checked,
                    "problems": result.problems,
                    "head": result.head,
                }
            )
        elif result.ok:
            typer.echo(f"audit log ok: {result.checked} entries, head {result.head}")
        else:
            for problem in result.problems:
                typer.echo(f"audit log: {problem}", err=True)
            typer.echo(
                f"audit log BROKEN: {len(result.problems)} problem(s) in {result.checked} entries",
                err=True,
            )
        if not result.ok:
            raise typer.Exit(EXIT_PROBLEMS)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="newest N entries")] = 50,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show the newest audit entries."""
    with handled():
        from sqlalchemy import select

        from warroom.store.models import AuditEntry

        rt = _runtime(config)
        with rt.db.read() as s:
            rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
        items: list[dict[str, Any]] = [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in reversed(rows)
        ]
        if as_json:
            _echo_json({"items": items})
            return
        for it in items:
            typer.echo(
                f"{it['id']:>6} {str(it['at'])[:19]} {it['actor']:<16} "
                f"{it['action']:<20} {it['target']}"
            )
