"""Alembic environment: uses the connection warroom hands in (never a URL in an ini file)."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
engine = config.attributes.get("engine")

target_metadata = None
if config.attributes.get("autogenerate"):
    from warroom.bootstrap import metadata

    target_metadata = metadata()


def run(conn: object) -> None:
    context.configure(
        connection=conn,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    assert engine is not None, "warroom passes an engine or a connection"
    with engine.begin() as conn:
        run(conn)
