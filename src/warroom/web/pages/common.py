"""Shared page plumbing: templates, the session cookie, CSRF-checked forms, HTML errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from warroom.auth import sessions
from warroom.auth.service import Principal
from warroom.core.clock import as_utc
from warroom.core.errors import InvalidInput, PermissionDenied
from warroom.jobs.runtime import Runtime
from warroom.web.deps import SESSION_COOKIE, SESSION_COOKIE_INSECURE, current_principal

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
LOGIN_CSRF_COOKIE = "warroom_login_csrf"
MAX_FORM_FIELD = 20_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SEVERITY_SHAPES = {"P0": "◆", "P1": "▲", "P2": "●", "P3": "○"}


def _dt(value: datetime | None) -> str:
    if value is None:
        return "—"
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | None) -> str:
    return as_utc(value).isoformat() if value is not None else ""


def until(target: datetime | None, now: datetime) -> str:
    """'in 12m 30s' / 'overdue by 3m' for a respond-by clock (the page's JS keeps it ticking)."""
    if target is None:
        return "—"
    seconds = int((as_utc(target) - as_utc(now)).total_seconds())
    text = _span(abs(seconds))
    return f"in {text}" if seconds >= 0 else f"overdue by {text}"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    seconds = int((as_utc(now) - as_utc(value)).total_seconds())
    if seconds < 5:
        return "just now"
    return f"{seconds}s ago" if seconds < 60 else f"{_span(seconds)} ago"


def _label(value: str | None) -> str:
    return (value or "").replace("_", " ").capitalize()


# Page templates are ours and trusted (autoescape on for .html); user-written
# templates go through the sandbox in warroom.core.templating instead.
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["dt"] = _dt
templates.env.filters["iso"] = _iso
templates.env.filters["label"] = _label
templates.env.globals["severity_shapes"] = SEVERITY_SHAPES
templates.env.globals["until"] = until
templates.env.globals["ago"] = ago


def mark_html(request: Request) -> None:
    """Router dependency: errors on these routes render as HTML pages, not JSON."""
    request.state.html = True


def is_secure(request: Request, rt: Runtime) -> bool:
    return request.url.scheme == "https" or rt.settings.public_url.startswith("https://")


def cookie_name(request: Request, rt: Runtime) -> str:
    # The __Host- prefix is only accepted by browsers with Secure, which plain HTTP cannot set.
    return SESSION_COOKIE if is_secure(request, rt) else SESSION_COOKIE_INSECURE


def session_id_from(request: Request, rt: Runtime) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        return value
    if not is_secure(request, rt):
        # never honour the unprefixed cookie over HTTPS: a sibling domain could have set it
        return request.cookies.get(SESSION_COOKIE_INSECURE)
    return None


def session_auth(request: Request, rt: Runtime) -> Principal | None:
    """`app.state.session_auth`: the principal behind the session cookie, if any."""
    raw = session_id_from(request, rt)
    if not raw:
        return None
    with rt.db.read() as s:
        login = sessions.load(s, session_id=raw, now=rt.now())
    if login is None:
        return None
    # a JSON API write riding on the browser's cookie must prove it came from our page
    if (
        request.method not in SAFE_METHODS
        and not getattr(request.state, "html", False)
        and not sessions.csrf_ok(login.csrf_token, request.headers.get("x-csrf-token"))
    ):
        return None
    request.state.web_login = login
    return login.principal


def set_session_cookie(response: Response, request: Request, rt: Runtime, value: str) -> None:
    secure = is_secure(request, rt)
    response.set_cookie(
        cookie_name(request, rt),
        value,
        max_age=int(sessions.SESSION_TTL.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request, rt: Runtime) -> None:
    for name in (SESSION_COOKIE, SESSION_COOKIE_INSECURE):
        response.delete_cookie(name, path="/", secure=name == SESSION_COOKIE, httponly=True)


def csrf_token(request: Request) -> str:
    login = getattr(request.state, "web_login", None)
    return login.csrf_token if isinstance(login, sessions.WebLogin) else ""


async def csrf_form(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> FormData:
    """The POSTed form, after checking its CSRF token against the session's.

    A request authenticated by bearer token carries no ambient credential, so it
    needs no CSRF token. Raises PermissionDenied (403) for a missing or wrong token.
    """
    form = await request.form(max_files=0, max_fields=50)
    if principal.via != "session":
        return form
    login = getattr(request.state, "web_login", None)
    given = form.get("csrf")
    if not isinstance(login, sessions.WebLogin) or not sessions.csrf_ok(
        login.csrf_token, given if isinstance(given, str) else None
    ):
        raise PermissionDenied(
            "the form's security token is missing or out of date; reload the page and try again"
        )
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]


def field(form: FormData, name: str, *, required: bool = True, limit: int = MAX_FORM_FIELD) -> str:
    """One text field from a form. Raises InvalidInput naming the field."""
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text", field=name)
    if len(value) > limit:
        raise InvalidInput(f"{name} longer than {limit} characters", field=name)
    return value.strip()


def safe_next(target: str | None) -> str:
    """Only same-site paths after login (no open redirect via //host or backslashes)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    rt: Runtime = request.app.state.runtime
    principal = getattr(request.state, "principal", None)
    ctx = {
        "principal": principal if isinstance(principal, Principal) else None,
        "csrf": csrf_token(request),
        "org": rt.config.organization,
        "path": request.url.path,
        "now": rt.now(),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["cache-control"] = "no-store"
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
