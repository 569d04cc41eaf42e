"""The one table from WarroomError to HTTP, and the JSON error shape.

`{"error": {"code", "message", "field"}}` with the right 4xx; a 5xx only for
a real fault on our side, logged with a request id and never with details in
the body.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from warroom.core import errors as e
from warroom.core.logging import get_logger
from warroom.store.db import to_unavailable

log = get_logger("warroom.web")


class UnsupportedMediaType(e.InvalidInput):
    """The request body is not in a format the route accepts (for example not JSON)."""

    code = "unsupported_media_type"


STATUS: list[tuple[type[e.WarroomError], int]] = [
    (UnsupportedMediaType, 415),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.Unauthenticated, 401),
    (e.PermissionDenied, 403),
    (e.TooLarge, 413),
    (e.RateLimited, 429),
    (e.Unavailable, 503),
    (e.InvalidInput, 422),
]


def status_for(exc: e.WarroomError) -> int:
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "field": field}
    err.update(extra)
    return {"error": err}


def _field_from_loc(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(e.WarroomError)
    async def _warroom(request: Request, exc: e.WarroomError) -> JSONResponse:
        status = status_for(exc)
        headers = {}
        if isinstance(exc, e.RateLimited | e.Unavailable):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        body = error_body(exc.code, exc.message, exc.field)
        if exc.hint:
            body["error"]["hint"] = exc.hint
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        loc = tuple(first.get("loc", ()))
        # a problem with the body as a whole (not JSON, not an object) names "body"
        field = _field_from_loc(loc) or ("body" if loc[:1] == ("body",) else None)
        msg = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            # the location is a character offset, not a field
            at = loc[1] if len(loc) > 1 else None
            field = "body"
            msg = "not valid JSON" + (f" (near character {at})" if isinstance(at, int) else "")
        elif first.get("type") == "missing":
            msg = "required field is missing"
        problems = [
            {
                "field": "body"
                if x.get("type") == "json_invalid"
                else _field_from_loc(tuple(x.get("loc", ()))),
                "message": str(x.get("msg")),
            }
            for x in errs[:20]
        ]
        return JSONResponse(
            error_body(
                "invalid_input", f"{field}: {msg}" if field else msg, field, problems=problems
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(
            exc.status_code, "http_error"
        )
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # a safety net for database errors that escaped Database.transaction()
        mapped = to_unavailable(exc)
        if isinstance(mapped, e.Unavailable):
            return await _warroom(request, mapped)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex[:12]
        log.error(
            "unhandled_error",
            request_id=request_id,
            path=request.url.path,
            error=type(exc).__name__,
            exc_info=exc,
        )
        return JSONResponse(
            error_body("internal", "internal error; the server logged it", request_id=request_id),
            status_code=500,
        )
