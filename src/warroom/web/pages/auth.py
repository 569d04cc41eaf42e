"""Login (password or API token) and logout; sessions live in `warroom.auth.sessions`."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from warroom.auth import service as auth
from warroom.auth import sessions
from warroom.auth.service import Principal
from warroom.core.errors import InvalidInput, RateLimited, Unauthenticated
from warroom.core.logging import get_logger
from warroom.core.security import constant_time_equals
from warroom.store import audit
from warroom.web.deps import RuntimeDep, Viewer, public
from warroom.web.pages import common
from warroom.web.pages.common import CsrfForm

log = get_logger("warroom.web.login")
router = APIRouter()

public("GET", "/login")
public("POST", "/login")


def _limiter(request: Request) -> sessions.LoginLimiter:
    """One limiter per app (installed by pages.routes), so tests and apps never share counts."""
    found = getattr(request.app.state, "login_limiter", None)
    if not isinstance(found, sessions.LoginLimiter):
        found = request.app.state.login_limiter = sessions.LoginLimiter()
    return found


def _login_page(
    request: Request, *, next_url: str, error: str = "", user: str = "", status_code: int = 200
) -> Response:
    nonce = request.cookies.get(common.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = common.render(
        request,
        "login.html",
        {"next": next_url, "error": error, "user": user, "login_csrf": nonce},
        status_code=status_code,
    )
    # double-submit token for the login form itself (login CSRF), before any session exists
    response.set_cookie(
        common.LOGIN_CSRF_COOKIE,
        nonce,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_url=common.safe_next(next))


@router.post("/login")
async def login(request: Request, rt: RuntimeDep) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    next_url = common.safe_next(str(form.get("next") or "/"))
    given = form.get("csrf")
    cookie = request.cookies.get(common.LOGIN_CSRF_COOKIE, "")
    if not cookie or not isinstance(given, str) or not constant_time_equals(cookie, given):
        return _login_page(
            request,
            next_url=next_url,
            error="The login form expired; please try again.",
            status_code=403,
        )
    name = str(form.get("user") or "").strip()[:100]
    password = str(form.get("password") or "")[:1000]
    token = str(form.get("token") or "").strip()[:300]
    address = request.client.host if request.client else "unknown"
    try:
        _limiter(request).hit(account=name or "token", address=address)
        if token:
            with rt.db.transaction() as s:
                principal = auth.authenticate_token(s, token, now=rt.now())
        elif name and password:
            with rt.db.transaction() as s:
                principal = auth.authenticate_password(s, name=name, password=password)
        else:
            raise InvalidInput("enter a user name and password, or an API token")
    except RateLimited as exc:
        log.warning("login_rate_limited", user=name, address=address)
        response = _login_page(
            request, next_url=next_url, error=exc.message, user=name, status_code=429
        )
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    except (Unauthenticated, InvalidInput) as exc:
        log.info("login_failed", user=name, address=address)
        message = (
            exc.message if isinstance(exc, InvalidInput) else "Wrong user name, password or token."
        )
        return _login_page(request, next_url=next_url, error=message, user=name, status_code=401)
    return _start_session(request, rt, principal, next_url)


def _start_session(
    request: Request, rt: RuntimeDep, principal: Principal, next_url: str
) -> Response:
    now = rt.now()
    assert principal.user_id is not None  # tokens and passwords belong to users
    with rt.db.transaction() as s:
        raw, _csrf = sessions.create(s, user_id=principal.user_id, now=now)
        audit.record(
            s,
            at=now,
            actor=principal.name,
            action="web.login",
            target=f"user:{principal.name}",
            detail={"method": "token" if principal.via == "token" else "password"},
        )
    response = common.see_other(next_url)
    common.set_session_cookie(response, request, rt, raw)
    response.delete_cookie(common.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, rt: RuntimeDep, _viewer: Viewer, form: CsrfForm) -> Response:
    raw = common.session_id_from(request, rt)
    with rt.db.transaction() as s:
        if raw:
            sessions.destroy(s, session_id=raw)
        principal = getattr(request.state, "principal", None)
        if isinstance(principal, Principal):
            audit.record(
                s,
                at=rt.now(),
                actor=principal.name,
                action="web.logout",
                target=f"user:{principal.name}",
            )
    response = common.see_other("/login")
    common.clear_session_cookie(response, request, rt)
    return response
