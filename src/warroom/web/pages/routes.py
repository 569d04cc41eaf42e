"""The web UI: mounts static files, session auth, HTML error pages and every page router."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from warroom.auth import sessions
from warroom.core.errors import Unauthenticated, WarroomError
from warroom.web.errors import status_for
from warroom.web.pages import (
    auth,
    common,
    incidents,
    live,
    overview,
    runbooks,
    statusadmin,
    steps,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(common.mark_html)])
for _module in (auth, overview, incidents, live, runbooks, statusadmin, steps):
    router.include_router(_module.router)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return common.see_other("/login?next=" + quote(common.safe_next(target), safe="/"))


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    return await result if inspect.isawaitable(result) else result


def install(app: FastAPI) -> None:
    app.state.session_auth = common.session_auth
    app.state.templates = common.templates
    app.state.login_limiter = sessions.LoginLimiter()
    app.mount("/static", StaticFiles(directory=str(common.STATIC_DIR)), name="static")
    json_warroom: Handler = app.exception_handlers[WarroomError]
    json_validation: Handler = app.exception_handlers[RequestValidationError]

    async def warroom_error(request: Request, exc: Exception) -> Response:
        if (
            not getattr(request.state, "html", False)
            or not isinstance(exc, WarroomError)
            or "application/json" in request.headers.get("accept", "")
        ):
            return await _call(json_warroom, request, exc)
        if isinstance(exc, Unauthenticated) and request.method == "GET":
            return _login_redirect(request)
        return common.render(
            request,
            "error.html",
            {"error": exc, "status": status_for(exc)},
            status_code=status_for(exc),
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        if not getattr(request.state, "html", False) or not isinstance(exc, RequestValidationError):
            return await _call(json_validation, request, exc)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("path", "query"))
        err = WarroomError(f"{where or 'input'}: {first.get('msg', 'invalid')}", field=where)
        return common.render(request, "error.html", {"error": err, "status": 422}, status_code=422)

    app.add_exception_handler(WarroomError, warroom_error)
    app.add_exception_handler(RequestValidationError, validation_error)
