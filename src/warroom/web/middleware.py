"""ASGI middleware: request ids, body-size limit (413 before reading it all), security headers."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warroom.core.errors import TooLarge

MAX_BODY_BYTES = 5 * 1024 * 1024

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _json_error(status: int, code: str, message: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, body


class GuardMiddleware:
    """Adds a request id and security headers; refuses oversize or compressed bodies early."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if headers.get(b"content-encoding", b"identity").lower() not in (b"identity", b""):
            start, body = _json_error(
                415, "unsupported_encoding", "compressed request bodies are not accepted"
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = True
            if too_big:
                start, body = _json_error(
                    413, "too_large", f"body larger than {self.max_body} bytes"
                )
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise TooLarge(f"body larger than {self.max_body} bytes")
            return message

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                hdrs = list(message.get("headers") or [])
                names = {k.lower() for k, _ in hdrs}
                for k, v in SECURITY_HEADERS:
                    if k not in names:
                        hdrs.append((k, v))
                hdrs.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": hdrs}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except TooLarge:
            if not started:
                start, body = _json_error(
                    413, "too_large", f"body larger than {self.max_body} bytes"
                )
                await send(start)
                await send({"type": "http.response.body", "body": body})
