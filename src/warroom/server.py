"""Start the HTTP server (with an embedded worker) or a worker on its own."""

from __future__ import annotations

import secrets
import signal
import sys
from pathlib import Path
from types import FrameType

from sqlalchemy import func, select

from warroom.bootstrap import build_registry, build_runtime
from warroom.core.logging import get_logger
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Worker
from warroom.settings import Settings, from_env
from warroom.store import migrate as migrations

log = get_logger("warroom.server")


def load_settings(config: Path | None) -> Settings:
    base = from_env()
    return base.with_(config_path=config) if config is not None else base


def serve(
    *,
    host: str,
    port: int,
    worker: bool,
    config: Path | None,
    migrate: bool | None,
    demo: bool,
) -> None:
    import uvicorn

    from warroom.web.app import create_app

    settings = load_settings(config)
    if demo:
        settings = settings.with_(demo=True)
    if not settings.public_url:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        settings = settings.with_(public_url=f"http://{shown}:{port}")
    rt = build_runtime(settings)
    if migrate is None:
        migrate = rt.db.dialect == "sqlite"
    if migrate:
        migrations.upgrade(rt.db)
    elif not migrations.is_current(rt.db):
        log.warning("migrations_pending", hint="run `warroom db upgrade`")
    if settings.demo:
        _demo_admin(rt)
    app = create_app(rt, build_registry() if worker else None, run_worker=worker)
    sys.stderr.write(
        f"warroom: serving on http://{host}:{port} "
        f"({rt.db.dialect}{', with worker' if worker else ', no worker'})\n"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,
        timeout_graceful_shutdown=10,
    )


def _demo_admin(rt: Runtime) -> None:
    """First start of the demo: create an admin with a random password, print it once."""
    from warroom.auth import service as auth
    from warroom.auth.models import User

    with rt.db.transaction() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return
        password = secrets.token_urlsafe(12)
        user = auth.create_user(s, name="admin", role="admin", now=rt.now(), password=password)
        token = auth.create_token(s, user=user, name="demo", now=rt.now())
    sys.stderr.write(
        "\n  Demo admin created (shown once):\n"
        f"    web login:  admin / {password}\n"
        f"    API token:  export WARROOM_TOKEN={token}\n\n"
    )


def run_worker(*, config: Path | None, once: bool) -> None:
    settings = load_settings(config)
    rt = build_runtime(settings)
    if not migrations.is_current(rt.db):
        log.warning("migrations_pending", hint="run `warroom db upgrade`")
    w = Worker(rt, build_registry())

    def _stop(signum: int, _frame: FrameType | None) -> None:
        w.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if once:
        w.heartbeat()
        n = w.drain()
        sys.stderr.write(f"warroom: worker ran {n} job(s)\n")
        return
    w.run_forever()
