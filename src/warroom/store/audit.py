"""Hash-chained audit log: append in the caller's transaction; verify the whole chain.

Each entry's hash is SHA-256 over its content and the previous entry's hash,
so an edited, deleted, reordered or inserted row breaks the chain. Cutting off
the newest rows is only detectable against an anchor kept elsewhere: `verify`
accepts the last hash you recorded outside the database (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.core.clock import as_utc
from warroom.core.redact import Redactor
from warroom.store.models import AuditEntry

GENESIS = "0" * 64


def _digest(prev: str, at: datetime, actor: str, action: str, target: str, detail: Any) -> str:
    body = json.dumps(
        {
            "prev": prev,
            "at": as_utc(at).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "target": target,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    redactor: Redactor | None = None,
) -> AuditEntry:
    """Append one entry. Concurrent appends serialise on the chain head.

    On PostgreSQL the head row is locked FOR UPDATE; SQLite writers are already
    serialised by BEGIN IMMEDIATE.
    """
    clean: dict[str, Any] = detail or {}
    if redactor is not None:
        clean = redactor.redact_obj(clean)  # type: ignore[assignment]
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    head = session.scalars(stmt).first()
    prev = head.hash if head else GENESIS
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=clean,
        prev_hash=prev,
        hash=_digest(prev, at, actor, action, target, clean),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str]
    head: str


def verify(session: Session, *, anchor: str | None = None) -> VerifyResult:
    problems: list[str] = []
    prev = GENESIS
    count = 0
    last_id = 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        count += 1
        if entry.id <= last_id:
            problems.append(f"entry {entry.id}: out of order")
        if entry.prev_hash != prev:
            problems.append(
                f"entry {entry.id}: does not follow the previous entry (deleted or reordered?)"
            )
        expected = _digest(
            entry.prev_hash, entry.at, entry.actor, entry.action, entry.target, entry.detail
        )
        if expected != entry.hash:
            problems.append(f"entry {entry.id}: content changed after it was written")
        prev = entry.hash
        last_id = entry.id
    if anchor and anchor != prev:
        known = session.scalar(select(AuditEntry.id).where(AuditEntry.hash == anchor))
        if known is None:
            problems.append(
                "the recorded anchor is not in the chain (entries removed from the end?)"
            )
    return VerifyResult(ok=not problems, checked=count, problems=problems, head=prev)
