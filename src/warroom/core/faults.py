"""Deterministic crash points for reliability tests (WARROOM_FAULT=<point>).

The process dies with os._exit(137), like SIGKILL, at the named point. The
points are the windows where a crash could lose or repeat a page:
  after_ingest_commit   alert committed, HTTP answer not yet sent
  after_claim           job claimed (leased), delivery not yet attempted
  after_send            provider accepted the delivery, not yet marked sent
  after_mark_sent       marked sent, timeline event not yet written
  after_declare_commit  incident declared and committed, HTTP answer not yet sent
"""

from __future__ import annotations

import os
import sys

POINTS = frozenset(
    {
        "after_ingest_commit",
        "after_claim",
        "after_send",
        "after_mark_sent",
        "after_declare_commit",
    }
)
_armed: str = ""


def arm(point: str) -> None:
    """Arm one crash point (from settings at start-up). Empty disarms."""
    global _armed  # noqa: PLW0603 - process-wide switch set once at start
    if point and point not in POINTS:
        raise ValueError(f"unknown WARROOM_FAULT point {point!r}; one of {sorted(POINTS)}")
    _armed = point


def hit(point: str) -> None:
    if _armed and _armed == point:
        sys.stderr.write(f"warroom: WARROOM_FAULT={point}: exiting now\n")
        sys.stderr.flush()
        os._exit(137)
