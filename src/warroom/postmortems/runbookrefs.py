"""The narrow view of a runbook that drills and action items need: dates, owner, file hash.

`RunbookInfo` is the narrow view this domain depends on; the runbooks
domain's `Runbook` satisfies it, and so does `RunbookRef` (handy in tests and
for runbooks known only by their metadata).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

from warroom.core.errors import NotFound
from warroom.core.logging import get_logger
from warroom.runbooks import loader

log = get_logger("warroom.postmortems")


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


def load_catalog(root: Path) -> list[RunbookInfo]:
    """Every loadable runbook under `root`, through the runbooks domain's loader.

    Broken files are left out here (`warroom runbook lint` reports them): one
    bad file must not hide the others from drills and action items.
    """
    if not root.is_dir():
        return []
    catalog = loader.load_folder(root)
    for problem in catalog.problems:
        log.warning("runbook_unreadable", problem=str(problem))
    return list(catalog.runbooks.values())


def find(catalog: Iterable[RunbookInfo], runbook_id: str) -> RunbookInfo:
    """Raises NotFound naming the runbook."""
    for ref in catalog:
        if ref.id == runbook_id:
            return ref
    raise NotFound(f"runbook {runbook_id!r} does not exist", field="runbook")
