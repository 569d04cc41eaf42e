"""Auth API: who am I, users and API tokens (admin), audit-chain verification (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from warroom.auth import service as auth
from warroom.core.errors import Conflict, NotFound
from warroom.store import audit
from warroom.web.deps import Admin, JsonBody, RuntimeDep, Viewer

router = APIRouter(prefix="/api/v1", tags=["auth"])
Json = Annotated[None, JsonBody]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class UserIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=63)]
    role: Annotated[str, Field(min_length=1, max_length=20)]
    email: Annotated[str, Field(max_length=300)] | None = None
    display_name: Annotated[str, Field(max_length=200)] = ""


class UserUpdateIn(_In):
    role: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    disabled: bool | None = None


class TokenIn(_In):
    user: Annotated[str, Field(min_length=1, max_length=63)]
    name: Annotated[str, Field(min_length=1, max_length=100)] = "api"
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None


@router.get("/me")
def me(who: Viewer) -> dict[str, Any]:
    """The caller's name and role."""
    return {"name": who.name, "role": who.role.value, "via": who.via}


@router.get("/users")
def list_users(rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    """All users (never a password hash)."""
    with rt.db.read() as s:
        return {"items": [auth.user_dict(u) for u in auth.list_users(s)]}


@router.post("/users", status_code=201)
def add_user(rt: RuntimeDep, who: Admin, _json: Json, body: UserIn) -> dict[str, Any]:
    """Create a user (no password: web login is set with `warroom user password`)."""
    now = rt.now()
    with rt.db.transaction() as s:
        user = auth.create_user(
            s,
            name=body.name,
            role=body.role,
            now=now,
            email=body.email,
            display_name=body.display_name,
        )
        audit.record(
            s,
            at=now,
            actor=who.name,
            action="user.add",
            target=f"user:{user.name}",
            detail={"role": user.role},
            redactor=rt.redactor,
        )
        return auth.user_dict(user)


@router.post("/users/{name}")
def update_user(
    rt: RuntimeDep,
    who: Admin,
    _json: Json,
    name: Annotated[str, Path(min_length=1, max_length=63)],
    body: UserUpdateIn,
) -> dict[str, Any]:
    """Change a user's role or disable/enable them (takes effect on their next request)."""
    if name == who.name and (body.disabled or (body.role and body.role != "admin")):
        raise Conflict("you cannot demote or disable yourself", field="name")
    now = rt.now()
    with rt.db.transaction() as s:
        user = auth.get_user(s, name=name)
        if user is None:
            raise NotFound(f"user {name!r} does not exist", field="name")
        changes: dict[str, Any] = {}
        if body.role is not None and auth.parse_role(body.role).value != user.role:
            changes["role"] = {"old": user.role, "new": body.role}
            user.role = auth.parse_role(body.role).value
        if body.disabled is not None and body.disabled != user.disabled:
            changes["disabled"] = body.disabled
            user.disabled = body.disabled
        if changes:
            audit.record(
                s,
                at=now,
                actor=who.name,
                action="user.update",
                target=f"user:{user.name}",
                detail=changes,
                redactor=rt.redactor,
            )
        return auth.user_dict(user)


@router.get("/tokens")
def list_tokens(rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    """API tokens: owner, name, prefix and dates; the token itself is never stored or shown."""
    with rt.db.read() as s:
        return {"items": [auth.token_dict(t, u) for t, u in auth.list_tokens(s)]}


@router.post("/tokens", status_code=201)
def create_token(rt: RuntimeDep, who: Admin, _json: Json, body: TokenIn) -> dict[str, Any]:
    """Create a token for a user; the response is the only time the token is shown."""
    now = rt.now()
    with rt.db.transaction() as s:
        existed = auth.get_user(s, name=body.user) is not None
        user = auth.user_for_token(s, name=body.user, config=rt.config, now=now)
        if not existed:
            audit.record(
                s,
                at=now,
                actor=who.name,
                action="user.add",
                target=f"user:{user.name}",
                detail={"role": user.role, "source": "config"},
                redactor=rt.redactor,
            )
        token, row = auth.issue_token(
            s, user=user, name=body.name, now=now, expires_in_days=body.expires_in_days
        )
        audit.record(
            s,
            at=now,
            actor=who.name,
            action="token.create",
            target=f"user:{user.name}",
            detail={"token_id": row.id, "name": row.name},
            redactor=rt.redactor,
        )
        return {**auth.token_dict(row, user), "token": token}


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    rt: RuntimeDep, who: Admin, _json: Json, token_id: Annotated[int, Path(ge=1, le=2**62)]
) -> dict[str, Any]:
    """Revoke a token; it stops working at once."""
    now = rt.now()
    with rt.db.transaction() as s:
        auth.revoke_token(s, token_id=token_id, now=now)
        audit.record(
            s,
            at=now,
            actor=who.name,
            action="token.revoke",
            target=f"token:{token_id}",
            redactor=rt.redactor,
        )
    return {"id": token_id, "revoked": True}


@router.get("/audit/verify")
def verify_audit(rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    """Check the audit log's hash chain; `problems` names each broken entry."""
    with rt.db.read() as s:
        result = audit.verify(s)
    return {
        "ok": result.ok,
        "checked": result.checked,
        "problems": result.problems,
        "head": result.head,
    }
