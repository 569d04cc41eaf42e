"""Runbook browser: the folder's runbooks as sanitised HTML with steps marked, and lint warnings.

Parsing, linting and review dates belong to `warroom.runbooks`; this module
only presents them. Markdown becomes HTML with markdown-it (raw HTML off),
step blocks get a marker naming the step, then everything goes through nh3's
allowlist, so a runbook can never inject script into the page.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import nh3
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from warroom.core.errors import InvalidInput, NotFound
from warroom.core.logging import get_logger
from warroom.jobs.runtime import Runtime
from warroom.runbooks import lint, loader, maintenance
from warroom.runbooks.model import Catalog, Problem, Runbook
from warroom.web.deps import RuntimeDep, Viewer
from warroom.web.pages import common

log = get_logger("warroom.web.runbooks")
router = APIRouter()
ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul", "del",
    "span", "input",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "pre": {"class"},
    "p": {"class"},
    "span": {"class"},
    "th": {"align"},
    "td": {"align"},
}


def _fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """A step block gets a visible marker (id, kind, flags) above its code."""
    token = tokens[idx]
    lang, attrs, _problem = loader.parse_info(token.info or "")
    code = f"<pre><code>{escape(token.content)}</code></pre>\n"
    kind = loader.LANGS.get(lang)
    if kind is None:
        return code
    flags = [f for f in ("auto", "mutates") if attrs.get(f, "").lower() in ("true", "yes", "1")]
    label = f"step · {kind.value}"
    if attrs.get("id"):
        label += f" · {attrs['id']}"
    marker = f'<p class="step-marker"><span class="step-kind">{escape(label)}</span>'
    for flag in flags:
        marker += f' <span class="tag{" warn-tag" if flag == "mutates" else ""}">{flag}</span>'
    css = "step-block mutates" if "mutates" in flags else "step-block"
    return marker + f'</p>\n<pre class="{css}"><code>{escape(token.content)}</code></pre>\n'


_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_md.add_render_rule("fence", _fence)


def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML: no raw HTML, no script, links only http(s)/mailto."""
    return nh3.clean(
        _md.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@dataclass(frozen=True)
class Listing:
    runbooks: list[Runbook]
    problems: list[Problem]
    error: str = ""


_cache: dict[Path, tuple[tuple[tuple[str, int, int], ...], Catalog]] = {}
_cache_lock = threading.Lock()


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the folder's Markdown files: cheap to take, changes on edit."""
    out = []
    for file in root.rglob("*.md"):
        try:
            st = file.stat()
        except OSError:  # removed while we looked: the next load sees the new folder
            continue
        out.append((str(file), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def load(rt: Runtime) -> Catalog:
    """The runbook folder as the loader sees it. Raises InvalidInput if it is missing.

    Parsing a folder takes tens of milliseconds, and every dashboard view needs
    it, so the catalog is kept until a file in the folder changes.
    """
    root = rt.settings.runbooks_path
    if not root.is_dir():
        return loader.load_folder(root)  # raises the loader's own clear error
    signature = _signature(root)
    with _cache_lock:
        hit = _cache.get(root)
    if hit is not None and hit[0] == signature:
        return hit[1]
    catalog = loader.load_folder(root)
    with _cache_lock:
        _cache[root] = (signature, catalog)
    return catalog


def listing(rt: Runtime) -> Listing:
    try:
        catalog = load(rt)
    except InvalidInput as exc:
        return Listing([], [], exc.message)
    return Listing(list(catalog), list(catalog.problems))


def catalogue(rt: Runtime) -> list[Runbook]:
    return listing(rt).runbooks


def get(rt: Runtime, runbook_id: str) -> Runbook:
    """Raises NotFound naming the runbook."""
    try:
        found = load(rt).get(runbook_id)
    except InvalidInput:
        found = None
    if found is None:
        raise NotFound(f"runbook {runbook_id!r} does not exist", field="runbook")
    return found


def for_incident(rt: Runtime, runbook_ids: list[str]) -> Runbook | None:
    """The first of an incident's runbooks that loads; the page still shows without one."""
    for rid in runbook_ids or []:
        try:
            return get(rt, rid)
        except NotFound:
            log.info("incident_runbook_missing", runbook=rid)
    return None


def overdue_reviews(rt: Runtime, now: datetime) -> list[dict[str, Any]]:
    try:
        items = maintenance.stale(load(rt), now)
    except InvalidInput:
        return []
    return [
        {
            "id": o.runbook_id,
            "kind": o.kind,
            "owner": o.owner,
            "due": o.due.isoformat() if o.due else "never done",
            "days": o.days_overdue,
        }
        for o in items
    ]


def warnings_for(rt: Runtime, rb: Runbook, now: datetime) -> list[Problem]:
    owners = rt.config.owners() or None
    return lint.lint_runbook(
        rb, today=now.date(), owners=owners, connections=set(rt.config.connections) or None
    )


@router.get("/runbooks")
def runbooks_page(request: Request, rt: RuntimeDep, _viewer: Viewer) -> Response:
    found = listing(rt)
    overdue = {o["id"] for o in overdue_reviews(rt, rt.now()) if o["kind"] == "review"}
    return common.render(
        request,
        "runbooks.html",
        {"listing": found, "overdue": overdue},
    )


@router.get("/runbooks/{runbook_id}")
def runbook_page(request: Request, runbook_id: str, rt: RuntimeDep, _viewer: Viewer) -> Response:
    if len(runbook_id) > 100:
        raise NotFound("runbook does not exist", field="runbook")
    rb = get(rt, runbook_id)
    now = rt.now()
    return common.render(
        request,
        "runbook.html",
        {
            "runbook": rb,
            "html": render_markdown(rb.body),
            "problems": warnings_for(rt, rb, now),
            "review_due": rb.review_due(),
        },
    )
