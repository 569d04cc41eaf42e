"""Lint runbook files and folders: `file:line: error|warning: message`, for people and CI."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from warroom.core.errors import InvalidInput
from warroom.runbooks import params as prm
from warroom.runbooks.loader import load_file, load_folder
from warroom.runbooks.model import ANY_PLACEHOLDER, PLACEHOLDER, Problem, Runbook, StepKind

_HEAD_IN_PIPE = re.compile(r"\|\s*head\b")
ERROR = "error"
WARNING = "warning"


def lint_paths(
    paths: Iterable[Path],
    *,
    today: date,
    owners: set[str] | None = None,
    connections: set[str] | None = None,
) -> tuple[list[Problem], list[Runbook]]:
    """Every problem in the files and folders given, sorted by file and line.

    `owners` / `connections` are the names warroom.yaml knows; None skips
    those checks (no config at hand). Raises InvalidInput for a path that
    does not exist.
    """
    problems: list[Problem] = []
    runbooks: list[Runbook] = []
    for path in paths:
        if path.is_dir():
            catalog = load_folder(path)
            problems += catalog.problems
            runbooks += list(catalog.runbooks.values())
        elif path.is_file():
            try:
                runbooks.append(load_file(path))
            except InvalidInput as exc:
                problems.append(_from_error(exc, path))
        else:
            raise InvalidInput(f"{path}: no such file or folder")
    seen: dict[str, Runbook] = {}
    for rb in runbooks:
        first = seen.setdefault(rb.id, rb)
        if first is not rb and first.path != rb.path:
            problems.append(
                Problem(
                    str(rb.path),
                    rb.front_matter_lines.get("id", 1),
                    ERROR,
                    f"duplicate runbook id {rb.id!r} (also in {first.path})",
                    code="duplicate-id",
                )
            )
        problems += lint_runbook(rb, today=today, owners=owners, connections=connections)
    unique = sorted(set(problems), key=lambda p: (p.path, p.line, p.level, p.message))
    return unique, runbooks


def _from_error(exc: InvalidInput, path: Path) -> Problem:
    prefix = f"{path}:"
    message = exc.message
    if message.startswith(prefix):
        line_text, _, rest = message[len(prefix) :].partition(": ")
        if line_text.isdigit():
            return Problem(str(path), int(line_text), ERROR, rest, code="load")
    return Problem(str(path), 1, ERROR, message, code="load")


def lint_runbook(
    rb: Runbook,
    *,
    today: date,
    owners: set[str] | None = None,
    connections: set[str] | None = None,
) -> list[Problem]:
    where = str(rb.path)
    out = list(rb.problems)
    fm = rb.front_matter_lines

    def add(line: int, level: str, message: str, code: str = "") -> None:
        out.append(Problem(where, line, level, message, code=code))

    if rb.has_front_matter:
        if not rb.owner:
            add(fm.get("id", 1), WARNING, "no owner: add 'owner:' (a team or person)")
        elif owners is not None and rb.owner not in owners:
            add(
                fm.get("owner", 1),
                ERROR,
                f"owner {rb.owner!r} is not a person or team in warroom.yaml",
                "owner",
            )
        if rb.review_every is None:
            add(fm.get("id", 1), WARNING, "no review_every: nobody will be reminded to review it")
        due = rb.review_due()
        if due is not None and due < today:
            add(
                fm.get("last_reviewed", 1),
                WARNING,
                f"review overdue since {due.isoformat()} (last reviewed {rb.last_reviewed})",
                "review-overdue",
            )
        elif rb.review_every is not None and rb.last_reviewed is None:
            add(
                fm.get("review_every", 1),
                WARNING,
                "never reviewed: set last_reviewed",
                "review-overdue",
            )
    if not rb.steps:
        add(1, WARNING, "no steps: no fenced bash/promql/sql/http block and no checklist")
    used: set[str] = set()
    dummy = {name: "x" for name in rb.params}
    for step in rb.steps:
        if step.auto and step.mutates:
            add(
                step.line,
                ERROR,
                f"step {step.id}: 'auto' and 'mutates' together (an automatic run must never change things)",
                "auto-mutates",
            )
        # in shell, `{{ … }}` inside single quotes is the author's (kubectl/Helm templates)
        generic = "" if step.kind is StepKind.SHELL else step.code
        for raw in ANY_PLACEHOLDER.findall(generic):
            if not PLACEHOLDER.fullmatch("{{" + raw + "}}"):
                add(
                    step.line,
                    ERROR,
                    f"step {step.id}: unsupported placeholder {{{{{raw}}}}}: only {{{{ name }}}} is allowed",
                    "placeholder",
                )
        for name in step.placeholders():
            used.add(name)
            if name not in rb.params:
                add(
                    step.line,
                    ERROR,
                    f"step {step.id}: parameter {name!r} is used but not declared in params",
                    "undeclared-param",
                )
        if step.kind is StepKind.SQL and not step.conn:
            add(
                step.line,
                ERROR,
                f"step {step.id}: sql step without conn= (which database?)",
                "sql-conn",
            )
        if step.conn and connections is not None and step.conn not in connections:
            add(
                step.line,
                ERROR,
                f"step {step.id}: connection {step.conn!r} is not in warroom.yaml",
                "conn",
            )
        if step.kind is StepKind.SHELL and _HEAD_IN_PIPE.search(step.code):
            add(
                step.line,
                WARNING,
                f"step {step.id}: '| head' under pipefail can fail the step (SIGPIPE); "
                "use \"| sed -n '1,20p'\"",
                "pipefail-head",
            )
        values = {**dummy, **{n: "x" for n in step.placeholders()}}
        try:
            if step.kind is StepKind.SHELL:
                prm.render_shell(step.code, declared=rb.params.keys())
            elif step.kind is StepKind.SQL:
                prm.render_sql(step.code, values)
            elif step.kind is StepKind.PROMQL:
                prm.render_promql(step.code, values)
            elif step.kind is StepKind.HTTP:
                prm.render_http(
                    step.code, values, base_url="http://conn.invalid" if step.conn else None
                )
        except InvalidInput as exc:
            add(step.line, ERROR, f"step {step.id}: {exc.message}", "render")
    for name in rb.params:
        if name not in used:
            add(
                fm.get("params", 1),
                WARNING,
                f"parameter {name!r} is declared but never used",
                "unused-param",
            )
    return out


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.level == ERROR for p in problems)
