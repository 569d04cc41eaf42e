"""Channel transports: SMTP and incoming webhooks (Slack, Teams, Mattermost, Discord, generic).

One call = one attempt. The outcome is classified the way PagerDuty Events v2
and Alertmanager do it: 2xx delivered; 429, 408, 5xx and network errors are
retryable (Retry-After honoured); any other 4xx is permanent and never
retried, because escalation to the next level is the backstop. Redirects are
not followed (a channel URL must not be bounced to an internal address).

Guarantees per channel: every webhook carries `Idempotency-Key`, every email
a stable `Message-ID` derived from the same key, so the one repeat a crash
can cause (provider accepted, we died before recording it) can be dropped by
the receiver.
"""

from __future__ import annotations

import email.utils
import json
import math
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.message import EmailMessage
from typing import Any

import httpx

from warroom.config.loader import resolve_secret
from warroom.config.schema import Channel
from warroom.core.security import hmac_sha256_hex

EnvLookup = Callable[[str], str | None]
MAX_RETRY_AFTER = 3600.0
USER_AGENT = "warroom-notify/1"
SIGNATURE_HEADER = "X-Warroom-Signature"
TIMESTAMP_HEADER = "X-Warroom-Timestamp"


class SendError(Exception):
    """One failed attempt: `retryable` says whether another attempt may succeed."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    idempotency_key: str
    address: str = ""  # email address, or a mention like "@alice" for chat channels
    data: dict[str, Any] = field(default_factory=dict)  # structured body for generic webhooks


def message_id(idempotency_key: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip("<> ") or "warroom.invalid"
    return f"<{idempotency_key}@{domain}>"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped at an hour."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (now if now is not None else time.time())
    if math.isnan(seconds):
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def send(channel: Channel, message: Message, *, env: EnvLookup, timeout: float) -> str:
    """Deliver one message; returns a short provider answer. Raises SendError."""
    if channel.type == "smtp":
        return _send_smtp(channel, message, env=env, timeout=timeout)
    return _send_webhook(channel, message, env=env, timeout=timeout)


# ------------------------------------------------------------------ SMTP
def _send_smtp(channel: Channel, message: Message, *, env: EnvLookup, timeout: float) -> str:
    sender = channel.from_ or "warroom@localhost"
    to = message.address or channel.to
    if not to or "@" not in to or "\n" in to or "\r" in to:
        raise SendError(f"no usable email address ({to!r})", retryable=False)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = " ".join(message.subject.split())  # no header injection
    mail["Date"] = email.utils.formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.idempotency_key, sender)
    mail["X-Warroom-Idempotency-Key"] = message.idempotency_key
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    host = channel.host or "localhost"
    port = channel.port or (465 if channel.ssl else 25)
    try:
        username = resolve_secret(channel.username, env, field="username")
        password = resolve_secret(channel.password, env, field="password")
    except Exception as exc:  # a missing env var is a config problem: do not hammer
        raise SendError(f"channel credentials: {exc}", retryable=False) from None
    try:
        client: smtplib.SMTP
        if channel.ssl:
            client = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.ehlo_or_helo_if_needed()
            if channel.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if username:
                _login(client, username, password or "")
            refused = client.send_message(mail)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        transient = any(400 <= c < 500 for c in codes)
        raise SendError(f"recipient refused: {codes}", retryable=transient) from None
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise SendError(
            f"SMTP {exc.smtp_code} {text[:200]}", retryable=not 500 <= exc.smtp_code < 600
        ) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendError(f"SMTP {type(exc).__name__}: {exc}"[:300], retryable=True) from None
    if refused:
        raise SendError(f"recipient refused: {list(refused)}", retryable=False)
    return f"250 accepted by {host}:{port}"


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    # One mechanism, PLAIN when offered (we only authenticate over TLS or on
    # trusted links): a wrong password then fails fast with the server's 535
    # instead of smtplib trying every mechanism in turn.
    methods = (client.esmtp_features.get("auth") or "").upper().split()
    client.user, client.password = username, password
    if "PLAIN" in methods:
        code, resp = client.auth("PLAIN", client.auth_plain)
        if code not in (235, 503):
            raise smtplib.SMTPAuthenticationError(code, resp)
        return
    client.login(username, password)


# ------------------------------------------------------------------ webhooks
def _text(message: Message) -> str:
    prefix = f"{message.address} " if message.address else ""
    return f"{prefix}{message.subject}\n{message.text}"


def payload_for(channel: Channel, message: Message) -> dict[str, Any]:
    if channel.type in ("slack_webhook", "mattermost_webhook"):
        return {"text": _text(message)}
    if channel.type == "discord_webhook":
        return {"content": _text(message)[:2000], "allowed_mentions": {"parse": []}}
    if channel.type == "teams_webhook":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.subject[:200],
            "title": message.subject,
            "text": message.text.replace("\n", "  \n"),
        }
    return {
        "subject": message.subject,
        "text": message.text,
        "recipient": message.address,
        "idempotency_key": message.idempotency_key,
        **message.data,
    }


def _send_webhook(channel: Channel, message: Message, *, env: EnvLookup, timeout: float) -> str:
    try:
        url = resolve_secret(channel.url, env, field="url") or ""
        secret = resolve_secret(channel.secret, env, field="secret")
    except Exception as exc:
        raise SendError(f"channel settings: {exc}", retryable=False) from None
    body = json.dumps(payload_for(channel, message), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": message.idempotency_key,
    }
    if channel.type == "webhook":
        ts = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = ts
        if secret:
            # signed over "timestamp.body" so a captured request cannot be replayed later
            headers[SIGNATURE_HEADER] = "sha256=" + hmac_sha256_hex(
                secret, ts.encode() + b"." + body
            )
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            resp = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise SendError(f"timed out after {timeout:g}s", retryable=True) from None
    except httpx.HTTPError as exc:
        raise SendError(f"network error: {type(exc).__name__}", retryable=True) from None
    status = resp.status_code
    if 200 <= status < 300:
        return f"HTTP {status}"
    snippet = resp.text[:200].replace("\n", " ")
    if status in {408, 429} or status >= 500:
        raise SendError(
            f"HTTP {status} {snippet}",
            retryable=True,
            retry_after=parse_retry_after(resp.headers.get("retry-after")),
        )
    raise SendError(f"HTTP {status} {snippet} (not retried)", retryable=False)
