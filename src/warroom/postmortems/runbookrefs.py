"""What this domain needs to know about runbook files: id, owner, review and drill dates, file hash.

The runbooks domain owns the full format (steps, params, lint). Action items
and drills only need the front matter and the file's hash, so they read just
that and depend on nothing else; anything with these attributes (for example
the runbooks catalog's entries) satisfies `RunbookInfo`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from warroom.config.yamlsafe import load_yaml
from warroom.core.durations import parse_duration
from warroom.core.errors import InvalidInput, NotFound
from warroom.core.logging import get_logger

log = get_logger("warroom.postmortems")

MAX_RUNBOOK_BYTES = 1_000_000


class RunbookInfo(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def file_hash(self) -> str: ...
    @property
    def last_reviewed(self) -> date | None: ...
    @property
    def reviewed_by(self) -> str: ...
    @property
    def drill_every(self) -> timedelta | None: ...


@dataclass(frozen=True)
class RunbookRef:
    id: str
    title: str
    owner: str
    severity: str
    path: Path
    file_hash: str
    last_reviewed: date | None
    reviewed_by: str
    drill_every: timedelta | None


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _front_matter(text: str, *, source: str) -> dict[str, Any]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise InvalidInput(f"{source}: no front matter (the file must start with ---)")
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            try:
                data = load_yaml("\n".join(lines[1:end]), source=source)
            except yaml.YAMLError as exc:  # load_yaml normally wraps these; belt and braces
                raise InvalidInput(f"{source}: bad front matter: {exc}") from None
            if not isinstance(data, dict):
                raise InvalidInput(f"{source}: front matter is not a mapping")
            return data
    raise InvalidInput(f"{source}: front matter is not closed with ---")


def _as_date(value: Any, *, source: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(
            f"{source}: last_reviewed {value!r} is not a date (YYYY-MM-DD)"
        ) from None


def read(path: Path) -> RunbookRef:
    """Read one runbook's front matter. Raises InvalidInput naming the file."""
    data = path.read_bytes()
    if len(data) > MAX_RUNBOOK_BYTES:
        raise InvalidInput(f"{path}: larger than {MAX_RUNBOOK_BYTES} bytes")
    meta = _front_matter(data.decode("utf-8", errors="replace"), source=str(path))
    rid = str(meta.get("id") or "").strip()
    if not rid:
        raise InvalidInput(f"{path}: front matter has no id")
    drill = meta.get("drill_every")
    return RunbookRef(
        id=rid,
        title=str(meta.get("title") or rid),
        owner=str(meta.get("owner") or ""),
        severity=str(meta.get("severity") or "P2"),
        path=path,
        file_hash=file_hash(data),
        last_reviewed=_as_date(meta.get("last_reviewed"), source=str(path)),
        reviewed_by=str(meta.get("reviewed_by") or ""),
        drill_every=parse_duration(drill, field="drill_every") if drill else None,
    )


def load_catalog(root: Path) -> list[RunbookRef]:
    """Every readable runbook under `root` (README/index files and broken files are skipped)."""
    if not root.is_dir():
        return []
    refs: list[RunbookRef] = []
    for path in sorted(root.rglob("*.md")):
        if path.name.lower() in ("readme.md", "index.md"):
            continue
        try:
            refs.append(read(path))
        except (InvalidInput, OSError) as exc:
            # lint reports broken runbooks; here one bad file must not hide the others
            log.warning("runbook_unreadable", path=str(path), error=str(exc))
    return refs


def find(catalog: Iterable[RunbookInfo], runbook_id: str) -> RunbookInfo:
    """Raises NotFound naming the runbook."""
    for ref in catalog:
        if ref.id == runbook_id:
            return ref
    raise NotFound(f"runbook {runbook_id!r} does not exist", field="runbook")
