"""Loopback receivers for notification tests: an HTTP webhook sink and an SMTP sink.

`FakeChatServer` stands in for Slack/Teams/Mattermost/Discord incoming-webhook
servers (which cannot run here) and for a generic webhook receiver. Both sinks
record every request, can be scripted to fail (status codes, Retry-After,
SMTP 451) and count distinct idempotency keys, like a receiver that dedups.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support import free_port


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# A responder gets the request number (1-based) and returns (status, headers).
Responder = Callable[[int, "Received"], tuple[int, dict[str, str]]]


def always(status: int = 200, headers: dict[str, str] | None = None) -> Responder:
    return lambda _n, _r: (status, headers or {})


@dataclass
class FakeChatServer:
    """An HTTP server on 127.0.0.1 recording POSTs; `respond` scripts the answers."""

    respond: Responder = field(default_factory=always)
    requests: list[Received] = field(default_factory=list)
    ok: list[Received] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def keys(self) -> list[str]:
        """Idempotency keys of the requests answered 2xx (duplicates included)."""
        with self.lock:
            return [r.headers.get("idempotency-key", "") for r in self.ok]

    def wait_for(self, n: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.ok) >= n:
                    return list(self.ok)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"expected {n} accepted requests, got {len(self.ok)}")


@contextmanager
def chat_server(respond: Responder | None = None) -> Iterator[FakeChatServer]:
    sink = FakeChatServer(respond=respond or always())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            rec = Received(
                time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            with sink.lock:
                sink.requests.append(rec)
                n = len(sink.requests)
            status, headers = sink.respond(n, rec)
            if 200 <= status < 300:
                with sink.lock:
                    sink.ok.append(rec)
            payload = b"ok" if status < 300 else b"error"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpSink:
    """Messages accepted by the in-process aiosmtpd server; `refuse` answers 451 while set."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Message] = field(default_factory=list)
    refused: int = 0
    refuse: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def wait_for(self, n: int, timeout: float = 20, *, address: str | None = None) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(address) if address else list(self.messages)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {n} emails, got {len(self.messages)}")


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.refuse:
            with self.sink.lock:
                self.sink.refused += 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        with self.sink.lock:
            self.sink.messages.append(email.message_from_bytes(data, policy=email.policy.default))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
