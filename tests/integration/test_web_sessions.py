"""Web sessions: hashed ids, expiry, disabled users, and the login limiter's sliding window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from warroom.auth import service as auth
from warroom.auth import sessions
from warroom.auth.models import User
from warroom.core.clock import FrozenClock
from warroom.core.errors import RateLimited
from warroom.jobs.runtime import Runtime


@pytest.mark.integration
def test_a_session_lives_twelve_hours_and_dies_with_its_user(
    db_url: str, make_runtime: Callable[..., Runtime], clock: FrozenClock
) -> None:
    rt = make_runtime(db_url, None, clock)
    with rt.db.transaction() as s:
        user = auth.create_user(s, name="sam", role="responder", now=rt.now())
        raw, csrf = sessions.create(s, user_id=user.id, now=rt.now())
        other, _ = sessions.create(s, user_id=user.id, now=rt.now())
    with rt.db.read() as s:
        login = sessions.load(s, session_id=raw, now=rt.now())
        assert login is not None and login.principal.name == "sam"
        assert login.principal.via == "session" and login.csrf_token == csrf
        assert sessions.load(s, session_id=raw + "x", now=rt.now()) is None
        assert sessions.load(s, session_id="x" * 500, now=rt.now()) is None
    clock.advance(sessions.SESSION_TTL + timedelta(seconds=1))
    with rt.db.read() as s:
        assert sessions.load(s, session_id=raw, now=rt.now()) is None
    clock.set(clock.now() - sessions.SESSION_TTL)  # back inside the lifetime
    with rt.db.transaction() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.disabled = True
    with rt.db.read() as s:
        assert sessions.load(s, session_id=other, now=rt.now()) is None
    with rt.db.transaction() as s:
        sessions.destroy_all(s, user_id=user.id)
        row = s.get(User, user.id)
        assert row is not None
        row.disabled = False
    with rt.db.read() as s:
        assert sessions.load(s, session_id=other, now=rt.now()) is None


@pytest.mark.unit
def test_login_limiter_counts_per_account_and_per_address_in_a_sliding_window() -> None:
    now = [1000.0]
    limiter = sessions.LoginLimiter(per_account=3, per_address=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.hit(account="Ann", address="10.0.0.1")
    with pytest.raises(RateLimited) as exc:
        limiter.hit(account="ann", address="10.0.0.2")  # names are case-insensitive
    assert 1 <= exc.value.retry_after <= 60
    limiter.hit(account="bob", address="10.0.0.1")
    limiter.hit(account="cat", address="10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.hit(account="dan", address="10.0.0.1")  # the address is spent
    now[0] += 61
    limiter.hit(account="ann", address="10.0.0.1")  # the window slid on


@pytest.mark.unit
def test_csrf_tokens_compare_exactly() -> None:
    assert sessions.csrf_ok("abc", "abc")
    assert not sessions.csrf_ok("abc", "abd")
    assert not sessions.csrf_ok("abc", None)
    assert not sessions.csrf_ok("abc", "")
