"""Channel transports against real servers on loopback: SMTP with STARTTLS and AUTH
(aiosmtpd), and the chat/webhook payloads (FakeChatServer standing in for Slack, Teams,
Mattermost and Discord)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.receivers import SmtpSink, _Handler, chat_server
from tests.support import free_port, need_binary
from warroom.config.schema import Channel
from warroom.notify import channels
from warroom.notify.channels import Message, SendError

pytestmark = pytest.mark.integration

USER, PASSWORD = "pager", "smtp-pass-" + "p" * 12


def env(name: str) -> str | None:
    return {"SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD}.get(name)


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == USER
        and data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)  # let aiosmtpd answer 535


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    openssl = need_binary("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test CA only
    return cert, key


@pytest.fixture
def tls_smtp(tls_files: tuple[Path, Path]) -> Iterator[SmtpSink]:
    import ssl

    cert, key = tls_files
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    sink = SmtpSink(port=free_port())
    controller = Controller(
        _Handler(sink),
        hostname="127.0.0.1",
        port=sink.port,
        tls_context=ctx,
        require_starttls=True,
        authenticator=_auth,
        auth_required=True,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def smtp_channel(port: int, **over: Any) -> Channel:
    data = {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "from": "warroom@example.com",
        "starttls": True,
        "username": "env:SMTP_USER",
        "password": "env:SMTP_PASSWORD",
    }
    data.update(over)
    return Channel.model_validate(data)


MSG = Message(
    "[warroom] P0 #7: DB down", "Acknowledge: http://x/ack/t\n", "wr-abc123", "alice@example.com"
)


def test_smtp_starttls_and_auth_deliver_with_a_stable_message_id(tls_smtp: SmtpSink) -> None:
    answer = channels.send(smtp_channel(tls_smtp.port), MSG, env=env, timeout=5)
    assert answer.startswith("250")
    mail = tls_smtp.wait_for(1)[0]
    assert mail["Message-ID"] == "<wr-abc123@example.com>"
    assert mail["X-Warroom-Idempotency-Key"] == "wr-abc123"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_wrong_password_is_permanent() -> None:
    sink = SmtpSink(port=free_port())
    controller = Controller(
        _Handler(sink),
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=_auth,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        bad = smtp_channel(sink.port, starttls=False, password="wrong-password")
        with pytest.raises(SendError) as err:
            channels.send(bad, MSG, env=env, timeout=5)
    finally:
        controller.stop()
    assert not err.value.retryable and "535" in err.value.reason
    assert sink.messages == []


def test_smtp_without_starttls_is_refused_by_a_server_that_requires_it(tls_smtp: SmtpSink) -> None:
    with pytest.raises(SendError):
        channels.send(smtp_channel(tls_smtp.port, starttls=False), MSG, env=env, timeout=5)
    assert tls_smtp.messages == []


def test_smtp_connection_refused_is_retryable() -> None:
    with pytest.raises(SendError) as err:
        channels.send(
            smtp_channel(free_port(), starttls=False, username=None, password=None),
            MSG,
            env=env,
            timeout=2,
        )
    assert err.value.retryable


def test_subject_header_injection_is_flattened() -> None:
    from tests.fakes.receivers import smtp_server

    with smtp_server() as sink:
        evil = Message("P0\r\nBcc: victim@example.com", "body", "wr-1", "alice@example.com")
        channels.send(
            smtp_channel(sink.port, starttls=False, username=None, password=None),
            evil,
            env=env,
            timeout=5,
        )
        mail = sink.wait_for(1)[0]
        assert mail["Bcc"] is None and "\n" not in str(mail["Subject"])


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("slack_webhook", lambda b: b["text"].startswith("@alice [warroom] P0")),
        ("mattermost_webhook", lambda b: "Acknowledge: http://x/ack/t" in b["text"]),
        (
            "discord_webhook",
            lambda b: b["content"].startswith("@alice") and b["allowed_mentions"] == {"parse": []},
        ),
        (
            "teams_webhook",
            lambda b: b["@type"] == "MessageCard" and b["title"].startswith("[warroom]"),
        ),
        (
            "webhook",
            lambda b: b["idempotency_key"] == "wr-abc123" and b["subject"].startswith("[warroom]"),
        ),
    ],
)
def test_chat_webhook_payloads_carry_the_idempotency_key(kind: str, check: Any) -> None:
    with chat_server() as sink:
        ch = Channel.model_validate({"type": kind, "url": sink.url + "/hook"})
        msg = Message(MSG.subject, MSG.text, MSG.idempotency_key, "@alice")
        assert channels.send(ch, msg, env=env, timeout=5) == "HTTP 200"
        req = sink.wait_for(1)[0]
        assert req.headers["idempotency-key"] == "wr-abc123"
        assert check(req.json())


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_status_classification_follows_events_v2(status: int, retryable: bool) -> None:
    with chat_server(lambda _n, _r: (status, {"Retry-After": "3"})) as sink:
        ch = Channel.model_validate({"type": "slack_webhook", "url": sink.url})
        with pytest.raises(SendError) as err:
            channels.send(ch, MSG, env=env, timeout=5)
    assert err.value.retryable is retryable
    if status == 429:
        assert err.value.retry_after == 3


def test_redirects_are_not_followed() -> None:
    with (
        chat_server() as target,
        chat_server(lambda _n, _r: (302, {"Location": target.url})) as sink,
    ):
        ch = Channel.model_validate({"type": "webhook", "url": sink.url})
        with pytest.raises(SendError) as err:
            channels.send(ch, MSG, env=env, timeout=5)
        assert not err.value.retryable and target.requests == []


def test_a_receiver_that_hangs_hits_the_per_attempt_timeout() -> None:
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        ch = Channel.model_validate(
            {"type": "webhook", "url": f"http://127.0.0.1:{srv.getsockname()[1]}"}
        )
        with pytest.raises(SendError) as err:
            channels.send(ch, MSG, env=env, timeout=0.5)
    assert err.value.retryable and "timed out" in err.value.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("99999", 3600.0),
        ("soon", None),
        (None, None),
        ("Thu, 01 Jan 2099 00:00:00 GMT", 3600.0),
        ("nan", None),
    ],
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert channels.parse_retry_after(value) == expected
