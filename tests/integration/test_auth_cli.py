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
from warroom.store.db import Database

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    config = write_config(tmp_path / "warroom.yaml", BASE_CONFIG)
    e = base_env(db_url, config)
    r = cli("db", "upgrade", env=e)
    assert r.returncode == 0, r.stderr
    return e


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


def test_users_and_tokens_from_the_cli_and_from_config(env: dict[str, str]) -> None:
    token = create_user_token(env, "dana", "responder")
    assert token.startswith("wrt")
    assert _authenticate(env, token).role == "responder"

    # a configured person gets a user with the role from config on first token
    r = cli("token", "create", "alice", "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    assert _authenticate(env, r.stdout.strip().splitlines()[-1]).role == "commander"
    r = cli("user", "sync", env=env)
    assert r.returncode == 0, r.stderr
    assert "bob: created as responder" in r.stdout and "alice: unchanged" in r.stdout

    r = cli("user", "add", "dana", "--role", "viewer", env=env)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = cli("user", "add", "eve", "--role", "overlord", env=env)
    assert r.returncode == 2 and "unknown role" in r.stderr
    r = cli(
        "user", "add", "frank", "--role", "viewer", "--password-stdin", env=env, input="short\n"
    )
    assert r.returncode == 2 and "12 characters" in r.stderr
    r = cli("token", "create", "nobody", env=env)
    assert r.returncode == 4 and "no user or configured person" in r.stderr

    r = cli("token", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["items"]
    assert {row["user"] for row in rows} == {"dana", "alice"}
    assert token not in r.stdout  # only prefixes are listed; the token is not stored
    dana = next(row for row in rows if row["user"] == "dana")
    r = cli("token", "revoke", str(dana["id"]), env=env)
    assert r.returncode == 0, r.stderr
    with pytest.raises(Unauthenticated):
        _authenticate(env, token)


def test_audit_verify_passes_then_names_the_edited_entry(env: dict[str, str]) -> None:
    for name in ("gina", "hank"):
        create_user_token(env, name, "responder")  # 4 audited actions
    r = cli("audit", "verify", env=env)
    assert r.returncode == 0, r.stderr
    assert "audit log ok: 4 entries" in r.stdout

    _sql(env, "UPDATE audit_log SET actor = 'someone-else' WHERE id = 2")
    r = cli("audit", "verify", env=env)
    assert r.returncode == 1
    assert "entry 2: content changed" in r.stderr


def test_audit_verify_detects_a_removed_entry(env: dict[str, str]) -> None:
    for name in ("ivy", "jack"):
        create_user_token(env, name, "viewer")
    _sql(env, "DELETE FROM audit_log WHERE id = 2")
    r = cli("audit", "verify", "--json", env=env)
    assert r.returncode == 1
    problems = json.loads(r.stdout)["problems"]
    assert any(p.startswith("entry 3: does not follow") for p in problems)
