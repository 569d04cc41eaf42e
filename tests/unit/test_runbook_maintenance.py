"""Review and drill due dates, and recording a review without touching anything else."""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path

import pytest

from warroom.core.errors import InvalidInput
from warroom.runbooks.loader import load_file, load_folder
from warroom.runbooks.maintenance import review, stale

pytestmark = pytest.mark.unit

TEXT = (
    "---\r\n"
    "id: db\r\n"
    "title: DB   # odd spacing stays\r\n"
    "review_every: 30d\r\n"
    "last_reviewed:   2026-01-01   # keep this comment\r\n"
    "reviewed_by: alice\r\n"
    "drill_every: 90d\r\n"
    "---\r\n"
    "\r\n"
    "## Investigate\r\n"
    "last_reviewed: 1999-01-01 in the body is not front matter\r\n"
)


def test_review_changes_only_the_two_lines_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "db.md"
    path.write_bytes(TEXT.encode())
    review(path, "bob", date(2026, 11, 29))
    after = path.read_bytes().decode()
    diff = [
        line
        for line in difflib.unified_diff(
            TEXT.splitlines(keepends=True), after.splitlines(keepends=True), n=0
        )
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        "-last_reviewed:   2026-01-01   # keep this comment\r\n",
        "-reviewed_by: alice\r\n",
        "+last_reviewed:   2026-11-29   # keep this comment\r\n",
        "+reviewed_by: bob\r\n",
    ]
    rb = load_file(path)
    assert rb.last_reviewed == date(2026, 11, 29) and rb.reviewed_by == "bob"


def test_review_adds_missing_lines_and_refuses_odd_names(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text("---\nid: x\n---\nbody\n")
    review(path, "Carol Lead", date(2026, 11, 29))
    assert path.read_text() == (
        '---\nid: x\nlast_reviewed: 2026-11-29\nreviewed_by: "Carol Lead"\n---\nbody\n'
    )
    for bad in ("a\nb", "x: y", "", "#evil"):
        with pytest.raises(InvalidInput):
            review(path, bad, date(2026, 11, 29))
    plain = tmp_path / "plain.md"
    plain.write_text("# no front matter\n")
    with pytest.raises(InvalidInput, match="no front matter"):
        review(plain, "bob", date(2026, 11, 29))


def test_stale_lists_overdue_reviews_and_drills(tmp_path: Path) -> None:
    (tmp_path / "db.md").write_bytes(TEXT.encode())
    (tmp_path / "fresh.md").write_text(
        "---\nid: fresh\nreview_every: 30d\nlast_reviewed: 2026-11-20\n---\n"
    )
    items = stale(load_folder(tmp_path), date(2026, 11, 29))
    assert [(i.runbook_id, i.kind, i.days_overdue) for i in items] == [
        ("db", "review", 302),
        ("db", "drill", 0),  # never drilled
    ]
    assert items[1].due is None
    assert stale(load_folder(tmp_path), date(2026, 1, 2))[0].kind == "drill"
