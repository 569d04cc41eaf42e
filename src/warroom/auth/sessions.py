"""Web login sessions: random id stored hashed, a CSRF token per session, login rate limits.

The browser holds only the random session id (in an HttpOnly cookie); the
database holds its SHA-256, so a leaked table does not log anyone in. Each
session carries its own CSRF token, checked on every form POST.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from warroom.auth.models import Role, User, WebSession
from warroom.auth.service import Principal
from warroom.core.errors import RateLimited
from warroom.core.security import constant_time_equals, hash_token

SESSION_TTL = timedelta(hours=12)
MAX_SESSION_ID = 200  # longer cookie values are garbage, not sessions


@dataclass(frozen=True)
class WebLogin:
    """A live session: who it belongs to and the CSRF token its forms must carry."""

    principal: Principal
    csrf_token: str
    expires_at: datetime


def create(session: Session, *, user_id: int, now: datetime) -> tuple[str, str]:
    """Start a session for a user; returns (session id for the cookie, CSRF token)."""
    raw = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id_hash=hash_token(raw),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    # expired rows would otherwise pile up forever; logins are rare, so this is cheap
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.flush()
    return raw, csrf


def load(session: Session, *, session_id: str, now: datetime) -> WebLogin | None:
    """The login behind a cookie value, or None if unknown, expired or the user is disabled."""
    if not session_id or len(session_id) > MAX_SESSION_ID:
        return None
    row = session.get(WebSession, hash_token(session_id))
    if row is None or row.expires_at <= now:
        return None
    user = session.scalar(select(User).where(User.id == row.user_id))
    if user is None or user.disabled:
        return None
    principal = Principal(name=user.name, role=Role(user.role), user_id=user.id, via="session")
    return WebLogin(principal=principal, csrf_token=row.csrf_token, expires_at=row.expires_at)


def destroy(session: Session, *, session_id: str) -> None:
    if session_id and len(session_id) <= MAX_SESSION_ID:
        session.execute(delete(WebSession).where(WebSession.id_hash == hash_token(session_id)))


def destroy_all(session: Session, *, user_id: int) -> None:
    """Log a user out everywhere (disable, password change)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and constant_time_equals(expected, given or "")


class LoginLimiter:
    """Sliding-window limits on login attempts, per account and per client address.

    Kept in process memory: with several replicas each enforces its own window,
    which still bounds guessing to (replicas x limit) per minute.
    """

    def __init__(
        self,
        *,
        per_account: int = 10,
        per_address: int = 100,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _check(self, key: str, limit: int, now: float) -> float:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return hits[0] + self.window - now
        return 0.0

    def hit(self, *, account: str, address: str) -> None:
        """Count one attempt. Raises RateLimited (with retry_after) when over a limit."""
        now = self._clock()
        with self._lock:
            if len(self._hits) > 50_000:  # bound memory under a spray of names
                self._hits.clear()
            keys = (
                ("account:" + account.lower()[:100], self.per_account),
                ("address:" + address, self.per_address),
            )
            for key, limit in keys:
                wait = self._check(key, limit, now)
                if wait > 0:
                    raise RateLimited(
                        "too many login attempts; wait a minute and try again",
                        retry_after=max(1.0, wait),
                    )
            for key, _ in keys:
                self._hits[key].append(now)
