"""Timeline events are append-only in the database itself, not only by convention.

An UPDATE or DELETE on timeline_events is refused by a trigger on SQLite and
PostgreSQL, so no code path (or hand-written SQL) can rewrite the record a
postmortem is written from.

Revision ID: 0002_incidents
Revises: 0001_baseline
"""

from __future__ import annotations

from alembic import op

revision = "0002_incidents"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

MESSAGE = "timeline events are append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION warroom_timeline_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER timeline_events_append_only BEFORE UPDATE OR DELETE "
            "ON timeline_events FOR EACH ROW EXECUTE FUNCTION warroom_timeline_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER timeline_events_no_{action.lower()} BEFORE {action} "
                f"ON timeline_events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS timeline_events_append_only ON timeline_events")
        op.execute("DROP FUNCTION IF EXISTS warroom_timeline_append_only()")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS timeline_events_no_{action}")
