"""Admin API for users and tokens, in process on SQLite and PostgreSQL: shown once, audited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from warroom.auth import service as auth
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app

pytestmark = pytest.mark.integration


def _calls(rt: Runtime, calls: list[tuple[str, str, str, Any]]) -> list[httpx.Response]:
    """Send (method, path, token, json) requests in order through the app, in process."""
    app = create_app(rt, None, run_worker=False)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            out = []
            for method, path, token, body in calls:
                headers = {"Authorization": f"Bearer {token}"}
                out.append(await client.request(method, path, headers=headers, json=body))
            return out

    return asyncio.run(go())


def test_admin_manages_users_and_tokens_and_nothing_secret_comes_back(
    make_runtime: Callable[..., Runtime], db_url: str
) -> None:
    rt = make_runtime(db_url)
    with rt.db.transaction() as s:
        root = auth.create_user(s, name="root", role="admin", now=rt.now())
        admin = auth.create_token(s, user=root, name="t", now=rt.now())
    created, tok = _calls(
        rt,
        [
            ("POST", "/api/v1/users", admin, {"name": "kim", "role": "responder"}),
            ("POST", "/api/v1/tokens", admin, {"user": "kim", "name": "laptop"}),
        ],
    )
    assert created.status_code == 201 and "password_hash" not in created.text
    assert tok.status_code == 201
    kim_token = tok.json()["token"]
    me, listed, users, demote, bad_role, self_demote, verify = _calls(
        rt,
        [
            ("GET", "/api/v1/me", kim_token, None),
            ("GET", "/api/v1/tokens", admin, None),
            ("GET", "/api/v1/users", admin, None),
            ("POST", "/api/v1/users/kim", admin, {"role": "viewer"}),
            ("POST", "/api/v1/users/kim", admin, {"role": "emperor"}),
            ("POST", "/api/v1/users/root", admin, {"disabled": True}),
            ("GET", "/api/v1/audit/verify", admin, None),
        ],
    )
    assert me.json() == {"name": "kim", "role": "responder", "via": "token"}
    assert kim_token not in listed.text and "token_hash" not in listed.text
    assert {u["name"] for u in users.json()["items"]} == {"root", "kim"}
    assert "password_hash" not in users.text
    assert demote.json()["role"] == "viewer"
    assert bad_role.status_code == 422 and bad_role.json()["error"]["field"] == "role"
    assert self_demote.status_code == 409
    assert verify.json()["ok"] is True and verify.json()["checked"] == 3

    token_id = tok.json()["id"]
    disable, after_disable, revoke, after_revoke = _calls(
        rt,
        [
            ("POST", "/api/v1/users/kim", admin, {"disabled": True}),
            ("GET", "/api/v1/me", kim_token, None),
            ("POST", f"/api/v1/tokens/{token_id}/revoke", admin, None),
            ("GET", "/api/v1/tokens", admin, None),
        ],
    )
    assert disable.json()["disabled"] is True
    assert after_disable.status_code == 401
    assert revoke.status_code == 200
    (row,) = [t for t in after_revoke.json()["items"] if t["id"] == token_id]
    assert row["revoked_at"] is not None and row["active"] is False
