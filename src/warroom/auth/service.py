"""Users and API tokens: create, authenticate, revoke. Tokens are shown once and stored hashed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.auth.models import ApiToken, Role, User
from warroom.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from warroom.core.security import hash_password, hash_token, new_token, verify_password

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
TOKEN_PREFIX = "wrt"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user (by token or web session) or an integration."""

    name: str
    role: Role
    user_id: int | None = None
    via: str = "token"  # token|session|integration|link|system

    def allows(self, needed: Role) -> bool:
        return self.role.allows(needed)


SYSTEM = Principal(name="warroom", role=Role.ADMIN, via="system")


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(
            f"unknown role {value!r}",
            field="role",
            hint="use viewer, responder, commander or admin",
        ) from None


def create_user(
    session: Session,
    *,
    name: str,
    role: str,
    now: datetime,
    email: str | None = None,
    display_name: str = "",
    password: str | None = None,
) -> User:
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"bad user name {name!r}", field="name", hint="lowercase letters, digits, . _ -"
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists", field="name")
    if password is not None and len(password) < 12:
        raise InvalidInput("password must be at least 12 characters", field="password")
    user = User(
        name=name,
        role=parse_role(role).value,
        email=email,
        display_name=display_name or name,
        password_hash=hash_password(password) if password else None,
        disabled=False,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < 12:
        raise InvalidInput("password must be at least 12 characters", field="password")
    user.password_hash = hash_password(password)


def create_token(
    session: Session, *, user: User, name: str, now: datetime, expires_at: datetime | None = None
) -> str:
    """Create an API token and return it; only its hash is stored."""
    token = new_token(TOKEN_PREFIX)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=hash_token(token),
            prefix=token[:8],
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def revoke_token(session: Session, *, token_id: int, now: datetime) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    row.revoked_at = now


def authenticate_token(session: Session, token: str, *, now: datetime) -> Principal:
    """Resolve a bearer token to a principal. Raises Unauthenticated with one generic message."""
    if not token or len(token) > 200:
        raise Unauthenticated("invalid or missing API token")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at < now):
        raise Unauthenticated("invalid or missing API token")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise Unauthenticated("invalid or missing API token")
    return Principal(name=user.name, role=Role(user.role), user_id=user.id, via="token")


def authenticate_password(session: Session, *, name: str, password: str) -> Principal:
    user = get_user(session, name=name)
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or user.disabled:
        raise Unauthenticated("wrong user name or password")
    return Principal(name=user.name, role=Role(user.role), user_id=user.id, via="session")
