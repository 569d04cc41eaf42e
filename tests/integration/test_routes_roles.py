"""Every route in the app × every role: no credentials → 401, too small a role → 403, never 2xx.

The routes are read from the built app (OpenAPI document plus the router), so
routes other domains add are covered the day they land. A route that is
neither registered with `web.deps.public()` nor guarded by `require(role)`
fails the test by name.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from warroom.auth import service as auth
from warroom.auth.models import Role
from warroom.jobs.runtime import Runtime
from warroom.web.app import create_app
from warroom.web.deps import PUBLIC_ROUTES

pytestmark = pytest.mark.integration

# FastAPI's own documentation routes; their exposure is a config question (R16).
BUILTIN = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
ROLES = [Role.VIEWER, Role.RESPONDER, Role.COMMANDER, Role.ADMIN]


def _route_contexts(app: FastAPI) -> Iterator[Any]:
    try:  # FastAPI ≥ 0.16x keeps included routers lazily
        from fastapi.routing import iter_route_contexts

        yield from iter_route_contexts(app.routes)
    except ImportError:  # pragma: no cover - older FastAPI: flat route list
        yield from app.routes


def _required_roles(dependant: Any) -> list[Role]:
    found: list[Role] = []
    for dep in getattr(dependant, "dependencies", []):
        role = getattr(dep.call, "required_role", None)
        if role is not None:
            found.append(Role(role))
        found.extend(_required_roles(dep))
    return found


def _operations(app: FastAPI) -> dict[tuple[str, str], Role | None]:
    """(method, path) → the role the route requires (None: no guard found)."""
    guards: dict[tuple[str, str], Role | None] = {}
    for ctx in _route_contexts(app):
        path = getattr(ctx, "path", None)
        methods = getattr(ctx, "methods", None) or set()
        if path is None or path in BUILTIN:
            continue
        dependant = getattr(ctx, "dependant", None)
        roles = _required_roles(dependant) if dependant is not None else []
        for method in methods - {"HEAD", "OPTIONS"}:
            guards[(method, path)] = max(roles, key=lambda r: r.rank) if roles else None
    ops: dict[tuple[str, str], Role | None] = {}
    schema = app.openapi()
    for path, item in schema["paths"].items():
        for method in item:
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                ops[(method.upper(), path)] = guards.get((method.upper(), path))
    # routes left out of the schema (HTML pages, mounts) are checked too
    for key, role in guards.items():
        ops.setdefault(key, role)
    return ops


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _send_all(
    app: FastAPI, requests: list[tuple[str, str, dict[str, str]]]
) -> list[httpx.Response]:
    """Send requests in process through the ASGI app (no lifespan: no worker thread)."""

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(m, u, headers=h) for m, u, h in requests]

    return asyncio.run(go())


def _answered(path: str, resp: httpx.Response, expected: int) -> bool:
    """The expected refusal; an HTML page may say 401 as a redirect to the login form."""
    if resp.status_code == expected:
        return True
    location = resp.headers.get("location", "")
    return (
        expected == 401
        and not path.startswith("/api/")
        and resp.status_code in (302, 303, 307)
        and location.split("?", 1)[0].endswith("/login")
    )


@pytest.fixture
def app_and_tokens(
    make_runtime: Callable[..., Runtime], sqlite_url: str
) -> tuple[FastAPI, dict[str, str], Runtime]:
    rt = make_runtime(sqlite_url)
    tokens: dict[str, str] = {}
    with rt.db.transaction() as s:
        for role in ROLES:
            user = auth.create_user(s, name=f"u-{role.value}", role=role.value, now=rt.now())
            tokens[role.value] = auth.create_token(s, user=user, name="t", now=rt.now())
        revoked_user = auth.create_user(s, name="u-revoked", role="admin", now=rt.now())
        tokens["revoked"], row = auth.issue_token(s, user=revoked_user, name="t", now=rt.now())
        auth.revoke_token(s, token_id=row.id, now=rt.now())
        expired = auth.create_user(s, name="u-expired", role="admin", now=rt.now())
        tokens["expired"] = auth.create_token(
            s, user=expired, name="t", now=rt.now(), expires_at=rt.now() - timedelta(seconds=1)
        )
        disabled = auth.create_user(s, name="u-disabled", role="admin", now=rt.now())
        tokens["disabled"] = auth.create_token(s, user=disabled, name="t", now=rt.now())
        disabled.disabled = True
    return create_app(rt, None, run_worker=False), tokens, rt


def test_every_route_is_public_or_guarded_and_rejects_missing_or_small_roles(
    app_and_tokens: tuple[FastAPI, dict[str, str], Runtime],
) -> None:
    app, tokens, _rt = app_and_tokens
    ops = _operations(app)
    assert ("POST", "/api/v1/incidents") in ops, "the incidents router did not load"
    unguarded = sorted(
        f"{m} {p}" for (m, p), role in ops.items() if role is None and (m, p) not in PUBLIC_ROUTES
    )
    assert not unguarded, f"routes neither public nor guarded by require(role): {unguarded}"

    plan: list[tuple[str, str, str, int]] = []
    sent: list[tuple[str, str, dict[str, str]]] = []
    for (method, path), needed in sorted(ops.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if (method, path) in PUBLIC_ROUTES or needed is None:
            continue
        url = _concrete(path)
        attempts: list[tuple[str, dict[str, str], int]] = [
            ("no credentials", {}, 401),
            ("garbage token", {"Authorization": "Bearer wrt_not-a-real-token"}, 401),
            ("revoked token", {"Authorization": f"Bearer {tokens['revoked']}"}, 401),
            ("disabled user", {"Authorization": f"Bearer {tokens['disabled']}"}, 401),
            ("expired token", {"Authorization": f"Bearer {tokens['expired']}"}, 401),
            ("token in a basic header", {"Authorization": f"Basic {tokens['admin']}"}, 401),
        ]
        for role in ROLES:
            if role.rank < needed.rank:
                attempts.append(
                    (f"role {role.value}", {"Authorization": f"Bearer {tokens[role.value]}"}, 403)
                )
        for label, headers, expected in attempts:
            plan.append((method, path, label, expected))
            sent.append((method, url, headers))
    responses = _send_all(app, sent)
    failures = [
        f"{method} {path} with {label}: {resp.status_code} (expected {expected})"
        for (method, path, label, expected), resp in zip(plan, responses, strict=True)
        if not _answered(path, resp, expected)
    ]
    assert plan
    assert not failures, "\n".join(failures)


def test_sufficient_role_passes_the_guard(
    app_and_tokens: tuple[FastAPI, dict[str, str], Runtime],
) -> None:
    """The other side of the table: the role a route names gets past its guard (no 401/403)."""
    app, tokens, _rt = app_and_tokens
    ops = _operations(app)
    mine = [k for k in ops if k[1].startswith(("/api/v1/incidents", "/api/v1/jobs", "/api/v1/me"))]
    assert mine
    sent = []
    for method, path in mine:
        needed = ops[(method, path)]
        assert needed is not None
        sent.append((method, _concrete(path), {"Authorization": f"Bearer {tokens[needed.value]}"}))
    for (method, url, _h), resp in zip(sent, _send_all(app, sent), strict=True):
        assert resp.status_code not in (401, 403, 500), (method, url, resp.text)


def test_a_route_without_guard_or_public_entry_is_reported(
    app_and_tokens: tuple[FastAPI, dict[str, str], Runtime],
) -> None:
    """The checker itself: a forgotten guard shows up as unguarded (so the table test fails)."""
    app, _tokens, _rt = app_and_tokens

    @app.get("/api/v1/zz-forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "x"}

    ops = _operations(app)
    assert ops[("GET", "/api/v1/zz-forgotten")] is None
    assert ("GET", "/api/v1/zz-forgotten") not in PUBLIC_ROUTES
    assert ops[("POST", "/api/v1/incidents/{number}/resolve")] == Role.COMMANDER
