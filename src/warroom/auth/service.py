"""Users and API tokens: create, authenticate, revoke. Tokens are shown once and stored hashed.

Users come from two places. `warroom user add` (or the admin API) creates one
directly. People in warroom.yaml (`people:` with a `role:`) become users on
demand: `warroom user sync` creates every missing one, and `warroom token
create PERSON` creates the user for a configured person the first time. The
database stays the authority afterwards: an admin may change or disable a user
without editing the file, and `user sync --update-roles` re-applies config roles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.auth.models import ApiToken, Role, User
from warroom.config.schema import Config
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


def revoke_token(session: Session, *, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token (revoking twice keeps the first time). Raises NotFound."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist", field="token_id")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def issue_token(
    session: Session,
    *,
    user: User,
    name: str,
    now: datetime,
    expires_in_days: int | None = None,
) -> tuple[str, ApiToken]:
    """Create a token and return it with its row; the token text exists only in the return value."""
    if user.disabled:
        raise Conflict(f"user {user.name!r} is disabled", field="user")
    clean = " ".join(name.split())
    if not clean or len(clean) > 100:
        raise InvalidInput("token name must be 1 to 100 characters", field="name")
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    token = create_token(session, user=user, name=clean, now=now, expires_at=expires)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:  # flushed just above in this session; cannot happen
        raise NotFound("token vanished while being created")
    return token, row


def user_for_token(session: Session, *, name: str, config: Config, now: datetime) -> User:
    """The user a token is for; a person from config without a user yet becomes one.

    Raises NotFound when the name is neither a user nor a configured person.
    """
    user = get_user(session, name=name)
    if user is not None:
        return user
    person = config.person(name)
    if person is None:
        raise NotFound(
            f"no user or configured person named {name!r}",
            field="name",
            hint="add one with `warroom user add NAME --role ROLE`",
        )
    return create_user(
        session,
        name=person.id,
        role=person.role,
        now=now,
        email=person.email,
        display_name=person.name,
    )


def sync_people(
    session: Session, *, config: Config, now: datetime, update_roles: bool = False
) -> list[tuple[str, str]]:
    """Create users for configured people; returns (name, what happened) pairs."""
    done: list[tuple[str, str]] = []
    for person in config.people:
        user = get_user(session, name=person.id)
        if user is None:
            create_user(
                session,
                name=person.id,
                role=person.role,
                now=now,
                email=person.email,
                display_name=person.name,
            )
            done.append((person.id, f"created as {person.role}"))
        elif update_roles and user.role != person.role:
            done.append((person.id, f"role {user.role} -> {person.role}"))
            user.role = person.role
        else:
            done.append((person.id, "unchanged"))
    session.flush()
    return done


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def list_tokens(session: Session, *, user: str | None = None) -> list[tuple[ApiToken, User]]:
    stmt = select(ApiToken, User).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if user is not None:
        stmt = stmt.where(User.name == user)
    return [(t, u) for t, u in session.execute(stmt).all()]


def set_disabled(session: Session, *, name: str, disabled: bool) -> User:
    user = get_user(session, name=name)
    if user is None:
        raise NotFound(f"user {name!r} does not exist", field="name")
    user.disabled = disabled
    return user


def user_dict(user: User) -> dict[str, Any]:
    """The public shape of a user: never the password hash."""
    return {
        "id": user.id,
        "name": user.name,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
        "has_password": user.password_hash is not None,
        "created_at": user.created_at.isoformat(),
    }


def token_dict(token: ApiToken, user: User) -> dict[str, Any]:
    """The public shape of a token: its prefix identifies it, the hash never leaves."""

    def iso(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "id": token.id,
        "user": user.name,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "expires_at": iso(token.expires_at),
        "revoked_at": iso(token.revoked_at),
        "active": token.revoked_at is None and not user.disabled,
    }


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
