"""Runbook browser: the folder's runbooks, rendered Markdown (sanitised), steps and lint warnings.

Parsing, linting and review dates belong to `warroom.runbooks`; this module
only renders what the loader returns. Markdown becomes HTML with markdown-it
(raw HTML disabled) and then goes through nh3's allowlist, so a runbook can
never inject script into the page whatever its author wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import nh3
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markdown_it import MarkdownIt

from warroom.core.errors import NotFound
from warroom.jobs.runtime import Runtime
from warroom.web.deps import RuntimeDep, Viewer
from warroom.web.pages import common, sources

router = APIRouter()
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul", "del",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML: no raw HTML, no script, links limited to http(s)/mailto."""
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@dataclass
class StepView:
    id: str
    kind: str
    title: str
    phase: str
    body: str
    mutates: bool = False
    auto: bool = False
    manual: bool = False


@dataclass
class RunbookView:
    id: str
    title: str
    owner: str = ""
    severity: str = ""
    services: list[str] = field(default_factory=list)
    path: str = ""
    html: str = ""
    steps: list[StepView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    review_due: date | None = None
    last_reviewed: date | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _load_all(rt: Runtime) -> list[Any]:
    loader = sources.runbook_loader
    if loader is None or not rt.settings.runbooks_path.is_dir():
        return []
    result = loader.load_folder(rt.settings.runbooks_path)
    books = _get(result, "runbooks", result)
    return list(books.values() if isinstance(books, dict) else books)


def _view(book: Any) -> RunbookView:
    meta = _get(book, "meta", book)
    steps = []
    for st in _get(book, "steps", []) or []:
        kind = str(_get(st, "kind", _get(st, "language", "")))
        steps.append(
            StepView(
                id=str(_get(st, "id", "")),
                kind=kind,
                title=str(_get(st, "title", "") or ""),
                phase=str(_get(st, "phase", "") or ""),
                body=str(_get(st, "body", _get(st, "code", _get(st, "text", ""))) or ""),
                mutates=bool(_get(st, "mutates", False)),
                auto=bool(_get(st, "auto", False)),
                manual=kind in ("manual", "task", "checklist"),
            )
        )
    body = str(_get(book, "body", "") or "")
    return RunbookView(
        id=str(_get(meta, "id", "")),
        title=str(_get(meta, "title", "") or _get(meta, "id", "")),
        owner=str(_get(meta, "owner", "") or ""),
        severity=str(_get(meta, "severity", "") or ""),
        services=list(_get(meta, "services", []) or []),
        path=str(_get(book, "path", "") or ""),
        html=render_markdown(body) if body else "",
        steps=steps,
        last_reviewed=_get(meta, "last_reviewed"),
        params=dict(_get(meta, "params", {}) or {}),
    )


def catalogue(rt: Runtime) -> list[RunbookView]:
    try:
        books = _load_all(rt)
    except Exception:  # a broken folder must not take the dashboard down
        return []
    return sorted((_view(b) for b in books), key=lambda v: v.title.lower())


def find(rt: Runtime, runbook_id: str) -> tuple[Any, RunbookView]:
    for book in _load_all(rt):
        view = _view(book)
        if view.id == runbook_id:
            return book, view
    raise NotFound(f"runbook {runbook_id!r} does not exist", field="runbook")


def for_incident(rt: Runtime, runbook_ids: list[str]) -> RunbookView | None:
    for rid in runbook_ids or []:
        try:
            return find(rt, rid)[1]
        except NotFound:
            continue
        except Exception:
            return None
    return None


def overdue_reviews(rt: Runtime, now: datetime) -> list[dict[str, Any]]:
    maint = sources.runbook_maintenance
    if maint is None or not hasattr(maint, "overdue"):
        return []
    try:
        items = maint.overdue(_load_all(rt), today=now.date())
    except Exception:
        return []
    out = []
    for item in items:
        book = _get(item, "runbook", item)
        view = _view(book)
        out.append(
            {
                "id": view.id,
                "title": view.title,
                "owner": view.owner,
                "due": str(_get(item, "due", "")),
            }
        )
    return out


def lint_warnings(rt: Runtime, book: Any) -> list[str]:
    lint = sources.runbook_lint
    if lint is None or not hasattr(lint, "lint_runbook"):
        return []
    try:
        problems = lint.lint_runbook(book)
    except Exception:
        return []
    return [str(_get(p, "message", p)) for p in problems]


@router.get("/runbooks")
def runbooks_page(request: Request, rt: RuntimeDep, _viewer: Viewer) -> Response:
    return common.render(
        request,
        "runbooks.html",
        {"runbooks": catalogue(rt), "available": sources.runbook_loader is not None},
    )


@router.get("/runbooks/{runbook_id}")
def runbook_page(request: Request, runbook_id: str, rt: RuntimeDep, _viewer: Viewer) -> Response:
    if len(runbook_id) > 100:
        raise NotFound("runbook does not exist", field="runbook")
    book, view = find(rt, runbook_id)
    view.warnings = lint_warnings(rt, book)
    return common.render(request, "runbook.html", {"runbook": view})
