"""The parsed shape of a runbook: parameters, phases, steps and the folder catalog."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from warroom.core.matchers import Matcher


class StepKind(StrEnum):
    SHELL = "shell"
    PROMQL = "promql"
    SQL = "sql"
    HTTP = "http"
    MANUAL = "manual"


class Phase(StrEnum):
    """The five-step way to use a runbook, plus verify and prevent."""

    IDENTIFY = "identify"
    INVESTIGATE = "investigate"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    VERIFY = "verify"
    PREVENT = "prevent"
    OTHER = "other"


class ParamType(StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"


# Letters, digits and `_.:/@+-`: enough for names, hosts, URLs paths and versions,
# never enough to start a new command, statement or header line.
DEFAULT_PATTERN = r"[A-Za-z0-9_.:/@+-]*"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
DEFAULT_TIMEOUT = timedelta(seconds=60)


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType = ParamType.STR
    default: Any = None
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    pattern: str = DEFAULT_PATTERN
    required: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.value,
            "default": self.default,
            "description": self.description,
            "min": self.minimum,
            "max": self.maximum,
            "choices": list(self.choices),
            "pattern": self.pattern,
            "required": self.required,
        }


@dataclass
class Step:
    id: str
    kind: StepKind
    phase: Phase
    title: str
    code: str
    line: int
    auto: bool = False
    mutates: bool = False
    timeout: timedelta = DEFAULT_TIMEOUT
    conn: str | None = None
    continue_on_error: bool = False
    lang: str = ""
    section: str = ""
    attrs: dict[str, str] = field(default_factory=dict)

    def placeholders(self) -> list[str]:
        """Names of the parameters this step substitutes."""
        if self.kind is StepKind.SHELL:
            from warroom.runbooks.params import shell_names  # params builds on this module

            return shell_names(self.code)
        return PLACEHOLDER.findall(self.code)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "phase": self.phase.value,
            "section": self.section,
            "title": self.title,
            "code": self.code,
            "line": self.line,
            "auto": self.auto,
            "mutates": self.mutates,
            "timeout": self.timeout.total_seconds(),
            "conn": self.conn,
            "continue_on_error": self.continue_on_error,
        }


@dataclass
class Section:
    title: str
    phase: Phase
    line: int


@dataclass(frozen=True)
class Problem:
    """One lint finding: `file:line: level: message`."""

    path: str
    line: int
    level: str  # error | warning
    message: str
    code: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.level}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "line": self.line,
            "level": self.level,
            "message": self.message,
            "code": self.code,
        }


@dataclass
class Runbook:
    id: str
    title: str
    path: Path
    file_hash: str
    body: str
    owner: str = ""
    severity: str = "P2"
    services: list[str] = field(default_factory=list)
    review_every: timedelta | None = None
    last_reviewed: date | None = None
    reviewed_by: str = ""
    drill_every: timedelta | None = None
    last_drill: date | None = None
    triggers: list[list[Matcher]] = field(default_factory=list)
    trigger_text: list[str] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    has_front_matter: bool = True
    # problems found while loading that do not stop the runbook from loading
    problems: list[Problem] = field(default_factory=list)
    front_matter_lines: dict[str, int] = field(default_factory=dict)

    @property
    def phases(self) -> list[Phase]:
        seen: list[Phase] = []
        for section in self.sections:
            if section.phase not in seen and section.phase is not Phase.OTHER:
                seen.append(section.phase)
        return seen

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when any trigger (a list of matchers that must all match) matches."""
        return any(all(m.matches(labels) for m in group) for group in self.triggers if group)

    def review_due(self) -> date | None:
        if self.review_every is None or self.last_reviewed is None:
            return None
        return self.last_reviewed + self.review_every

    def summary(self) -> dict[str, Any]:
        due = self.review_due()
        return {
            "id": self.id,
            "title": self.title,
            "owner": self.owner,
            "severity": self.severity,
            "services": list(self.services),
            "path": str(self.path),
            "file_hash": self.file_hash,
            "review_every": _days(self.review_every),
            "last_reviewed": self.last_reviewed.isoformat() if self.last_reviewed else None,
            "reviewed_by": self.reviewed_by,
            "review_due": due.isoformat() if due else None,
            "drill_every": _days(self.drill_every),
            "triggers": list(self.trigger_text),
            "phases": [p.value for p in self.phases],
            "steps": len(self.steps),
        }

    def as_dict(self) -> dict[str, Any]:
        data = self.summary()
        data["params"] = [p.as_dict() for p in self.params.values()]
        data["sections"] = [
            {"title": s.title, "phase": s.phase.value, "line": s.line} for s in self.sections
        ]
        data["step_list"] = [s.as_dict() for s in self.steps]
        data["body"] = self.body
        return data


def _days(delta: timedelta | None) -> str | None:
    if delta is None:
        return None
    return f"{int(delta.total_seconds() // 86400)}d"


@dataclass
class Catalog:
    """Every runbook of a folder by id, and the files that failed to load."""

    root: Path
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)

    def matching(self, labels: Mapping[str, str]) -> list[Runbook]:
        return [rb for rb in self.runbooks.values() if rb.matches(labels)]

    def __iter__(self) -> Iterator[Runbook]:
        return iter(sorted(self.runbooks.values(), key=lambda r: r.id))
