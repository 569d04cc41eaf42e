"""Request dependencies: the runtime, the acting principal, and role checks.

Every non-public route depends on `require(Role.X)`; the route × role test
enumerates the app's routes and fails on any route without it that is not on
the public allowlist (`PUBLIC_ROUTES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from warroom.auth import service as auth
from warroom.auth.models import Role
from warroom.auth.service import Principal
from warroom.core.errors import PermissionDenied, Unauthenticated
from warroom.core.logging import get_logger
from warroom.jobs.runtime import Runtime
from warroom.web.errors import UnsupportedMediaType

log = get_logger("warroom.auth")

SESSION_COOKIE = "__Host-warroom"
SESSION_COOKIE_INSECURE = "warroom_session"  # plain-HTTP development (no __Host- prefix allowed)

# (method, path template) reachable without a user: health, status page, ack
# links (signed), inbound webhooks (integration token checked in the route).
PUBLIC_ROUTES: set[tuple[str, str]] = set()


def public(method: str, path: str) -> None:
    PUBLIC_ROUTES.add((method.upper(), path))


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request, rt: RuntimeDep) -> Principal:
    """Authenticate by bearer token, or by web session cookie (checked by the pages module).

    Raises Unauthenticated.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = _bearer(request)
    if token is not None:
        try:
            with rt.db.read() as s:  # a read: no write lock on SQLite
                principal = auth.authenticate_token(s, token, now=rt.now())
        except Unauthenticated:
            # who tried, from where: the token itself is never logged
            log.warning(
                "auth_failed",
                path=request.url.path,
                client=request.client.host if request.client else None,
            )
            raise
        request.state.principal = principal
        return principal
    session_auth: Callable[[Request, Runtime], Principal | None] | None = getattr(
        request.app.state, "session_auth", None
    )
    if session_auth is not None:
        principal_or_none = session_auth(request, rt)
        if principal_or_none is not None:
            request.state.principal = principal_or_none
            return principal_or_none
    raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")


def require(role: Role) -> Callable[..., Principal]:
    def _dep(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.allows(role):
            raise PermissionDenied(
                f"this needs the {role.value} role (you are {principal.role.value})"
            )
        return principal

    _dep.__name__ = f"require_{role.value}"
    _dep.required_role = role  # type: ignore[attr-defined]
    return _dep


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Responder = Annotated[Principal, Depends(require(Role.RESPONDER))]
Commander = Annotated[Principal, Depends(require(Role.COMMANDER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def json_content(request: Request) -> None:
    """Reject a request body that is not JSON with 415 naming the header (routes opt in).

    A route with an optional body accepts an empty request without a content type.
    """
    length = request.headers.get("content-length")
    has_body = bool(request.headers.get("transfer-encoding")) or (
        length is not None and length.strip() not in ("", "0")
    )
    if not has_body:
        return
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and not (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"request body must be JSON, got content type {ctype or 'none'!r}",
            field="content-type",
            hint="send 'Content-Type: application/json'",
        )


JsonBody = Depends(json_content)
