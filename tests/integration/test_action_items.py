"""Action items: overdue listing, and runbook-update items closed by the runbook's change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from warroom.core.clock import FrozenClock
from warroom.core.errors import Conflict, InvalidInput, NotFound
from warroom.jobs.runtime import Runtime
from warroom.postmortems import actions
from warroom.postmortems import jobs as pm_jobs
from warroom.postmortems.runbookrefs import load_catalog
from warroom.store.audit import verify

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
RUNBOOK = """---
id: high-cpu-usage
title: High CPU Usage
owner: devops-team
severity: P2
review_every: 30d
last_reviewed: 2026-10-01
reviewed_by: alice
---

# High CPU Usage

## Mitigate

```bash
kubectl top pods
```
"""


def _runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "high-cpu-usage.md").write_text(RUNBOOK)
    (folder / "README.md").write_text("# index\n")
    return folder


def test_overdue_lists_open_items_past_due_oldest_first(
    db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(db_url, clock=FrozenClock(T0))
    with rt.db.transaction() as s:
        mk = lambda title, due: actions.create(  # noqa: E731
            s, title=title, kind="preventive", now=T0, actor="alice", owner="bob", due_date=due
        )
        late = mk("late", "2026-11-01")
        later = mk("later", "2026-10-01")
        mk("on time", "2026-11-30")
        mk("no date", None)
        done = mk("done late", "2026-10-15")
        actions.set_state(s, done, state="done", now=T0, actor="bob")
        wontfix = mk("given up", "2026-10-16")
        actions.set_state(s, wontfix, state="wontfix", now=T0, actor="bob", reason="obsolete")
        progress = mk("in progress", "2026-11-09")
        actions.set_state(s, progress, state="in_progress", now=T0, actor="bob")
    with rt.db.read() as s:
        overdue = actions.overdue_actions(s, date(2026, 11, 10))
        assert [i.title for i in overdue] == ["later", "late", "in progress"]
        assert actions.as_dict(overdue[0], today=date(2026, 11, 10))["overdue"] is True
        assert {i.id for i in actions.list_items(s, open_only=True)} == {
            late.id,
            later.id,
            progress.id,
        } | {i.id for i in actions.list_items(s) if i.title in ("on time", "no date")}
        assert verify(s).ok


def test_bad_action_item_input_is_named(
    sqlite_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_runtime(sqlite_url)
    catalog = load_catalog(_runbooks(tmp_path))
    with rt.db.transaction() as s:
        cases: list[tuple[dict[str, object], type[Exception], str]] = [
            ({"kind": "chores"}, InvalidInput, "kind"),
            ({"due_date": "next week"}, InvalidInput, "due_date"),
            ({"title": "   "}, InvalidInput, "title"),
            ({"kind": "runbook_update"}, InvalidInput, "runbook"),
            ({"kind": "runbook_update", "runbook_id": "nope"}, NotFound, "runbook"),
        ]
        for over, exc, field in cases:
            args: dict[str, object] = {"title": "x", "kind": "preventive", **over}
            with pytest.raises(exc) as err:
                actions.create(s, now=T0, actor="a", catalog=catalog, **args)  # type: ignore[arg-type]
            assert err.value.field == field  # type: ignore[attr-defined]
        item = actions.create(s, title="x", kind="other", now=T0, actor="a")
        actions.set_state(s, item, state="done", now=T0, actor="a")
        with pytest.raises(Conflict):
            actions.set_state(s, item, state="wontfix", now=T0, actor="a")


def test_runbook_update_item_closes_when_the_runbook_is_reviewed(
    db_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    folder = _runbooks(tmp_path)
    clock = FrozenClock(T0)
    rt = make_runtime(db_url, clock=clock)
    rt.settings = rt.settings.with_(runbooks_path=folder)
    with rt.db.transaction() as s:
        item = actions.create(
            s,
            title="Add the throttling step we used",
            kind="runbook_update",
            now=clock.now(),
            actor="alice",
            runbook_id="high-cpu-usage",
            catalog=load_catalog(folder),
        )
        other = actions.create(
            s, title="Unrelated", kind="preventive", now=clock.now(), actor="alice"
        )
    assert item.runbook_hash == load_catalog(folder)[0].file_hash
    assert pm_jobs.sweep_runbook_actions(rt) == 0  # unchanged file: stays open

    clock.advance(timedelta(days=2))
    path = folder / "high-cpu-usage.md"
    path.write_text(
        path.read_text()
        .replace("last_reviewed: 2026-10-01", "last_reviewed: 2026-11-12")
        .replace("reviewed_by: alice", "reviewed_by: bob")
    )
    assert pm_jobs.sweep_runbook_actions(rt) == 1
    assert pm_jobs.sweep_runbook_actions(rt) == 0
    with rt.db.read() as s:
        closed = actions.get_or_raise(s, item.id)
        assert closed.state == "done"
        assert closed.closed_reason == "runbook high-cpu-usage reviewed on 2026-11-12 by bob"
        assert closed.closed_at == clock.now()
        assert actions.get_or_raise(s, other.id).state == "open"


def test_runbook_update_item_closes_on_an_edit_without_review(
    sqlite_url: str, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    folder = _runbooks(tmp_path)
    rt = make_runtime(sqlite_url, clock=FrozenClock(T0))
    with rt.db.transaction() as s:
        item = actions.create(
            s,
            title="Document the rollback",
            kind="runbook_update",
            now=T0,
            actor="alice",
            runbook_id="high-cpu-usage",
            catalog=load_catalog(folder),
        )
    (folder / "high-cpu-usage.md").write_text(RUNBOOK + "\n## Rollback\n\nUse helm rollback.\n")
    with rt.db.transaction() as s:
        closed = actions.close_updated_runbook_items(s, catalog=load_catalog(folder), now=T0)
    assert [c.id for c in closed] == [item.id]
    assert closed[0].closed_reason.startswith("runbook high-cpu-usage changed (file hash ")
