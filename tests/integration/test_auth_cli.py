"""Admin CLI on the database: users (also from config), tokens shown once, the audit chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import BASE_CONFIG
from tests.support import base_env, cli, create_user_token, write_config
from warroom.auth import service as auth
from warroom.core.errors import Unauthenticated
from warroom.store import audit
from warroom.store.db import Database

pytestmark = pytest.mark.integration


def _env(tmp_path: Path, db_url: str) -> dict[str, str]:
    config = write_config(tmp_path / "warroom.yaml", BASE_CONFIG)
    return base_env(db_url, config)


def _authenticate(env: dict[str, str], token: str) -> auth.Principal:
    db = Database(env["WARROOM_DATABASE_URL"])
    try:
        with db.transaction() as s:
            return auth.authenticate_token(s, token, now=datetime.now(UTC))
    finally:
        db.dispose()


def _sql(env: dict[str, str], statement: str) -> None:
    db = Database(env["WARROOM_DATABASE_URL"])
    try:
        with db.engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        db.dispose()


def test_tokens_are_shown_once_revocable_and_every_change_is_in_a_verifiable_audit_chain(
    tmp_path: Path, db_url: str
) -> None:
    env = _env(tmp_path, db_url)
    assert cli("db", "upgrade", env=env).returncode == 0
    token = create_user_token(env, "dana", "responder")  # user add + token create --quiet
    assert token.startswith("wrt")
    assert _authenticate(env, token).role == "responder"

    # a configured person becomes a user, with the role from config, on first token
    r = cli("token", "create", "alice", "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    assert _authenticate(env, r.stdout.strip().splitlines()[-1]).role == "commander"

    r = cli("token", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["items"]
    assert {row["user"] for row in rows} == {"dana", "alice"}
    assert token not in r.stdout  # only prefixes: the token itself is not stored
    dana = next(row for row in rows if row["user"] == "dana")
    r = cli("token", "revoke", str(dana["id"]), env=env)
    assert r.returncode == 0, r.stderr
    with pytest.raises(Unauthenticated):
        _authenticate(env, token)

    r = cli("audit", "verify", env=env)
    assert r.returncode == 0, r.stderr
    # user.add, token.create, user.add (alice from config), token.create, token.revoke
    assert "audit log ok: 5 entries" in r.stdout

    _sql(env, "UPDATE audit_log SET actor = 'someone-else' WHERE id = 2")
    r = cli("audit", "verify", env=env)
    assert r.returncode == 1
    assert "entry 2: content changed" in r.stderr


def test_admin_cli_rejects_bad_input_in_one_line_and_syncs_people(
    tmp_path: Path, sqlite_url: str
) -> None:
    env = _env(tmp_path, sqlite_url)
    r = cli("user", "sync", env=env)  # also migrates a fresh SQLite file, like serve
    assert r.returncode == 0, r.stderr
    assert "alice: created as commander" in r.stdout and "bob: created as responder" in r.stdout
    r = cli("user", "add", "alice", "--role", "viewer", env=env)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = cli("user", "add", "eve", "--role", "overlord", env=env)
    assert r.returncode == 2 and "unknown role" in r.stderr
    r = cli("user", "add", "frank", "--role", "viewer", "--password-stdin", env=env, input="x\n")
    assert r.returncode == 2 and "12 characters" in r.stderr
    r = cli("token", "create", "nobody", env=env)
    assert r.returncode == 4 and "no user or configured person" in r.stderr
    for result in (r,):
        assert "Traceback" not in result.stderr

    # a removed entry breaks the chain at the one after it
    _sql(
        env,
        "INSERT INTO audit_log (at, actor, action, target, detail, prev_hash, hash) "
        "SELECT at, actor, action, target, detail, prev_hash, hash FROM audit_log",
    )
    db = Database(sqlite_url)
    try:
        with db.read() as s:
            assert not audit.verify(s).ok  # copies do not chain
    finally:
        db.dispose()
